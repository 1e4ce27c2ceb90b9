package metrics

import (
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("status %d", rec.Code)
	}
	return rec.Body.String()
}

func TestNames(t *testing.T) {
	m := New()
	fe := netip.MustParseAddr("198.18.0.1")
	be := netip.MustParseAddr("198.18.1.5")
	c := m.Frontend(fe, 80)
	c.AddSYN()
	c.AddBytes(100, 250, 1, 2)
	m.SetAvailability([]Vip{{FrontendIP: fe, FrontendPort: 80, Up: true}},
		[]Dip{{Protocol: "Tcp", BackendPort: 8080, FrontendIP: fe, FrontendPort: 80, BackendIP: be, Up: false}})
	m.SetSnatPorts([]SnatPorts{{FrontendIP: fe, BackendIP: be, Protocol: "Udp", Allocated: 1024, Used: 3}})
	m.SnatConnection(fe, be, SnatSuccessful)
	body := scrape(t, m)
	for _, want := range []string{
		`SYNCount{Direction="Inbound",FrontendIPAddress="198.18.0.1",FrontendPort="80"} 1`,
		`ByteCount{Direction="Inbound",FrontendIPAddress="198.18.0.1",FrontendPort="80"} 100`,
		`ByteCount{Direction="Outbound",FrontendIPAddress="198.18.0.1",FrontendPort="80"} 250`,
		`PacketCount{Direction="Outbound",FrontendIPAddress="198.18.0.1",FrontendPort="80"} 2`,
		`VipAvailability{FrontendIPAddress="198.18.0.1",FrontendPort="80"} 100`,
		`DipAvailability{BackendIPAddress="198.18.1.5",BackendPort="8080",FrontendIPAddress="198.18.0.1",FrontendPort="80",ProtocolType="Tcp"} 0`,
		`AllocatedSnatPorts{BackendIPAddress="198.18.1.5",FrontendIPAddress="198.18.0.1",IsAwaitingRemoval="false",ProtocolType="Udp"} 1024`,
		`UsedSnatPorts{BackendIPAddress="198.18.1.5",FrontendIPAddress="198.18.0.1",IsAwaitingRemoval="false",ProtocolType="Udp"} 3`,
		`SnatConnectionCount{BackendIPAddress="198.18.1.5",ConnectionState="successful",FrontendIPAddress="198.18.0.1"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("missing %s", want)
		}
	}
	// Replacing availability drops series of removed rules.
	m.SetAvailability(nil, nil)
	if body := scrape(t, m); strings.Contains(body, "VipAvailability{") || strings.Contains(body, "DipAvailability{") {
		t.Error("stale availability series survived SetAvailability(nil, nil)")
	}
}

func TestNilIsSafe(t *testing.T) {
	var m *Metrics
	c := m.Frontend(netip.MustParseAddr("198.18.0.1"), 80)
	c.AddSYN()
	c.AddBytes(1, 1, 1, 1)
	m.SetAvailability(nil, nil)
	m.SetSnatPorts(nil)
	m.SnatConnection(netip.Addr{}, netip.Addr{}, SnatFailed)
	_ = scrape(t, m)
}

// TestSecurityHitSource: each scrape adds what the source's totals grew by;
// a total that went down (the kernel table was replaced) counts whole; the
// userspace engine's direct counts add to the same series.
func TestSecurityHitSource(t *testing.T) {
	m := New()
	var totals []RuleHits
	m.SetSecurityHitSource(func() []RuleHits { return totals })
	const series = `nimbus_security_rule_hits_total{Access="Allow",NetworkSecurityGroup="web",SecurityRule="http"} `
	rule := func(n uint64) []RuleHits {
		return []RuleHits{{GroupID: "/x/networksecuritygroups/web", RuleID: "/x/networksecuritygroups/web/securityrules/http", Allow: true, Flows: n}}
	}
	for _, step := range []struct {
		total uint64
		want  string
	}{{5, "5"}, {7, "7"}, {7, "7"}, {2, "9"}} {
		totals = rule(step.total)
		if got := scrape(t, m); !strings.Contains(got, series+step.want+"\n") {
			t.Fatalf("after a total of %d: want %s%s in\n%s", step.total, series, step.want, got)
		}
	}
	m.AddSecurityRuleHits("/x/networksecuritygroups/web", "/x/networksecuritygroups/web/securityrules/http", true, 1)
	if got := scrape(t, m); !strings.Contains(got, series+"10\n") {
		t.Fatalf("direct hits do not add up: %s", got)
	}
}
