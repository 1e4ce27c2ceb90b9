//go:build linux

package process

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"nimbus/internal/driver/drivertest"
)

// BenchmarkStartEcho measures the time from asking for n echo instances at
// once until every one answers GET / on its provider address. Teardown is
// not timed. The workloads are this test binary re-executed, or the nimbus
// binary named by NIMBUS_BENCH_EXE (go build -o /tmp/nimbus ./cmd/nimbus).
//
//	go test -run '^$' -bench StartEcho -benchtime 3x ./internal/driver/process/
func BenchmarkStartEcho(b *testing.B) {
	if r := drivertest.LowPortsSkipReason(); r != "" {
		b.Skip(r)
	}
	for _, n := range []int{10, 100} {
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			opts := testOptions(b.TempDir(), "127.102.0.0/22")
			if exe := os.Getenv("NIMBUS_BENCH_EXE"); exe != "" {
				opts.Command, opts.Env = []string{exe}, nil
			}
			d, err := New(context.Background(), opts)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close(context.Background(), true)
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
				errs := make(chan error, n)
				var wg sync.WaitGroup
				for i := range n {
					wg.Go(func() { errs <- startAndGet(ctx, d, client, i) })
				}
				wg.Wait()
				cancel()
				close(errs)
				for err := range errs {
					if err != nil {
						b.Fatal(err)
					}
				}
				b.StopTimer()
				destroyAll(b, d)
				b.StartTimer()
			}
			b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/fleet")
		})
	}
}

func startAndGet(ctx context.Context, d *Driver, client *http.Client, i int) error {
	spec := drivertest.Spec(i, drivertest.Echo)
	spec.PrivateIP = netip.AddrFrom4([4]byte{198, 18, byte(1 + i/250), byte(1 + i%250)})
	st, err := d.Start(ctx, spec)
	if err != nil {
		return err
	}
	url := "http://" + netip.AddrPortFrom(st.ProviderIP, 80).String() + "/"
	for {
		req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("instance %d never answered: %v", i, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func destroyAll(b *testing.B, d *Driver) {
	sts, err := d.List(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, st := range sts {
		wg.Go(func() {
			if err := d.Destroy(context.Background(), st.Key); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
}
