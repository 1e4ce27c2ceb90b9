package resource

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// childCases has, per collection, a minimal child body, the defaults
// normalization must add (JSON fragments of the normalized child), and a
// change of client-settable content.
var childCases = []struct {
	coll     LBChildCollection
	body     string
	defaults []string
	changed  string
}{
	{LBFrontendIPConfigurations, `{"properties":{"subnet":{"id":"` + tSubnet + `"}}}`,
		[]string{`"privateIPAllocationMethod":"Dynamic"`, `"privateIPAddressVersion":"IPv4"`},
		`{"properties":{"subnet":{"id":"` + tSubnet + `"},"privateIPAddress":"198.18.0.9"}}`},
	{LBBackendAddressPools, `{"properties":{"syncMode":"manual"}}`,
		[]string{`"syncMode":"Manual"`},
		`{"properties":{"syncMode":"Automatic"}}`},
	{LBLoadBalancingRules, `{"properties":{"protocol":"tcp","frontendPort":80}}`,
		[]string{`"protocol":"Tcp"`, `"loadDistribution":"Default"`, `"backendPort":80`, `"idleTimeoutInMinutes":4`,
			`"enableFloatingIP":false`, `"enableTcpReset":false`, `"disableOutboundSnat":false`, `"enableConnectionTracking":false`},
		`{"properties":{"protocol":"Tcp","frontendPort":81}}`},
	{LBProbes, `{"properties":{"protocol":"http","port":80,"requestPath":"/"}}`,
		[]string{`"protocol":"Http"`, `"intervalInSeconds":15`, `"numberOfProbes":2`, `"probeThreshold":1`},
		`{"properties":{"protocol":"Http","port":81,"requestPath":"/"}}`},
	{LBInboundNatRules, `{"properties":{"protocol":"udp","frontendPort":40000,"backendPort":22}}`,
		[]string{`"protocol":"Udp"`, `"idleTimeoutInMinutes":4`, `"enableFloatingIP":false`, `"enableTcpReset":false`},
		`{"properties":{"protocol":"Udp","frontendPort":40001,"backendPort":22}}`},
	{LBInboundNatPools, `{"properties":{"protocol":"all","frontendPortRangeStart":50000,"frontendPortRangeEnd":50099,"backendPort":22}}`,
		[]string{`"protocol":"All"`, `"idleTimeoutInMinutes":4`, `"enableFloatingIP":false`, `"enableTcpReset":false`},
		`{"properties":{"protocol":"All","frontendPortRangeStart":50000,"frontendPortRangeEnd":50199,"backendPort":22}}`},
	{LBOutboundRules, `{"properties":{"protocol":"TCP"}}`,
		[]string{`"protocol":"Tcp"`, `"idleTimeoutInMinutes":4`, `"enableTcpReset":false`, `"allocatedOutboundPorts":0`},
		`{"properties":{"protocol":"Tcp","allocatedOutboundPorts":1024}}`},
}

// TestLBChildrenCoverProps: every collection of LoadBalancerProps has one
// entry in LBChildren (and the table tests cover each), with the JSON name
// and element type of the struct field.
func TestLBChildrenCoverProps(t *testing.T) {
	tp := reflect.TypeOf(LoadBalancerProps{})
	var want []string
	for i := range tp.NumField() {
		f := tp.Field(i)
		if f.Type.Kind() != reflect.Slice {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		want = append(want, name)
		c, err := LBChild(name)
		if err != nil {
			t.Errorf("collection %s has no LBChildren entry: %v", name, err)
			continue
		}
		if got := reflect.TypeOf(c.New()).Elem(); got != f.Type.Elem() {
			t.Errorf("%s: New() makes %v, the field holds %v", name, got, f.Type.Elem())
		}
		if c.Path() != "properties."+name || !strings.HasSuffix(c.Type(), "/"+name) || c.Display() == "" {
			t.Errorf("%s: path %q type %q display %q", name, c.Path(), c.Type(), c.Display())
		}
	}
	var got, cases []string
	for _, c := range LBChildren {
		got = append(got, c.Name())
	}
	for _, tc := range childCases {
		cases = append(cases, tc.coll.Name())
	}
	if !reflect.DeepEqual(got, want) || !reflect.DeepEqual(cases, want) {
		t.Errorf("LBChildren %v, table cases %v, LoadBalancerProps %v", got, cases, want)
	}
}

func TestLBChildUnknown(t *testing.T) {
	for _, name := range []string{"widgets", "", "networkInterfaces", "probe"} {
		if c, err := LBChild(name); !errors.Is(err, ErrUnknownChildCollection) || c != nil {
			t.Errorf("LBChild(%q) = %v, %v; want ErrUnknownChildCollection", name, c, err)
		}
	}
	if c, err := LBChild("PROBES"); err != nil || c != LBProbes {
		t.Errorf("LBChild(PROBES) = %v, %v", c, err)
	}
}

// TestLBChildRoundTrip sets, gets, replaces and deletes one child of each
// collection through the table's accessors.
func TestLBChildRoundTrip(t *testing.T) {
	for _, tc := range childCases {
		c := tc.coll
		t.Run(c.Name(), func(t *testing.T) {
			lb := &LoadBalancer{}
			if c.Len(lb) != 0 || c.Index(lb, "a") != -1 || c.Get(lb, "a") != nil || c.List(lb) != nil {
				t.Fatal("empty LB has children")
			}
			created, err := c.SetRaw(lb, "a", []byte(tc.body))
			if err != nil || !created {
				t.Fatalf("SetRaw a: created %v, %v", created, err)
			}
			if created, err = c.SetRaw(lb, "b", []byte(tc.body)); err != nil || !created {
				t.Fatalf("SetRaw b: created %v, %v", created, err)
			}
			if c.Len(lb) != 2 || c.Index(lb, "B") != 1 || c.NameAt(lb, 1) != "b" {
				t.Fatalf("len %d, index(B) %d", c.Len(lb), c.Index(lb, "B"))
			}
			got := c.Get(lb, "A")
			if reflect.TypeOf(got) != reflect.TypeOf(c.New()) || got != c.At(lb, 0) || c.List(lb)[0] != got {
				t.Fatalf("Get(A) = %T %p, At(0) = %p", got, got, c.At(lb, 0))
			}
			raw, err := c.RawAt(lb, 0)
			if err != nil || !strings.Contains(string(raw), `"name":"a"`) {
				t.Fatalf("RawAt: %s, %v", raw, err)
			}

			// Replace "a" by name in another case, from a typed value.
			v := c.New()
			if err := json.Unmarshal([]byte(tc.changed), v); err != nil {
				t.Fatal(err)
			}
			if created, err = c.Set(lb, "A", v); err != nil || created {
				t.Fatalf("Set A: created %v, %v", created, err)
			}
			if c.Len(lb) != 2 || c.NameAt(lb, 0) != "A" {
				t.Fatalf("after replace: len %d, name %q", c.Len(lb), c.NameAt(lb, 0))
			}
			if c.At(lb, 0) == v {
				t.Error("Set stored the caller's pointer, not a copy")
			}
			if _, err := c.Set(lb, "x", "not a child"); err == nil {
				t.Error("Set of a string succeeded")
			}
			if _, err := c.SetRaw(lb, "x", []byte(`{"properties":`)); err == nil {
				t.Error("SetRaw of bad JSON succeeded")
			}

			if !c.Delete(lb, "a") || c.Delete(lb, "a") {
				t.Error("Delete a: want true then false")
			}
			if c.Len(lb) != 1 || c.NameAt(lb, 0) != "b" || c.Get(lb, "a") != nil {
				t.Fatalf("after delete: len %d", c.Len(lb))
			}

			// The id the LB pipeline gives a child is ChildID, which
			// ParseLBChildID reads back.
			if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
				t.Fatal(err)
			}
			id := c.IDAt(lb, 0)
			if id != c.ChildID(tLB, "b") {
				t.Errorf("id %q, want %q", id, c.ChildID(tLB, "b"))
			}
			if l, coll, name, ok := ParseLBChildID(id); !ok || coll != c.Name() || name != "b" || l != tLB {
				t.Errorf("ParseLBChildID(%q) = %q %q %q %v", id, l, coll, name, ok)
			}
		})
	}
}

// TestLBChildDefaults normalizes a minimal child of each collection, in an
// LB and alone (a child PUT body), and checks the defaults and the fields
// the table sets.
func TestLBChildDefaults(t *testing.T) {
	for _, tc := range childCases {
		c := tc.coll
		t.Run(c.Name(), func(t *testing.T) {
			lb := &LoadBalancer{}
			if _, err := c.SetRaw(lb, "a", []byte(`{"etag":"x","properties":{"provisioningState":"Failed"}}`)); err != nil {
				t.Fatal(err)
			}
			if _, err := c.SetRaw(lb, "b", []byte(tc.body)); err != nil {
				t.Fatal(err)
			}
			if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
				t.Fatal(err)
			}
			alone := c.New()
			if err := json.Unmarshal([]byte(tc.body), alone); err != nil {
				t.Fatal(err)
			}
			if err := c.Normalize(tLB, "", alone); err != nil {
				t.Fatal(err)
			}
			aloneRaw, _ := json.Marshal(alone)
			for i := range c.Len(lb) {
				raw, err := c.RawAt(lb, i)
				if err != nil {
					t.Fatal(err)
				}
				s := string(raw)
				if !strings.Contains(s, `"type":"`+c.Type()+`"`) || strings.Contains(s, "provisioningState") {
					t.Errorf("child %d: type or provisioningState wrong: %s", i, s)
				}
				if i == 1 {
					for _, d := range tc.defaults {
						if !strings.Contains(s, d) {
							t.Errorf("normalized child lacks %s: %s", d, s)
						}
						if !strings.Contains(string(aloneRaw), d) {
							t.Errorf("normalized child body lacks %s: %s", d, aloneRaw)
						}
					}
				}
			}
			if err := c.Normalize(tLB, "", "not a child"); err == nil {
				t.Error("Normalize of a string succeeded")
			}
		})
	}
}

// TestLBChildEnumError: an unknown enum value names the child's field, in
// an LB and in a child body.
func TestLBChildEnumError(t *testing.T) {
	for _, tc := range childCases {
		c := tc.coll
		if c == LBFrontendIPConfigurations || c == LBBackendAddressPools {
			continue // no protocol
		}
		t.Run(c.Name(), func(t *testing.T) {
			lb := &LoadBalancer{}
			if _, err := c.SetRaw(lb, "a", []byte(`{"properties":{"protocol":"sctp"}}`)); err != nil {
				t.Fatal(err)
			}
			err := NormalizeLoadBalancer(lb, tLB, "lb1")
			if want := "properties." + c.Name() + "[0].properties.protocol"; codeOf(err) != CodeInvalidParameter || !strings.Contains(err.Error(), want) {
				t.Errorf("LB: %v, want %s", err, want)
			}
			body := c.New()
			if err := json.Unmarshal([]byte(`{"properties":{"protocol":"sctp"}}`), body); err != nil {
				t.Fatal(err)
			}
			err = c.Normalize(tLB, "", body)
			if codeOf(err) != CodeInvalidParameter || !strings.Contains(err.Error(), "property properties.protocol ") {
				t.Errorf("child body: %v", err)
			}
		})
	}
}

// TestLBChildEtags: AssignEtags keeps a child's etag exactly when its
// content is unchanged, in every collection.
func TestLBChildEtags(t *testing.T) {
	for _, tc := range childCases {
		c := tc.coll
		t.Run(c.Name(), func(t *testing.T) {
			mk := func(second string) *LoadBalancer {
				lb := &LoadBalancer{}
				for _, x := range []struct{ name, body string }{{"same", tc.body}, {"edited", second}} {
					if _, err := c.SetRaw(lb, x.name, []byte(x.body)); err != nil {
						t.Fatal(err)
					}
				}
				if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
					t.Fatal(err)
				}
				return lb
			}
			old := mk(tc.body)
			AssignEtags(old, nil, NewEtag)
			nw := mk(tc.changed)
			AssignEtags(nw, old, NewEtag)
			if c.EtagAt(nw, 0) == "" || c.EtagAt(nw, 0) != c.EtagAt(old, 0) {
				t.Errorf("unchanged child: etag %q, was %q", c.EtagAt(nw, 0), c.EtagAt(old, 0))
			}
			if c.EtagAt(nw, 1) == "" || c.EtagAt(nw, 1) == c.EtagAt(old, 1) {
				t.Errorf("changed child kept etag %q", c.EtagAt(nw, 1))
			}
			if raw, _ := c.RawAt(nw, 1); !strings.Contains(string(raw), `"provisioningState":"Succeeded"`) {
				t.Errorf("no provisioningState: %s", raw)
			}
		})
	}
}
