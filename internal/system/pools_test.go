package system

// Address plan: the pools of these tests are loopback ranges no other test
// package uses (127.105.0.0/16 to 127.109.0.0/16), and routed ranges from
// 198.18.0.0/15 that exist only in the host tables the tests make up. The
// sockets they bind are on loopback inside those ranges.

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"nimbus/internal/node"
)

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestCheckPools(t *testing.T) {
	loopbackPools := []addrPool{
		{flag: "--public-pool", prefix: pfx("127.105.1.0/24")},
		{flag: "--provider-pool", prefix: pfx("127.105.2.0/24"), ownEnv: "NIMBUS_PROCESS_STATE_DIR=/d/instances"},
		{flag: "--internal-pool", prefix: pfx("127.106.0.0/16")},
	}
	kernelPools := []addrPool{
		{flag: "--public-pool", prefix: pfx("198.18.64.0/18"), ownLink: "nimbus0-host"},
		{flag: "--netns-uplink", prefix: pfx("198.19.255.252/30"), ownLink: "nimbus0-host"},
	}
	lo := hostAddr{link: "lo", addr: pfx("127.0.0.1/8")}
	eth := hostAddr{link: "eth0", addr: pfx("192.0.2.10/24")}
	defaultRoute := hostRoute{link: "eth0", dst: pfx("0.0.0.0/0")}
	ownInstance := func(inode uint64, env string) bool {
		return inode == 42 && env == "NIMBUS_PROCESS_STATE_DIR=/d/instances"
	}
	tests := []struct {
		name  string
		pools []addrPool
		host  hostState
		want  string // "" = accepted; else a substring of the error
	}{
		{"disjoint pools on a quiet host", loopbackPools, hostState{addrs: []hostAddr{lo, eth}, routes: []hostRoute{defaultRoute}}, ""},
		{"kernel pools on a quiet host", kernelPools, hostState{addrs: []hostAddr{lo, eth}, routes: []hostRoute{defaultRoute}}, ""},
		{"provider pool overlaps internal pool", []addrPool{
			{flag: "--provider-pool", prefix: pfx("127.106.5.0/24")}, loopbackPools[2]},
			hostState{}, "address pools overlap: --provider-pool 127.106.5.0/24 and --internal-pool 127.106.0.0/16; give one of them another range"},
		{"public pool equals provider pool", []addrPool{
			{flag: "--public-pool", prefix: pfx("127.100.0.0/16")}, {flag: "--provider-pool", prefix: pfx("127.100.0.0/16")}},
			hostState{}, "--public-pool 127.100.0.0/16 and --provider-pool 127.100.0.0/16"},
		{"address of another interface inside a loopback pool", loopbackPools,
			hostState{addrs: []hostAddr{lo, {link: "lo", addr: pfx("127.106.3.4/8")}}},
			"address pool --internal-pool 127.106.0.0/16 is in use on this host: address 127.106.3.4 is assigned to lo; choose a free range with --internal-pool"},
		{"address inside the routed pool", kernelPools,
			hostState{addrs: []hostAddr{{link: "veth9", addr: pfx("198.18.70.1/24")}}},
			"--public-pool 198.18.64.0/18 is in use on this host: address 198.18.70.1 is assigned to veth9"},
		{"subnet of an interface covers the routed pool", kernelPools,
			hostState{addrs: []hostAddr{{link: "eth1", addr: pfx("198.18.0.1/15")}}},
			"--public-pool 198.18.64.0/18 is in use on this host: eth1 has 198.18.0.1/15, which overlaps it"},
		{"our own veth from a previous start", kernelPools,
			hostState{addrs: []hostAddr{{link: "nimbus0-host", addr: pfx("198.19.255.253/30")}},
				routes: []hostRoute{{link: "nimbus0-host", dst: pfx("198.18.64.0/18")}}}, ""},
		{"route into the routed pool elsewhere", kernelPools,
			hostState{routes: []hostRoute{defaultRoute, {link: "other0-host", dst: pfx("198.18.64.0/20")}}},
			"--public-pool 198.18.64.0/18 is in use on this host: route 198.18.64.0/20 goes to other0-host"},
		{"listener inside the internal pool", loopbackPools,
			hostState{sockets: []hostSocket{{proto: "tcp", addr: netip.MustParseAddrPort("127.106.0.9:8080"), inode: 7}}},
			"--internal-pool 127.106.0.0/16 is in use on this host: 127.106.0.9:8080 (tcp) is bound by another process, perhaps another nimbus"},
		{"udp socket inside the provider pool", loopbackPools,
			hostState{sockets: []hostSocket{{proto: "udp", addr: netip.MustParseAddrPort("127.105.2.7:53"), inode: 8}}, ownedBy: ownInstance},
			"--provider-pool 127.105.2.0/24 is in use on this host: 127.105.2.7:53 (udp)"},
		{"our own instance left running in the provider pool", loopbackPools,
			hostState{sockets: []hostSocket{{proto: "tcp", addr: netip.MustParseAddrPort("127.105.2.7:80"), inode: 42}}, ownedBy: ownInstance}, ""},
		{"an own-instance socket does not excuse the public pool", loopbackPools,
			hostState{sockets: []hostSocket{{proto: "tcp", addr: netip.MustParseAddrPort("127.105.1.7:80"), inode: 42}}, ownedBy: ownInstance},
			"--public-pool 127.105.1.0/24 is in use"},
		{"sockets outside every pool", loopbackPools,
			hostState{sockets: []hostSocket{{proto: "tcp", addr: netip.MustParseAddrPort("0.0.0.0:80")}, {proto: "tcp", addr: netip.MustParseAddrPort("127.0.0.1:8443")}}}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkPools(tc.pools, tc.host)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			case err != nil && strings.Contains(err.Error(), "\n"):
				t.Fatalf("error %q is more than one line", err)
			}
		})
	}
}

// TestReadHostSeesSockets: the /proc/net parser finds a TCP listener and a
// UDP socket the test binds, IPv4 and IPv4-mapped IPv6, with their ports,
// and ignores TCP sockets that do not listen; also after ChooseMode, whose
// kernel probe may leave the main thread in another network namespace.
func TestReadHostSeesSockets(t *testing.T) {
	_, _ = ChooseMode(Auto, Auto)
	ln, err := net.Listen("tcp4", "127.107.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "[::ffff:127.107.0.10]:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	conn, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h, err := readHost()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{
		"tcp " + ln.Addr().String():                                        false,
		"udp " + netip.MustParseAddrPort(pc.LocalAddr().String()).String(): false,
	}
	for _, s := range h.sockets {
		k := s.proto + " " + netip.AddrPortFrom(s.addr.Addr().Unmap(), s.addr.Port()).String()
		if _, ok := want[k]; ok {
			want[k] = true
		}
		if k == "tcp "+conn.LocalAddr().String() {
			t.Errorf("a connected (not listening) TCP socket was read as bound: %s", k)
		}
	}
	for k, seen := range want {
		if !seen {
			t.Errorf("%s not found in /proc/net (%d sockets read)", k, len(h.sockets))
		}
	}
	var lo bool
	for _, a := range h.addrs {
		lo = lo || a.addr.Addr() == netip.MustParseAddr("127.0.0.1")
	}
	if !lo {
		t.Errorf("127.0.0.1 not among the interface addresses %v", h.addrs)
	}
}

// poolOptions is a process+proxy nimbus with the given pools and no
// metrics listener, in a temporary data dir.
func poolOptions(t *testing.T, public, provider, internal string) Options {
	return Options{
		Node:          node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", PublicPool: pfx(public)},
		ProviderPool:  pfx(provider),
		InternalPool:  pfx(internal),
		Driver:        Process,
		Dataplane:     Proxy,
		MetricsListen: "off",
	}
}

func TestStartRefusesPoolsInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.108.0.9:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", "127.109.1.5:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	tests := []struct {
		name                       string
		public, provider, internal string
		want                       string
	}{
		{"overlapping flags", "127.105.1.0/24", "127.106.0.0/24", "127.106.0.0/16",
			"address pools overlap: --provider-pool 127.106.0.0/24 and --internal-pool 127.106.0.0/16; give one of them another range"},
		{"listener in the internal pool", "127.105.1.0/24", "127.105.2.0/24", "127.108.0.0/16",
			"address pool --internal-pool 127.108.0.0/16 is in use on this host: " + ln.Addr().String() + " (tcp) is bound by another process, perhaps another nimbus; choose a free range with --internal-pool"},
		{"udp socket in the provider pool", "127.105.1.0/24", "127.109.1.0/24", "127.106.0.0/16",
			"address pool --provider-pool 127.109.1.0/24 is in use on this host: " + pc.LocalAddr().String() + " (udp)"},
		{"listener in the public pool", "127.108.0.0/24", "127.105.2.0/24", "127.106.0.0/16",
			"address pool --public-pool 127.108.0.0/24 is in use on this host: " + ln.Addr().String() + " (tcp)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Start(context.Background(), poolOptions(t, tc.public, tc.provider, tc.internal))
			if err == nil {
				s.Stop()
				t.Fatalf("started; want a refusal containing %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one containing %q", err, tc.want)
			}
		})
	}
	if _, err := Start(context.Background(), Options{InternalPool: pfx("127.108.0.0/24"), Driver: Process, Dataplane: Proxy}); err == nil ||
		!strings.Contains(err.Error(), "--internal-pool 127.108.0.0/24: want a loopback /16") {
		t.Fatalf("internal pool of the wrong size: %v", err)
	}
}

// TestTwoSystemsSideBySide: two nimbus with disjoint pools start and run
// together, each mapping private frontends into its own internal pool.
func TestTwoSystemsSideBySide(t *testing.T) {
	a, err := Start(context.Background(), poolOptions(t, "127.105.1.0/24", "127.105.2.0/24", "127.106.0.0/16"))
	if err != nil {
		t.Fatalf("first: %v", err)
	}
	defer a.Stop()
	b, err := Start(context.Background(), poolOptions(t, "127.105.3.0/24", "127.105.4.0/24", "127.107.0.0/16"))
	if err != nil {
		t.Fatalf("second, beside the first: %v", err)
	}
	defer b.Stop()
	priv := netip.MustParseAddr("10.0.1.4")
	if ga, gb := a.listenIP(priv), b.listenIP(priv); ga != netip.MustParseAddr("127.106.1.4") || gb != netip.MustParseAddr("127.107.1.4") {
		t.Fatalf("private frontend %s listens on %s and %s; want 127.106.1.4 and 127.107.1.4", priv, ga, gb)
	}
	if a.Node.Endpoint.Endpoint == b.Node.Endpoint.Endpoint {
		t.Fatalf("both serve at %s", a.Node.Endpoint.Endpoint)
	}
}

// helperBindEnv makes the test binary a helper process that binds a TCP
// listener on the address it names, prints its address and waits for
// stdin to close (see TestHelperBind).
const helperBindEnv = "NIMBUS_TEST_HELPER_BIND"

// TestHelperBind is not a test: it is the helper process of
// TestStartCountsOwnInstancesOnly.
func TestHelperBind(t *testing.T) {
	addr := os.Getenv(helperBindEnv)
	if addr == "" {
		t.Skip("helper process only")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
}

// bindInOtherProcess starts a helper process that listens on addr with
// extra environment env, and returns the address it bound. The process
// ends at cleanup.
func bindInOtherProcess(t *testing.T, addr string, env ...string) string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperBind$")
	cmd.Env = append(os.Environ(), append(env, helperBindEnv+"="+addr)...)
	// A group of its own, as instances have: the process driver ends the
	// group of a tagged process it has no record of.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			_ = cmd.Process.Kill()
		}
	})
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || strings.HasPrefix(line, "error") {
		t.Fatalf("helper: %q %v", line, err)
	}
	return strings.TrimSpace(line)
}

// TestStartCountsOwnInstancesOnly: a socket in the provider pool held by a
// process tagged as this nimbus's instance (one left running by the
// previous start) does not stop a start; the same socket held by another
// process does.
func TestStartCountsOwnInstancesOnly(t *testing.T) {
	opt := poolOptions(t, "127.105.5.0/24", "127.105.6.0/24", "127.106.0.0/16")
	stateDir, err := filepath.Abs(filepath.Join(opt.Node.DataDir, "instances"))
	if err != nil {
		t.Fatal(err)
	}
	bindInOtherProcess(t, "127.105.6.9:0", processOwnerEnv+"="+stateDir)
	s, err := Start(context.Background(), opt)
	if err != nil {
		t.Fatalf("start beside its own instance: %v", err)
	}
	if err := s.Stop(); err != nil {
		t.Fatal(err)
	}
	other := bindInOtherProcess(t, "127.105.6.10:0", processOwnerEnv+"=/elsewhere/instances")
	_, err = Start(context.Background(), opt)
	if want := "address pool --provider-pool 127.105.6.0/24 is in use on this host: " + other + " (tcp) is bound by another process"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("start beside another nimbus's instance: %v; want an error containing %q", err, want)
	}
}

// TestAddressPools: the pools each mode takes, defaults resolved.
func TestAddressPools(t *testing.T) {
	str := func(ps []addrPool) string {
		var b strings.Builder
		for _, p := range ps {
			fmt.Fprintf(&b, "%s %s own=%q; ", p.flag, p.prefix, p.ownLink)
		}
		return b.String()
	}
	proc := addressPools(Mode{Driver: Process, Dataplane: Proxy}, Options{Node: node.Config{DataDir: "/d"}})
	if got, want := str(proc), `--public-pool 127.77.0.0/16 own=""; --provider-pool 127.100.0.0/16 own=""; --internal-pool 127.103.0.0/16 own=""; `; got != want {
		t.Errorf("process + proxy defaults:\n got  %s\n want %s", got, want)
	}
	if proc[1].ownEnv != processOwnerEnv+"=/d/instances" {
		t.Errorf("provider pool owner %q", proc[1].ownEnv)
	}
	kern := addressPools(Mode{Driver: Netns, Dataplane: NFT}, Options{Node: node.Config{PublicPool: DefaultKernelPublicPool}})
	if got, want := str(kern), `--public-pool 198.18.64.0/18 own="nimbus0-host"; --netns-uplink 198.19.255.252/30 own="nimbus0-host"; `; got != want {
		t.Errorf("netns + nft defaults:\n got  %s\n want %s", got, want)
	}
}
