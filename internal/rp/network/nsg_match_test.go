package network_test

import (
	"encoding/json"
	"net/http"
	"reflect"
	"sort"
	"testing"

	"nimbus/internal/arm/armtest"
)

// Address plan: rules name 198.18.0.0/15 prefixes and 2001:db8::/32.

// secRule is a valid inbound rule with one field overridden per case.
func secRule(name string, prio int, over map[string]any) map[string]any {
	p := map[string]any{"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": "80",
		"sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Allow", "priority": prio, "direction": "Inbound"}
	for k, v := range over {
		if v == nil {
			delete(p, k)
		} else {
			p[k] = v
		}
	}
	return map[string]any{"name": name, "properties": p}
}

// TestSecurityRuleValidation PUTs groups whose one rule breaks one of
// Azure's rules for ports, prefixes, service tags and application security
// groups, and checks Azure's code; then the valid forms.
func TestSecurityRuleValidation(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	q := "?api-version=2022-07-01"
	nsg := n.RGPath("rg", "Microsoft.Network/networkSecurityGroups/g")
	asg := n.RGPath("rg", "Microsoft.Network/applicationSecurityGroups/web")
	put := func(over map[string]any) (int, []byte) {
		st, _, b := n.Do(http.MethodPut, nsg+q, map[string]any{"location": "eastus",
			"properties": map[string]any{"securityRules": []any{secRule("r", 100, over)}}})
		return st, b
	}
	for _, tc := range []struct {
		name string
		over map[string]any
		code string
	}{
		{"port word", map[string]any{"destinationPortRange": "any"}, "SecurityRuleInvalidPortRange"},
		{"port too big", map[string]any{"destinationPortRange": "65536"}, "SecurityRuleInvalidPortRange"},
		{"port range reversed", map[string]any{"destinationPortRange": "90-80"}, "SecurityRuleInvalidPortRange"},
		{"port list in singular", map[string]any{"destinationPortRange": "80,81"}, "SecurityRuleInvalidPortRange"},
		{"bad port in plural", map[string]any{"destinationPortRange": nil, "destinationPortRanges": []string{"80", "x"}}, "SecurityRuleInvalidPortRange"},
		{"star in port plural", map[string]any{"destinationPortRange": nil, "destinationPortRanges": []string{"*"}}, "SecurityRuleParameterContainsUnsupportedValue"},
		{"both port fields", map[string]any{"destinationPortRanges": []string{"81"}}, "InvalidParameter"},
		{"no port field", map[string]any{"sourcePortRange": nil}, "InvalidParameter"},
		{"prefix word", map[string]any{"sourceAddressPrefix": "any"}, "SecurityRuleInvalidAddressPrefix"},
		{"prefix length", map[string]any{"sourceAddressPrefix": "198.18.0.0/33"}, "SecurityRuleInvalidAddressPrefix"},
		{"tag in plural", map[string]any{"sourceAddressPrefix": nil, "sourceAddressPrefixes": []string{"198.18.0.0/24", "VirtualNetwork"}}, "SecurityRuleParameterContainsUnsupportedValue"},
		{"star in plural", map[string]any{"destinationAddressPrefix": nil, "destinationAddressPrefixes": []string{"*"}}, "SecurityRuleParameterContainsUnsupportedValue"},
		{"both prefix fields", map[string]any{"sourceAddressPrefixes": []string{"198.18.0.0/24"}}, "InvalidParameter"},
		{"no address", map[string]any{"destinationAddressPrefix": nil}, "InvalidParameter"},
		{"prefix and asg", map[string]any{"sourceApplicationSecurityGroups": []any{map[string]any{"id": asg}}}, "InvalidParameter"},
		{"missing asg", map[string]any{"sourceAddressPrefix": nil, "sourceApplicationSecurityGroups": []any{map[string]any{"id": asg}}}, "InvalidResourceReference"},
		{"bad protocol", map[string]any{"protocol": "Sctp"}, "InvalidParameter"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if st, b := put(tc.over); st != http.StatusBadRequest || armtest.ErrCode(b) != tc.code {
				t.Fatalf("PUT: %d %s, want 400 %s", st, b, tc.code)
			}
		})
	}
	if st, _, b := n.Do(http.MethodPut, asg+q, map[string]any{"location": "eastus"}); st != http.StatusCreated {
		t.Fatalf("asg: %d %s", st, b)
	}
	for _, tc := range []struct {
		name string
		over map[string]any
	}{
		{"range and tags", map[string]any{"destinationPortRange": "8000-8080", "sourceAddressPrefix": "Internet", "destinationAddressPrefix": "VirtualNetwork"}},
		{"legacy tag", map[string]any{"sourceAddressPrefix": "AZURE_LOADBALANCER"}},
		{"other service tag", map[string]any{"direction": "Outbound", "destinationAddressPrefix": "Storage.WestEurope"}},
		{"augmented", map[string]any{"destinationPortRange": nil, "destinationPortRanges": []string{"80", "443", "1000-2000"},
			"sourceAddressPrefix": nil, "sourceAddressPrefixes": []string{"198.18.0.0/24", "198.19.0.7", "2001:db8::/48"}}},
		{"asg both sides", map[string]any{"sourceAddressPrefix": nil, "sourceApplicationSecurityGroups": []any{map[string]any{"id": asg}},
			"destinationAddressPrefix": nil, "destinationApplicationSecurityGroups": []any{map[string]any{"id": asg}}}},
	} {
		t.Run("valid "+tc.name, func(t *testing.T) {
			if st, b := put(tc.over); st != http.StatusOK && st != http.StatusCreated {
				t.Fatalf("PUT: %d %s", st, b)
			}
		})
	}
	// The group's rule names the ASG: it cannot be deleted until the rule goes.
	if st, _, b := n.Do(http.MethodDelete, asg+q, nil); st != http.StatusBadRequest || armtest.ErrCode(b) != "InUseApplicationSecurityGroupCannotBeDeleted" {
		t.Fatalf("delete of a used asg: %d %s", st, b)
	}
	if st, b := put(nil); st != http.StatusOK {
		t.Fatalf("PUT without the asg: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodDelete, asg+q, nil); st != http.StatusOK && st != http.StatusAccepted && st != http.StatusNoContent {
		t.Fatalf("delete of an unused asg: %d %s", st, b)
	}
}

// TestNSGSpecExamples replays the request bodies of Azure's REST API spec
// examples NetworkSecurityGroupCreateWithRule, NetworkSecurityRuleCreate
// and ApplicationSecurityGroupCreate (2022-07-01, written out here) and
// checks every field of the example's answer is in nimbus's, with the same
// value where it does not depend on the environment.
func TestNSGSpecExamples(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg1")
	q := "?api-version=2022-07-01"
	defaultRule := func(name, desc, src, dst, access, dir string, prio int) map[string]any {
		return map[string]any{"name": name, "id": "x", "properties": map[string]any{"provisioningState": "Succeeded", "description": desc,
			"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*", "sourceAddressPrefix": src, "destinationAddressPrefix": dst,
			"access": access, "priority": float64(prio), "direction": dir}}
	}
	defaults := []any{
		defaultRule("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", "Inbound", 65000),
		defaultRule("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", "Inbound", 65001),
		defaultRule("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", "Inbound", 65500),
		defaultRule("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", "Outbound", 65000),
		defaultRule("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", "Outbound", 65001),
		defaultRule("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", "Outbound", 65500),
	}
	rule1 := map[string]any{"protocol": "*", "sourceAddressPrefix": "*", "destinationAddressPrefix": "*", "access": "Allow",
		"destinationPortRange": "80", "sourcePortRange": "*", "priority": float64(130), "direction": "Inbound"}
	withState := func(m map[string]any) map[string]any {
		out := map[string]any{"provisioningState": "Succeeded"}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	rule2 := map[string]any{"protocol": "*", "sourceAddressPrefix": "10.0.0.0/8", "destinationAddressPrefix": "11.0.0.0/8", "access": "Deny",
		"destinationPortRange": "8080", "sourcePortRange": "*", "priority": float64(100), "direction": "Outbound"}
	for _, ex := range []struct {
		name, path string
		body, want map[string]any
		status     int
	}{
		{"NetworkSecurityGroupCreateWithRule", "Microsoft.Network/networkSecurityGroups/testnsg",
			map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": []any{map[string]any{"name": "rule1", "properties": rule1}}}},
			map[string]any{"name": "testnsg", "id": "x", "type": "Microsoft.Network/networkSecurityGroups", "location": "eastus",
				"properties": map[string]any{"provisioningState": "Succeeded",
					"securityRules":        []any{map[string]any{"name": "rule1", "id": "x", "properties": withState(rule1)}},
					"defaultSecurityRules": defaults}}, http.StatusCreated},
		{"NetworkSecurityRuleCreate", "Microsoft.Network/networkSecurityGroups/testnsg/securityRules/rule2",
			map[string]any{"properties": rule2},
			map[string]any{"name": "rule2", "id": "x", "properties": withState(rule2)}, http.StatusCreated},
		{"ApplicationSecurityGroupCreate", "Microsoft.Network/applicationSecurityGroups/test-asg",
			map[string]any{"location": "westus", "properties": map[string]any{}},
			map[string]any{"name": "test-asg", "id": "x", "location": "westus", "type": "Microsoft.Network/applicationSecurityGroups",
				"properties": map[string]any{"resourceGuid": "x", "provisioningState": "Succeeded"}}, http.StatusCreated},
	} {
		t.Run(ex.name, func(t *testing.T) {
			path := n.RGPath("rg1", ex.path) + q
			st, _, b := n.Do(http.MethodPut, path, ex.body)
			if st != ex.status {
				t.Fatalf("PUT: %d %s", st, b)
			}
			st, _, b = n.Do(http.MethodGet, path, nil)
			var got map[string]any
			if err := json.Unmarshal(b, &got); st != http.StatusOK || err != nil {
				t.Fatalf("GET: %d %s", st, b)
			}
			want, have := map[string]any{}, map[string]any{}
			leafPaths("", ex.want, want)
			leafPaths("", got, have)
			var missing []string
			for p, v := range want {
				hv, ok := have[p]
				if !ok {
					missing = append(missing, p)
					continue
				}
				// Arrays share one path: compare the example's value with
				// nimbus's of the same path only for scalars seen once.
				if v != "x" && !reflect.DeepEqual(hv, v) && !containsLeaf(got, p, v) {
					t.Errorf("%s = %v, example has %v", p, hv, v)
				}
			}
			sort.Strings(missing)
			if len(missing) > 0 {
				t.Errorf("fields of the example's answer missing: %v\n%s", missing, b)
			}
		})
	}
}

// containsLeaf reports whether any leaf at dotted path p of v equals want
// (for paths through arrays, whose elements share a path).
func containsLeaf(v any, p string, want any) bool {
	var walk func(prefix string, v any) bool
	walk = func(prefix string, v any) bool {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				q := k
				if prefix != "" {
					q = prefix + "." + k
				}
				if walk(q, e) {
					return true
				}
			}
		case []any:
			for _, e := range x {
				if walk(prefix, e) {
					return true
				}
			}
		default:
			return prefix == p && reflect.DeepEqual(v, want)
		}
		return false
	}
	return walk("", v)
}
