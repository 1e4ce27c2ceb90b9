package template

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// loadDeployment reads an az deployment body and returns its template and
// parameters.
func loadDeployment(t *testing.T, file string) (json.RawMessage, json.RawMessage) {
	t.Helper()
	data, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var body struct {
		Properties struct {
			Template   json.RawMessage `json:"template"`
			Parameters json.RawMessage `json:"parameters"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(data, &body); err != nil {
		t.Fatal(err)
	}
	return body.Properties.Template, body.Properties.Parameters
}

func indexOf(ids []string, id string) int {
	for i, x := range ids {
		if strings.EqualFold(x, id) {
			return i
		}
	}
	return -1
}

func TestAzNetworkLBCreate(t *testing.T) {
	ctx := context.Background()
	tmpl, params := loadDeployment(t, "az-network-lb-create.json")
	env := newFakeEnv()
	plan, err := Validate(ctx, Input{Template: tmpl, Parameters: params, Scope: testScope}, env)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	outs, ops, err := plan.Run(ctx, env, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	pip := rgID + "/providers/Microsoft.Network/publicIPAddresses/pip1"
	lb := rgID + "/providers/Microsoft.Network/loadBalancers/lb1"
	ids := env.putIDs()
	if len(ids) != 2 || indexOf(ids, pip) != 0 || indexOf(ids, lb) != 1 {
		t.Fatalf("puts = %v, want pip1 then lb1", ids)
	}
	if len(ops) != 2 || ops[1].ProvisioningState != StateSucceeded || ops[1].StatusCode != "Created" || ops[1].TargetResource.ResourceName != "lb1" {
		t.Fatalf("ops = %+v", ops)
	}
	o := outs["loadBalancer"]
	v, _ := o.Value.(map[string]any)
	if o.Type != "Object" || v["provisioningState"] != "Succeeded" || v["backendAddressPools"] == nil {
		t.Fatalf("outputs = %+v", outs)
	}
}

func TestAzVMSSCreate(t *testing.T) {
	ctx := context.Background()
	tmpl, params := loadDeployment(t, "az-vmss-create.json")
	env := newFakeEnv()
	plan, err := Validate(ctx, Input{Template: tmpl, Parameters: params, Scope: testScope}, env)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	outs, ops, err := plan.Run(ctx, env, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	vnet := rgID + "/providers/Microsoft.Network/virtualNetworks/vmss1VNET"
	pip := rgID + "/providers/Microsoft.Network/publicIPAddresses/vmss1LBPublicIP"
	lb := rgID + "/providers/Microsoft.Network/loadBalancers/vmss1LB"
	vmss := rgID + "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
	ids := env.putIDs()
	if len(ids) != 4 || len(ops) != 4 {
		t.Fatalf("puts = %v", ids)
	}
	for _, before := range []string{vnet, pip} {
		if indexOf(ids, before) > indexOf(ids, lb) {
			t.Errorf("%s put after the LB: %v", before, ids)
		}
	}
	if indexOf(ids, lb) > indexOf(ids, vmss) {
		t.Errorf("LB put after the VMSS: %v", ids)
	}
	lbPut := env.put(t, lb)
	props := lbPut.Body["properties"].(map[string]any)
	nat := props["inboundNatPools"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	if got := nat["frontendIPConfiguration"].(map[string]any)["id"]; got != lb+"/frontendIPConfigurations/loadBalancerFrontEnd" {
		t.Errorf("NAT pool frontend id = %v", got)
	}
	if nat["frontendPortRangeStart"] != "50000" {
		t.Errorf("engine changed a property: %v", nat["frontendPortRangeStart"])
	}
	vm := env.put(t, vmss)
	if vm.APIVersion != "2020-06-01" || vm.Location != "eastus" {
		t.Errorf("vmss put = %+v", vm)
	}
	os := vm.Body["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["osProfile"].(map[string]any)
	if os["adminPassword"] != "<redacted>" {
		t.Errorf("adminPassword = %v", os["adminPassword"])
	}
	if sku := vm.Body["sku"].(map[string]any); sku["capacity"] != int64(2) {
		t.Errorf("sku = %v", sku)
	}
	out := outs["VMSS"]
	if out.Type != "Object" || out.Value.(map[string]any)["provisioningState"] != "Succeeded" {
		t.Errorf("VMSS output = %+v", out)
	}
	// reference() used the apiVersion providers() listed first.
	found := false
	for _, g := range env.gets {
		if g == vmss+"?2020-06-01" {
			found = true
		}
	}
	if !found {
		t.Errorf("gets = %v", env.gets)
	}
	if p := plan.Parameters()["adminPassword"]; p.Type != "SecureString" || p.Value != nil {
		t.Errorf("parameters report %+v", p)
	}
}
