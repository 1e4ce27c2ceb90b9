package metrics

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"nimbus/internal/dataplane"
)

func TestReportConfig(t *testing.T) {
	fe := dataplane.Frontend{IP: netip.MustParseAddr("198.18.0.10")}
	b1 := dataplane.Backend{ID: "b1", IP: netip.MustParseAddr("198.18.1.4")}
	b2 := dataplane.Backend{ID: "b2", IP: netip.MustParseAddr("198.18.1.5")}
	cfg := dataplane.Config{
		Rules: []dataplane.Rule{{ID: "r", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 80, BackendPort: 80,
			ProbeID: "p", NoHealthyBackends: dataplane.AllProbedDown, Backends: []dataplane.Backend{b1, b2}}},
		Outbound: []dataplane.SNATAllocation{{Frontend: fe, Protocol: dataplane.All, Backend: b1, PortStart: 1024, PortEnd: 2047}},
	}
	m := New()
	m.ReportConfig(cfg, dataplane.Health{{ProbeID: "p", BackendID: "b2"}: false})
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, want := range []string{
		`DipAvailability{BackendIPAddress="198.18.1.4",BackendPort="80",FrontendIPAddress="198.18.0.10",FrontendPort="80",ProtocolType="Tcp"} 100`,
		`DipAvailability{BackendIPAddress="198.18.1.5",BackendPort="80",FrontendIPAddress="198.18.0.10",FrontendPort="80",ProtocolType="Tcp"} 0`,
		`VipAvailability{FrontendIPAddress="198.18.0.10",FrontendPort="80"} 100`,
		`AllocatedSnatPorts{BackendIPAddress="198.18.1.4",FrontendIPAddress="198.18.0.10",IsAwaitingRemoval="false",ProtocolType="Udp"} 1024`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s in\n%s", want, out)
		}
	}
}
