package system

// Address plan: as isolate_test.go (public IPs from 127.78.1.0/24, the pool
// member on 127.0.0.1; no traffic is sent).

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/sdktest"
)

// memRules is the rule count of the measured load balancer (Azure's limit
// for a Standard LB).
const memRules = 1500

// BenchmarkMemoryPerRule stores and applies a 1,500-rule load balancer
// through the real path (ARM PUT into the store, the LB controller, the
// userspace engine listening on every frontend port) and reports what the
// process keeps per rule once the PUT's operation has finished (the data
// plane has applied it), after a GC: heap-B/rule (HeapInuse delta),
// stack-B/rule (StackInuse delta: the goroutines a rule keeps) and
// rss-B/rule. Each iteration creates the LB on a fresh public IP and deletes
// it again.
//
//	go test ./internal/system -run '^$' -bench MemoryPerRule -benchtime 2x
//
// For a heap profile taken while the LB is applied, set
// NIMBUS_BENCH_HEAPPROFILE=mem.out (and -memprofilerate 4096) and read it
// with `go tool pprof -sample_index=inuse_space`.
func BenchmarkMemoryPerRule(b *testing.B) {
	ctx := context.Background()
	// No periodic resync: a compile in flight would count its garbage.
	e := newLBEnv(b, func(o *Options) { o.Resync = time.Hour })
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	backend := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 9}
	var heap, stack, rss float64
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		pipID, _ := e.publicIP(ctx, fmt.Sprintf("pip-mem-%d", i))
		body := e.lbBody("lb-mem", pipID, 20000, backend, 4)
		rule := *body.Properties.LoadBalancingRules[0]
		body.Properties.LoadBalancingRules = nil
		for r := range memRules {
			props := *rule.Properties
			props.FrontendPort, props.BackendPort = to.Ptr(int32(20000+r)), to.Ptr(int32(20000+r))
			body.Properties.LoadBalancingRules = append(body.Properties.LoadBalancingRules,
				&armnetwork.LoadBalancingRule{Name: to.Ptr(fmt.Sprintf("r%d", r)), Properties: &props})
		}
		heap0, stack0, rss0 := inUse()
		b.StartTimer()
		p, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "lb-mem", body, nil)
		if err == nil {
			_, err = p.PollUntilDone(ctx, sdktest.Poll)
		}
		if err != nil {
			b.Fatalf("create the %d-rule LB: %v", memRules, err)
		}
		// The operation may finish before the controller applies when
		// the runtime does not wait for the data plane: wait here too.
		rev, err := e.sys.Node.Store.Revision(ctx)
		if err == nil {
			err = e.sys.LB.WaitApplied(ctx, rev)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if cfg, _ := e.sys.LB.Config(); len(cfg.Rules) != memRules {
			b.Fatalf("%d rules applied, want %d", len(cfg.Rules), memRules)
		}
		heap1, stack1, rss1 := inUse()
		if path := os.Getenv("NIMBUS_BENCH_HEAPPROFILE"); path != "" && i == 0 {
			writeHeapProfile(b, path)
		}
		heap += float64(heap1-heap0) / memRules
		stack += float64(stack1-stack0) / memRules
		rss += float64(rss1-rss0) / memRules
		d, err := lbc.BeginDelete(ctx, e.rg, "lb-mem", nil)
		if err == nil {
			_, err = d.PollUntilDone(ctx, sdktest.Poll)
		}
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
	b.ReportMetric(heap/float64(b.N), "heap-B/rule")
	b.ReportMetric(stack/float64(b.N), "stack-B/rule")
	b.ReportMetric(rss/float64(b.N), "rss-B/rule")
}

// inUse returns the heap and the goroutine stacks in use and the resident
// set size, in bytes, after a GC that returned freed memory to the OS.
func inUse() (heap, stack, rss int64) {
	runtime.GC()
	debug.FreeOSMemory() // a GC that also returns freed pages, so RSS means something
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return int64(m.HeapInuse), int64(m.StackInuse), rssKB() * 1024
}

// writeHeapProfile writes the heap profile to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		b.Fatal(err)
	}
}
