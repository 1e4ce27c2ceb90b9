package system

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/sdktest"
)

// BenchmarkScaleOut measures, through the SDK, the time from a capacity
// change (PATCH sku.capacity from 0 to N) to every new instance running and
// listed in its backend pool (the LB's backendIPConfigurations), for N = 10
// and 100, on the process driver. It also reports nimbus's own memory with
// the instances running.
//
//	go test ./internal/system -run '^$' -bench ScaleOut -benchtime 3x
func BenchmarkScaleOut(b *testing.B) {
	for _, n := range []int64{10, 100} {
		b.Run(strconv.FormatInt(n, 10), func(b *testing.B) {
			e := newBenchEnv(b)
			ctx := context.Background()
			e.setup(ctx)
			create, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(0), nil)
			if err == nil {
				_, err = create.PollUntilDone(ctx, sdktest.Poll)
			}
			if err != nil {
				b.Fatal(err)
			}
			lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
			var total time.Duration
			for i := 0; i < b.N; i++ {
				start := time.Now()
				e.scale(b, ctx, n)
				for {
					lb, err := lbc.Get(ctx, e.rg, "lb", nil)
					if err != nil {
						b.Fatal(err)
					}
					if int64(len(lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations)) == n &&
						int64(len(running(e.instances(ctx)))) == n {
						break
					}
					time.Sleep(20 * time.Millisecond)
				}
				total += time.Since(start)
				b.ReportMetric(float64(rssKB())/1024, "nimbus-rss-MB")
				b.StopTimer()
				e.scale(b, ctx, 0)
				for len(e.instances(ctx)) != 0 {
					time.Sleep(20 * time.Millisecond)
				}
				b.StartTimer()
			}
			b.ReportMetric(total.Seconds()/float64(b.N), "s/scale-out")
		})
	}
}

func (e *env) scale(b *testing.B, ctx context.Context, n int64) {
	p, err := e.vmss().BeginUpdate(ctx, e.rg, "web", armcompute.VirtualMachineScaleSetUpdate{
		SKU: &armcompute.SKU{Capacity: to.Ptr(n)}}, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		b.Fatalf("scale to %d: %v", n, err)
	}
}

// newBenchEnv is newEnv for benchmarks (its helpers take a *testing.T; the
// benchmark's failures go through b).
func newBenchEnv(b *testing.B) *env {
	if os.Geteuid() != 0 {
		b.Skip("the echo image binds ports 80 and 22: run as root")
	}
	e := &env{t: b, dir: b.TempDir(), rg: "rg"}
	e.sys = startSystem(b, e.dir)
	ep := e.sys.Node.Endpoint
	opts, err := sdktest.Options(ep.Endpoint, ep.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	e.sub, e.opts = ep.SubscriptionID, opts
	e.cred = sdktest.Credential{Minter: e.sys.Node.Issuer, Audience: ep.Audience}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if p, err := e.vmss().BeginDelete(ctx, e.rg, "web", nil); err == nil {
			_, _ = p.PollUntilDone(ctx, sdktest.Poll)
		}
		_ = e.sys.Stop()
	})
	return e
}

// rssKB returns this process's resident set size in KiB (Linux), or the Go
// heap in use elsewhere.
func rssKB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
				v, _ := strconv.ParseInt(f[1], 10, 64)
				return v
			}
		}
	}
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse / 1024)
}
