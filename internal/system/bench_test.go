package system

import (
	"context"
	"fmt"
	"net"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/poll"
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
				poll.Until(b, time.Minute, "the scale-in to 0", func() error {
					if n := len(e.instances(ctx)); n != 0 {
						return fmt.Errorf("%d instances", n)
					}
					return nil
				})
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

// newBenchEnv is newEnv for benchmarks, in process mode.
func newBenchEnv(b *testing.B, tweak ...func(*Options)) *env {
	return newBenchEnvMode(b, Process, tweak...)
}

// newBenchEnvMode starts nimbus with the process driver (proxy) or the netns
// driver (nft).
func newBenchEnvMode(b *testing.B, driver string, tweak ...func(*Options)) *env {
	if os.Geteuid() != 0 {
		b.Skip("the echo image binds ports 80 and 22: run as root")
	}
	if driver == Netns {
		requireKernelPath(b)
	}
	e := &env{t: b, dir: b.TempDir(), rg: "rg"}
	e.sys = startSystemMode(b, e.dir, driver, tweak...)
	ep := e.sys.Node.Endpoint
	opts, err := sdktest.Options(ep.Endpoint, ep.CAFile)
	if err != nil {
		b.Fatal(err)
	}
	e.sub, e.opts = ep.SubscriptionID, opts
	e.cred = sdktest.Credential{Minter: e.sys.Node.Issuer, Audience: ep.Audience}
	b.Cleanup(func() {
		// Delete every scale set so no instance outlives the benchmark.
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		pager := e.vmss().NewListPager(e.rg, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				break
			}
			for _, v := range page.Value {
				if p, err := e.vmss().BeginDelete(ctx, e.rg, *v.Name, nil); err == nil {
					_, _ = p.PollUntilDone(ctx, sdktest.Poll)
				}
			}
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

// BenchmarkRuleProgramming measures, for each engine, the time from an LB
// PUT being acknowledged (the 201/200 answer, before any polling) to new
// connections following the new rule: a client dialling the new frontend
// port gets an answer from an instance. It reports p50 and p99.
//
//	go test ./internal/system -run '^$' -bench RuleProgramming -benchtime 50x
func BenchmarkRuleProgramming(b *testing.B) {
	for _, driver := range []string{Process, Netns} {
		b.Run(driver, func(b *testing.B) {
			e := newBenchEnvMode(b, driver)
			ctx := context.Background()
			vip := e.setup(ctx)
			create, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(2), nil)
			if err == nil {
				_, err = create.PollUntilDone(ctx, sdktest.Poll)
			}
			if err != nil {
				b.Fatal(err)
			}
			lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
			var lat []time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				port := int32(8000 + i%1000)
				b.StopTimer()
				got, err := lbc.Get(ctx, e.rg, "lb", nil)
				if err != nil {
					b.Fatal(err)
				}
				lb := got.LoadBalancer
				rules := lb.Properties.LoadBalancingRules[:1]
				r := *rules[0]
				props := *r.Properties
				// A new UDP rule (a second TCP rule to backend port 80 on the
				// same pool is refused: RulesUseSameBackendPortProtocolAndPool);
				// the echo image answers UDP on port 80.
				props.FrontendPort = to.Ptr(port)
				props.Protocol = to.Ptr(armnetwork.TransportProtocolUDP)
				props.Probe = nil
				r.Name, r.ID, r.Etag, r.Properties = to.Ptr(fmt.Sprintf("r%d", port)), nil, nil, &props
				lb.Properties.LoadBalancingRules = append(rules, &r)
				b.StartTimer()
				p, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "lb", lb, nil)
				if err != nil {
					b.Fatal(err)
				}
				acked := time.Now()
				for {
					if err := udpOnce(fmt.Sprintf("%s:%d", vip, port), 3*time.Millisecond); err == nil {
						break
					}
					if time.Since(acked) > 10*time.Second {
						b.Fatalf("rule on port %d not serving 10 s after the PUT", port)
					}
					time.Sleep(time.Millisecond)
				}
				lat = append(lat, time.Since(acked))
				b.StopTimer()
				if _, err := p.PollUntilDone(ctx, sdktest.Poll); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[(len(lat)*99)/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// udpOnce sends one datagram to addr and waits for the echo's answer.
func udpOnce(addr string, timeout time.Duration) error {
	c, err := net.Dial("udp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(timeout))
	if _, err := c.Write([]byte("ping")); err != nil {
		return err
	}
	buf := make([]byte, 2048)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	if !strings.Contains(string(buf[:n]), `"name"`) {
		return fmt.Errorf("unexpected answer %q", buf[:n])
	}
	return nil
}

// BenchmarkThousandInstances runs 1,000 echo instances across 4 scale sets
// (process driver, each instance a real process) and reports nimbus's own
// resident memory and Go heap with them running, and the time until all
// 1,000 ran.
//
//	go test ./internal/system -run '^$' -bench ThousandInstances -benchtime 1x
func BenchmarkThousandInstances(b *testing.B) {
	// Azure's probe interval (the tests' 300 ms would probe 1,000 backends
	// 3,300 times a second).
	e := newBenchEnv(b, func(o *Options) { o.ProbeInterval = 0 })
	ctx := context.Background()
	e.setup(ctx)
	// A /22 subnet for 1,000 addresses.
	vnc, _ := armnetwork.NewSubnetsClient(e.sub, e.cred, e.opts)
	sp, err := vnc.BeginCreateOrUpdate(ctx, e.rg, "vn", "big", armnetwork.Subnet{
		Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.0.4.0/22")}}, nil)
	if err == nil {
		_, err = sp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		b.Fatal(err)
	}
	before := rssKB()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		for s := 0; s < 4; s++ {
			m := e.scaleSet(250)
			ipc := m.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0]
			ipc.Properties.Subnet.ID = to.Ptr(e.id("Microsoft.Network/virtualNetworks", "vn") + "/subnets/big")
			ipc.Properties.LoadBalancerInboundNatPools = nil
			p, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, fmt.Sprintf("web%d", s), m, nil)
			if err == nil {
				_, err = p.PollUntilDone(ctx, sdktest.Poll)
			}
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(time.Since(start).Seconds(), "s-to-1000-running")
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(rssKB())/1024, "nimbus-rss-MB")
		b.ReportMetric(float64(before)/1024, "rss-before-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-inuse-MB")
		for s := 0; s < 4; s++ {
			n := 0
			for _, v := range e.instancesOf(ctx, fmt.Sprintf("web%d", s)) {
				if *v.Properties.ProvisioningState == "Succeeded" {
					n++
				}
			}
			b.Logf("web%d: %d instances Succeeded", s, n)
		}
		list, err := e.sys.Driver.List(ctx)
		if err != nil || len(list) != 1000 {
			b.Errorf("driver lists %d instances (%v), want 1000", len(list), err)
		}
		for s := 0; s < 4; s++ {
			if p, err := e.vmss().BeginDelete(ctx, e.rg, fmt.Sprintf("web%d", s), nil); err == nil {
				_, _ = p.PollUntilDone(ctx, sdktest.Poll)
			}
		}
	}
}
