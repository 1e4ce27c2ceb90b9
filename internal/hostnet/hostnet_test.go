package hostnet_test

// Address plan (all inside 198.18.0.0/15, nothing leaves the test's namespaces
// except the root-namespace case, which only creates and deletes a veth):
//
//	uplink            198.18.255.252/30  host end .253, nimbus end .254
//	public range      198.18.100.0/24    routed host -> nimbus
//	subnet            198.19.1.0/24      gateway .1, instances .4 and .5
//	root-ns test      198.18.255.248/30, range 198.18.254.0/24 (no traffic)

import (
	"context"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
)

var (
	publicRange = netip.MustParsePrefix("198.18.100.0/24")
	subnet      = netip.MustParsePrefix("198.19.1.0/24")
	gateway     = netip.MustParseAddr("198.19.1.1")
)

func readSysctl(t *testing.T, ns *hostnet.Namespace, key string) string {
	t.Helper()
	var v []byte
	if err := ns.Do(func() error {
		var err error
		v, err = os.ReadFile("/proc/sys/" + key)
		return err
	}); err != nil {
		t.Fatalf("read %s: %v", key, err)
	}
	return strings.TrimSpace(string(v))
}

// serveEcho listens on addr inside ns and writes back the peer address.
func serveEcho(t *testing.T, ns *hostnet.Namespace, addr string) {
	t.Helper()
	var l net.Listener
	if err := ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp", addr)
		return err
	}); err != nil {
		t.Fatalf("listen %s in %s: %v", addr, ns.Name(), err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			io.WriteString(c, c.RemoteAddr().String())
			c.Close()
		}
	}()
}

func ask(t *testing.T, ns *hostnet.Namespace, addr string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	c, err := hostnet.DialIn(ctx, ns, "tcp", addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, ns.Name(), err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read from %s: %v", addr, err)
	}
	return string(b)
}

// instance builds a namespace with eth0 on the subnet's bridge.
func instance(t *testing.T, env *hostnettest.Env, ip string) *hostnet.Namespace {
	t.Helper()
	ns := hostnettest.Namespace(t, "nbi")
	h := env.Net.Namespace().Handle()
	name := "v" + ns.Name()[3:]
	veth := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: name}, PeerName: "eth0", PeerNamespace: netlink.NsFd(ns.Fd())}
	if err := h.LinkAdd(veth); err != nil {
		t.Fatalf("veth: %v", err)
	}
	link, err := h.LinkByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := env.Net.AttachPort(context.Background(), subnet, link); err != nil {
		t.Fatal(err)
	}
	eth, err := ns.Handle().LinkByName("eth0")
	if err != nil {
		t.Fatal(err)
	}
	addr, _ := netlink.ParseAddr(ip + "/24")
	if err := ns.Handle().AddrAdd(eth, addr); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle().LinkSetUp(eth); err != nil {
		t.Fatal(err)
	}
	if err := ns.Handle().RouteAdd(&netlink.Route{LinkIndex: eth.Attrs().Index, Gw: net.ParseIP(gateway.String())}); err != nil {
		t.Fatal(err)
	}
	return ns
}

func TestSetupInNamespace(t *testing.T) {
	env := hostnettest.New(t, publicRange)
	ns := env.Net.Namespace()

	for key, want := range map[string]string{
		"net/ipv4/ip_forward":                "1",
		"net/ipv4/conf/all/rp_filter":        "0",
		"net/bridge/bridge-nf-call-iptables": "0",
	} {
		if _, err := os.Stat("/proc/sys/" + key); err != nil {
			continue
		}
		if got := readSysctl(t, ns, key); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}

	hostLink, err := env.Host.Handle().LinkByName(hostnet.HostLinkName(env.Net.Name()))
	if err != nil {
		t.Fatalf("host veth: %v", err)
	}
	routes, err := env.Host.Handle().RouteList(hostLink, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, r := range routes {
		if r.Dst != nil && r.Dst.String() == publicRange.String() && r.Gw.String() == env.Net.UplinkAddr().String() {
			found = true
		}
	}
	if !found {
		t.Errorf("no route %s via %s in host namespace: %v", publicRange, env.Net.UplinkAddr(), routes)
	}

	serveEcho(t, ns, net.JoinHostPort(env.Net.UplinkAddr().String(), "7000"))
	if got := ask(t, env.Host, net.JoinHostPort(env.Net.UplinkAddr().String(), "7000")); !strings.HasPrefix(got, env.Net.HostAddr().String()+":") {
		t.Errorf("nimbus saw client %q, want %s", got, env.Net.HostAddr())
	}
}

func TestSubnetRoutedBetweenIsolatedPorts(t *testing.T) {
	env := hostnettest.New(t, publicRange)
	br, err := env.Net.EnsureSubnet(context.Background(), subnet, gateway)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := env.Net.EnsureSubnet(context.Background(), subnet, gateway); err != nil || again != br {
		t.Fatalf("EnsureSubnet again = %q, %v", again, err)
	}
	a := instance(t, env, "198.19.1.4")
	b := instance(t, env, "198.19.1.5")
	serveEcho(t, b, "198.19.1.5:7001")
	serveEcho(t, env.Net.Namespace(), "198.19.1.1:7002")

	tests := []struct {
		name, addr, want string
		from             *hostnet.Namespace
	}{
		{"instance to instance keeps source", "198.19.1.5:7001", "198.19.1.4:", a},
		{"instance to gateway", "198.19.1.1:7002", "198.19.1.4:", a},
		{"gateway to instance", "198.19.1.5:7001", "198.19.1.1:", env.Net.Namespace()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := ask(t, tc.from, tc.addr); !strings.HasPrefix(got, tc.want) {
				t.Errorf("peer = %q, want prefix %q", got, tc.want)
			}
		})
	}
	if err := env.Net.RemoveSubnet(context.Background(), subnet); err != nil {
		t.Fatal(err)
	}
	if err := env.Net.RemoveSubnet(context.Background(), subnet); err != nil {
		t.Fatalf("second RemoveSubnet: %v", err)
	}
}

func TestAdoptAndTeardown(t *testing.T) {
	env := hostnettest.New(t, publicRange)
	ctx := context.Background()
	if _, err := env.Net.EnsureSubnet(ctx, subnet, gateway); err != nil {
		t.Fatal(err)
	}
	// A second process starting while the first still runs (or after it
	// crashed) adopts everything.
	n2, err := hostnet.Setup(ctx, env.Opts)
	if err != nil {
		t.Fatalf("adopting Setup: %v", err)
	}
	if err := n2.Close(ctx, false); err != nil {
		t.Fatal(err)
	}
	if !hostnet.NamespaceExists(env.Opts.Name) {
		t.Fatal("Close without teardown removed the namespace")
	}
	n3, err := hostnet.Setup(ctx, env.Opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := n3.Namespace().Handle().LinkByName(hostnet.BridgeName(subnet)); err != nil {
		t.Errorf("adopted namespace lost its bridge: %v", err)
	}
	if err := n3.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	if hostnet.NamespaceExists(env.Opts.Name) {
		t.Error("namespace left after teardown")
	}
	if _, err := env.Host.Handle().LinkByName(hostnet.HostLinkName(env.Opts.Name)); err == nil {
		t.Error("host veth left after teardown")
	}
}

func TestRootNamespaceLinkOnly(t *testing.T) {
	hostnettest.RequireRoot(t)
	ctx := context.Background()
	opts := hostnet.Options{
		Name:         hostnettest.UniqueName("nbt"),
		Uplink:       netip.MustParsePrefix("198.18.255.248/30"),
		PublicRanges: []netip.Prefix{netip.MustParsePrefix("198.18.254.0/24")},
	}
	t.Cleanup(func() { hostnet.Teardown(ctx, opts) })
	before, err := netlink.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	n, err := hostnet.Setup(ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	after, _ := netlink.LinkList()
	if len(after) != len(before)+1 {
		t.Errorf("root namespace links: %d before, %d after; want exactly one more", len(before), len(after))
	}
	l, err := netlink.LinkByName(hostnet.HostLinkName(opts.Name))
	if err != nil {
		t.Fatalf("root veth: %v", err)
	}
	routes, _ := netlink.RouteList(l, netlink.FAMILY_V4)
	if len(routes) != 2 { // the /30 and the public range
		t.Errorf("routes via %s: %v, want the link /30 and 198.18.254.0/24", l.Attrs().Name, routes)
	}
	if err := n.Close(ctx, true); err != nil {
		t.Fatal(err)
	}
	final, _ := netlink.LinkList()
	if len(final) != len(before) {
		t.Errorf("root namespace has %d links after teardown, had %d", len(final), len(before))
	}
}

func TestSetupRefusesTakenRange(t *testing.T) {
	host := hostnettest.Namespace(t, "nbh")
	lo, err := host.Handle().LinkByName("lo")
	if err != nil {
		t.Fatal(err)
	}
	taken := netip.MustParsePrefix("198.18.77.0/24")
	if err := host.Handle().RouteAdd(&netlink.Route{LinkIndex: lo.Attrs().Index, Dst: &net.IPNet{IP: taken.Addr().AsSlice(), Mask: net.CIDRMask(24, 32)}}); err != nil {
		t.Fatal(err)
	}
	opts := hostnet.Options{Name: hostnettest.UniqueName("nbt"), Uplink: hostnettest.Uplink, PublicRanges: []netip.Prefix{taken}, HostNamespace: host.Name()}
	t.Cleanup(func() { hostnet.Teardown(context.Background(), opts) })
	n, err := hostnet.Setup(context.Background(), opts)
	if err == nil {
		n.Close(context.Background(), true)
		t.Fatal("Setup took over a route the host already had")
	}
	if !strings.Contains(err.Error(), "already routes") {
		t.Errorf("error %q does not say the range is taken", err)
	}
	if hostnet.NamespaceExists(opts.Name) {
		t.Error("a failed Setup left its namespace")
	}
	if _, err := host.Handle().LinkByName(hostnet.HostLinkName(opts.Name)); err == nil {
		t.Error("a failed Setup left the host veth")
	}
}
