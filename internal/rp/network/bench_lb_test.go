package network_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"nimbus/internal/arm/armtest"
)

// Address plan: one virtual network 198.18.0.0/15 with subnet
// 198.18.0.0/16; stored LB i has the static internal frontend
// 198.18.(i/250).(i%250+4). Everything runs in-process on loopback.

// benchStored is how many load balancers are stored before measuring
// (NIMBUS_BENCH_LBS overrides it for quick profiling runs).
var benchStored = func() int {
	if n, err := strconv.Atoi(os.Getenv("NIMBUS_BENCH_LBS")); err == nil && n > 0 {
		return n
	}
	return 1000
}()

// latencies records one duration per operation and reports percentiles.
type latencies []time.Duration

func (l latencies) report(b *testing.B) {
	if len(l) == 0 {
		return
	}
	s := slices.Clone(l)
	slices.Sort(s)
	pct := func(p float64) time.Duration { return s[min(len(s)-1, int(float64(len(s))*p))] }
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	b.ReportMetric(ms(pct(0.50)), "p50-ms")
	b.ReportMetric(ms(pct(0.99)), "p99-ms")
	b.ReportMetric(0, "ns/op") // the percentiles are the figures; ns/op includes setup noise
	b.Logf("%s: n=%d p50=%v p99=%v max=%v", b.Name(), len(s), pct(0.50), pct(0.99), s[len(s)-1])
}

// benchLB returns an internal Standard LB body with nRules rules on one
// frontend (static address addr), one pool and one probe.
func benchLB(e *armtest.Env, name, addr string, nRules, idle int) map[string]any {
	lbID := e.ID("Microsoft.Network/loadBalancers/" + name)
	rules := make([]any, 0, nRules)
	for i := range nRules {
		rules = append(rules, map[string]any{"name": "rule" + strconv.Itoa(i), "properties": map[string]any{
			"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/fe"},
			"backendAddressPool":      map[string]any{"id": lbID + "/backendAddressPools/be"},
			"probe":                   map[string]any{"id": lbID + "/probes/probe"},
			"protocol":                "Tcp", "frontendPort": 1000 + i, "backendPort": 20000 + i, "idleTimeoutInMinutes": idle,
		}})
	}
	return map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"}, "properties": map[string]any{
		"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{
			"subnet":                    map[string]any{"id": e.ID("Microsoft.Network/virtualNetworks/benchnet/subnets/s")},
			"privateIPAllocationMethod": "Static", "privateIPAddress": addr}}},
		"backendAddressPools": []any{map[string]any{"name": "be"}},
		"probes":              []any{map[string]any{"name": "probe", "properties": map[string]any{"protocol": "Tcp", "port": 80}}},
		"loadBalancingRules":  rules,
	}}
}

func vmRSS() (kb int64) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ = strconv.ParseInt(f[1], 10, 64)
		}
	}
	return kb
}

// BenchmarkLoadBalancer measures, with 1,000 load balancers of 100 rules
// stored, the latency of PUT of a 100-rule LB (until its operation reports
// Succeeded), GET and list (one page), over real HTTPS with a real token,
// and the process RSS holding them. Run:
//
//	go test ./internal/arm -run XXX -bench BenchmarkLoadBalancer -benchtime 200x
func BenchmarkLoadBalancer(b *testing.B) {
	e := newBenchEnv(b)
	e.MustPut(e.ID("Microsoft.Network/virtualNetworks/benchnet")+"?api-version=2025-01-01", map[string]any{
		"location": "eastus", "properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/15"}},
			"subnets":      []any{map[string]any{"name": "s", "properties": map[string]any{"addressPrefix": "198.18.0.0/16"}}},
		}})
	start := time.Now()
	for i := range benchStored {
		name := fmt.Sprintf("lb%04d", i)
		e.MustPut(e.ID("Microsoft.Network/loadBalancers/"+name)+"?api-version=2025-01-01",
			benchLB(e, name, fmt.Sprintf("198.18.%d.%d", i/250, i%250+4), 100, 4))
	}
	b.Logf("stored %d LBs of 100 rules in %v", benchStored, time.Since(start))
	b.Run("RSS", func(b *testing.B) {
		for b.Loop() {
			runtime.GC()
		}
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		b.ReportMetric(float64(vmRSS())/1024, "RSS-MB")
		b.ReportMetric(float64(ms.HeapInuse)/(1<<20), "heap-MB")
		b.ReportMetric(0, "ns/op")
		b.Logf("RSS with %d LBs stored: %d MiB (Go heap in use %d MiB; client and server share the process)",
			benchStored, vmRSS()/1024, ms.HeapInuse>>20)
	})

	target := e.ID("Microsoft.Network/loadBalancers/target") + "?api-version=2025-01-01"
	b.Run("PUT-100-rules", func(b *testing.B) {
		var l latencies
		for i := 0; b.Loop(); i++ {
			body := benchLB(e, "target", "198.18.200.4", 100, 4+i%90)
			t0 := time.Now()
			st, h, resp := e.Do(http.MethodPut, target, body)
			if st != http.StatusOK && st != http.StatusCreated {
				b.Fatalf("PUT: %d %s", st, resp)
			}
			ost, _, ob := e.Do(http.MethodGet, h.Get("Azure-AsyncOperation"), nil)
			var s struct{ Status string }
			if ost != 200 || json.Unmarshal(ob, &s) != nil || s.Status != "Succeeded" {
				b.Fatalf("operation: %d %s", ost, ob)
			}
			l = append(l, time.Since(t0))
		}
		l.report(b)
	})
	b.Run("GET", func(b *testing.B) {
		var l latencies
		for i := 0; b.Loop(); i++ {
			path := e.ID(fmt.Sprintf("Microsoft.Network/loadBalancers/lb%04d", i%benchStored)) + "?api-version=2025-01-01"
			t0 := time.Now()
			if st, _, resp := e.Do(http.MethodGet, path, nil); st != 200 {
				b.Fatalf("GET: %d %s", st, resp)
			}
			l = append(l, time.Since(t0))
		}
		l.report(b)
	})
	// The same GET handed to the server in-process (no TLS, no client):
	// what the server itself spends.
	b.Run("GET-server-only", func(b *testing.B) {
		var l latencies
		for i := 0; b.Loop(); i++ {
			path := e.ID(fmt.Sprintf("Microsoft.Network/loadBalancers/lb%04d", i%benchStored)) + "?api-version=2025-01-01"
			req := httptest.NewRequest(http.MethodGet, e.Base+path, nil)
			req.Header.Set("Authorization", "Bearer "+e.Token)
			w := httptest.NewRecorder()
			t0 := time.Now()
			e.Server.ServeHTTP(w, req)
			l = append(l, time.Since(t0))
			if w.Code != 200 {
				b.Fatalf("GET: %d", w.Code)
			}
		}
		l.report(b)
	})
	b.Run("PUT-server-only", func(b *testing.B) {
		var l latencies
		for i := 0; b.Loop(); i++ {
			body, err := json.Marshal(benchLB(e, "target", "198.18.200.4", 100, 4+i%90))
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPut, e.Base+target, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+e.Token)
			w := httptest.NewRecorder()
			t0 := time.Now()
			e.Server.ServeHTTP(w, req)
			l = append(l, time.Since(t0))
			if w.Code != 200 && w.Code != 201 {
				b.Fatalf("PUT: %d %s", w.Code, w.Body.Bytes())
			}
		}
		l.report(b)
	})
	b.Run("List-page", func(b *testing.B) {
		var l latencies
		path := e.RGPath("rg", "Microsoft.Network/loadBalancers") + "?api-version=2025-01-01"
		for b.Loop() {
			t0 := time.Now()
			st, _, resp := e.Do(http.MethodGet, path, nil)
			if st != 200 || !strings.Contains(string(resp), "nextLink") {
				b.Fatalf("list: %d", st)
			}
			l = append(l, time.Since(t0))
		}
		l.report(b)
	})
}

// newBenchEnv is newLBEnv for benchmarks (group rg, no SDK use).
func newBenchEnv(b *testing.B) *armtest.Env {
	b.Helper()
	n := armtest.Start(b)
	n.Group("rg")
	return &armtest.Env{Node: n}
}
