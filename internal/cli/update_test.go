package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// vmssWire is a scale set as the API returns it.
const vmssWire = `{
  "id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1",
  "name": "vmss1", "type": "Microsoft.Compute/virtualMachineScaleSets", "location": "eastus",
  "sku": {"name": "Standard_DS1_v2", "capacity": 3},
  "tags": {"a": "b"},
  "properties": {
    "overprovision": true,
    "upgradePolicy": {"mode": "Manual"},
    "virtualMachineProfile": {
      "networkProfile": {
        "healthProbe": {"id": "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb/probes/http"},
        "networkInterfaceConfigurations": [
          {"name": "vmss1Nic", "properties": {"primary": true, "ipConfigurations": [
            {"name": "vmss1IPConfig", "properties": {"subnet": {"id": "/sn"}, "loadBalancerBackendAddressPools": [{"id": "/p1"}, {"id": "/p2"}]}}
          ]}}
        ]
      }
    }
  }
}`

func decode(t *testing.T, s string) any {
	t.Helper()
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	return v
}

func canon(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestGenericUpdate applies az-style --set/--add/--remove to the flattened
// scale set and checks the wire body that would be PUT back.
func TestGenericUpdate(t *testing.T) {
	ipc := "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations.0.properties.ipConfigurations.0.properties"
	tests := []struct {
		name    string
		ops     []UpdateOp
		force   bool
		check   map[string]string // dotted path in the wire result → JSON
		absent  []string          // dotted paths that must be gone
		wantErr string
	}{
		{
			name:   "remove healthProbe as az does",
			ops:    []UpdateOp{{Kind: "remove", Args: []string{"virtualMachineProfile.networkProfile.healthProbe"}}},
			absent: []string{"properties.virtualMachineProfile.networkProfile.healthProbe"},
			check:  map[string]string{"properties.upgradePolicy.mode": `"Manual"`, "tags.a": `"b"`},
		},
		{
			name:  "set dotted path with string value",
			ops:   []UpdateOp{{Kind: "set", Args: []string{"upgradePolicy.mode=Automatic", "tags.env=prod"}}},
			check: map[string]string{"properties.upgradePolicy.mode": `"Automatic"`, "tags.env": `"prod"`},
		},
		{
			name:  "set JSON value and creates missing objects",
			ops:   []UpdateOp{{Kind: "set", Args: []string{`virtualMachineProfile.networkProfile.healthProbe={"id":"/probes/x"}`, "automaticRepairsPolicy.enabled=true", "sku.capacity=5"}}},
			check: map[string]string{"properties.virtualMachineProfile.networkProfile.healthProbe.id": `"/probes/x"`, "properties.automaticRepairsPolicy.enabled": "true", "sku.capacity": "5"},
		},
		{
			name:  "force-string keeps literals",
			ops:   []UpdateOp{{Kind: "set", Args: []string{"tags.n=5"}}},
			force: true,
			check: map[string]string{"tags.n": `"5"`},
		},
		{
			name:  "set through [i] indexes and case-insensitive keys",
			ops:   []UpdateOp{{Kind: "set", Args: []string{"virtualMachineProfile.networkProfile.networkInterfaceConfigurations[0].ipConfigurations[0].LoadBalancerBackendAddressPools[1].id=/p9"}}},
			check: map[string]string{ipc + ".loadBalancerBackendAddressPools.1.id": `"/p9"`},
		},
		{
			name:  "set through a [name=value] filter",
			ops:   []UpdateOp{{Kind: "set", Args: []string{"virtualMachineProfile.networkProfile.networkInterfaceConfigurations[name=vmss1Nic].primary=false"}}},
			check: map[string]string{"properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations.0.properties.primary": "false"},
		},
		{
			name: "add key=value pairs as one object, then remove by index",
			ops: []UpdateOp{
				{Kind: "add", Args: []string{"virtualMachineProfile.networkProfile.networkInterfaceConfigurations[0].ipConfigurations[0].loadBalancerBackendAddressPools", "id=/p3"}},
				{Kind: "remove", Args: []string{"virtualMachineProfile.networkProfile.networkInterfaceConfigurations[0].ipConfigurations[0].loadBalancerBackendAddressPools", "0"}},
			},
			check: map[string]string{ipc + ".loadBalancerBackendAddressPools": `[{"id":"/p2"},{"id":"/p3"}]`},
		},
		{
			name:  "new top-level property goes into properties",
			ops:   []UpdateOp{{Kind: "set", Args: []string{"singlePlacementGroup=false"}}},
			check: map[string]string{"properties.singlePlacementGroup": "false"},
		},
		{
			name:    "remove missing property",
			ops:     []UpdateOp{{Kind: "remove", Args: []string{"virtualMachineProfile.nope"}}},
			wantErr: "couldn't find 'nope' in 'virtualMachineProfile'",
		},
		{
			name:    "index out of range",
			ops:     []UpdateOp{{Kind: "remove", Args: []string{"virtualMachineProfile.networkProfile.networkInterfaceConfigurations", "3"}}},
			wantErr: "index 3 doesn't exist on networkInterfaceConfigurations",
		},
		{
			name:    "set without =",
			ops:     []UpdateOp{{Kind: "set", Args: []string{"tags"}}},
			wantErr: "invalid syntax",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fl := Flatten(decode(t, vmssWire))
			err := ApplyUpdates(fl.Value, tt.ops, tt.force)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wire := fl.Unflatten()
			for path, want := range tt.check {
				got, ok := lookup(wire, path)
				if !ok {
					t.Errorf("%s missing in %s", path, canon(t, wire))
					continue
				}
				if g := canon(t, got); g != want {
					t.Errorf("%s = %s, want %s", path, g, want)
				}
			}
			for _, path := range tt.absent {
				if _, ok := lookup(wire, path); ok {
					t.Errorf("%s still present", path)
				}
			}
			if _, ok := lookup(wire, "virtualMachineProfile"); ok {
				t.Errorf("flattened key leaked to the top level: %s", canon(t, wire))
			}
		})
	}
}

// lookup follows a dotted path (numbers index lists).
func lookup(v any, path string) (any, bool) {
	for _, p := range strings.Split(path, ".") {
		switch t := v.(type) {
		case map[string]any:
			x, ok := t[p]
			if !ok {
				return nil, false
			}
			v = x
		case []any:
			i := 0
			for _, c := range p {
				i = i*10 + int(c-'0')
			}
			if i >= len(t) {
				return nil, false
			}
			v = t[i]
		default:
			return nil, false
		}
	}
	return v, true
}

func TestFlattenRoundTrip(t *testing.T) {
	for _, doc := range []string{vmssWire, canon(t, lbList()[0]), `{"id":"/subscriptions/s/resourceGroups/g","type":"Microsoft.Resources/resourceGroups","properties":{"provisioningState":"Succeeded"}}`} {
		fl := Flatten(decode(t, doc))
		if got, want := canon(t, fl.Unflatten()), canon(t, decode(t, doc)); got != want {
			t.Errorf("round trip:\n got %s\nwant %s", got, want)
		}
	}
	g := Flatten(decode(t, `{"id":"/subscriptions/s/resourceGroups/g","type":"Microsoft.Resources/resourceGroups","properties":{"provisioningState":"Succeeded"}}`))
	if _, ok := g.Value.(map[string]any)["properties"]; !ok {
		t.Error("resource group properties were flattened; az shows them nested")
	}
}

func TestSplitPath(t *testing.T) {
	tests := map[string]string{
		"a.b.c":             "a|b|c",
		"a[0].b":            "a|[0]|b",
		"a[name=x.y].b[-1]": "a|[name=x.y]|b|[-1]",
	}
	for in, want := range tests {
		if got := strings.Join(splitPath(in), "|"); got != want {
			t.Errorf("splitPath(%q) = %q, want %q", in, got, want)
		}
	}
}
