package nft_test

// TestKillAndRestart plays a whole kernel-mode nimbus in a helper process
// (this test binary with helperEnv set): hostnet, the netns driver with two
// echo instances and the nft engine. The helper is killed with SIGKILL, a
// new one adopts everything, and a final one tears it all down.
//
// Address plan: frontend 198.18.100.30 (public range routed from the test's
// host namespace), subnet 198.19.2.0/24 with instances .10 and .11.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/nftables"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/driver"
	"nimbus/internal/driver/netns"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	if spec := os.Getenv(helperEnv); spec != "" {
		os.Exit(runHelper(spec))
	}
	os.Exit(m.Run())
}

const helperEnv = "NIMBUS_NFT_TEST_HELPER"

type helperSpec struct {
	Mode     string // "serve" (wait to be killed) or "teardown"
	Net      hostnet.Options
	StateDir string
}

var (
	restartFE     = netip.MustParseAddr("198.18.100.30")
	restartSubnet = netip.MustParsePrefix("198.19.2.0/24")
)

func restartSpecs() []driver.InstanceSpec {
	var out []driver.InstanceSpec
	for i := 0; i < 2; i++ {
		out = append(out, driver.InstanceSpec{
			Key: fmt.Sprintf("sub/rg/vmss/%d", i), Name: fmt.Sprintf("vmss_%d", i), InstanceID: fmt.Sprint(i),
			Image:     driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "latest"},
			PrivateIP: netip.AddrFrom4([4]byte{198, 19, 2, byte(10 + i)}), Subnet: restartSubnet, Gateway: netip.MustParseAddr("198.19.2.1"),
		})
	}
	return out
}

// runHelper is the helper process: a miniature nimbus in kernel mode.
func runHelper(raw string) int {
	var spec helperSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	ctx := context.Background()
	n, err := hostnet.Setup(ctx, spec.Net)
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	d, err := netns.New(ctx, netns.Options{Net: n, StateDir: spec.StateDir, Env: map[string]string{workload.ReexecEnv: "1"}})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	eng, err := nft.New(ctx, n.Namespace(), nft.Options{Uplink: n.UplinkName()})
	if err != nil {
		fmt.Println("error:", err)
		return 1
	}
	if spec.Mode == "teardown" {
		err := d.Close(ctx, true)
		if rerr := eng.Remove(ctx); err == nil {
			err = rerr
		}
		eng.Close()
		if cerr := n.Close(ctx, true); err == nil {
			err = cerr
		}
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("done")
		return 0
	}
	var bs []dataplane.Backend
	for _, s := range restartSpecs() {
		st, err := d.Start(ctx, s)
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		bs = append(bs, dataplane.Backend{ID: s.Key, IP: s.PrivateIP, DialIP: st.ProviderIP})
	}
	cfg := dataplane.Config{Rules: []dataplane.Rule{{
		ID: "rule/http", Frontend: dataplane.Frontend{ID: "fe", IP: restartFE}, Protocol: dataplane.TCP,
		FrontendPort: 80, BackendPort: 80, Backends: bs,
	}}}
	if err := eng.Apply(ctx, cfg); err != nil {
		fmt.Println("error:", err)
		return 1
	}
	fmt.Println("ready")
	select {} // until killed
}

func startHelper(t *testing.T, spec helperSpec) *exec.Cmd {
	t.Helper()
	raw, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(io.LimitReader(out, 4096)).ReadString('\n')
	if err != nil || (strings.TrimSpace(line) != "ready" && strings.TrimSpace(line) != "done") {
		t.Fatalf("helper said %q, %v", line, err)
	}
	return cmd
}

func echoVia(t *testing.T, host *hostnet.Namespace) map[string]any {
	t.Helper()
	client := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return hostnet.DialIn(ctx, host, network, addr)
		},
	}}
	resp, err := client.Get("http://" + hp(restartFE, 80) + "/")
	if err != nil {
		t.Fatalf("GET through the frontend: %v", err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestKillAndRestart(t *testing.T) {
	host := hostnettest.Namespace(t, "nbh")
	spec := helperSpec{
		Mode: "serve",
		Net: hostnet.Options{Name: hostnettest.UniqueName("nbt"), Uplink: hostnettest.Uplink,
			PublicRanges: []netip.Prefix{publicRange}, HostNamespace: host.Name()},
		StateDir: filepath.Join(t.TempDir(), "state"),
	}
	t.Cleanup(func() { cleanupKernelNimbus(t, spec) })
	check := func(when string) {
		t.Helper()
		got := echoVia(t, host)
		if c, _ := got["client"].(string); !strings.HasPrefix(c, hostnettest.Uplink.Addr().Next().String()+":") {
			t.Errorf("%s: backend saw client %v, want the host address", when, got["client"])
		}
	}

	first := startHelper(t, spec)
	check("first start")
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	check("nimbus killed") // the kernel keeps forwarding without nimbus

	second := startHelper(t, spec)
	check("after restart")
	names, _ := hostnet.ListNamespaces(spec.Net.Name)
	if len(names) != 3 { // nimbus's namespace and two instances
		t.Errorf("namespaces after restart: %v, want nimbus's and two instances'", names)
	}
	if tables := listTables(t, spec.Net.Name); tables != "ip nimbus" {
		t.Errorf("tables after restart: %q, want only ip nimbus", tables)
	}
	second.Process.Signal(syscall.SIGKILL)
	second.Wait()

	spec.Mode = "teardown"
	startHelper(t, spec)
	if names, _ := hostnet.ListNamespaces(spec.Net.Name); len(names) != 0 {
		t.Errorf("namespaces left after teardown: %v", names)
	}
	if _, err := host.Handle().LinkByName(hostnet.HostLinkName(spec.Net.Name)); err == nil {
		t.Error("host veth left after teardown")
	}
}

// listTables lists the tables in a namespace over netlink (the nft CLI of
// Debian 12 cannot decompile some of nimbus's rules).
func listTables(t *testing.T, name string) string {
	t.Helper()
	ns, err := hostnet.OpenNamespace(name)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	c, err := nftables.New(nftables.WithNetNSFd(ns.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	tables, err := c.ListTables()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, tb := range tables {
		fam := "ip"
		if tb.Family != nftables.TableFamilyIPv4 {
			fam = fmt.Sprint(tb.Family)
		}
		out = append(out, fam+" "+tb.Name)
	}
	return strings.Join(out, ",")
}

// cleanupKernelNimbus removes whatever the helpers left, also when one
// failed half-way: it adopts the namespace and the instances, ends the
// workloads, and deletes every namespace named after the test's nimbus.
func cleanupKernelNimbus(t *testing.T, spec helperSpec) {
	ctx := context.Background()
	if n, err := hostnet.Setup(ctx, spec.Net); err == nil {
		if d, err := netns.New(ctx, netns.Options{Net: n, StateDir: spec.StateDir}); err == nil {
			if err := d.Close(ctx, true); err != nil {
				t.Errorf("cleanup: %v", err)
			}
		}
		n.Close(ctx, true)
	}
	hostnet.Teardown(ctx, spec.Net)
	names, _ := hostnet.ListNamespaces(spec.Net.Name)
	for _, name := range names {
		hostnet.DeleteNamespace(name)
	}
}
