package netns_test

// Address plan: the conformance suite's customer addresses 198.18.0.0/24
// (gateway 198.18.0.1) live on a bridge in a test-owned nimbus namespace
// "nbt…"; the suite dials them from inside that namespace. The uplink uses
// hostnettest.Uplink (198.18.255.252/30) towards a test-owned "host"
// namespace; nothing touches the real host.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/driver/netns"
	"nimbus/internal/driver/process"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as `<test> workload <kind>`.
	workload.RunIfReexec()
	code := m.Run()
	instancesDirs.Range(func(k, _ any) bool {
		os.RemoveAll(k.(string))
		return true
	})
	os.Exit(code)
}

// instancesDirs are the instances directories of the tests' drivers.
var instancesDirs sync.Map

// options are the options of a test driver over stateDir whose workloads
// are this test binary. Its instances directory is under os.TempDir() (the
// instance user must reach it, and a t.TempDir() of root is 0700), the same
// for every driver over stateDir, and removed when the tests end.
func options(env *hostnettest.Env, stateDir string) netns.Options {
	sum := sha256.Sum256([]byte(stateDir))
	dir := filepath.Join(os.TempDir(), "nimbus-test-instances-"+hex.EncodeToString(sum[:6]))
	instancesDirs.Store(dir, true)
	return netns.Options{
		Net:      env.Net,
		StateDir: stateDir,
		Env:      map[string]string{workload.ReexecEnv: "1"},
		Process:  process.Options{InstancesDir: dir},
	}
}

func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		drivertest.Run(t, drivertest.Harness{SkipReason: "the netns driver needs root to create network namespaces"})
		return
	}
	env := hostnettest.New(t)
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T, dir string) driver.Driver {
			d, err := netns.New(context.Background(), options(env, dir))
			if err != nil {
				t.Fatalf("netns.New: %v", err)
			}
			return d
		},
		Dial: env.Net.DialContext,
	})
	// Every instance namespace of the suite is gone.
	left, err := hostnet.ListNamespaces(env.Net.Name() + "-")
	if err != nil {
		t.Fatal(err)
	}
	if len(left) > 0 {
		t.Errorf("namespaces left behind: %v", left)
	}
}

// TestUnprivilegedPortsInNamespaceOnly checks that an instance's namespace
// lets its unprivileged workload bind any port, and that the host's
// setting is untouched.
func TestUnprivilegedPortsInNamespaceOnly(t *testing.T) {
	hostnettest.RequireRoot(t)
	const sysctl = "/proc/sys/net/ipv4/ip_unprivileged_port_start"
	before, err := os.ReadFile(sysctl)
	if err != nil {
		t.Fatal(err)
	}
	env := hostnettest.New(t)
	ctx := context.Background()
	d, err := netns.New(ctx, options(env, t.TempDir()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close(ctx, true) })
	out := filepath.Join(drivertest.SharedDir(t), "portstart")
	spec := drivertest.ScriptSpec(3, fmt.Sprintf("{ id -u; cat %s; } > %s.tmp && mv %s.tmp %s\n", sysctl, out, out, out))
	st, err := d.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	var got string
	deadline := time.Now().Add(10 * time.Second)
	for got == "" && time.Now().Before(deadline) {
		b, _ := os.ReadFile(out)
		got = string(b)
		time.Sleep(10 * time.Millisecond)
	}
	if want := fmt.Sprintf("%d\n0\n", st.UID); got != want {
		t.Errorf("instance (uid, %s) = %q; want %q", sysctl, got, want)
	}
	if after, _ := os.ReadFile(sysctl); string(after) != string(before) {
		t.Errorf("host %s changed from %q to %q", sysctl, before, after)
	}
	if err := d.Destroy(ctx, spec.Key); err != nil {
		t.Fatal(err)
	}
}
