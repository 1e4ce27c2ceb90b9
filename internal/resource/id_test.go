package resource

import (
	"strings"
	"testing"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in, want, typ, name string
		ok                  bool
	}{
		{"/subscriptions/s", "/subscriptions/s", "Microsoft.Resources/subscriptions", "s", true},
		{"/SUBSCRIPTIONS/s/RESOURCEGROUPS/Rg", "/subscriptions/s/resourceGroups/Rg", "Microsoft.Resources/resourceGroups", "Rg", true},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1", "Microsoft.Network/loadBalancers", "lb1", true},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network//loadBalancers/lb1/probes/p",
			"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/probes/p", "Microsoft.Network/loadBalancers/probes", "p", true},
		{"/subscriptions/s/providers/Microsoft.Network/locations/eastus", "/subscriptions/s/providers/Microsoft.Network/locations/eastus", "Microsoft.Network/locations", "eastus", true},
		{"", "", "", "", false},
		{"subscriptions/s", "", "", "", false},
		{"/subscriptions", "", "", "", false},
		{"/subscriptions/s/resourceGroups", "", "", "", false},
		{"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers", "", "", "", false},
		{"/subscriptions/s/resourceGroups/rg/things/x", "", "", "", false},
		{"/tenants/t", "", "", "", false},
	} {
		t.Run(tc.in, func(t *testing.T) {
			id, err := ParseID(tc.in)
			if (err == nil) != tc.ok {
				t.Fatalf("ParseID(%q) err = %v, want ok %v", tc.in, err, tc.ok)
			}
			if !tc.ok {
				if e, isErr := err.(*Error); !isErr || e.Code != "LinkedInvalidPropertyId" {
					t.Fatalf("error %v is not LinkedInvalidPropertyId", err)
				}
				return
			}
			if id.String() != tc.want || id.Type() != tc.typ || id.Name() != tc.name {
				t.Fatalf("got %q %q %q", id.String(), id.Type(), id.Name())
			}
		})
	}
}

func TestIDRelations(t *testing.T) {
	lb, err := ParseID("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1")
	if err != nil {
		t.Fatal(err)
	}
	probe := lb.Child("probes", "p1")
	if probe.Top().String() != lb.String() || probe.Parent().String() != lb.String() {
		t.Fatalf("top/parent of %s", probe)
	}
	if !probe.Within(lb) || !probe.Within(GroupID("S", "RG")) || lb.Within(probe) {
		t.Fatal("Within")
	}
	lb10 := NewID("s", "rg", "Microsoft.Network/loadBalancers", "lb10")
	if lb10.Within(lb) {
		t.Fatal("lb10 within lb1")
	}
	if Key(probe) != "/arm/subscriptions/s/resourcegroups/rg/providers/microsoft.network/loadbalancers/lb1" {
		t.Fatalf("key %s", Key(probe))
	}
	if RefKey(strings.ToUpper(lb.String()), probe.String()) != RefKey(lb.String(), probe.String()) {
		t.Fatal("ref keys are not case-insensitive")
	}
}

// FuzzParseID checks that ParseID returns an error xor an ID whose
// canonical form parses back to itself, and never panics.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{
		"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/probes/p",
		"/subscriptions/00000000-0000-0000-0000-000000000001/resourcegroups/rg",
		"//subscriptions//s/resourceGroups/rg/providers/Microsoft.Network//loadBalancers/lb1",
		"/subscriptions/s/providers/Microsoft.Compute/locations/eastus/operations/x",
		"/subscriptions/", "/", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !id.IsZero() {
				t.Fatalf("error %v with non-zero ID %+v", err, id)
			}
			if _, ok := err.(*Error); !ok {
				t.Fatalf("error %T is not *Error", err)
			}
			return
		}
		if id.IsZero() || len(id.Types) != len(id.Names) {
			t.Fatalf("bad ID %+v from %q", id, s)
		}
		back, err := ParseID(id.String())
		if err != nil || back.String() != id.String() {
			t.Fatalf("round trip %q -> %q -> %v %q", s, id.String(), err, back.String())
		}
		if id.Type() == "" || id.Name() == "" {
			t.Fatalf("empty type or name for %q", s)
		}
	})
}
