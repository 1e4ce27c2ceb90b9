// Package drivertest is the conformance suite every instance driver passes:
// it starts real echo and script instances, talks to them on their provider
// addresses, stops, kills and destroys them, restarts the driver over the
// same state directory, and checks through /proc that no process is left
// behind. It is Linux-only in practice (/proc) and binds ports 22 and 80.
//
// Address plan: customer addresses are invented in 198.18.0.0/24 (gateway
// 198.18.0.1) and never receive traffic from the suite; traffic goes only to
// the ProviderIP a driver reports (loopback for the process driver, or an
// address the harness can Dial).
package drivertest

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/poll"
)

// Harness adapts a driver to the suite.
type Harness struct {
	// New opens a driver over stateDir (a fresh t.TempDir() per case).
	// The suite calls it a second time with the same directory to play a
	// nimbus restart, after closing the first driver with
	// driver.Closer.Close(ctx, false); drivers must implement Closer. The
	// harness must not register a cleanup that stops instances: the suite
	// destroys what it starts.
	New func(t *testing.T, stateDir string) driver.Driver
	// Dial connects to an instance's ProviderIP; nil dials from this
	// process with a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
	// SkipReason, when not empty, skips the whole suite with this reason
	// (for example: not root).
	SkipReason string
}

// Subnet is the invented subnet of the suite's customer addresses.
var Subnet = netip.MustParsePrefix("198.18.0.0/24")

// Echo and Script are the suite's images.
var (
	Echo   = driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "latest"}
	Script = driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "script", Version: "latest"}
)

// Spec returns the spec of instance n of scale set "conf": key
// "sub/rg/conf/<n>", name "conf_<n>", private IP 198.18.0.<10+n>.
func Spec(n int, img driver.Image) driver.InstanceSpec {
	id := strconv.Itoa(n)
	return driver.InstanceSpec{
		Key:          "sub/rg/conf/" + id,
		Name:         "conf_" + id,
		InstanceID:   id,
		ComputerName: "conf" + fmt.Sprintf("%06d", n),
		Image:        img,
		PrivateIP:    netip.AddrFrom4([4]byte{198, 18, 0, byte(10 + n)}),
		Subnet:       Subnet,
		Gateway:      netip.MustParseAddr("198.18.0.1"),
	}
}

// ScriptSpec is Spec for the script image running src.
func ScriptSpec(n int, src string) driver.InstanceSpec {
	s := Spec(n, Script)
	s.CustomData = base64.StdEncoding.EncodeToString([]byte(src))
	return s
}

// SharedDir returns a new directory that instances and the test can both
// read and write (mode 0777 under os.TempDir(), removed when the test
// ends): instances run as an unprivileged user, which cannot reach a
// t.TempDir() of a root test.
func SharedDir(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "nimbus-drivertest-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	return dir
}

// LowPortsSkipReason returns why this process may not bind ports 22 and 80,
// or "" if it may.
func LowPortsSkipReason() string {
	if os.Geteuid() == 0 {
		return ""
	}
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n <= 22 {
			return ""
		}
	}
	return "the echo image binds ports 22 and 80: run as root (or give CAP_NET_BIND_SERVICE, or sysctl net.ipv4.ip_unprivileged_port_start=0)"
}

// Run runs the conformance suite against the harness's driver.
func Run(t *testing.T, h Harness) {
	if h.SkipReason != "" {
		t.Skip(h.SkipReason)
	}
	if h.Dial == nil {
		var d net.Dialer
		h.Dial = d.DialContext
	}
	s := &suite{h: h, closed: make(map[driver.Driver]bool)}
	cases := []struct {
		name string
		fn   func(t *testing.T, s *suite)
	}{
		{"EchoServes", testEchoServes},
		{"StartIdempotent", testStartIdempotent},
		{"Inspect", testInspect},
		{"StopThenStart", testStopThenStart},
		{"StopKillsAfterGrace", testStopKillsAfterGrace},
		{"DestroyIdempotent", testDestroyIdempotent},
		{"UnknownImage", testUnknownImage},
		{"ScriptEnvironment", testScriptEnvironment},
		{"RestartReadopts", testRestartReadopts},
		{"RestartAfterKill", testRestartAfterKill},
		{"KilledWorkloadExits", testKilledWorkloadExits},
		{"KilledGroupLeavesNoChildren", testKilledGroupLeavesNoChildren},
		{"DestroyLeavesNoProcess", testDestroyLeavesNoProcess},
		{"Confined", testConfined},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { c.fn(t, s) })
	}
}

type suite struct {
	h      Harness
	mu     sync.Mutex
	closed map[driver.Driver]bool // closed by reopen: nothing left to clean up
}

// open returns a new driver over a fresh state directory and registers the
// cleanup that destroys every instance it still lists.
func (s *suite) open(t *testing.T) (driver.Driver, string) {
	t.Helper()
	dir := t.TempDir()
	d := s.h.New(t, dir)
	s.cleanup(t, d)
	return d, dir
}

// cleanup destroys every instance d lists when the test ends, and closes d.
func (s *suite) cleanup(t *testing.T, d driver.Driver) {
	t.Cleanup(func() {
		s.mu.Lock()
		closed := s.closed[d]
		s.mu.Unlock()
		if closed {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if sts, err := d.List(ctx); err == nil {
			for _, st := range sts {
				if err := d.Destroy(ctx, st.Key); err != nil {
					t.Errorf("cleanup: destroy %s: %v", st.Key, err)
				}
			}
		}
		if c, ok := d.(driver.Closer); ok {
			c.Close(ctx, true)
		}
	})
}

// detach closes d leaving its instances running, as a nimbus killed now
// would.
func (s *suite) detach(t *testing.T, d driver.Driver) {
	t.Helper()
	c, ok := d.(driver.Closer)
	if !ok {
		t.Fatalf("%T does not implement driver.Closer", d)
	}
	if err := c.Close(ctx(t), false); err != nil {
		t.Fatalf("Close(false): %v", err)
	}
	s.mu.Lock()
	s.closed[d] = true
	s.mu.Unlock()
}

// reopen detaches d and opens a new driver over dir, as a restarted nimbus
// would.
func (s *suite) reopen(t *testing.T, d driver.Driver, dir string) driver.Driver {
	t.Helper()
	s.detach(t, d)
	d2 := s.h.New(t, dir)
	s.cleanup(t, d2)
	return d2
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return c
}

func (s *suite) start(t *testing.T, d driver.Driver, spec driver.InstanceSpec) driver.Status {
	t.Helper()
	st, err := d.Start(ctx(t), spec)
	if err != nil {
		t.Fatalf("Start %s: %v", spec.Key, err)
	}
	if st.Key != spec.Key || st.State != driver.StateRunning || st.PID <= 0 || !st.ProviderIP.IsValid() || st.PrivateIP != spec.PrivateIP {
		t.Fatalf("Start %s = %+v; want running with a PID, a provider IP and private IP %s", spec.Key, st, spec.PrivateIP)
	}
	return st
}

// EchoReply is the JSON the echo image answers with.
type EchoReply struct {
	Name       string `json:"name"`
	InstanceID string `json:"instanceId"`
	PrivateIP  string `json:"privateIp"`
	Client     string `json:"client"`
}

func (s *suite) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: s.h.Dial, DisableKeepAlives: true}}
}

// getEcho fetches GET / from the instance at pa.
func (s *suite) getEcho(t *testing.T, pa netip.Addr) EchoReply {
	t.Helper()
	resp, err := s.httpClient().Get("http://" + netip.AddrPortFrom(pa, 80).String() + "/")
	if err != nil {
		t.Fatalf("GET /: %v", err)
	}
	defer resp.Body.Close()
	var r EchoReply
	if resp.StatusCode != 200 {
		t.Fatalf("GET / = %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatalf("GET /: %v", err)
	}
	return r
}

func checkReply(t *testing.T, what string, r EchoReply, spec driver.InstanceSpec) {
	t.Helper()
	if r.Name != spec.Name || r.InstanceID != spec.InstanceID || r.PrivateIP != spec.PrivateIP.String() {
		t.Errorf("%s = %+v; want name %q, instanceId %q, privateIp %s", what, r, spec.Name, spec.InstanceID, spec.PrivateIP)
	}
	if ap, err := netip.ParseAddrPort(r.Client); err != nil || ap.Port() == 0 {
		t.Errorf("%s client %q is not ip:port", what, r.Client)
	}
}

func testEchoServes(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec := Spec(1, Echo)
	st := s.start(t, d, spec)
	checkReply(t, "GET /", s.getEcho(t, st.ProviderIP), spec)

	resp, err := s.httpClient().Get("http://" + netip.AddrPortFrom(st.ProviderIP, 80).String() + "/health")
	if err != nil {
		t.Fatalf("GET /health: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("GET /health = %s; want 200", resp.Status)
	}

	c, err := s.h.Dial(ctx(t), "tcp", netip.AddrPortFrom(st.ProviderIP, 22).String())
	if err != nil {
		t.Fatalf("dial :22: %v", err)
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if want := "SSH-2.0-nimbus " + spec.Name + "\r\n"; err != nil || line != want {
		t.Errorf(":22 banner = %q, %v; want %q", line, err, want)
	}

	u, err := s.h.Dial(ctx(t), "udp", netip.AddrPortFrom(st.ProviderIP, 80).String())
	if err != nil {
		t.Fatalf("dial udp :80: %v", err)
	}
	defer u.Close()
	u.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := u.Write([]byte("hello")); err != nil {
		t.Fatalf("udp write: %v", err)
	}
	buf := make([]byte, 4096)
	n, err := u.Read(buf)
	if err != nil {
		t.Fatalf("udp read: %v", err)
	}
	var r EchoReply
	if err := json.Unmarshal(buf[:n], &r); err != nil {
		t.Fatalf("udp reply %q: %v", buf[:n], err)
	}
	checkReply(t, "UDP :80", r, spec)
}

func testStartIdempotent(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec := Spec(2, Echo)
	st1 := s.start(t, d, spec)
	st2 := s.start(t, d, spec)
	if st1.PID != st2.PID || st1.ProviderIP != st2.ProviderIP {
		t.Fatalf("second Start = %+v; want the running instance %+v", st2, st1)
	}
	list, err := d.List(ctx(t))
	if err != nil || len(list) != 1 {
		t.Fatalf("List = %+v, %v; want one instance", list, err)
	}
}

func testInspect(t *testing.T, s *suite) {
	d, _ := s.open(t)
	if _, err := d.Inspect(ctx(t), "sub/rg/conf/404"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Inspect unknown = %v; want ErrNotFound", err)
	}
	spec := Spec(3, Echo)
	st := s.start(t, d, spec)
	got, err := d.Inspect(ctx(t), spec.Key)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != driver.StateRunning || got.PID != st.PID || got.ProviderIP != st.ProviderIP || got.PrivateIP != spec.PrivateIP || got.StartedAt.IsZero() {
		t.Fatalf("Inspect = %+v; want %+v", got, st)
	}
}

func testStopThenStart(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec := Spec(4, Echo)
	st := s.start(t, d, spec)
	if err := d.Stop(ctx(t), spec.Key); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	got, err := d.Inspect(ctx(t), spec.Key)
	if err != nil || got.State != driver.StateStopped {
		t.Fatalf("Inspect after Stop = %+v, %v; want stopped", got, err)
	}
	if left := GroupMembers(st.PID); len(left) > 0 {
		t.Fatalf("processes %v of the group survived Stop", left)
	}
	if err := d.Stop(ctx(t), spec.Key); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	st2 := s.start(t, d, spec)
	if st2.PID == st.PID || st2.ProviderIP != st.ProviderIP {
		t.Fatalf("restart = %+v; want a new PID and the same provider IP as %+v", st2, st)
	}
	checkReply(t, "GET / after restart", s.getEcho(t, st2.ProviderIP), spec)
}

func testStopKillsAfterGrace(t *testing.T, s *suite) {
	d, _ := s.open(t)
	mark := filepath.Join(SharedDir(t), "trapped")
	spec := ScriptSpec(5, fmt.Sprintf("trap '' TERM\ntouch %s\nwhile :; do sleep 1; done\n", mark))
	st := s.start(t, d, spec)
	poll.Until(t, 10*time.Second, "the script to ignore SIGTERM", func() error {
		_, err := os.Stat(mark)
		return err
	})
	begin := time.Now()
	c, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if err := d.Stop(c, spec.Key); err != nil {
		t.Fatalf("Stop of a workload ignoring SIGTERM: %v", err)
	}
	if took := time.Since(begin); took < 400*time.Millisecond {
		t.Errorf("Stop took %s; the workload ignores SIGTERM, so it must wait the grace (500ms) before SIGKILL", took)
	}
	got, err := d.Inspect(ctx(t), spec.Key)
	if err != nil || got.State != driver.StateStopped {
		t.Fatalf("Inspect = %+v, %v; want stopped", got, err)
	}
	if left := GroupMembers(st.PID); len(left) > 0 {
		t.Fatalf("processes %v survived Stop", left)
	}
}

func testDestroyIdempotent(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec := Spec(6, Echo)
	s.start(t, d, spec)
	for i := range 2 {
		if err := d.Destroy(ctx(t), spec.Key); err != nil {
			t.Fatalf("Destroy #%d: %v", i+1, err)
		}
	}
	if err := d.Stop(ctx(t), spec.Key); err != nil {
		t.Fatalf("Stop of a destroyed instance: %v", err)
	}
	if _, err := d.Inspect(ctx(t), spec.Key); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Inspect after Destroy = %v; want ErrNotFound", err)
	}
	if list, err := d.List(ctx(t)); err != nil || len(list) != 0 {
		t.Fatalf("List after Destroy = %+v, %v; want none", list, err)
	}
}

func testUnknownImage(t *testing.T, s *suite) {
	d, _ := s.open(t)
	for _, img := range []driver.Image{
		{Publisher: "nimbus", Offer: "workloads", SKU: "nginx", Version: "latest"},
		{Publisher: "Canonical", Offer: "ubuntu-24_04-lts", SKU: "server", Version: "latest"},
	} {
		spec := Spec(7, img)
		_, err := d.Start(ctx(t), spec)
		if !errors.Is(err, driver.ErrUnknownImage) {
			t.Fatalf("Start %v = %v; want ErrUnknownImage", img, err)
		}
		if !strings.Contains(err.Error(), "nimbus:workloads:echo:latest") {
			t.Errorf("error %q does not list the available images", err)
		}
	}
	if list, err := d.List(ctx(t)); err != nil || len(list) != 0 {
		t.Fatalf("List = %+v, %v; want none", list, err)
	}
}

func testScriptEnvironment(t *testing.T, s *suite) {
	d, _ := s.open(t)
	out := filepath.Join(SharedDir(t), "env")
	spec := ScriptSpec(8, fmt.Sprintf("echo \"$NIMBUS_INSTANCE_NAME $NIMBUS_INSTANCE_ID $NIMBUS_PRIVATE_IP $NIMBUS_BIND_IP\" > %s.tmp && mv %s.tmp %s\n", out, out, out))
	st := s.start(t, d, spec)
	want := fmt.Sprintf("%s %s %s %s\n", spec.Name, spec.InstanceID, spec.PrivateIP, st.ProviderIP)
	var got string
	poll.Until(t, 10*time.Second, "the script to write its environment", func() error {
		b, err := os.ReadFile(out)
		if got = string(b); got == "" {
			return fmt.Errorf("%s empty: %v", out, err)
		}
		return nil
	})
	if got != want {
		t.Fatalf("script saw %q; want %q", got, want)
	}
	// The script ended; the instance stays up, as a VM does after cloud-init.
	if st, err := d.Inspect(ctx(t), spec.Key); err != nil || st.State != driver.StateRunning {
		t.Fatalf("Inspect after the script ended = %+v, %v; want running", st, err)
	}

	bad := Spec(9, Script)
	bad.CustomData = "#!/bin/sh\necho not base64\n"
	if _, err := d.Start(ctx(t), bad); err == nil || !strings.Contains(err.Error(), "base64") {
		t.Fatalf("Start with customData that is not base64 = %v; want a base64 error", err)
	}
}

func testRestartReadopts(t *testing.T, s *suite) {
	d, dir := s.open(t)
	spec := Spec(10, Echo)
	st := s.start(t, d, spec)
	d2 := s.reopen(t, d, dir)
	list, err := d2.List(ctx(t))
	if err != nil || len(list) != 1 {
		t.Fatalf("List after restart = %+v, %v; want the one instance", list, err)
	}
	got := list[0]
	if got.Key != spec.Key || got.State != driver.StateRunning || got.PID != st.PID || got.ProviderIP != st.ProviderIP {
		t.Fatalf("List after restart = %+v; want %+v re-adopted", got, st)
	}
	// Starting it again must not duplicate it.
	again := s.start(t, d2, spec)
	if again.PID != st.PID {
		t.Fatalf("Start after restart = PID %d; want the adopted %d", again.PID, st.PID)
	}
	checkReply(t, "GET / after restart", s.getEcho(t, st.ProviderIP), spec)
	// The new driver can end what the old one started.
	if err := d2.Destroy(ctx(t), spec.Key); err != nil {
		t.Fatalf("Destroy after restart: %v", err)
	}
	if left := GroupMembers(st.PID); len(left) > 0 {
		t.Fatalf("processes %v survived Destroy after restart", left)
	}
}

func testRestartAfterKill(t *testing.T, s *suite) {
	d, dir := s.open(t)
	spec := Spec(11, Echo)
	st := s.start(t, d, spec)
	s.detach(t, d)
	// The instance dies while no driver watches it.
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the killed process to vanish", func() error {
		if alive(st.PID) {
			return fmt.Errorf("pid %d alive", st.PID)
		}
		return nil
	})
	d2 := s.h.New(t, dir)
	s.cleanup(t, d2)
	// A driver may notice the death during recovery or right after it.
	var got driver.Status
	poll.Until(t, 10*time.Second, "the instance to show as exited after the restart", func() error {
		var err error
		got, err = d2.Inspect(ctx(t), spec.Key)
		return exited(got, err)
	})
	if got.Message == "" || got.PID != st.PID {
		t.Fatalf("Inspect after restart = %+v; want exited with a message and PID %d", got, st.PID)
	}
}

func testKilledWorkloadExits(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec := Spec(12, Echo)
	st := s.start(t, d, spec)
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	var got driver.Status
	poll.Until(t, 10*time.Second, "the instance to show as exited", func() error {
		var err error
		got, err = d.Inspect(ctx(t), spec.Key)
		return exited(got, err)
	})
	if got.Message == "" {
		t.Errorf("exited instance has no message: %+v", got)
	}
}

// groupWithChildren starts a script instance that runs two sleeps in the
// background and waits until they are in its group.
func (s *suite) groupWithChildren(t *testing.T, d driver.Driver, n int) (driver.InstanceSpec, driver.Status, []int) {
	spec := ScriptSpec(n, "sleep 600 &\nsleep 601 &\nwait\n")
	st := s.start(t, d, spec)
	var members []int
	poll.Until(t, 10*time.Second, "the sleeps to join the group", func() error {
		if members = GroupMembers(st.PID); len(members) < 4 { // workload, sh, two sleeps
			return fmt.Errorf("group %d has %v", st.PID, members)
		}
		return nil
	})
	return spec, st, members
}

func testKilledGroupLeavesNoChildren(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec, st, members := s.groupWithChildren(t, d, 13)
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the instance to show as exited", func() error {
		return exited(d.Inspect(ctx(t), spec.Key))
	})
	poll.Until(t, 10*time.Second, fmt.Sprintf("group members %v to die with the leader", members), func() error {
		if m := GroupMembers(st.PID); len(m) > 0 {
			return fmt.Errorf("group %d has %v", st.PID, m)
		}
		return nil
	})
}

func testDestroyLeavesNoProcess(t *testing.T, s *suite) {
	d, _ := s.open(t)
	spec, st, members := s.groupWithChildren(t, d, 14)
	if err := d.Destroy(ctx(t), spec.Key); err != nil {
		t.Fatal(err)
	}
	if left := GroupMembers(st.PID); len(left) > 0 {
		t.Fatalf("processes %v (of %v) survived Destroy", left, members)
	}
	for _, pid := range members {
		if alive(pid) {
			t.Errorf("process %d survived Destroy", pid)
		}
	}
}

// confineScript is the customData of the Confined case: it reports, one
// "key=value" line each, who it runs as and what it can reach. %[1]s is the
// report file, %[2]s a 0700 root-owned directory, %[3]s the driver's state
// directory, %[4]s a root-owned file in the host's /tmp, %[5]s a path in
// /etc.
const confineScript = `r=%[1]s
{
echo "uid=$(id -u)"
echo "gid=$(id -g)"
echo "groups=$(id -G)"
if ls %[2]s >/dev/null 2>&1 || cat %[2]s/key >/dev/null 2>&1; then echo secret=readable; else echo secret=denied; fi
if ls %[3]s/* >/dev/null 2>&1; then echo state=readable; else echo state=denied; fi
if (echo pwned >> %[4]s) 2>/dev/null; then echo hostfile=writable; else echo hostfile=denied; fi
if (echo pwned > %[5]s) 2>/dev/null; then echo etc=writable; else echo etc=denied; fi
echo "procs=$(ls /proc | grep -E '^[0-9]+$' | tr '\n' ' ')"
echo "init=$(tr '\0' ' ' < /proc/1/cmdline)"
echo "home=$HOME"
echo "pwd=$(pwd)"
if touch ./written 2>/dev/null; then echo homedir=writable; else echo homedir=denied; fi
} > $r.tmp
mv $r.tmp $r
`

// testConfined runs a customData script that tries to reach what an
// instance must not: it does not run as root (nor do the driver's
// processes of the instance), cannot read a 0700 root-owned directory or
// the driver's state, cannot write /etc or a root-owned file of the host's
// /tmp, sees only its own processes, and has its own writable directory.
func testConfined(t *testing.T, s *suite) {
	if os.Geteuid() != 0 {
		t.Skip("confinement to another user is checked as root (not root, instances run as nimbus's own user)")
	}
	d, stateDir := s.open(t)
	secret, err := os.MkdirTemp("", "nimbus-drivertest-secret-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(secret) })
	if err := os.WriteFile(filepath.Join(secret, "key"), []byte("secret\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	hostFile := filepath.Join(os.TempDir(), fmt.Sprintf("nimbus-drivertest-hostfile-%d", os.Getpid()))
	if err := os.WriteFile(hostFile, []byte("host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(hostFile) })
	etcFile := fmt.Sprintf("/etc/nimbus-drivertest-%d", os.Getpid())
	t.Cleanup(func() { os.Remove(etcFile) })
	report := filepath.Join(SharedDir(t), "report")

	spec := ScriptSpec(15, fmt.Sprintf(confineScript, report, secret, stateDir, hostFile, etcFile))
	st := s.start(t, d, spec)
	var got map[string]string
	poll.Until(t, 10*time.Second, "the script's report", func() error {
		b, err := os.ReadFile(report)
		if err != nil {
			return err
		}
		got = map[string]string{}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			k, v, _ := strings.Cut(line, "=")
			got[k] = strings.TrimSpace(v)
		}
		return nil
	})
	t.Logf("instance report: %v", got)

	if st.UID <= 0 || st.GID <= 0 {
		t.Errorf("Status reports uid %d gid %d; want the unprivileged instance user", st.UID, st.GID)
	}
	if got["uid"] == "0" || got["uid"] != strconv.Itoa(st.UID) || got["gid"] != strconv.Itoa(st.GID) || got["groups"] != strconv.Itoa(st.GID) {
		t.Errorf("script runs as uid %s gid %s groups %q; want the reported %d:%d and no other group", got["uid"], got["gid"], got["groups"], st.UID, st.GID)
	}
	for _, pid := range GroupMembers(st.PID) {
		uids := procUIDs(pid)
		if len(uids) == 0 {
			continue // exited between the listing and the read (a short-lived child of the script)
		}
		if slices.Contains(uids, "0") {
			t.Errorf("process %d of the instance has uids %v; want no root", pid, uids)
		}
	}
	for key, want := range map[string]string{"secret": "denied", "state": "denied", "hostfile": "denied", "etc": "denied", "homedir": "writable"} {
		if got[key] != want {
			t.Errorf("%s = %q; want %q", key, got[key], want)
		}
	}
	if b, _ := os.ReadFile(hostFile); string(b) != "host\n" {
		t.Errorf("host file now holds %q", b)
	}
	if _, err := os.Stat(etcFile); err == nil {
		t.Errorf("the instance created %s", etcFile)
	}
	procs := strings.Fields(got["procs"])
	if len(procs) == 0 || len(procs) > 10 || procs[0] != "1" || !strings.Contains(got["init"], "workload script") {
		t.Errorf("the instance sees processes %v with PID 1 %q; want only its own, the workload as PID 1", procs, got["init"])
	}
	if got["home"] == "" || got["home"] == "/" || got["pwd"] != got["home"] {
		t.Errorf("HOME %q, working directory %q; want the instance's own directory", got["home"], got["pwd"])
	}
}

// procUIDs returns the real, effective, saved and filesystem uids of pid.
func procUIDs(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return nil
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Uid:"); ok {
			return strings.Fields(rest)
		}
	}
	return nil
}

// GroupMembers lists the live (not zombie) processes of process group pgid
// by scanning /proc.
func GroupMembers(pgid int) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		state, pgrp, ok := procStat(pid)
		if ok && pgrp == pgid && state != "Z" && state != "X" {
			out = append(out, pid)
		}
	}
	return out
}

// alive reports whether pid is a live (not zombie) process.
func alive(pid int) bool {
	state, _, ok := procStat(pid)
	return ok && state != "Z" && state != "X"
}

func procStat(pid int) (state string, pgrp int, ok bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "", 0, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return "", 0, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 3 {
		return "", 0, false
	}
	pgrp, err = strconv.Atoi(f[2])
	return f[0], pgrp, err == nil
}

// exited is a poll condition: nil once an Inspect answered StateExited.
func exited(st driver.Status, err error) error {
	if err != nil || st.State != driver.StateExited {
		return fmt.Errorf("inspect: %+v, %v", st, err)
	}
	return nil
}
