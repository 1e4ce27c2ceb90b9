package nft_test

// Benchmarks of apply times in a throwaway nimbus namespace (no traffic).
// Backends are invented in 198.19.0.0/16 and never contacted; frontends in
// 198.18.100.0/24. Run:
//
//	go test -run '^$' -bench . -benchtime 50x ./internal/dataplane/nft/
//
// Each reports the mean (ns/op) and p50/p99 in milliseconds.

import (
	"context"
	"fmt"
	"net/netip"
	"sort"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/hostnet/hostnettest"
)

func benchBackends(n int) []dataplane.Backend {
	bs := make([]dataplane.Backend, n)
	for i := range bs {
		ip := netip.AddrFrom4([4]byte{198, 19, byte(i / 250), byte(1 + i%250)})
		bs[i] = dataplane.Backend{ID: fmt.Sprintf("nic/%05d", i), IP: ip, DialIP: ip}
	}
	return bs
}

type timings []time.Duration

func (ts timings) report(b *testing.B) {
	sort.Slice(ts, func(i, j int) bool { return ts[i] < ts[j] })
	pct := func(p float64) float64 {
		i := int(p * float64(len(ts)-1))
		return float64(ts[i].Microseconds()) / 1000
	}
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

func benchEngine(b *testing.B, opts nft.Options) *nft.Engine {
	he := hostnettest.New(b, publicRange)
	opts.Uplink = he.Net.UplinkName()
	eng, err := nft.New(context.Background(), he.Net.Namespace(), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { eng.Remove(context.Background()); eng.Close() })
	return eng
}

// BenchmarkHealthChange flips one backend of a rule down and up: one
// slot-map update transaction per op.
func BenchmarkHealthChange(b *testing.B) {
	for _, tc := range []struct {
		backends int
		slots    uint64
	}{{10, 0}, {1000, 65537}} {
		b.Run(fmt.Sprintf("backends=%d/slots=%d", tc.backends, tc.slots), func(b *testing.B) {
			eng := benchEngine(b, nft.Options{SlotTableSize: tc.slots})
			r := lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, benchBackends(tc.backends))
			ctx := context.Background()
			if err := eng.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{r}}); err != nil {
				b.Fatal(err)
			}
			down := dataplane.Health{{ProbeID: "probe/1", BackendID: r.Backends[1].ID}: false}
			var ts timings
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				h := down
				if i%2 == 1 {
					h = nil
				}
				start := time.Now()
				if err := eng.SetHealth(ctx, h); err != nil {
					b.Fatal(err)
				}
				ts = append(ts, time.Since(start))
			}
			ts.report(b)
		})
	}
}

// BenchmarkApply1000Rules applies configurations of 1,000 rules over 10
// pools of 2-3 backends (100 rules per pool, distinct backend ports,
// 251-slot tables), alternating between two of them:
//
//	add-rule     1,000 and 1,001 rules (element updates: fe_dispatch, be_port)
//	pool-change  one pool gains a backend (its slot map's elements)
//	replace      every rule's distribution flips (new chains: the whole
//	             table is rebuilt in one transaction)
func BenchmarkApply1000Rules(b *testing.B) {
	bs := benchBackends(40)
	mk := func(rules int, grow bool, dist dataplane.Distribution) dataplane.Config {
		var cfg dataplane.Config
		for i := 0; i < rules; i++ {
			pool := i % 10
			members := bs[pool*4 : pool*4+2]
			if grow && pool == 0 {
				members = bs[pool*4 : pool*4+3]
			}
			r := lbRule(fmt.Sprintf("rule/%04d", i), publicFE(feIP), dataplane.TCP, uint16(1000+i), uint16(20000+i), members)
			r.Distribution = dist
			cfg.Rules = append(cfg.Rules, r)
		}
		return cfg
	}
	for _, tc := range []struct {
		name string
		a, c dataplane.Config
	}{
		{"add-rule", mk(1000, false, dataplane.Default), mk(1001, false, dataplane.Default)},
		{"pool-change", mk(1000, false, dataplane.Default), mk(1000, true, dataplane.Default)},
		{"replace", mk(1000, false, dataplane.Default), mk(1000, false, dataplane.SourceIP)},
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

// BenchmarkSlotTableBuild builds a 65,537-slot table over 1,000 backends
// in an empty namespace: Maglev, rendering and one transaction creating and
// filling the map (p50/p99 time only the apply).
func BenchmarkSlotTableBuild(b *testing.B) {
	eng := benchEngine(b, nft.Options{SlotTableSize: 65537})
	ctx := context.Background()
	bs := benchBackends(1000)
	var ts timings
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		// A new rule id each time (no cached Maglev table), into an empty
		// namespace: the previous table is removed outside the timing.
		r := lbRule(fmt.Sprintf("rule/%d", i), publicFE(feIP), dataplane.TCP, 80, 8080, bs)
		if err := eng.Remove(ctx); err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		if err := eng.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{r}}); err != nil {
			b.Fatal(err)
		}
		ts = append(ts, time.Since(start))
	}
	ts.report(b)
}
