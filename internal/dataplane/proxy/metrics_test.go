package proxy

import (
	"context"
	"net/http/httptest"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
)

// Address plan: frontend 127.88.22.1 (listeners on free ports), backends
// 127.88.23.1-3 (never dialled: no connection is made).

// availabilityLines returns the sorted availability and SNAT allocation
// series of m's scrape.
func availabilityLines(t *testing.T, m *metrics.Metrics) []string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	var out []string
	for _, l := range strings.Split(rec.Body.String(), "\n") {
		if strings.HasPrefix(l, "VipAvailability{") || strings.HasPrefix(l, "DipAvailability{") || strings.HasPrefix(l, "AllocatedSnatPorts{") {
			out = append(out, l)
		}
	}
	slices.Sort(out)
	return out
}

// TestAvailabilityMatchesKernelPath: the userspace engine's availability and
// SNAT series are exactly what the kernel path reports (ReportConfig) for the
// same Config and health, through every case of eligibility (probe down,
// admin Down, the AllProbedUp fallback, protocol All, backend port 0, NAT
// rules), before and after a health change.
func TestAvailabilityMatchesKernelPath(t *testing.T) {
	ctx := context.Background()
	fe := lo(22, 1)
	b := func(i byte) netip.AddrPort { return netip.AddrPortFrom(lo(23, int(i)), 8080) }
	web := tcpRule("/rules/web", fe, freePort(t, fe), b(1), b(2), b(3))
	web.ProbeID = "/probes/web"
	web.Backends[2].AdminState = dataplane.AdminDown
	all := tcpRule("/rules/all", fe, freePort(t, fe), b(1), b(2))
	all.Protocol, all.BackendPort, all.ProbeID, all.NoHealthyBackends = dataplane.All, 0, "/probes/all", dataplane.AllProbedUp
	nat := dataplane.NATRule{ID: "/nat/ssh", Frontend: web.Frontend, Protocol: dataplane.TCP,
		FrontendPort: freePort(t, fe), BackendPort: 22, Backend: web.Backends[0]}
	cfg := dataplane.Config{Rules: []dataplane.Rule{web, all}, NATRules: []dataplane.NATRule{nat},
		Outbound: []dataplane.SNATAllocation{{RuleID: "/out", Frontend: web.Frontend, Protocol: dataplane.All,
			Backend: web.Backends[0], PortStart: 1024, PortEnd: 2047}}}

	userspace := metrics.New()
	e := New(Options{Metrics: userspace})
	defer e.Close()
	if err := e.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	for _, h := range []dataplane.Health{
		{},
		{{ProbeID: "/probes/web", BackendID: "/b1"}: false,
			{ProbeID: "/probes/all", BackendID: "/b0"}: false, {ProbeID: "/probes/all", BackendID: "/b1"}: false},
	} {
		if err := e.SetHealth(ctx, h); err != nil {
			t.Fatal(err)
		}
		kernel := metrics.New()
		kernel.ReportConfig(cfg, h)
		got, want := availabilityLines(t, userspace), availabilityLines(t, kernel)
		if !slices.Equal(got, want) {
			t.Errorf("health %v:\nuserspace engine\n  %s\nkernel path\n  %s", h, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if len(got) == 0 {
			t.Fatal("no availability series")
		}
	}
}
