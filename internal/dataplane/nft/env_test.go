package nft_test

// Address plan (everything inside namespaces the test creates):
//
//	host/internet namespace "nbh…"   198.18.255.253 (uplink host end; also the "internet" server)
//	nimbus namespace "nbt…"          198.18.255.254 (uplink), 198.19.1.1 (subnet gateway)
//	public frontends                 198.18.100.0/24, routed host -> nimbus
//	internal frontend                198.19.1.100
//	instances "nbi…"                 198.19.1.4, .5, .6 (echo servers on :8080, :22, udp :8080)

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
)

var (
	publicRange = netip.MustParsePrefix("198.18.100.0/24")
	subnet      = netip.MustParsePrefix("198.19.1.0/24")
	gateway     = netip.MustParseAddr("198.19.1.1")
	feIP        = netip.MustParseAddr("198.18.100.10")
	fe2IP       = netip.MustParseAddr("198.18.100.11")
	ilbIP       = netip.MustParseAddr("198.19.1.100")
)

type vm struct {
	name string
	ip   netip.Addr
	ns   *hostnet.Namespace
}

type env struct {
	*hostnettest.Env
	eng *nft.Engine
	vms []*vm
}

// newEnv builds the nimbus namespace, n instances with echo servers and an
// engine.
func newEnv(t *testing.T, n int) *env {
	t.Helper()
	he := hostnettest.New(t, publicRange)
	if _, err := he.Net.EnsureSubnet(context.Background(), subnet, gateway); err != nil {
		t.Fatal(err)
	}
	e := &env{Env: he}
	for i := 0; i < n; i++ {
		ip := netip.AddrFrom4([4]byte{198, 19, 1, byte(4 + i)})
		e.vms = append(e.vms, newVM(t, he, fmt.Sprintf("vm%d", i), ip))
	}
	eng, err := nft.New(context.Background(), he.Net.Namespace(), nft.Options{Uplink: he.Net.UplinkName()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		eng.Remove(context.Background())
		eng.Close()
	})
	e.eng = eng
	return e
}

func newVM(t *testing.T, he *hostnettest.Env, name string, ip netip.Addr) *vm {
	t.Helper()
	ns := hostnettest.Namespace(t, "nbi")
	h := he.Net.Namespace().Handle()
	port := "v" + ns.Name()[3:]
	if err := h.LinkAdd(&netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: port}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.Fd())}); err != nil {
		t.Fatalf("veth: %v", err)
	}
	link, err := h.LinkByName(port)
	if err != nil {
		t.Fatal(err)
	}
	if err := he.Net.AttachPort(context.Background(), subnet, link); err != nil {
		t.Fatal(err)
	}
	eth, err := ns.Handle().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle().AddrAdd(eth, &netlink.Addr{IPNet: &net.IPNet{IP: ip.AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle().LinkSetUp(eth); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle().RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: gateway.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	v := &vm{name: name, ip: ip, ns: ns}
	for _, p := range []int{8080, 22} {
		serveTCP(t, ns, fmt.Sprintf(":%d", p), name)
	}
	serveUDP(t, ns, ":8080", name)
	return v
}

// serveTCP answers "name=<vm> client=<remote> local=<local>\n", then, for a
// request line "stream", keeps writing a tick every 100 ms until the peer
// closes.
func serveTCP(t *testing.T, ns *hostnet.Namespace, addr, name string) {
	t.Helper()
	var l net.Listener
	if err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s: %v", addr, err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]bool{}
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[c] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(30 * time.Second))
				fmt.Fprintf(c, "name=%s client=%s local=%s\n", name, c.RemoteAddr(), c.LocalAddr())
				line, _ := bufio.NewReader(c).ReadString('\n')
				if strings.TrimSpace(line) == "stream" {
					for i := 0; i < 300; i++ {
						if _, err := fmt.Fprintf(c, "tick %d\n", i); err != nil {
							return
						}
						time.Sleep(100 * time.Millisecond)
					}
				}
			}()
		}
	}()
}

func serveUDP(t *testing.T, ns *hostnet.Namespace, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.Do(func() error {
		var err error
		pc, err = net.ListenPacket("udp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen udp %s: %v", addr, err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { pc.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 1500)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			fmt.Fprintf(pcWriter{pc, from}, "name=%s client=%s", name, from)
		}
	}()
}

type pcWriter struct {
	pc net.PacketConn
	to net.Addr
}

func (w pcWriter) Write(b []byte) (int, error) { return w.pc.WriteTo(b, w.to) }

// reply is one parsed echo answer.
type reply struct{ name, client, local string }

func parseReply(s string) reply {
	var r reply
	for _, f := range strings.Fields(s) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "name":
			r.name = v
		case "client":
			r.client = v
		case "local":
			r.local = v
		}
	}
	return r
}

// get connects from ns to addr and returns the first line.
func get(ctx context.Context, ns *hostnet.Namespace, addr string) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := hostnet.DialIn(ctx, ns, "tcp4", addr)
	if err != nil {
		return reply{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return reply{}, err
	}
	io.WriteString(c, "bye\n")
	return parseReply(line), nil
}

func mustGet(t *testing.T, ns *hostnet.Namespace, addr string) reply {
	t.Helper()
	r, err := get(context.Background(), ns, addr)
	if err != nil {
		t.Fatalf("get %s: %v", addr, err)
	}
	return r
}

func getUDP(t *testing.T, ns *hostnet.Namespace, addr string) reply {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := hostnet.DialIn(ctx, ns, "udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := 0; i < 5; i++ {
		c.Write([]byte("hi"))
		c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		buf := make([]byte, 1500)
		n, err := c.Read(buf)
		if err == nil {
			return parseReply(string(buf[:n]))
		}
	}
	t.Fatalf("no UDP answer from %s", addr)
	return reply{}
}

func (e *env) backends() []dataplane.Backend {
	var bs []dataplane.Backend
	for _, v := range e.vms {
		bs = append(bs, dataplane.Backend{ID: "nic/" + v.name, IP: v.ip, DialIP: v.ip})
	}
	return bs
}

func (e *env) apply(t *testing.T, cfg dataplane.Config) {
	t.Helper()
	if err := e.eng.Apply(context.Background(), cfg); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func publicFE(ip netip.Addr) dataplane.Frontend {
	return dataplane.Frontend{ID: "fe/" + ip.String(), IP: ip}
}

func lbRule(id string, fe dataplane.Frontend, p dataplane.Protocol, fport, bport uint16, bs []dataplane.Backend) dataplane.Rule {
	return dataplane.Rule{ID: id, Frontend: fe, Protocol: p, FrontendPort: fport, BackendPort: bport, Backends: bs, ProbeID: "probe/1"}
}

func hp(ip netip.Addr, port int) string { return netip.AddrPortFrom(ip, uint16(port)).String() }
