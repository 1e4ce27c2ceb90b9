//go:build linux

package process

// Address plan: instances of these tests get provider addresses from
// 127.101.0.0/24 (conformance) and 127.102.0.0/22 (benchmarks), away from the
// default pool other packages' tests may use; customer addresses are
// invented in 198.18.0.0/24 and never receive traffic.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/poll"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as `<test> workload <kind>`.
	workload.RunIfReexec()
	if dir := os.Getenv(helperEnv); dir != "" {
		driverHelper(dir)
	}
	if dir := os.Getenv(unprivHelperEnv); dir != "" {
		unprivilegedHelper(dir)
	}
	code := m.Run()
	removeInstancesDirs()
	os.Exit(code)
}

// instancesDirs are the InstancesDir of every driver the tests opened.
var instancesDirs sync.Map

// testInstancesDir is the instances directory of the test driver over
// stateDir: under os.TempDir() (the instance user must reach it, and a
// t.TempDir() of root is 0700), the same for every driver over stateDir
// (restarts), removed when the tests end.
func testInstancesDir(stateDir string) string {
	dir := filepath.Join(os.TempDir(), "nimbus-test-instances-"+fileID(stateDir)[:12])
	instancesDirs.Store(dir, true)
	return dir
}

func removeInstancesDirs() {
	instancesDirs.Range(func(k, _ any) bool {
		os.RemoveAll(k.(string))
		return true
	})
}

// helperEnv makes this test binary play a nimbus that starts instances and
// then waits to be killed (see TestRestartAfterNimbusKilled).
const helperEnv = "NIMBUS_TEST_DRIVER_HELPER"

// helperPool is the provider pool of the helper's instances.
const helperPool = "127.101.7.0/24"

func driverHelper(dir string) {
	d, err := New(context.Background(), testOptions(dir, helperPool))
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	for _, spec := range helperSpecs() {
		if _, err := d.Start(context.Background(), spec); err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
	}
	fmt.Println("ready")
	select {} // until killed
}

func helperSpecs() []driver.InstanceSpec {
	return []driver.InstanceSpec{drivertest.Spec(1, drivertest.Echo), drivertest.ScriptSpec(2, "sleep 600 &\nsleep 601 &\nwait\n")}
}

// TestRestartAfterNimbusKilled runs a driver in another process, kills that
// process with SIGKILL, and checks that a new driver re-adopts its instances
// (no longer its children), notices when one dies, and ends the rest.
func TestRestartAfterNimbusKilled(t *testing.T) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		t.Skip(r)
	}
	dir := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(exe)
	helper.Env = append(os.Environ(), helperEnv+"="+dir)
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { helper.Process.Kill(); helper.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if err := helper.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	helper.Wait()

	d := newTestDriver(t, testOptions(dir, helperPool))
	list, err := d.List(context.Background())
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v; want the helper's two instances", list, err)
	}
	for _, st := range list {
		t.Cleanup(func() { syscall.Kill(-st.PID, syscall.SIGKILL) })
		if st.State != driver.StateRunning {
			t.Fatalf("instance %+v not re-adopted", st)
		}
	}
	echo, script := list[0], list[1]
	resp, err := http.Get("http://" + netip.AddrPortFrom(echo.ProviderIP, 80).String() + "/")
	if err != nil {
		t.Fatalf("GET / of the re-adopted echo: %v", err)
	}
	resp.Body.Close()

	// A re-adopted instance that dies is noticed.
	if err := syscall.Kill(echo.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "the killed re-adopted instance to be exited", func() error {
		st, err := d.Inspect(context.Background(), echo.Key)
		if err != nil || st.State != driver.StateExited {
			return fmt.Errorf("inspect: %+v, %v", st, err)
		}
		return nil
	})

	// Deleting the scale set after the restart ends the whole group.
	members := drivertest.GroupMembers(script.PID)
	if len(members) < 4 {
		t.Fatalf("script group %v; want workload, sh and two sleeps", members)
	}
	if err := d.Destroy(context.Background(), script.Key); err != nil {
		t.Fatal(err)
	}
	if left := drivertest.GroupMembers(script.PID); len(left) > 0 {
		t.Fatalf("processes %v of %v survived Destroy after the restart", left, members)
	}
}

// unprivHelperEnv makes this test binary play a nimbus that is not root:
// it starts one script instance with a driver over the state directory
// <dir>/state, waits for the script's report in <dir>/report, prints it
// and destroys the instance (see TestUnprivilegedNimbusConfined).
const unprivHelperEnv = "NIMBUS_TEST_UNPRIVILEGED_HELPER"

func unprivilegedHelper(dir string) {
	fail := func(err error) { fmt.Println("error:", err); os.Exit(1) }
	opts := testOptions(filepath.Join(dir, "state"), "127.101.9.0/24")
	opts.InstancesDir = filepath.Join(dir, "instances")
	d, err := New(context.Background(), opts)
	if err != nil {
		fail(err)
	}
	report := filepath.Join(dir, "report")
	spec := drivertest.ScriptSpec(1, fmt.Sprintf("{ echo uid=$(id -u); echo procs=$(ls /proc | grep -cE '^[0-9]+$'); "+
		"echo init=$(tr '\\0' ' ' < /proc/1/cmdline); "+
		"if ls %s/* >/dev/null 2>&1; then echo state=readable; else echo state=denied; fi; "+
		"echo caps=$(grep CapEff /proc/self/status | tr -d '\\t'); } > %s.tmp && mv %s.tmp %s\n",
		opts.StateDir, report, report, report))
	st, err := d.Start(context.Background(), spec)
	if err != nil {
		fail(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if b, err := os.ReadFile(report); err == nil {
			fmt.Printf("status uid=%d confine=%s\n%s", st.UID, d.conf.mode, b)
			break
		}
		if time.Now().After(deadline) {
			fail(errors.New("no report from the script"))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := d.Destroy(context.Background(), spec.Key); err != nil {
		fail(err)
	}
	d.Close(context.Background(), true)
	os.Exit(0)
}

// TestUnprivilegedNimbusConfined runs the driver as uid 65534 (a nimbus
// that is not root): its instances run as that uid, in a user namespace
// of their own without capabilities, and see only their own processes and
// not the state directory. It needs root to become 65534.
func TestUnprivilegedNimbusConfined(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run the driver as another, unprivileged user")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := drivertest.SharedDir(t)
	bin := filepath.Join(dir, "process.test")
	src, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(), unprivHelperEnv+"="+dir)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534, Groups: []uint32{}}}
	out, err := cmd.CombinedOutput()
	t.Logf("unprivileged nimbus:\n%s", out)
	if err != nil {
		t.Fatalf("helper: %v", err)
	}
	got := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if k, v, ok := strings.Cut(f, "="); ok {
				got[k] = v
			}
		}
	}
	if got["confine"] != "userns" {
		t.Skipf("this kernel gives no user namespace to an unprivileged user (confine=%q); nothing more to check", got["confine"])
	}
	n, _ := strconv.Atoi(got["procs"])
	want := map[string]string{"uid": "65534", "state": "denied", "caps": "CapEff:0000000000000000"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q; want %q", k, got[k], v)
		}
	}
	if n == 0 || n > 10 || !strings.Contains(string(out), "workload script") {
		t.Errorf("the instance sees %d processes, PID 1 %q; want only its own", n, got["init"])
	}
}

// testOptions are the options of a driver over dir whose workloads are this
// test binary.
func testOptions(dir string, pool string) Options {
	return Options{
		StateDir:     dir,
		InstancesDir: testInstancesDir(dir),
		Env:          map[string]string{workload.ReexecEnv: "1"},
		Pool:         netip.MustParsePrefix(pool),
		StopTimeout:  2 * time.Second,
	}
}

func TestConformance(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		SkipReason: drivertest.LowPortsSkipReason(),
		New: func(t *testing.T, dir string) driver.Driver {
			opts := testOptions(dir, "127.101.0.0/24")
			opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
			d, err := New(context.Background(), opts)
			if err != nil {
				t.Fatal(err)
			}
			return d
		},
	})
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(string(p))
	return len(p), nil
}

func TestPool(t *testing.T) {
	a := netip.MustParseAddr
	type step struct {
		op   string // alloc, release, claim
		key  string
		addr string // claim/release input, or alloc's expected result ("" = error)
	}
	tests := []struct {
		name   string
		prefix string
		steps  []step
	}{
		{"lowest free first", "127.101.1.0/29", []step{
			{"alloc", "a", "127.101.1.1"}, {"alloc", "b", "127.101.1.2"}, {"alloc", "c", "127.101.1.3"},
			{"release", "b", "127.101.1.2"}, {"alloc", "d", "127.101.1.2"}, {"alloc", "e", "127.101.1.4"},
		}},
		{"exhausted: no network or last address", "127.101.1.0/30", []step{
			{"alloc", "a", "127.101.1.1"}, {"alloc", "b", "127.101.1.2"}, {"alloc", "c", ""},
		}},
		{"claims are respected", "127.101.1.0/29", []step{
			{"claim", "a", "127.101.1.1"}, {"claim", "x", "127.101.1.1"}, {"claim", "a", "127.101.1.9"},
			{"alloc", "b", "127.101.1.2"},
		}},
		{"release by another key is ignored", "127.101.1.0/29", []step{
			{"alloc", "a", "127.101.1.1"}, {"release", "b", "127.101.1.1"}, {"alloc", "b", "127.101.1.2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPool(netip.MustParsePrefix(tt.prefix))
			for i, s := range tt.steps {
				switch s.op {
				case "alloc":
					got, err := p.alloc(s.key)
					if s.addr == "" {
						if err == nil {
							t.Fatalf("step %d: alloc %s = %s; want exhausted", i, s.key, got)
						}
						continue
					}
					if err != nil || got != a(s.addr) {
						t.Fatalf("step %d: alloc %s = %s, %v; want %s", i, s.key, got, err, s.addr)
					}
				case "release":
					p.release(a(s.addr), s.key)
				case "claim":
					err := p.claim(a(s.addr), s.key)
					wantErr := s.key == "x" || s.addr == "127.101.1.9"
					if (err != nil) != wantErr {
						t.Fatalf("step %d: claim %s %s = %v; want error %v", i, s.addr, s.key, err, wantErr)
					}
				}
			}
		})
	}
}

func newTestDriver(t *testing.T, opts Options) *Driver {
	t.Helper()
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(context.Background(), true); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return d
}

func TestStartFailures(t *testing.T) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		t.Skip(r)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// A copy of this binary that user nobody may run, for the unprivileged case.
	bin := filepath.Join(drivertest.SharedDir(t), "workload.test")
	src, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	unpriv := os.Geteuid() == 0 && unprivilegedLowPortsDenied()
	tests := []struct {
		name    string
		command []string
		skip    bool
		want    []string
		is      []error
	}{
		{name: "exits before ready", command: []string{"/bin/false"},
			want: []string{"workload ended before it served", "exited with code 1"}},
		{name: "not executable", command: []string{"/nonexistent/nimbus"},
			want: []string{"exec /nonexistent/nimbus"}},
		{name: "unprivileged low port", skip: !unpriv,
			// Unconfined (env drops NIMBUS_CONFINE): the workload itself
			// runs without privilege, as under a nimbus that is not root.
			command: []string{"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/env", "-u", workload.EnvConfine, bin},
			want:    []string{"permission denied", "setcap cap_net_bind_service=+ep", "ip_unprivileged_port_start=0"},
			is:      []error{workload.ErrPrivilegedPort, driver.ErrNotSupported}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.skip {
				t.Skip("needs root and net.ipv4.ip_unprivileged_port_start > 80 to run the workload unprivileged")
			}
			opts := testOptions(t.TempDir(), "127.101.2.0/24")
			opts.Command = tt.command
			d := newTestDriver(t, opts)
			spec := drivertest.Spec(1, drivertest.Echo)
			_, err := d.Start(context.Background(), spec)
			if err == nil {
				t.Fatal("Start succeeded")
			}
			t.Logf("Start: %v", err)
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("error %q is not %v", err, target)
				}
			}
			// The instance is not left running, and a failed first start
			// holds no address.
			if st, err := d.Inspect(context.Background(), spec.Key); err == nil && st.State == driver.StateRunning {
				t.Errorf("Inspect after a failed Start = %+v", st)
			}
			if st, err := d.Inspect(context.Background(), spec.Key); err == nil && st.PID > 0 {
				if left := drivertest.GroupMembers(st.PID); len(left) > 0 {
					t.Errorf("processes %v left after a failed Start", left)
				}
			}
		})
	}
}

// unprivilegedLowPortsDenied reports whether an unprivileged user may not
// bind port 80. Kernels without the sysctl (before 4.11) reserve every port
// below 1024.
func unprivilegedLowPortsDenied() bool {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return err == nil && n > 80
}

// TestPIDReuse checks that a record whose PID now names an unrelated
// process is reported exited after a restart and that the process is left
// alone.
func TestPIDReuse(t *testing.T) {
	other := exec.Command("sleep", "600")
	other.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })
	st, err := readStat(other.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}

	dir := t.TempDir()
	opts := testOptions(dir, "127.101.3.0/24")
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	spec := drivertest.Spec(1, drivertest.Echo)
	// The record of an instance whose process ended; its PID now names
	// the sleep, which started at another time.
	r := &record{Key: spec.Key, Spec: spec, Kind: workload.KindEcho, ProviderIP: netip.MustParseAddr("127.101.3.1"),
		State: driver.StateRunning, PID: other.Process.Pid, StartTicks: st.ticks + 1, BootID: d.boot}
	if err := d.save(r); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(context.Background(), false); err != nil {
		t.Fatal(err)
	}

	d2 := newTestDriver(t, opts)
	got, err := d2.Inspect(context.Background(), spec.Key)
	if err != nil || got.State != driver.StateExited {
		t.Fatalf("Inspect = %+v, %v; want exited", got, err)
	}
	if err := d2.Destroy(context.Background(), spec.Key); err != nil {
		t.Fatal(err)
	}
	if len(drivertest.GroupMembers(other.Process.Pid)) == 0 {
		t.Fatal("the process that reused the PID was killed")
	}
}

// TestSweepUnrecorded checks that a workload left without a record (nimbus
// died between starting it and saving the record) is killed by the next
// driver over the state directory.
func TestSweepUnrecorded(t *testing.T) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		t.Skip(r)
	}
	dir := t.TempDir()
	opts := testOptions(dir, "127.101.6.0/24")
	d, err := New(context.Background(), opts)
	if err != nil {
		t.Fatal(err)
	}
	spec := drivertest.ScriptSpec(1, "sleep 600 &\nwait\n")
	st, err := d.Start(context.Background(), spec)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-st.PID, syscall.SIGKILL) })
	if err := d.Close(context.Background(), false); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(d.recordPath(spec.Key)); err != nil {
		t.Fatal(err)
	}
	d2 := newTestDriver(t, opts)
	if list, _ := d2.List(context.Background()); len(list) != 0 {
		t.Fatalf("List = %+v; want nothing", list)
	}
	poll.Until(t, 10*time.Second, "the unrecorded workload group to end", func() error {
		if m := drivertest.GroupMembers(st.PID); len(m) > 0 {
			return fmt.Errorf("group %d has %v", st.PID, m)
		}
		return nil
	})
}

func TestCloseStopAll(t *testing.T) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		t.Skip(r)
	}
	d, err := New(context.Background(), testOptions(t.TempDir(), "127.101.4.0/24"))
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for i := range 3 {
		st, err := d.Start(context.Background(), drivertest.Spec(i, drivertest.Echo))
		if err != nil {
			t.Fatal(err)
		}
		pids = append(pids, st.PID)
	}
	if err := d.Close(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if left := drivertest.GroupMembers(pid); len(left) > 0 {
			t.Errorf("group %d left %v after Close(stopAll)", pid, left)
		}
	}
	if _, err := d.Start(context.Background(), drivertest.Spec(9, drivertest.Echo)); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestStateDirLocked(t *testing.T) {
	dir := t.TempDir()
	newTestDriver(t, testOptions(dir, "127.101.5.0/24"))
	if _, err := New(context.Background(), testOptions(dir, "127.101.5.0/24")); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Fatalf("second New over the same state dir = %v; want in use", err)
	}
}

// TestConcurrentOps runs Start, Stop, Destroy, Inspect and List on a few
// keys at once (run it with -race) and checks that nothing is left.
func TestConcurrentOps(t *testing.T) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		t.Skip(r)
	}
	d := newTestDriver(t, testOptions(t.TempDir(), "127.101.8.0/24"))
	ctx := context.Background()
	var wg sync.WaitGroup
	pids := make(chan int, 100)
	for w := range 6 {
		wg.Go(func() {
			spec := drivertest.Spec(w%3, drivertest.Echo)
			for i := range 4 {
				if st, err := d.Start(ctx, spec); err == nil {
					pids <- st.PID
				} else {
					t.Errorf("Start: %v", err)
				}
				d.Inspect(ctx, spec.Key)
				d.List(ctx)
				switch i % 2 {
				case 0:
					if err := d.Stop(ctx, spec.Key); err != nil {
						t.Errorf("Stop: %v", err)
					}
				case 1:
					if err := d.Destroy(ctx, spec.Key); err != nil {
						t.Errorf("Destroy: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(pids)
	for i := range 3 {
		if err := d.Destroy(ctx, drivertest.Spec(i, drivertest.Echo).Key); err != nil {
			t.Fatal(err)
		}
	}
	if list, _ := d.List(ctx); len(list) != 0 {
		t.Fatalf("List = %+v; want nothing", list)
	}
	for pid := range pids {
		if left := drivertest.GroupMembers(pid); len(left) > 0 {
			t.Errorf("group %d left %v", pid, left)
		}
	}
}
