package network_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

func TestNetworkSecurityGroup(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	q := "?api-version=2022-07-01"
	nsg := n.RGPath("rg", "Microsoft.Network/networkSecurityGroups/web-nsg")
	rule := func(name string, prio int, access string) map[string]any {
		return map[string]any{"name": name, "properties": map[string]any{"protocol": "tcp", "sourcePortRange": "*",
			"destinationPortRange": "80", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
			"access": access, "priority": prio, "direction": "inbound"}}
	}
	body := func(rules ...any) map[string]any {
		return map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": rules}}
	}
	for _, tc := range []struct {
		name string
		body map[string]any
		code string
	}{
		{"priority out of range", body(rule("a", 99, "Allow")), "SecurityRuleInvalidPriority"},
		{"same priority and direction", body(rule("a", 200, "Allow"), rule("b", 200, "Deny")), "SecurityRuleConflict"},
		{"bad access", body(rule("a", 200, "Maybe")), "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, b := n.Do(http.MethodPut, nsg+q, tc.body)
			if st != http.StatusBadRequest || armtest.ErrCode(b) != tc.code {
				t.Fatalf("PUT: %d %s, want 400 %s", st, b, tc.code)
			}
		})
	}
	st, _, b := n.Do(http.MethodPut, nsg+q, body(rule("http", 100, "allow")))
	if st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	// A subnet uses it; the group shows the back-reference and Azure's
	// default rules, and cannot be deleted while used.
	vnet := n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn")
	st, _, b = n.Do(http.MethodPut, vnet+q, map[string]any{"location": "eastus", "properties": map[string]any{
		"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
		"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{
			"addressPrefix": "198.18.1.0/24", "networkSecurityGroup": map[string]any{"id": nsg}}}}}})
	if st != http.StatusCreated {
		t.Fatalf("vnet with the group on its subnet: %d %s", st, b)
	}
	st, _, b = n.Do(http.MethodGet, nsg+q, nil)
	var got struct {
		Properties struct {
			SecurityRules []struct {
				Properties struct{ Access, Direction, Protocol string }
			} `json:"securityRules"`
			DefaultSecurityRules []json.RawMessage `json:"defaultSecurityRules"`
			Subnets              []struct{ ID string }
		}
	}
	if st != http.StatusOK || json.Unmarshal(b, &got) != nil {
		t.Fatalf("get: %d %s", st, b)
	}
	r := got.Properties.SecurityRules[0].Properties
	if r.Access != "Allow" || r.Direction != "Inbound" || r.Protocol != "Tcp" || len(got.Properties.DefaultSecurityRules) != 6 ||
		len(got.Properties.Subnets) != 1 || !strings.HasSuffix(got.Properties.Subnets[0].ID, "/subnets/default") {
		t.Fatalf("group as read: %s", b)
	}
	if st, _, b := n.Do(http.MethodDelete, nsg+q, nil); st != http.StatusBadRequest || armtest.ErrCode(b) != "InUseNetworkSecurityGroupCannotBeDeleted" {
		t.Fatalf("delete of a used group: %d %s", st, b)
	}
}
