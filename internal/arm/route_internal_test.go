package arm

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
)

func TestRouteMatching(t *testing.T) {
	s := &Server{}
	h := func(name string) HandlerFunc {
		return func(context.Context, *Request) (*Response, error) { return JSON(200, name), nil }
	}
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/{ns}", ResourcesVersions, h("provider"))
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/Microsoft.Network/loadBalancers", testVersions, h("lb-list"))
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{op}", testVersions, h("op"))
	s.Handle(http.MethodPut, "/subscriptions/{sub}/resourceGroups/{rg}", ResourcesVersions, h("group-put"))
	for _, tc := range []struct {
		method, path, want string
		params             map[string]string
		pathMatched        bool
	}{
		{"GET", "/SUBSCRIPTIONS/s1/Providers/Microsoft.Network", "provider", map[string]string{"sub": "s1", "ns": "Microsoft.Network"}, false},
		{"GET", "/subscriptions/s1/providers/microsoft.network/LOADBALANCERS", "lb-list", map[string]string{"sub": "s1"}, false},
		{"GET", "//subscriptions//s1/providers/Microsoft.Compute/locations/eastus/operations/Op1/", "op", map[string]string{"op": "Op1", "loc": "eastus"}, false},
		{"GET", "/subscriptions/s1/resourcegroups/RG", "", nil, true},
		{"GET", "/subscriptions/s1/things", "", nil, false},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			rt, params, pm := s.match(tc.method, splitSegments(tc.path))
			if tc.want == "" {
				if rt != nil || pm != tc.pathMatched {
					t.Fatalf("matched %v, pathMatched %v", rt, pm)
				}
				return
			}
			if rt == nil {
				t.Fatal("no match")
			}
			resp, _ := rt.handler(context.Background(), nil)
			if resp.Body != tc.want {
				t.Fatalf("matched %v, want %s", resp.Body, tc.want)
			}
			for k, v := range tc.params {
				if params[k] != v {
					t.Fatalf("param %s = %q, want %q", k, params[k], v)
				}
			}
		})
	}
}

func TestFillEmpty(t *testing.T) {
	type inner struct {
		List []string `json:"list"`
		Opt  []string `json:"opt,omitempty"`
	}
	type outer struct {
		Items []inner           `json:"items"`
		Ptr   *inner            `json:"ptr"`
		Raw   json.RawMessage   `json:"raw,omitempty"`
		Map   map[string]*inner `json:"map"`
		Any   any               `json:"any"`
	}
	v := outer{Items: []inner{{}}, Ptr: &inner{}, Map: map[string]*inner{"k": {}}, Any: &inner{}}
	b, err := json.Marshal(FillEmpty(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"list":[]}],"ptr":{"list":[]},"map":{"k":{"list":[]}},"any":{"list":[]}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(FillEmpty(&outer{}))
	if string(b) != `{"items":[],"ptr":null,"map":null,"any":null}` {
		t.Fatalf("zero value: %s", b)
	}
}

// testVersions are the api-versions of the routes these tests register.
var testVersions = NewVersions("2024-05-01")
