package arm_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

// TestResourceGroupNamesAndLocations: hostile resource group names and an
// unknown location are Azure's 400s, never a 500.
func TestResourceGroupNamesAndLocations(t *testing.T) {
	n := armtest.Start(t)
	base := "/subscriptions/" + n.Sub + "/resourcegroups/"
	const q = "?api-version=2021-04-01"
	for what, name := range map[string]string{"nul": "rg\x00", "space": "my rg", "emoji": "rg🔥", "rtl": "rg\u202e",
		"100,000 chars": strings.Repeat("g", 100_000), "91 chars": strings.Repeat("g", 91), "trailing dot": "rg."} {
		t.Run(what, func(t *testing.T) {
			st, _, b := n.Do(http.MethodPut, base+url.PathEscape(name)+q, map[string]any{"location": "eastus"})
			if st != http.StatusBadRequest || armtest.ErrCode(b) != "InvalidResourceGroup" {
				t.Fatalf("PUT: %d %.300s", st, b)
			}
		})
	}
	st, _, b := n.Do(http.MethodPut, base+"rg"+q, map[string]any{"location": "moon-north"})
	if st != http.StatusBadRequest || armtest.ErrCode(b) != "LocationNotAvailableForResourceGroup" {
		t.Fatalf("PUT in moon-north: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodPut, base+"rg"+q, map[string]any{"location": "East US"}); st != http.StatusCreated {
		t.Fatalf("PUT in 'East US': %d %s", st, b)
	}
}
