// Package dptest is the data-plane engine conformance suite: every engine
// (dataplane/proxy, dataplane/nft) runs Run with a Harness that says how to
// create the engine and where clients, frontends and backends live.
//
// The suite starts its own backends (a TCP echo server that first sends its
// name, an HTTP health endpoint whose status the suite flips, a UDP echo
// server), applies Configs to the engine, and checks behaviour from the
// client's sockets: spread, affinity, failover on probe, idle timeout and
// TCP reset, UDP both ways, NAT ports, and configuration changes under load.
// Every loop is bounded in count and time; all traffic stays on the
// addresses the harness gives (loopback for proxy, the harness's own network
// namespaces for nft).
package dptest

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/probe"
)

// Harness describes one engine under test. Fields marked optional have a
// loopback default that suits an engine running in the test's own network
// namespace.
type Harness struct {
	// NewEngine returns a fresh engine for one scenario. The suite closes it
	// at the end of the scenario.
	NewEngine func(t *testing.T) dataplane.Engine
	// Frontend returns frontend number i (0 ≤ i < 4), as it appears in the
	// Config. Distinct i give distinct addresses. Clients dial Frontend(i).IP;
	// the engine listens where the Frontend says (ListenIP or IP).
	Frontend func(i int) dataplane.Frontend
	// BackendIP returns the dial address (Backend.DialIP) of backend number
	// i (0 ≤ i < 8). Backend.IP is set to the same address.
	BackendIP func(i int) netip.Addr
	// ClientIP returns the source address of client number i (0 ≤ i < 16).
	ClientIP func(i int) netip.Addr

	// ListenTCP opens a TCP listener as backend i on port (0 = any).
	// Optional: default listens on BackendIP(i) in the current namespace.
	ListenTCP func(i int, port uint16) (net.Listener, error)
	// ListenUDP opens a UDP socket as backend i on port. Optional.
	ListenUDP func(i int, port uint16) (net.PacketConn, error)
	// Dial connects as client i to a frontend address ("tcp" or "udp").
	// Optional: default binds the source address ClientIP(i).
	Dial func(ctx context.Context, client int, network string, to netip.AddrPort) (net.Conn, error)
	// FrontendPort returns a port free on every frontend for both TCP and
	// UDP. Optional: default asks the OS on Frontend(0..3)'s listen address.
	FrontendPort func(t *testing.T) uint16
	// ProbeDialer is the dialer the suite's prober uses to reach backends.
	// Optional: nil dials from the current namespace.
	ProbeDialer probe.Dialer

	// SilentIdle is true for engines that drop an idle flow without telling
	// the client (the kernel engine without TCP reset); the suite then only
	// checks that no RST arrives. False means the client sees EOF.
	SilentIdle bool
	// ProxyProtocol is true for engines that honour Rule.ProxyProtocol (the
	// userspace engine); the kernel engine keeps the client address instead.
	ProxyProtocol bool
	// NetworkSecurity is true for engines that enforce Config.Security; the
	// suite skips its network security scenarios for the others.
	NetworkSecurity bool
}

func (h *Harness) listenTCP(i int, port uint16) (net.Listener, error) {
	if h.ListenTCP != nil {
		return h.ListenTCP(i, port)
	}
	return net.Listen("tcp", netip.AddrPortFrom(h.BackendIP(i), port).String())
}

func (h *Harness) listenUDP(i int, port uint16) (net.PacketConn, error) {
	if h.ListenUDP != nil {
		return h.ListenUDP(i, port)
	}
	return net.ListenPacket("udp", netip.AddrPortFrom(h.BackendIP(i), port).String())
}

func (h *Harness) dial(ctx context.Context, client int, network string, to netip.AddrPort) (net.Conn, error) {
	if h.Dial != nil {
		return h.Dial(ctx, client, network, to)
	}
	var local net.Addr
	src := netip.AddrPortFrom(h.ClientIP(client), 0)
	if network == "udp" {
		local = net.UDPAddrFromAddrPort(src)
	} else {
		local = net.TCPAddrFromAddrPort(src)
	}
	d := net.Dialer{LocalAddr: local}
	return d.DialContext(ctx, network, to.String())
}

func (h *Harness) frontendPort(t *testing.T) uint16 {
	if h.FrontendPort != nil {
		return h.FrontendPort(t)
	}
	for range 50 {
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(netip.AddrPortFrom(listenIP(h.Frontend(0)), 0)))
		if err != nil {
			t.Fatalf("dptest: pick frontend port: %v", err)
		}
		port := l.Addr().(*net.TCPAddr).AddrPort().Port()
		ok := true
		var held []interface{ Close() error }
		for i := 0; i < 4 && ok; i++ {
			a := netip.AddrPortFrom(listenIP(h.Frontend(i)), port)
			if i > 0 {
				tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(a))
				if err != nil {
					ok = false
					break
				}
				held = append(held, tl)
			}
			u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(a))
			if err != nil {
				ok = false
				break
			}
			held = append(held, u)
		}
		for _, c := range held {
			c.Close()
		}
		l.Close()
		if ok {
			return port
		}
	}
	t.Fatal("dptest: no free frontend port")
	return 0
}

func listenIP(f dataplane.Frontend) netip.Addr {
	if f.ListenIP.IsValid() {
		return f.ListenIP
	}
	return f.IP
}
