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
	return loadDeploymentB(t, file)
}

// loadDeploymentB is loadDeployment for tests and benchmarks.
func loadDeploymentB(t testing.TB, file string) (json.RawMessage, json.RawMessage) {
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

func TestSeedScenarioTemplate(t *testing.T) {
	ctx := context.Background()
	tmpl, err := os.ReadFile("testdata/seed-scenario.json")
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv()
	plan, err := Validate(ctx, Input{Template: tmpl, Parameters: json.RawMessage(`{"adminPassword": {"value": "Secr3t-Passw0rd!"}}`), Scope: testScope}, env)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	outs, _, err := plan.Run(ctx, env, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	ids := env.putIDs()
	lb := rgID + "/providers/Microsoft.Network/loadBalancers/web-lb"
	vmss := rgID + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	if len(ids) != 4 || indexOf(ids, lb) > indexOf(ids, vmss) || indexOf(ids, rgID+"/providers/Microsoft.Network/publicIPAddresses/web-pip") > indexOf(ids, lb) {
		t.Fatalf("puts = %v", ids)
	}
	props := env.put(t, lb).Body["properties"].(map[string]any)
	rules := props["loadBalancingRules"].([]any)
	r1 := rules[1].(map[string]any)
	if len(rules) != 2 || r1["name"] != "rule-8080" || r1["properties"].(map[string]any)["backendPort"] != int64(8080) ||
		r1["properties"].(map[string]any)["disableOutboundSnat"] != true {
		t.Errorf("rules = %v", rules)
	}
	nat := props["inboundNatPools"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	if nat["frontendPortRangeEnd"] != int64(50119) {
		t.Errorf("nat pool = %v", nat)
	}
	vm := env.put(t, vmss).Body
	if vm["sku"].(map[string]any)["capacity"] != int64(3) {
		t.Errorf("vmss sku = %v", vm["sku"])
	}
	label := env.put(t, rgID+"/providers/Microsoft.Network/publicIPAddresses/web-pip").Body["properties"].(map[string]any)["dnsSettings"].(map[string]any)["domainNameLabel"].(string)
	if !strings.HasPrefix(label, "web-") || len(label) != 10 {
		t.Errorf("dns label = %q", label)
	}
	if outs["natPorts"].Value != "50000-50119" || outs["lbSku"].Value != "Standard" || len(outs["ruleNames"].Value.([]any)) != 2 {
		t.Errorf("outputs = %v", outs)
	}
	if outs["frontendIP"].Value != "198.18.0.10" || outs["fqdn"].Value != label+".eastus.cloudapp.azure.com" {
		t.Errorf("outputs = %v", outs)
	}
}

func TestSubscriptionScopeTemplateFile(t *testing.T) {
	tmpl, err := os.ReadFile("testdata/subscription-scope.json")
	if err != nil {
		t.Fatal(err)
	}
	sc := testScope
	sc.ResourceGroup = ""
	p, err := Validate(context.Background(), Input{Template: tmpl, Scope: sc}, newFakeEnv())
	if err != nil {
		t.Fatalf("Validate (a template with comments): %v", err)
	}
	if rs := p.Resources(); len(rs) != 2 || rs[1].ID != "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/app/providers/Microsoft.Resources/deployments/network" {
		t.Fatalf("resources = %+v", rs)
	}
}
