package nft_test

// Address plan for the conformance suite: frontends 198.18.100.20-.23
// (public range routed from the test's host namespace), backends
// 198.19.1.4-.11 (one namespace each, on the subnet bridge), clients
// 198.18.200.1-.16 (/32s on lo of the host namespace).

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/dptest"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
)

func TestConformance(t *testing.T) {
	he := hostnettest.New(t, publicRange)
	if _, err := he.Net.EnsureSubnet(context.Background(), subnet, gateway); err != nil {
		t.Fatal(err)
	}
	var backends []*hostnet.Namespace
	for i := 0; i < 8; i++ {
		backends = append(backends, newVM(t, he, fmt.Sprintf("b%d", i), backendIP(i)).ns)
	}
	lo, err := he.Host.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 16; i++ {
		ip := clientIP(i)
		if err := he.Host.Handle().AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	var port atomic.Uint32
	port.Store(30000)
	dptest.Run(t, dptest.Harness{
		NewEngine: func(t *testing.T) dataplane.Engine {
			eng, err := nft.New(context.Background(), he.Net.Namespace(), nft.Options{Uplink: he.Net.UplinkName()})
			if err != nil {
				t.Fatal(err)
			}
			return eng
		},
		Frontend: func(i int) dataplane.Frontend {
			return publicFE(netip.AddrFrom4([4]byte{198, 18, 100, byte(20 + i)}))
		},
		BackendIP: backendIP,
		ClientIP:  clientIP,
		ListenTCP: func(i int, port uint16) (net.Listener, error) {
			var l net.Listener
			err := backends[i].Do(func() error {
				var err error
				l, err = net.Listen("tcp4", netip.AddrPortFrom(backendIP(i), port).String())
				return err
			})
			return l, err
		},
		ListenUDP: func(i int, port uint16) (net.PacketConn, error) {
			var c net.PacketConn
			err := backends[i].Do(func() error {
				var err error
				c, err = net.ListenPacket("udp4", netip.AddrPortFrom(backendIP(i), port).String())
				return err
			})
			return c, err
		},
		Dial: func(ctx context.Context, client int, network string, to netip.AddrPort) (net.Conn, error) {
			var c net.Conn
			err := he.Host.Do(func() error {
				d := net.Dialer{}
				src := netip.AddrPortFrom(clientIP(client), 0)
				if network == "udp" {
					d.LocalAddr = net.UDPAddrFromAddrPort(src)
				} else {
					d.LocalAddr = net.TCPAddrFromAddrPort(src)
				}
				var err error
				c, err = d.DialContext(ctx, network+"4", to.String())
				return err
			})
			return c, err
		},
		FrontendPort:    func(*testing.T) uint16 { return uint16(port.Add(1)) },
		ProbeDialer:     he.Net,
		SilentIdle:      true,
		NetworkSecurity: true,
	})
}

func backendIP(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, 1, byte(4 + i)}) }
func clientIP(i int) netip.Addr  { return netip.AddrFrom4([4]byte{198, 18, 200, byte(1 + i)}) }
