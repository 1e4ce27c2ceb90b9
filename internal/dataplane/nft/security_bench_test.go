package nft_test

// Measurements of network security groups on the kernel path. Address plan
// as env_test.go; the 1,000 rules name sources in 203.0.113.0/24 split in
// /32s that no client uses (RFC 5737, never contacted), so every new flow
// walks all of them before the allowing rule at the end.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/nft"
)

// nsgWith1000 is a group of n inbound rules that match no flow of the
// measurement, then one allowing everything at priority 4096, over the
// given backends.
func nsgWith1000(bs []dataplane.Backend, n int, shift byte) dataplane.Security {
	var rules []dataplane.SecurityRule
	for i := 0; i < n; i++ {
		src := netip.AddrFrom4([4]byte{203, 0, 113, byte(i%250 + int(shift))})
		rules = append(rules, dataplane.SecurityRule{ID: fmt.Sprintf("nsg/big/securityrules/r%04d", i), Priority: int32(100 + i),
			Direction: dataplane.Inbound, Protocol: dataplane.ProtoTCP,
			Source:           dataplane.AddressSet{Prefixes: []netip.Prefix{netip.PrefixFrom(src, 32)}},
			Destination:      nsgAny,
			DestinationPorts: []dataplane.PortRange{{First: uint16(10000 + i), Last: uint16(10000 + i)}}})
	}
	rules = append(rules, dataplane.SecurityRule{ID: "nsg/big/securityrules/allow", Priority: 4096, Direction: dataplane.Inbound, Allow: true,
		Source: nsgAny, Destination: nsgAny})
	g := nsgGroup("nsg/big", rules...)
	sec := dataplane.Security{Groups: []dataplane.SecurityGroup{g}}
	for _, b := range bs {
		sec.Interfaces = append(sec.Interfaces, dataplane.InterfaceSecurity{ID: b.ID, IP: b.IP, VirtualNetwork: []netip.Prefix{subnet}, SubnetGroup: g.ID})
	}
	return sec
}

// BenchmarkNSGRuleChange applies changes to a group of 1,000 rules
// attached to 40 NICs: a rule's source prefix (an interval-set update), a
// rule added (a table replace) and one NIC more (a map element).
func BenchmarkNSGRuleChange(b *testing.B) {
	bs := benchBackends(41)
	base := dataplane.Config{Rules: []dataplane.Rule{lbRule("rule/web", publicFE(feIP), dataplane.TCP, 80, 8080, bs[:40])}}
	with := func(sec dataplane.Security) dataplane.Config { c := base; c.Security = sec; return c }
	a := nsgWith1000(bs[:40], 1000, 0)
	prefix := nsgWith1000(bs[:40], 1000, 0)
	prefix.Groups[0].Rules[7].Source.Prefixes = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/28")}
	added := nsgWith1000(bs[:40], 1001, 0)
	nic := nsgWith1000(bs[:41], 1000, 0)
	for _, tc := range []struct {
		name string
		a, c dataplane.Config
	}{
		{"prefix", with(a), with(prefix)},
		{"add-rule", with(a), with(added)},
		{"attach-nic", with(a), with(nic)},
	} {
		b.Run(tc.name, func(b *testing.B) {
			eng := benchEngine(b, nft.Options{SlotTableSize: 251})
			ctx := context.Background()
			if err := eng.Apply(ctx, tc.a); err != nil {
				b.Fatal(err)
			}
			var ts timings
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				cfg := tc.a
				if i%2 == 0 {
					cfg = tc.c
				}
				start := time.Now()
				if err := eng.Apply(ctx, cfg); err != nil {
					b.Fatal(err)
				}
				ts = append(ts, time.Since(start))
			}
			ts.report(b)
			st := eng.Stats()
			b.ReportMetric(float64(st.FullReplaces-1)/float64(b.N), "replaces/op")
		})
	}
}

// TestMeasureNSG compares the load-balanced path with and without a
// 1,000-rule group on the backend (run with NIMBUS_NFT_BENCH=1; no
// assertions, it logs figures): iperf3 single stream and CPU per new
// connection, paired reps in rotating order, medians of the ratios.
func TestMeasureNSG(t *testing.T) {
	if os.Getenv("NIMBUS_NFT_BENCH") != "1" {
		t.Skip("measurement (NIMBUS_NFT_BENCH=1)")
	}
	reps := envInt("REPS", 5, 1, 20)
	dur := envInt("DUR", 3, 1, 30)
	conns := envInt("CONNS", 2000, 100, 20000)
	e := newEnv(t, 1)
	vm := e.vms[0]
	if err := e.Host.Handle().RouteAdd(&netlink.Route{
		Dst: &net.IPNet{IP: subnet.Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)}, Gw: e.Net.UplinkAddr().AsSlice(),
	}); err != nil {
		t.Fatal(err)
	}
	startIn(t, vm.ns, "iperf3", "-s", "-p", "5201")
	rIperf := lbRule("rule/iperf", publicFE(feIP), dataplane.TCP, 5201, 5201, e.backends())
	rIperf.Distribution = dataplane.SourceIP
	plain := dataplane.Config{Rules: []dataplane.Rule{rIperf, lbRule("rule/conn", publicFE(feIP), dataplane.TCP, 80, 22, e.backends())}}
	guarded := plain
	guarded.Security = nsgWith1000(e.backends(), 1000, 0)
	e.apply(t, plain)
	waitIperf(t, e.Host, vm.ip)
	med := func(xs []float64) float64 { sort.Float64s(xs); return xs[len(xs)/2] }
	var gr, cd []float64
	for rep := 0; rep < reps; rep++ {
		var g, c [2]float64
		for k := range 2 {
			with := (rep+k)%2 == 0
			cfg := plain
			if with {
				cfg = guarded
			}
			e.apply(t, cfg)
			i := 0
			if with {
				i = 1
			}
			g[i] = iperf(t, e.Host, feIP, dur)
			c[i] = connCPU(t, e.Host, netip.AddrPortFrom(feIP, 80), conns)
		}
		t.Logf("rep %d: iperf3 without %.2f, with 1,000 rules %.2f Gbit/s; CPU per connection without %.1f µs, with %.1f µs", rep+1, g[0], g[1], c[0], c[1])
		gr, cd = append(gr, g[1]/g[0]), append(cd, c[1]-c[0])
	}
	fmt.Printf("RESULT 1,000 NSG rules: throughput with/without (median of %d paired) %.3f; extra CPU per new connection %+.1f µs\n", reps, med(gr), med(cd))
}
