package network_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

// TestNamesAndLocations sends the hardening review's hostile names and an
// unknown location through the real HTTPS API: each is Azure's 400 with
// the code naming the problem, never a 500, and nothing is stored.
func TestNamesAndLocations(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	const q = "?api-version=2024-05-01"
	body := map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"}}
	for _, typ := range []string{"loadBalancers", "publicIPAddresses", "networkSecurityGroups", "virtualNetworks"} {
		for what, name := range map[string]string{
			"nul": "lb\x00x", "space": "my lb", "emoji": "lb🔥", "rtl override": "lb\u202egnp.exe",
			"10,000 chars": strings.Repeat("a", 10_000), "100,000 chars": strings.Repeat("a", 100_000),
			"trailing dot": "lb.", "leading dash": "-lb",
		} {
			t.Run(typ+"/"+what, func(t *testing.T) {
				path := n.RGPath("rg", "Microsoft.Network/"+typ+"/"+url.PathEscape(name))
				st, _, b := n.Do(http.MethodPut, path+q, vnetOr(typ, body))
				if st != http.StatusBadRequest || armtest.ErrCode(b) != "InvalidResourceName" {
					t.Fatalf("PUT: %d %.300s, want 400 InvalidResourceName", st, b)
				}
				if st, _, b := n.Do(http.MethodGet, path+q, nil); st != http.StatusNotFound {
					t.Fatalf("GET after a refused PUT: %d %.300s", st, b)
				}
			})
		}
	}
	t.Run("valid names still work", func(t *testing.T) {
		for _, name := range []string{"lb-1.front_end", "ロードバランサー", strings.Repeat("a", 80)} {
			if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Network/loadBalancers/"+url.PathEscape(name))+q, body); st != http.StatusCreated {
				t.Fatalf("PUT %q: %d %s", name, st, b)
			}
		}
	})
	t.Run("unknown location", func(t *testing.T) {
		st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Network/loadBalancers/moon")+q,
			map[string]any{"location": "moon-north", "sku": map[string]any{"name": "Standard"}})
		if st != http.StatusBadRequest || armtest.ErrCode(b) != "LocationNotAvailableForResourceType" || !strings.Contains(string(b), "eastus") {
			t.Fatalf("PUT in moon-north: %d %s", st, b)
		}
	})
	t.Run("child names", func(t *testing.T) {
		path := n.RGPath("rg", "Microsoft.Network/loadBalancers/lb-1.front_end/backendAddressPools/"+url.PathEscape("pool 1"))
		if st, _, b := n.Do(http.MethodPut, path+q, map[string]any{}); st != http.StatusBadRequest || armtest.ErrCode(b) != "InvalidResourceName" {
			t.Fatalf("PUT pool with a space: %d %s", st, b)
		}
		lb := map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"}, "properties": map[string]any{
			"backendAddressPools": []any{map[string]any{"name": "be\u202e"}}}}
		if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Network/loadBalancers/lb2")+q, lb); st != http.StatusBadRequest ||
			armtest.ErrCode(b) != "InvalidResourceName" || !strings.Contains(string(b), "properties.backendAddressPools[0].name") {
			t.Fatalf("PUT with an RTL override in a pool name: %d %s", st, b)
		}
	})
}

// vnetOr returns a body fit for typ: virtual networks need an address space.
func vnetOr(typ string, body map[string]any) map[string]any {
	if typ != "virtualNetworks" {
		return body
	}
	return map[string]any{"location": "eastus", "properties": map[string]any{
		"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}}}}
}
