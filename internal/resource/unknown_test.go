package resource

import (
	"encoding/json"
	"reflect"
	"testing"
)

func TestUnknownRoundTrip(t *testing.T) {
	in := `{"location": "eastus", "sku": {"name": "Standard_B1s", "capacity": 2, "futureSku": 7},
		"futureTop": {"a": [1, 2, {"b": null}]},
		"properties": {
			"scaleInPolicy": {"rules": ["Default"], "prioritizeUnhealthyVMs": true},
			"resiliencyPolicy": {"resilientVMCreationPolicy": {"enabled": true}},
			"virtualMachineProfile": {
				"hardwareProfile": {"vmSizeProperties": {"vCPUsAvailable": 1}},
				"osProfile": {"computerNamePrefix": "web", "linuxConfiguration": {"disablePasswordAuthentication": true}},
				"networkProfile": {"networkInterfaceConfigurations": [
					{"name": "nic", "properties": {"auxiliaryMode": "None", "ipConfigurations": [{"name": "ipc", "properties": {"futureIPC": 1.50}}]}},
					{"name": "nic2", "properties": {"ipConfigurations": []}}
				]}
			},
			"Overprovision": false,
			"dropped": null
		}}`
	v, err := DecodeScaleSet([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	if v.Properties.Overprovision == nil || *v.Properties.Overprovision {
		t.Fatal("a declared property spelled in another case was not decoded")
	}
	// nimbus edits typed fields; the undeclared ones stay.
	v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations =
		[]NICConfig{v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[1],
			v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0]}
	out, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatal(err)
	}
	at := func(path ...any) any {
		var cur any = got
		for _, p := range path {
			switch k := p.(type) {
			case string:
				cur = cur.(map[string]any)[k]
			case int:
				cur = cur.([]any)[k]
			}
		}
		return cur
	}
	tests := []struct {
		path []any
		want any
	}{
		{[]any{"sku", "futureSku"}, 7.0},
		{[]any{"futureTop", "a"}, []any{1.0, 2.0, map[string]any{"b": nil}}},
		{[]any{"properties", "scaleInPolicy", "prioritizeUnhealthyVMs"}, true},
		{[]any{"properties", "resiliencyPolicy", "resilientVMCreationPolicy", "enabled"}, true},
		{[]any{"properties", "virtualMachineProfile", "hardwareProfile", "vmSizeProperties", "vCPUsAvailable"}, 1.0},
		{[]any{"properties", "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations", 1, "properties", "auxiliaryMode"}, "None"},
		{[]any{"properties", "virtualMachineProfile", "networkProfile", "networkInterfaceConfigurations", 1, "properties", "ipConfigurations", 0, "properties", "futureIPC"}, 1.5},
		{[]any{"properties", "overprovision"}, false},
	}
	for _, tt := range tests {
		if g := at(tt.path...); !reflect.DeepEqual(g, tt.want) {
			t.Errorf("%v = %#v; want %#v\n%s", tt.path, g, tt.want, out)
		}
	}
	props := got["properties"].(map[string]any)
	for _, k := range []string{"Overprovision", "dropped"} {
		if _, ok := props[k]; ok {
			t.Errorf("properties.%s is returned: %s", k, out)
		}
	}
	// The stored form decodes to the same thing (it is the encoded form).
	v2, err := DecodeScaleSet(out)
	if err != nil {
		t.Fatal(err)
	}
	out2, _ := json.Marshal(v2)
	if string(out2) != string(out) {
		t.Errorf("second round trip differs:\n%s\n%s", out, out2)
	}
	// A profile without undeclared properties encodes as before, so
	// instance model hashes do not change.
	p := &VMProfile{LicenseType: "Windows_Server"}
	type plain VMProfile
	want, _ := json.Marshal(plain(*p))
	if b, _ := json.Marshal(p); string(b) != string(want) {
		t.Errorf("plain profile encodes as %s; want %s", b, want)
	}
	// A dropped parent drops the undeclared properties below it.
	v2.Properties.ScaleInPolicy = nil
	if b, _ := json.Marshal(v2); json.Unmarshal(b, &got) != nil || got["properties"].(map[string]any)["scaleInPolicy"] != nil {
		t.Errorf("scaleInPolicy came back after nimbus removed it: %s", b)
	}
}

// TestUnknownChildOwnsItsProperties: a child (a probe) keeps its own
// undeclared properties; the parent's do not leak into a replaced child.
func TestUnknownChildOwnsItsProperties(t *testing.T) {
	lb, err := DecodeLoadBalancer([]byte(`{"properties": {"probes": [{"name": "p", "properties": {"port": 80, "future": 1}}], "futureLB": true}}`))
	if err != nil {
		t.Fatal(err)
	}
	var fresh Probe
	if err := json.Unmarshal([]byte(`{"name": "p", "properties": {"port": 81}}`), &fresh); err != nil {
		t.Fatal(err)
	}
	lb.Properties.Probes[0] = fresh
	b, _ := json.Marshal(lb)
	var got struct {
		Properties struct {
			FutureLB bool `json:"futureLB"`
			Probes   []struct{ Properties map[string]any }
		}
	}
	if err := json.Unmarshal(b, &got); err != nil || !got.Properties.FutureLB {
		t.Fatalf("%s: %v", b, err)
	}
	if _, ok := got.Properties.Probes[0].Properties["future"]; ok {
		t.Errorf("the replaced probe's undeclared property came back: %s", b)
	}
}
