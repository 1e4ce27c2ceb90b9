package netns_test

// Address plan: the conformance suite's customer addresses 198.18.0.0/24
// (gateway 198.18.0.1) live on a bridge in a test-owned nimbus namespace
// "nbt…"; the suite dials them from inside that namespace. The uplink uses
// hostnettest.Uplink (198.18.255.252/30) towards a test-owned "host"
// namespace; nothing touches the real host.

import (
	"context"
	"os"
	"testing"

	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/driver/netns"
	"nimbus/internal/hostnet"
	"nimbus/internal/hostnet/hostnettest"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as `<test> workload <kind>`.
	workload.RunIfReexec()
	os.Exit(m.Run())
}

func TestConformance(t *testing.T) {
	if os.Geteuid() != 0 {
		drivertest.Run(t, drivertest.Harness{SkipReason: "the netns driver needs root to create network namespaces"})
		return
	}
	env := hostnettest.New(t)
	drivertest.Run(t, drivertest.Harness{
		New: func(t *testing.T, dir string) driver.Driver {
			d, err := netns.New(context.Background(), netns.Options{
				Net:      env.Net,
				StateDir: dir,
				Env:      map[string]string{workload.ReexecEnv: "1"},
			})
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
