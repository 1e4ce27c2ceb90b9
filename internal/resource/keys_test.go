package resource

import (
	"strings"
	"testing"
)

func TestParseKey(t *testing.T) {
	lb := NewID("S", "Rg", LoadBalancerType, "LB1")
	for _, tc := range []struct {
		name, key, want string
		ok              bool
	}{
		{"load balancer round trip", Key(lb), strings.ToLower(lb.String()), true},
		{"child id keys its top", Key(lb.Child("probes", "p")), strings.ToLower(lb.String()), true},
		{"group", Key(GroupID("s", "rg")), "/subscriptions/s/resourcegroups/rg", true},
		{"subscription", Key(SubscriptionID("s")), "/subscriptions/s", true},
		{"instance record", InstanceKey(lb.String(), "0"), "", false},
		{"reference index", RefKey(lb.String(), lb.String()), "", false},
		{"ipam", IPAMPrefix + "/public/198.18.0.1", "", false},
		{"prefix glued to a name", ResourcePrefix + "x/subscriptions/s", "", false},
		{"not an id", ResourcePrefix + "/tenants/t", "", false},
		{"empty", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, ok := ParseKey(tc.key)
			if ok != tc.ok {
				t.Fatalf("ParseKey(%q) ok = %v, want %v", tc.key, ok, tc.ok)
			}
			if ok && !strings.EqualFold(id.String(), tc.want) {
				t.Errorf("ParseKey(%q) = %s, want %s", tc.key, id, tc.want)
			}
			if ok && Key(id) != tc.key {
				t.Errorf("Key(ParseKey(%q)) = %q", tc.key, Key(id))
			}
		})
	}
}
