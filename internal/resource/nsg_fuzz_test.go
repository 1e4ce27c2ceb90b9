package resource

import (
	"strings"
	"testing"
)

// FuzzSecurityRule normalizes a group with one rule built from fuzzed port
// and address fields. Invariants: an error is an *Error with a 400 and one
// of Azure's codes; a rule that passes parses back (every port range
// ordered and in 0–65535 unless "*", every address a tag or a valid
// prefix) and normalizes again to the same result.
func FuzzSecurityRule(f *testing.F) {
	f.Add("*", "80", "*", "198.18.0.0/24", "", "")
	f.Add("1000-2000", "", "Internet", "VirtualNetwork", "80,443", "198.18.0.1,198.19.0.0/16")
	f.Add("x", "65536", "any", "10.0.0.0/33", "*", "VirtualNetwork")
	codes := map[string]bool{"InvalidParameter": true, "SecurityRuleInvalidPortRange": true, "SecurityRuleInvalidAddressPrefix": true,
		"SecurityRuleParameterContainsUnsupportedValue": true, "InvalidResourceName": true}
	f.Fuzz(func(t *testing.T, sport, dport, src, dst, dports, dsts string) {
		prio := int32(100)
		p := SecurityRuleProps{Protocol: "Tcp", Access: "Allow", Direction: "Inbound", Priority: &prio,
			SourcePortRange: sport, DestinationPortRange: dport, SourceAddressPrefix: src, DestinationAddressPrefix: dst}
		if dports != "" {
			p.DestinationPortRanges = strings.Split(dports, ",")
		}
		if dsts != "" {
			p.DestinationAddressPrefixes = strings.Split(dsts, ",")
		}
		g := &NetworkSecurityGroup{Envelope: Envelope{ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/g"},
			Properties: NSGProperties{SecurityRules: []SecurityRule{{Name: "r", Properties: p}}}}
		err := NormalizeNSG(g)
		if err != nil {
			e, ok := err.(*Error)
			if !ok || e.Status != 400 || !codes[e.Code] {
				t.Fatalf("error %#v is not a 400 with one of Azure's codes", err)
			}
			return
		}
		r := &g.Properties.SecurityRules[0].Properties
		for _, rs := range [][]PortRange{r.SourcePorts(), r.DestinationPorts()} {
			for _, pr := range rs {
				if pr.First > pr.Last {
					t.Fatalf("port range %v reversed", pr)
				}
			}
		}
		for _, as := range [][]AddressMatch{r.SourceAddresses(), r.DestinationAddresses()} {
			if len(as) == 0 {
				t.Fatal("an accepted rule matches no address field")
			}
			for _, a := range as {
				if a.Tag == "" && !a.Prefix.IsValid() {
					t.Fatalf("address %+v neither tag nor prefix", a)
				}
			}
		}
		again := *g
		if err := NormalizeNSG(&again); err != nil {
			t.Fatalf("a normalized group does not normalize again: %v", err)
		}
	})
}
