package nft_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/hostnet"
)

// internet is a TCP server in the host/internet namespace that answers with
// the address it sees and holds the connection until the client closes.
func (e *env) internet(t *testing.T, port int) string {
	t.Helper()
	addr := hp(e.Net.HostAddr(), port)
	serveTCP(t, e.Host, addr, "internet")
	return addr
}

func TestLoadBalanceKeepsClientIP(t *testing.T) {
	e := newEnv(t, 3)
	cfg := dataplane.Config{Rules: []dataplane.Rule{
		lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends()),
		lbRule("rule/dns", publicFE(feIP), dataplane.UDP, 53, 8080, e.backends()),
	}}
	e.apply(t, cfg)
	counts := map[string]int{}
	for i := 0; i < 60; i++ {
		r := mustGet(t, e.Host, hp(feIP, 80))
		counts[r.name]++
		if !strings.HasPrefix(r.client, e.Net.HostAddr().String()+":") {
			t.Fatalf("backend saw client %q, want %s", r.client, e.Net.HostAddr())
		}
	}
	if len(counts) != 3 {
		t.Errorf("spread over %v, want all 3 backends", counts)
	}
	// From nimbus's own namespace too (the gateway side of the subnet).
	if r := mustGet(t, e.Net.Namespace(), hp(feIP, 80)); r.name == "" {
		t.Errorf("no answer through the frontend from nimbus's namespace")
	}
	u := getUDP(t, e.Host, hp(feIP, 53))
	if !strings.HasPrefix(u.client, e.Net.HostAddr().String()+":") {
		t.Errorf("UDP backend saw client %q", u.client)
	}
}

func TestSourceIPAffinity(t *testing.T) {
	e := newEnv(t, 3)
	r := lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())
	r.Distribution = dataplane.SourceIP
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
	first := mustGet(t, e.Host, hp(feIP, 80)).name
	for i := 0; i < 20; i++ {
		if got := mustGet(t, e.Host, hp(feIP, 80)).name; got != first {
			t.Fatalf("SourceIP affinity broken: %s then %s", first, got)
		}
	}
}

func TestUnusedPortsDroppedSilently(t *testing.T) {
	e := newEnv(t, 1)
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())}})
	tests := []struct {
		name string
		addr string
	}{
		{"unused port", hp(feIP, 81)},
		{"backend port on the frontend", hp(feIP, 8080)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
			defer cancel()
			c, err := hostnet.DialIn(ctx, e.Host, "tcp4", tc.addr)
			if err == nil {
				c.Close()
				t.Fatal("connected to an unused frontend port")
			}
			if errors.Is(err, unix.ECONNREFUSED) {
				t.Fatalf("got a refusal (RST), want silence: %v", err)
			}
		})
	}
}

func TestOutboundSNATPortBlocks(t *testing.T) {
	e := newEnv(t, 2)
	srv := e.internet(t, 9000)
	bs := e.backends()
	e.apply(t, dataplane.Config{Outbound: []dataplane.SNATAllocation{
		{RuleID: "out/1", Frontend: publicFE(feIP), Protocol: dataplane.All, Backend: bs[0], PortStart: 1024, PortEnd: 2047},
		{RuleID: "out/1", Frontend: publicFE(feIP), Protocol: dataplane.All, Backend: bs[1], PortStart: 2048, PortEnd: 3071},
	}})
	blocks := [][2]int{{1024, 2047}, {2048, 3071}}
	for i, v := range e.vms {
		for n := 0; n < 10; n++ {
			r := mustGet(t, v.ns, srv)
			host, port, _ := net.SplitHostPort(r.client)
			p, _ := strconv.Atoi(port)
			if host != feIP.String() || p < blocks[i][0] || p > blocks[i][1] {
				t.Fatalf("%s: internet saw %s, want %s with a port in %v", v.name, r.client, feIP, blocks[i])
			}
		}
	}
}

func TestSNATExhaustionAtBlockSize(t *testing.T) {
	e := newEnv(t, 1)
	srv := e.internet(t, 9000)
	other := e.internet(t, 9001)
	const block = 8
	e.apply(t, dataplane.Config{Outbound: []dataplane.SNATAllocation{
		{RuleID: "out/1", Frontend: publicFE(feIP), Protocol: dataplane.TCP, Backend: e.backends()[0], PortStart: 1024, PortEnd: 1024 + block - 1},
	}})
	var conns []net.Conn
	t.Cleanup(func() {
		for _, c := range conns {
			c.Close()
		}
	})
	dial := func(addr string) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
		defer cancel()
		return hostnet.DialIn(ctx, e.vms[0].ns, "tcp4", addr)
	}
	for i := 0; i < block; i++ {
		c, err := dial(srv)
		if err != nil {
			t.Fatalf("flow %d of %d: %v", i+1, block, err)
		}
		conns = append(conns, c)
	}
	if c, err := dial(srv); err == nil {
		c.Close()
		t.Fatalf("flow %d to the same destination connected; the block has %d ports", block+1, block)
	}
	// Ports are per destination: another destination still works.
	c, err := dial(other)
	if err != nil {
		t.Fatalf("other destination with a full block: %v", err)
	}
	c.Close()
}

func TestHairpin(t *testing.T) {
	e := newEnv(t, 3)
	bs := e.backends()
	tests := []struct {
		name     string
		outbound bool
	}{
		{"with outbound block", true},
		{"without outbound block", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, bs)}}
			if tc.outbound {
				cfg.Outbound = []dataplane.SNATAllocation{{RuleID: "rule/http", Frontend: publicFE(feIP), Protocol: dataplane.TCP, Backend: bs[0], PortStart: 4096, PortEnd: 5119}}
			}
			e.apply(t, cfg)
			// At least 30 connections, and more until one lands on vm0
			// itself (each does with probability 1/3), so the self_pairs
			// path is always exercised.
			self, tries := 0, 0
			for ; tries < 30 || self == 0 && tries < 300; tries++ {
				r := mustGet(t, e.vms[0].ns, hp(feIP, 80))
				host, port, _ := net.SplitHostPort(r.client)
				p, _ := strconv.Atoi(port)
				if r.name == "vm0" {
					self++
					if host != feIP.String() {
						t.Errorf("vm0 reaching itself seen as %s, want %s", r.client, feIP)
					}
				}
				if tc.outbound && (host != feIP.String() || p < 4096 || p > 5119) {
					t.Errorf("hairpin seen as %s, want %s:[4096-5119]", r.client, feIP)
				}
			}
			if self == 0 {
				t.Errorf("none of %d hairpin connections from vm0 landed on vm0 itself", tries)
			}
		})
	}
}

func TestInternalFrontendSameSubnetKeepsClientIP(t *testing.T) {
	e := newEnv(t, 3)
	ilb := dataplane.Frontend{ID: "fe/ilb", IP: ilbIP, Internal: true}
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/ilb", ilb, dataplane.TCP, 80, 8080, e.backends()[1:])}})
	for i := 0; i < 20; i++ {
		r := mustGet(t, e.vms[0].ns, hp(ilbIP, 80))
		if r.name == "vm0" || !strings.HasPrefix(r.client, "198.19.1.4:") {
			t.Fatalf("got %+v, want vm1/vm2 seeing client 198.19.1.4", r)
		}
	}
}

func TestHAPorts(t *testing.T) {
	e := newEnv(t, 3)
	ilb := dataplane.Frontend{ID: "fe/ilb", IP: ilbIP, Internal: true}
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/ha", ilb, dataplane.All, 0, 0, e.backends()[1:])}})
	for _, port := range []int{8080, 22} {
		r := mustGet(t, e.vms[0].ns, hp(ilbIP, port))
		if r.name == "vm0" || !strings.HasPrefix(r.client, "198.19.1.4:") || !strings.HasSuffix(r.local, fmt.Sprintf(":%d", port)) {
			t.Errorf("port %d: %+v", port, r)
		}
	}
	u := getUDP(t, e.vms[0].ns, hp(ilbIP, 8080))
	if u.name == "vm0" || !strings.HasPrefix(u.client, "198.19.1.4:") {
		t.Errorf("udp: %+v", u)
	}
}

func TestFloatingIP(t *testing.T) {
	e := newEnv(t, 2)
	// The guest holds the frontend address on loopback, as Azure requires.
	for _, v := range e.vms {
		lo, err := v.ns.Handle().LinkByName("lo")
		if err != nil {
			t.Fatal(err)
		}
		if err := v.ns.Handle().AddrAdd(lo, &netlink.Addr{IPNet: &net.IPNet{IP: fe2IP.AsSlice(), Mask: net.CIDRMask(32, 32)}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name         string
		fport, bport uint16
	}{
		{"same port", 8080, 8080},
		{"port rewrite", 80, 8080},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := lbRule("rule/float", publicFE(fe2IP), dataplane.TCP, tc.fport, tc.bport, e.backends())
			r.FloatingIP = true
			e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
			seen := map[string]bool{}
			for i := 0; i < 20; i++ {
				got := mustGet(t, e.Host, hp(fe2IP, int(tc.fport)))
				seen[got.name] = true
				if got.local != hp(fe2IP, int(tc.bport)) || !strings.HasPrefix(got.client, e.Net.HostAddr().String()+":") {
					t.Fatalf("backend saw local=%s client=%s, want local %s", got.local, got.client, hp(fe2IP, int(tc.bport)))
				}
			}
			if len(seen) != 2 {
				t.Errorf("floating flows reached %v, want both backends", seen)
			}
		})
	}
}

func TestInboundNATRules(t *testing.T) {
	e := newEnv(t, 3)
	bs := e.backends()
	var nats []dataplane.NATRule
	for i, b := range bs {
		nats = append(nats, dataplane.NATRule{ID: fmt.Sprintf("nat/%d", i), Frontend: publicFE(feIP), Protocol: dataplane.TCP, FrontendPort: uint16(50000 + i), BackendPort: 22, Backend: b})
	}
	e.apply(t, dataplane.Config{NATRules: nats})
	for i := range bs {
		r := mustGet(t, e.Host, hp(feIP, 50000+i))
		if r.name != e.vms[i].name || !strings.HasPrefix(r.client, e.Net.HostAddr().String()+":") || !strings.HasSuffix(r.local, ":22") {
			t.Errorf("port %d: %+v", 50000+i, r)
		}
	}
}

func TestInstancePublicIP(t *testing.T) {
	e := newEnv(t, 2)
	srv := e.internet(t, 9000)
	pip := netip.MustParseAddr("198.18.100.50")
	bs := e.backends()
	e.apply(t, dataplane.Config{
		InstanceIPs: []dataplane.InstancePublicIP{{PublicIP: pip, Backend: bs[1]}},
		Outbound: []dataplane.SNATAllocation{
			{RuleID: "out/1", Frontend: publicFE(feIP), Protocol: dataplane.All, Backend: bs[1], PortStart: 1024, PortEnd: 2047},
		},
	})
	in := mustGet(t, e.Host, hp(pip, 8080))
	if in.name != "vm1" || !strings.HasPrefix(in.client, e.Net.HostAddr().String()+":") {
		t.Errorf("inbound via instance IP: %+v", in)
	}
	out := mustGet(t, e.vms[1].ns, srv)
	if !strings.HasPrefix(out.client, pip.String()+":") {
		t.Errorf("outbound with instance IP seen from %s, want %s (instance IP beats the LB's SNAT)", out.client, pip)
	}
}

// stream opens a long-lived flow and returns a function that reports whether
// ticks keep arriving.
func stream(t *testing.T, ns *hostnet.Namespace, addr string) (string, func(d time.Duration) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := hostnet.DialIn(ctx, ns, "tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	br := bufio.NewReader(c)
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := br.ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "stream\n")
	var mu sync.Mutex
	return parseReply(line).name, func(d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		end := time.Now().Add(d)
		for time.Now().Before(end) {
			c.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := br.ReadString('\n'); err != nil {
				return err
			}
		}
		return nil
	}
}

func TestHealthDownKeepsEstablishedFlows(t *testing.T) {
	e := newEnv(t, 3)
	rule := lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{rule}})
	victim, alive := stream(t, e.Host, hp(feIP, 80))
	if err := alive(300 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	before := e.eng.Stats()
	down := dataplane.Health{{ProbeID: "probe/1", BackendID: "nic/" + victim}: false}
	if err := e.eng.SetHealth(context.Background(), down); err != nil {
		t.Fatal(err)
	}
	after := e.eng.Stats()
	if after.FullReplaces != before.FullReplaces || after.Transactions != before.Transactions+1 {
		t.Errorf("health change was not one element update: %+v -> %+v", before, after)
	}
	for i := 0; i < 40; i++ {
		if r := mustGet(t, e.Host, hp(feIP, 80)); r.name == victim {
			t.Fatalf("new flow reached %s after it went down", victim)
		}
	}
	if err := alive(time.Second); err != nil {
		t.Fatalf("established flow to the down backend broke: %v", err)
	}

	t.Run("all down, AllProbedDown", func(t *testing.T) {
		h := dataplane.Health{}
		for _, v := range e.vms {
			h[dataplane.HealthKey{ProbeID: "probe/1", BackendID: "nic/" + v.name}] = false
		}
		if err := e.eng.SetHealth(context.Background(), h); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
		defer cancel()
		if c, err := hostnet.DialIn(ctx, e.Host, "tcp4", hp(feIP, 80)); err == nil {
			c.Close()
			t.Fatal("new flow accepted with every backend down")
		}
		if err := alive(500 * time.Millisecond); err != nil {
			t.Fatalf("established flow broke when all went down: %v", err)
		}
	})
	t.Run("all down, AllProbedUp", func(t *testing.T) {
		r := rule
		r.NoHealthyBackends = dataplane.AllProbedUp
		e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
		mustGet(t, e.Host, hp(feIP, 80))
	})
}

func TestApplyTwiceIsNoop(t *testing.T) {
	e := newEnv(t, 3)
	cfg := dataplane.Config{
		Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())},
		Outbound: []dataplane.SNATAllocation{
			{RuleID: "rule/http", Frontend: publicFE(feIP), Protocol: dataplane.TCP, Backend: e.backends()[0], PortStart: 1024, PortEnd: 2047},
		},
	}
	e.apply(t, cfg)
	listing := nftList(t, e.Net.Namespace())
	if !strings.Contains(listing, "chain prerouting") {
		t.Fatalf("table not listed:\n%s", listing)
	}
	before := e.eng.Stats()
	e.apply(t, cfg)
	if got := e.eng.Stats(); got != before {
		t.Errorf("second apply sent something: %+v -> %+v", before, got)
	}
	if got := nftList(t, e.Net.Namespace()); got != listing {
		t.Errorf("table changed on the second apply:\n%s\n---\n%s", listing, got)
	}
	// A backend change is an element update, not a new table.
	cfg.Rules[0].Backends = cfg.Rules[0].Backends[:2]
	e.apply(t, cfg)
	if got := e.eng.Stats(); got.FullReplaces != before.FullReplaces {
		t.Errorf("removing a backend replaced the table: %+v", got)
	}
}

// nftList lists the table's chains with their handles (a replaced table
// gets new handles). Only chains: nft 1.0.6 cannot decompile some rules.
func nftList(t *testing.T, ns *hostnet.Namespace) string {
	t.Helper()
	out, err := exec.Command("ip", "netns", "exec", ns.Name(), "nft", "-a", "list", "chains", "ip").CombinedOutput()
	if err != nil {
		t.Fatalf("nft list chains: %v: %s", err, out)
	}
	return string(out)
}

func TestIdleTimeoutObject(t *testing.T) {
	e := newEnv(t, 1)
	r := lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())
	r.IdleTimeout = 5 * time.Minute
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
	_, alive := stream(t, e.Host, hp(feIP, 80))
	if err := alive(200 * time.Millisecond); err != nil {
		t.Fatal(err)
	}
	flows, err := e.Net.Namespace().Handle().ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range flows {
		if f.Forward.DstPort == 80 && f.Forward.DstIP.Equal(feIP.AsSlice()) {
			found = true
			if f.TimeOut > 300 || f.TimeOut < 250 {
				t.Errorf("established flow timeout %d s, want the rule's 300 s (not conntrack's 5 days)", f.TimeOut)
			}
		}
	}
	if !found {
		t.Fatal("no conntrack entry for the flow")
	}
}

// TestTCPResetOnIdle simulates the idle expiry by deleting the flow's
// conntrack entry; the next packet of the flow is then answered with a RST
// (enableTcpReset) or dropped silently.
func TestTCPResetOnIdle(t *testing.T) {
	e := newEnv(t, 1)
	tests := []struct {
		name  string
		reset bool
	}{
		{"reset", true},
		{"silent", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())
			r.TCPReset = tc.reset
			e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			c, err := hostnet.DialIn(ctx, e.Host, "tcp4", hp(feIP, 80))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReader(c)
			if _, err := br.ReadString('\n'); err != nil {
				t.Fatal(err)
			}
			f := &netlink.ConntrackFilter{}
			f.AddIP(netlink.ConntrackOrigDstIP, feIP.AsSlice())
			if _, err := e.Net.Namespace().Handle().ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(c, "late\n")
			c.SetReadDeadline(time.Now().Add(time.Second))
			_, err = br.ReadString('\n')
			switch {
			case tc.reset && !errors.Is(err, unix.ECONNRESET):
				t.Errorf("after idle expiry: %v, want connection reset", err)
			case !tc.reset && !os.IsTimeout(err):
				t.Errorf("after idle expiry: %v, want silence (timeout)", err)
			}
		})
	}
}

func TestRemovedBackendLosesConntrack(t *testing.T) {
	e := newEnv(t, 2)
	bs := e.backends()
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, bs)}})
	victim, _ := stream(t, e.Host, hp(feIP, 80))
	var keep []dataplane.Backend
	var gone netip.Addr
	for i, b := range bs {
		if e.vms[i].name == victim {
			gone = b.IP
			continue
		}
		keep = append(keep, b)
	}
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, keep)}})
	flows, err := e.Net.Namespace().Handle().ConntrackTableList(netlink.ConntrackTable, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range flows {
		if f.Reverse.SrcIP.Equal(gone.AsSlice()) {
			t.Errorf("conntrack entry of removed backend %s left: %s", gone, f)
		}
	}
}

func TestAvailable(t *testing.T) {
	if os.Geteuid() != 0 {
		err := nft.Available()
		if !errors.Is(err, nft.ErrUnavailable) {
			t.Fatalf("Available() as non-root = %v, want ErrUnavailable", err)
		}
		return
	}
	before, _ := hostnet.ListNamespaces("")
	if err := nft.Available(); err != nil {
		t.Fatalf("Available() as root on Linux with nftables: %v", err)
	}
	after, _ := hostnet.ListNamespaces("")
	if len(after) != len(before) {
		t.Errorf("the probe left a named namespace: %v -> %v", before, after)
	}
}

// TestIdleResetBothSides: with TCP reset, an idle flow is reset on both
// sides when its idle timeout expires, without waiting for a packet.
func TestIdleResetBothSides(t *testing.T) {
	e := newEnv(t, 1)
	var l net.Listener
	if err := e.vms[0].ns.Do(func() error {
		var err error
		l, err = net.Listen("tcp4", ":9100")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	backendErr := make(chan error, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			backendErr <- err
			return
		}
		defer c.Close()
		io.WriteString(c, "hello\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
		backendErr <- err
	}()
	r := lbRule("rule/idle", publicFE(feIP), dataplane.TCP, 91, 9100, e.backends())
	r.IdleTimeout, r.TCPReset = 2*time.Second, true
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	c, err := hostnet.DialIn(ctx, e.Host, "tcp4", hp(feIP, 91))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	br := bufio.NewReader(c)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	_, err = br.ReadByte()
	took := time.Since(start)
	if !errors.Is(err, unix.ECONNRESET) {
		t.Fatalf("client: %v after %v, want a reset at the 2 s idle timeout", err, took)
	}
	if took < 1500*time.Millisecond || took > 3500*time.Millisecond {
		t.Errorf("client reset after %v, idle timeout 2 s", took)
	}
	if err := <-backendErr; !errors.Is(err, unix.ECONNRESET) {
		t.Errorf("backend: %v, want a reset", err)
	}
}

func TestResyncRepairsDrift(t *testing.T) {
	e := newEnv(t, 2)
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends())}})
	mustGet(t, e.Host, hp(feIP, 80))
	// Someone deletes the table behind nimbus's back.
	c, err := nftables.New(nftables.WithNetNSFd(e.Net.Namespace().Fd()))
	if err != nil {
		t.Fatal(err)
	}
	c.DelTable(&nftables.Table{Name: nft.DefaultTable, Family: nftables.TableFamilyIPv4})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	if conn, err := hostnet.DialIn(ctx, e.Host, "tcp4", hp(feIP, 80)); err == nil {
		conn.Close()
		t.Fatal("frontend answered without the table")
	}
	cancel()
	if err := e.eng.Resync(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustGet(t, e.Host, hp(feIP, 80))
}

func TestFloatingRoutesAdoptedByNewEngine(t *testing.T) {
	e := newEnv(t, 2)
	r := lbRule("rule/float", publicFE(fe2IP), dataplane.TCP, 80, 8080, e.backends())
	r.FloatingIP = true
	cfg := dataplane.Config{Rules: []dataplane.Rule{r}}
	e.apply(t, cfg)
	countRules := func() int {
		rules, err := e.Net.Namespace().Handle().RuleList(unix.AF_INET)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, r := range rules {
			if r.Priority == 1000 {
				n++
			}
		}
		return n
	}
	before := countRules()
	if before != 2 {
		t.Fatalf("%d floating-IP ip rules, want one per backend (2)", before)
	}
	// A restarted nimbus: a new engine over the same namespace.
	eng2, err := nft.New(context.Background(), e.Net.Namespace(), nft.Options{Uplink: e.Net.UplinkName()})
	if err != nil {
		t.Fatal(err)
	}
	defer eng2.Close()
	if err := eng2.Apply(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	if got := countRules(); got != before {
		t.Errorf("ip rules after restart: %d, want %d (adopted, not duplicated)", got, before)
	}
}
