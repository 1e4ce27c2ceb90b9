package network_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"testing"

	"nimbus/internal/arm/armtest"
)

// leafPaths returns the dotted paths of every leaf of a decoded JSON value
// (array elements share their array's path).
func leafPaths(prefix string, v any, out map[string]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leafPaths(p, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix] = x
		}
		for _, e := range x {
			leafPaths(prefix, e, out)
		}
	default:
		out[prefix] = v
	}
}

// TestPublicIPSpecExamples PUTs the bodies of the public IP examples of the
// Azure REST API spec and checks the answer has every field of the
// example's answer, with the same value where the value does not depend on
// the environment (names, addresses, GUIDs, etags, the NIC the example's
// address is attached to).
func TestPublicIPSpecExamples(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg1")
	files, err := filepath.Glob(filepath.Join("testdata", "arm-examples", "PublicIpAddress*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	environmental := map[string]bool{"id": true, "name": true, "etag": true, "properties.ipConfiguration.id": true,
		"properties.resourceGuid": true, "properties.ipAddress": true, "properties.dnsSettings.fqdn": true}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			raw, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var ex struct {
				Parameters struct {
					APIVersion string         `json:"api-version"`
					Name       string         `json:"publicIpAddressName"`
					Zones      []string       `json:"zones"`
					Body       map[string]any `json:"parameters"`
				} `json:"parameters"`
				Responses map[string]struct {
					Body map[string]any `json:"body"`
				} `json:"responses"`
			}
			if err := json.Unmarshal(raw, &ex); err != nil {
				t.Fatal(err)
			}
			body := ex.Parameters.Body
			if len(ex.Parameters.Zones) > 0 { // the example lists zones beside the body
				body["zones"] = ex.Parameters.Zones
			}
			path := n.RGPath("rg1", "Microsoft.Network/publicIPAddresses/"+ex.Parameters.Name) + "?api-version=" + ex.Parameters.APIVersion
			st, _, b := n.Do("PUT", path, body)
			if st != 201 {
				t.Fatalf("PUT: %d %s", st, b)
			}
			st, _, b = n.Do("GET", path, nil)
			var got map[string]any
			if err := json.Unmarshal(b, &got); st != 200 || err != nil {
				t.Fatalf("GET: %d %s", st, b)
			}
			want, have := map[string]any{}, map[string]any{}
			leafPaths("", ex.Responses["201"].Body, want)
			leafPaths("", got, have)
			var missing []string
			for p, v := range want {
				if p == "properties.ipConfiguration.id" {
					continue // needs a NIC; covered by TestReferencesAndGroupDelete
				}
				hv, ok := have[p]
				if !ok {
					missing = append(missing, p)
					continue
				}
				if !environmental[p] && !reflect.DeepEqual(hv, v) {
					t.Errorf("%s = %v, example has %v", p, hv, v)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("fields of the example's answer missing: %v\n%s", missing, b)
			}
			n.Do("DELETE", path, nil)
		})
	}
}
