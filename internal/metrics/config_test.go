package metrics

import (
	"io"
	"net/http/httptest"
	"net/netip"
	"reflect"
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

// TestAvailability: the pure computation both engines report.
func TestAvailability(t *testing.T) {
	fe := dataplane.Frontend{IP: netip.MustParseAddr("198.18.0.10")}
	fe2 := dataplane.Frontend{IP: netip.MustParseAddr("198.18.0.9")}
	b1 := dataplane.Backend{ID: "b1", IP: netip.MustParseAddr("198.18.1.4")}
	b2 := dataplane.Backend{ID: "b2", IP: netip.MustParseAddr("198.18.1.5")}
	down := dataplane.Backend{ID: "b3", IP: netip.MustParseAddr("198.18.1.6"), AdminState: dataplane.AdminDown}
	rule := func(proto dataplane.Protocol, fport, bport uint16, nh dataplane.NoHealthyBehavior, bs ...dataplane.Backend) dataplane.Rule {
		return dataplane.Rule{ID: "r", Frontend: fe, Protocol: proto, FrontendPort: fport, BackendPort: bport,
			ProbeID: "p", NoHealthyBackends: nh, Backends: bs}
	}
	ip := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	tests := []struct {
		name string
		cfg  dataplane.Config
		h    dataplane.Health
		vips []Vip
		dips []Dip
	}{
		{name: "empty config"},
		{
			name: "probe down and admin down",
			cfg:  dataplane.Config{Rules: []dataplane.Rule{rule(dataplane.TCP, 80, 8080, dataplane.AllProbedDown, b1, b2, down)}},
			h:    dataplane.Health{{ProbeID: "p", BackendID: "b2"}: false},
			vips: []Vip{{fe.IP, 80, true}},
			dips: []Dip{{"Tcp", 8080, fe.IP, 80, ip("198.18.1.4"), true}, {"Tcp", 8080, fe.IP, 80, ip("198.18.1.5"), false},
				{"Tcp", 8080, fe.IP, 80, ip("198.18.1.6"), false}},
		},
		{
			name: "all down: no new flows",
			cfg:  dataplane.Config{Rules: []dataplane.Rule{rule(dataplane.TCP, 80, 80, dataplane.AllProbedDown, b1)}},
			h:    dataplane.Health{{ProbeID: "p", BackendID: "b1"}: false},
			vips: []Vip{{fe.IP, 80, false}},
			dips: []Dip{{"Tcp", 80, fe.IP, 80, ip("198.18.1.4"), false}},
		},
		{
			name: "all down with AllProbedUp: frontend up, backends still down; All is Tcp and Udp; port 0 is the frontend's",
			cfg:  dataplane.Config{Rules: []dataplane.Rule{rule(dataplane.All, 53, 0, dataplane.AllProbedUp, b1)}},
			h:    dataplane.Health{{ProbeID: "p", BackendID: "b1"}: false},
			vips: []Vip{{fe.IP, 53, true}},
			dips: []Dip{{"Tcp", 53, fe.IP, 53, ip("198.18.1.4"), false}, {"Udp", 53, fe.IP, 53, ip("198.18.1.4"), false}},
		},
		{
			name: "one frontend port, two rules: up if either is; NAT rules are up; sorted",
			cfg: dataplane.Config{
				Rules: []dataplane.Rule{rule(dataplane.UDP, 53, 53, dataplane.AllProbedDown, b1),
					rule(dataplane.TCP, 53, 53, dataplane.AllProbedDown, b2)},
				NATRules: []dataplane.NATRule{{ID: "n", Frontend: fe2, Protocol: dataplane.TCP, FrontendPort: 50000, BackendPort: 22, Backend: b1}},
			},
			h:    dataplane.Health{{ProbeID: "p", BackendID: "b1"}: false},
			vips: []Vip{{fe2.IP, 50000, true}, {fe.IP, 53, true}},
			dips: []Dip{{"Tcp", 53, fe.IP, 53, ip("198.18.1.5"), true}, {"Udp", 53, fe.IP, 53, ip("198.18.1.4"), false}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vips, dips := Availability(tt.cfg, tt.h)
			if !reflect.DeepEqual(vips, tt.vips) && (len(vips) != 0 || len(tt.vips) != 0) {
				t.Errorf("vips = %+v\nwant   %+v", vips, tt.vips)
			}
			if !reflect.DeepEqual(dips, tt.dips) {
				t.Errorf("dips = %+v\nwant   %+v", dips, tt.dips)
			}
		})
	}
}

func TestSnatAllocated(t *testing.T) {
	fe := dataplane.Frontend{IP: netip.MustParseAddr("198.18.0.10")}
	b := dataplane.Backend{IP: netip.MustParseAddr("198.18.1.4")}
	got := SnatAllocated([]dataplane.SNATAllocation{
		{Frontend: fe, Backend: b, Protocol: dataplane.All, PortStart: 1024, PortEnd: 2047},
		{Frontend: fe, Backend: b, Protocol: dataplane.UDP, PortStart: 2048, PortEnd: 2055},
	})
	want := []SnatPorts{{FrontendIP: fe.IP, BackendIP: b.IP, Protocol: "Tcp", Allocated: 1024},
		{FrontendIP: fe.IP, BackendIP: b.IP, Protocol: "Udp", Allocated: 1024},
		{FrontendIP: fe.IP, BackendIP: b.IP, Protocol: "Udp", Allocated: 8}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SnatAllocated = %+v, want %+v", got, want)
	}
}
