package chaos

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/cli"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/system"
)

// Test timings: probes and repairs far below Azure's minimums.
const (
	probeInterval = 200 * time.Millisecond
	repairGrace   = time.Second
	// apiBound is the longest any API request may take while nimbus runs.
	apiBound = 5 * time.Second
)

// logsEnv, when "1", logs nimbus's output at the end of every scenario,
// not only of failed ones.
const logsEnv = "NIMBUS_CHAOS_LOGS"

// mode is one way of running nimbus.
type mode struct {
	name string
	args []string // driver and data-plane flags
	// pool is the public pool; netns nimbus's namespace ("" in process
	// mode, which makes none).
	pool  netip.Prefix
	netns string
}

var (
	processMode = mode{name: "process",
		args: []string{"--driver", "process", "--dataplane", "proxy", "--provider-pool", "127.91.0.0/24", "--internal-pool", "127.117.0.0/16"},
		pool: netip.MustParsePrefix("127.90.0.0/24")}
	kernelMode = mode{name: "kernel",
		args: []string{"--driver", "netns", "--dataplane", "nft", "--netns-name", "nbchaos", "--netns-uplink", "198.19.160.0/30"},
		pool: netip.MustParsePrefix("198.18.160.0/24"), netns: "nbchaos"}
	// subnet holds the scale sets' instances in both modes.
	subnet = netip.MustParsePrefix("198.18.161.0/24")
)

func (m mode) kernel() bool { return m.netns != "" }

// bothModes runs fn in process mode and, where the machine allows, in
// kernel mode.
func bothModes(t *testing.T, fn func(t *testing.T, m mode)) {
	t.Run(processMode.name, func(t *testing.T) { fn(t, processMode) })
	t.Run(kernelMode.name, func(t *testing.T) {
		requireKernelPath(t)
		fn(t, kernelMode)
	})
}

// requireKernelPath skips t unless the kernel path can run here: not
// Linux, not root, or a typed not-supported error. Any other error fails.
func requireKernelPath(t *testing.T) {
	t.Helper()
	if runtime.GOOS != "linux" {
		t.Skipf("the kernel path needs Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		t.Skip("the kernel path needs root (network namespaces and nftables)")
	}
	switch _, err := system.ChooseMode(system.Netns, system.NFT); {
	case err == nil:
	case errors.Is(err, driver.ErrNotSupported), errors.Is(err, nft.ErrUnavailable):
		t.Skipf("this kernel cannot run the kernel path: %v", err)
	default:
		t.Fatalf("kernel path as root: %v", err)
	}
}

// nimbus is one `nimbus serve` process (restartable) over one data dir,
// with an API client whose every request is timed.
type nimbus struct {
	t   *testing.T
	m   mode
	bin string
	dir string // data dir
	ctl string // backends' control dir
	// backend is the copy of this test binary the instances run.
	backend string
	addr    string // API listen address, the same across restarts
	// wrap is prepended to the command line (e.g. a shell setting limits).
	wrap []string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logs   bytes.Buffer
	api    *cli.Client
	// fresh is api over a new connection per request, as a new client
	// (an az command) would come.
	fresh *cli.Client
	lat   latencies

	before snapshot
}

// startNimbus starts nimbus in mode m; dataDir "" means a fresh temp dir.
// Everything it leaves is removed when t ends.
func startNimbus(t *testing.T, m mode, dataDir string, wrap ...string) *nimbus {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	// Instances run as an unprivileged user: their control dir, and the
	// copy of this test binary they run as the backend, must be theirs to
	// use (a t.TempDir is root's, mode 0700).
	n := &nimbus{t: t, m: m, bin: nimbusBin(t), dir: dataDir, ctl: drivertest.SharedDir(t), addr: freePort(t), wrap: wrap}
	n.backend = copyExecutable(t, n.ctl)
	n.before = takeSnapshot(m)
	n.sweep()
	t.Cleanup(n.cleanup)
	n.start()
	return n
}

func freePort(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// start runs `nimbus serve` and waits until the API answers.
func (n *nimbus) start() {
	n.t.Helper()
	args := append([]string{n.bin, "serve", "--data-dir", n.dir, "--listen", n.addr, "--metrics-listen", "off",
		"--public-pool", n.m.pool.String(), "--test-probe-interval", probeInterval.String(),
		"--test-repair-grace", repairGrace.String()}, n.m.args...)
	args = append(append([]string{}, n.wrap...), args...)
	cmd := exec.Command(args[0], args[1:]...)
	n.mu.Lock()
	cmd.Stdout, cmd.Stderr = &lockedWriter{&n.mu, &n.logs}, &lockedWriter{&n.mu, &n.logs}
	n.mu.Unlock()
	if err := cmd.Start(); err != nil {
		n.t.Fatalf("start nimbus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	n.waitAPI()
}

// waitAPI waits until GET /subscriptions answers 200.
func (n *nimbus) waitAPI() {
	n.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case <-n.exited:
			n.t.Fatalf("nimbus exited while starting:\n%s", n.output())
		default:
		}
		if n.api == nil {
			n.api, last = n.newClient(false)
			if last == nil {
				n.fresh, last = n.newClient(true)
			}
		}
		if n.api != nil {
			ctx, cancel := context.WithTimeout(context.Background(), apiBound)
			_, last = n.api.Get(ctx, "/subscriptions", cli.SubscriptionsAPI)
			cancel()
			if last == nil {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	n.t.Fatalf("nimbus API not answering after 60 s: %v\n%s", last, n.output())
}

func (n *nimbus) newClient(fresh bool) (*cli.Client, error) {
	pem, err := os.ReadFile(filepath.Join(n.dir, "ca.pem"))
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(n.dir, "endpoint.json")); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 2 * apiBound, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 16,
		DisableKeepAlives: fresh}}
	return cli.NewClient(context.Background(), cli.Config{DataDir: n.dir, Endpoint: "https://" + n.addr, HTTPClient: hc})
}

func (n *nimbus) output() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.logs.String()
}

// pid is the running nimbus's process id.
func (n *nimbus) pid() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cmd.Process.Pid
}

// kill9 kills nimbus with SIGKILL and waits until it is gone.
func (n *nimbus) kill9() {
	n.t.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if err := cmd.Process.Kill(); err != nil {
		n.t.Fatalf("kill -9 nimbus: %v", err)
	}
	<-exited
}

// stop stops nimbus with SIGTERM and fails t unless it exits within 30 s.
func (n *nimbus) stop() {
	n.t.Helper()
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		n.t.Fatalf("stop nimbus: %v", err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		n.t.Fatalf("nimbus did not stop within 30 s of SIGTERM")
	}
}

// alive reports whether the nimbus process still runs.
func (n *nimbus) alive() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	select {
	case <-n.exited:
		return false
	default:
		return true
	}
}

// cleanup stops nimbus if it runs and removes whatever is left: its
// processes (by PID), namespaces, veth.
func (n *nimbus) cleanup() {
	if n.t.Failed() && n.m.kernel() && n.cmd != nil && n.alive() {
		out, _ := exec.Command("ip", "netns", "exec", n.m.netns, "nft", "-j", "list", "ruleset").CombinedOutput()
		n.t.Logf("nft ruleset in %s at the failure:\n%s", n.m.netns, out)
	}
	if n.cmd != nil && n.alive() {
		_ = n.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-n.exited:
		case <-time.After(30 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
	}
	if n.t.Failed() || os.Getenv(logsEnv) == "1" {
		n.t.Logf("nimbus output:\n%s", n.output())
	}
	n.sweep()
	n.t.Logf("API: %s", n.lat.summary())
}

// sweep kills this nimbus's processes and removes its namespaces and veth.
func (n *nimbus) sweep() {
	for _, p := range n.processes() {
		_ = syscall.Kill(p.pid, syscall.SIGKILL)
	}
	if n.m.kernel() {
		for _, ns := range listNetns(n.m.netns) {
			_ = exec.Command("ip", "netns", "del", ns).Run()
		}
		_ = exec.Command("ip", "link", "del", n.m.netns+"-host").Run()
	}
}

// proc is a process found on the host.
type proc struct {
	pid int
	cmd string
}

// processes lists the processes belonging to this nimbus: its data dir or
// control dir in the command line, the environment or an open file (the
// instances' logs are in the data dir). The test process is never listed.
func (n *nimbus) processes() []proc {
	ents, _ := os.ReadDir("/proc")
	var out []proc
	markers := []string{n.dir, n.ctl}
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscan(e.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		base := "/proc/" + e.Name()
		cmdline, _ := os.ReadFile(base + "/cmdline")
		environ, _ := os.ReadFile(base + "/environ")
		hit := false
		for _, m := range markers {
			if bytes.Contains(cmdline, []byte(m)) || bytes.Contains(environ, []byte(m)) {
				hit = true
			}
		}
		if !hit {
			fds, _ := os.ReadDir(base + "/fd")
			for _, fd := range fds {
				target, _ := os.Readlink(base + "/fd/" + fd.Name())
				for _, m := range markers {
					if strings.HasPrefix(target, m+"/") {
						hit = true
					}
				}
			}
		}
		if hit {
			out = append(out, proc{pid: pid, cmd: strings.ReplaceAll(strings.TrimRight(string(cmdline), "\x00"), "\x00", " ")})
		}
	}
	return out
}

// snapshot is what the host has that nimbus could leave behind.
type snapshot struct {
	netns  []string // namespaces with the mode's prefix
	links  []string // links with the mode's prefix
	tables []string // nft tables of the host's namespace ("" list when nft cannot be asked)
	nftOK  bool
}

func takeSnapshot(m mode) snapshot {
	var s snapshot
	if m.kernel() {
		s.netns = listNetns(m.netns)
	}
	prefix := m.netns
	if prefix == "" {
		prefix = "nbchaos"
	}
	out, _ := exec.Command("ip", "-o", "link", "show").Output()
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 {
			name, _, _ := strings.Cut(strings.TrimSuffix(f[1], ":"), "@")
			if strings.HasPrefix(name, prefix) {
				s.links = append(s.links, name)
			}
		}
	}
	if out, err := exec.Command("nft", "list", "tables").Output(); err == nil {
		s.nftOK = true
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if line != "" {
				s.tables = append(s.tables, line)
			}
		}
		sort.Strings(s.tables)
	}
	return s
}

// listNetns lists `ip netns` names starting with prefix.
func listNetns(prefix string) []string {
	out, _ := exec.Command("ip", "netns", "list").Output()
	var names []string
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && strings.HasPrefix(f[0], prefix) {
			names = append(names, f[0])
		}
	}
	return names
}

// checkNothingLeft fails t for every process, namespace, link or nft table
// nimbus left on the host after a clean stop.
func (n *nimbus) checkNothingLeft() {
	n.t.Helper()
	if n.alive() {
		n.t.Fatal("checkNothingLeft with nimbus running")
	}
	for _, p := range n.processes() {
		n.t.Errorf("process left after a clean stop: pid %d: %s", p.pid, p.cmd)
	}
	after := takeSnapshot(n.m)
	if len(after.netns) > 0 {
		n.t.Errorf("namespaces left after a clean stop: %v", after.netns)
	}
	if len(after.links) > 0 {
		n.t.Errorf("links left after a clean stop: %v", after.links)
	}
	if after.nftOK && n.before.nftOK {
		old := map[string]bool{}
		for _, tb := range n.before.tables {
			old[tb] = true
		}
		for _, tb := range after.tables {
			if !old[tb] {
				n.t.Errorf("nft table left in the host's namespace after a clean stop: %s", tb)
			}
		}
	}
	n.t.Logf("after a clean stop: no process, namespace (ip netns), link (ip link) or nft table (checked: %v) left", after.nftOK)
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// copyExecutable copies this test binary into dir (mode 0755) and returns
// its path, for instances that run it as an unprivileged user.
func copyExecutable(t *testing.T, dir string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(dir, "chaos-backend")
	if err := os.WriteFile(dst, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dst
}
