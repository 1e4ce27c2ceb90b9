package dataplane

import (
	"net/netip"
	"slices"
	"testing"

	"nimbus/internal/maglev"
)

func TestEligible(t *testing.T) {
	bs := []Backend{{ID: "a"}, {ID: "b", AdminState: AdminUp}, {ID: "c", AdminState: AdminDown}, {ID: "d", AdminState: "None"}}
	down := func(ids ...string) Health {
		h := Health{}
		for _, id := range ids {
			h[HealthKey{ProbeID: "p", BackendID: id}] = false
		}
		return h
	}
	for _, tc := range []struct {
		name     string
		probe    string
		behavior NoHealthyBehavior
		h        Health
		want     []string
		fallback bool
	}{
		{"no probe: all but admin down", "", "", down("a", "b", "d"), []string{"a", "b", "d"}, false},
		{"missing keys count as up", "p", "", Health{}, []string{"a", "b", "d"}, false},
		{"probe down excluded, admin up kept", "p", "", down("a", "b"), []string{"b", "d"}, false},
		{"all down with AllProbedDown", "p", AllProbedDown, down("a", "d"), nil, false},
		{"all down with AllProbedUp", "p", AllProbedUp, down("a", "d"), []string{"a", "d"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Rule{ProbeID: tc.probe, NoHealthyBackends: tc.behavior, Backends: bs}
			if tc.name == "all down with AllProbedDown" || tc.name == "all down with AllProbedUp" {
				r.Backends = []Backend{bs[0], bs[2], bs[3]}
			}
			got, fb := Eligible(r, tc.h)
			if ids := BackendIDs(got); !slices.Equal(ids, tc.want) && !(len(ids) == 0 && len(tc.want) == 0) {
				t.Errorf("eligible = %v, want %v", ids, tc.want)
			}
			if fb != tc.fallback {
				t.Errorf("fallback = %v, want %v", fb, tc.fallback)
			}
		})
	}
}

func TestFlowHash(t *testing.T) {
	c1 := netip.MustParseAddrPort("198.18.0.1:40000")
	c1b := netip.MustParseAddrPort("198.18.0.1:40001")
	fe := netip.MustParseAddrPort("198.18.1.1:80")
	for _, tc := range []struct {
		d        Distribution
		samePort bool // different source ports hash the same
		sameProt bool // TCP and UDP hash the same
	}{
		{Default, false, false},
		{"", false, false},
		{SourceIP, true, true},
		{SourceIPProtocol, true, false},
	} {
		t.Run(string(tc.d), func(t *testing.T) {
			if got := FlowHash(tc.d, TCP, c1, fe) == FlowHash(tc.d, TCP, c1b, fe); got != tc.samePort {
				t.Errorf("ports ignored = %v, want %v", got, tc.samePort)
			}
			if got := FlowHash(tc.d, TCP, c1, fe) == FlowHash(tc.d, UDP, c1, fe); got != tc.sameProt {
				t.Errorf("protocol ignored = %v, want %v", got, tc.sameProt)
			}
		})
	}
	if maglev.Hash64([]byte("x")) != hash64([]byte("x")) {
		t.Error("hash64 differs from maglev.Hash64")
	}
	// v4-mapped v6 hashes like plain v4.
	m := netip.AddrPortFrom(netip.MustParseAddr("::ffff:198.18.0.1"), 40000)
	if FlowHash(Default, TCP, m, fe) != FlowHash(Default, TCP, c1, fe) {
		t.Error("v4-mapped address hashes differently")
	}
}
