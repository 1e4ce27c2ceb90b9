package process

// Address plan: instances of these tests get provider addresses from
// 127.101.0.0/24 (conformance) and 127.102.0.0/22 (benchmarks), away from the
// default pool other packages' tests may use; customer addresses are
// invented in 198.18.0.0/24 and never receive traffic.

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	// The driver re-executes this test binary as `<test> workload <kind>`.
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// testOptions are the options of a driver over dir whose workloads are this
// test binary.
func testOptions(dir string, pool string) Options {
	return Options{
		StateDir:    dir,
		Env:         map[string]string{workload.ReexecEnv: "1"},
		Pool:        netip.MustParsePrefix(pool),
		StopTimeout: 2 * time.Second,
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
