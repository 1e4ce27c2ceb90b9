package deployments_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/poll"
)

// Address plan: the node listens on 127.0.0.1:0; public IPs come from the
// default pool (127.77.0.0/16). No traffic is sent to the resources.

const depAPI = "?api-version=2019-10-01"

// azPollOpts polls deployments quickly.
var azPollOpts = runtime.PollUntilDoneOptions{Frequency: 20 * time.Millisecond}

// loadAzBody reads one of the bodies az 2.45 sends (copied from
// shared/reference/az-deployments into the template package's testdata).
func loadAzBody(t *testing.T, file string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../template/testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	return body
}

// useNimbusImage swaps a vmss create body's image for nimbus's echo image.
func useNimbusImage(t *testing.T, body map[string]any) {
	t.Helper()
	for _, r := range body["properties"].(map[string]any)["template"].(map[string]any)["resources"].([]any) {
		rm := r.(map[string]any)
		if rm["type"] != "Microsoft.Compute/virtualMachineScaleSets" {
			continue
		}
		sp := rm["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["storageProfile"].(map[string]any)
		sp["imageReference"] = map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}
		return
	}
	t.Fatal("no scale set in the body")
}

// waitDeployment polls a deployment until it leaves Accepted/Running and
// returns its body.
func waitDeployment(n *armtest.Node, rg, name string) map[string]any {
	n.T.Helper()
	var d map[string]any
	poll.Until(n.T, 30*time.Second, "deployment "+name+" to finish", func() error {
		st, _, b := n.Do(http.MethodGet, n.RGPath(rg, "Microsoft.Resources/deployments/"+name)+depAPI, nil)
		if st != http.StatusOK {
			n.T.Fatalf("GET deployment: %d %s", st, b)
		}
		d = nil
		if err := json.Unmarshal(b, &d); err != nil {
			n.T.Fatal(err)
		}
		if state := d["properties"].(map[string]any)["provisioningState"]; state == "Accepted" || state == "Running" {
			return fmt.Errorf("provisioningState %v", state)
		}
		return nil
	})
	return d
}

func TestDeploymentAzNetworkLBCreate(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	// az's template hard-codes this subscription id.
	body := loadAzBody(t, "az-network-lb-create.json")
	b, _ := json.Marshal(body)
	js := strings.ReplaceAll(string(b), "00000000-0000-0000-0000-000000000001", n.Sub)
	st, hdr, resp := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/lb_deploy_x")+depAPI, js)
	if st != http.StatusCreated || hdr.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("PUT deployment: %d %s", st, resp)
	}
	d := waitDeployment(n, "rg", "lb_deploy_x")
	props := d["properties"].(map[string]any)
	if props["provisioningState"] != "Succeeded" {
		t.Fatalf("deployment = %v", props)
	}
	lb := props["outputs"].(map[string]any)["loadBalancer"].(map[string]any)
	if lb["type"] != "Object" || len(lb["value"].(map[string]any)["frontendIPConfigurations"].([]any)) != 1 {
		t.Errorf("outputs = %v", lb)
	}
	if st, _, b := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Network/loadBalancers/lb1")+"?api-version=2022-07-01", nil); st != http.StatusOK {
		t.Errorf("GET lb1: %d %s", st, b)
	}
	st, _, b = n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Resources/deployments/lb_deploy_x/operations")+depAPI, nil)
	var ops struct {
		Value []struct {
			ID          string `json:"id"`
			OperationID string `json:"operationId"`
			Properties  struct {
				ProvisioningState string `json:"provisioningState"`
				StatusCode        string `json:"statusCode"`
				TargetResource    struct {
					ResourceType string `json:"resourceType"`
					ResourceName string `json:"resourceName"`
				} `json:"targetResource"`
			} `json:"properties"`
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &ops); err != nil || st != http.StatusOK || len(ops.Value) != 2 {
		t.Fatalf("operations: %d %s", st, b)
	}
	for _, op := range ops.Value {
		if op.Properties.ProvisioningState != "Succeeded" || op.Properties.StatusCode != "Created" || !strings.HasSuffix(op.ID, "/operations/"+op.OperationID) {
			t.Errorf("operation %+v", op)
		}
	}
	if ops.Value[0].Properties.TargetResource.ResourceName != "pip1" {
		t.Errorf("first operation is %+v, want pip1", ops.Value[0].Properties.TargetResource)
	}
	st, _, b = n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Resources/deployments/lb_deploy_x/operations/"+ops.Value[1].OperationID)+depAPI, nil)
	if st != http.StatusOK || !strings.Contains(string(b), `"resourceName":"lb1"`) {
		t.Errorf("GET operation: %d %s", st, b)
	}
}

// basicLBWhenUnset gives the body's load balancer the sku Azure gave a load
// balancer without one at api-version 2018-11-01 (Basic, like the public IP
// next to it); nimbus's resource model defaults an absent LB sku to
// Standard but an absent public IP sku to Basic, which do not match.
func basicLBWhenUnset(body map[string]any) {
	for _, r := range body["properties"].(map[string]any)["template"].(map[string]any)["resources"].([]any) {
		rm := r.(map[string]any)
		if rm["type"] == "Microsoft.Network/loadBalancers" && rm["sku"] == nil {
			rm["sku"] = map[string]any{"name": "Basic"}
		}
	}
}

func TestDeploymentAzVMSSCreateSDK(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	ctx := context.Background()
	body := loadAzBody(t, "az-vmss-create.json")
	useNimbusImage(t, body)
	basicLBWhenUnset(body)
	b, _ := json.Marshal(body["properties"])
	b = []byte(strings.ReplaceAll(string(b), "00000000-0000-0000-0000-000000000001", n.Sub))
	var props armresources.DeploymentProperties
	if err := json.Unmarshal(b, &props); err != nil {
		t.Fatal(err)
	}
	client, err := armresources.NewDeploymentsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	poller, err := client.BeginCreateOrUpdate(ctx, "rg", "vmss_deploy", armresources.Deployment{Properties: &props}, nil)
	if err != nil {
		t.Fatalf("BeginCreateOrUpdate: %v", err)
	}
	res, err := poller.PollUntilDone(ctx, &azPollOpts)
	if err != nil {
		t.Fatalf("PollUntilDone: %v", err)
	}
	t.Logf("az vmss create template deployed in %v (API only, no runtime)", time.Since(start))
	p := res.Properties
	if *p.ProvisioningState != armresources.ProvisioningStateSucceeded {
		t.Fatalf("state = %v", *p.ProvisioningState)
	}
	out := p.Outputs.(map[string]any)["VMSS"].(map[string]any)
	vm := out["value"].(map[string]any)
	if vm["provisioningState"] != "Succeeded" || vm["virtualMachineProfile"] == nil {
		t.Errorf("VMSS output = %v", out)
	}
	if pv := p.Parameters.(map[string]any)["adminPassword"].(map[string]any); pv["value"] != nil || pv["type"] != "SecureString" {
		t.Errorf("secure parameter reported as %v", pv)
	}
	if len(p.OutputResources) != 4 || len(p.Dependencies) != 2 {
		t.Errorf("outputResources %d, dependencies %d", len(p.OutputResources), len(p.Dependencies))
	}
	// The NAT pool's string ports were taken by the load balancer.
	st, _, lb := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Network/loadBalancers/vmss1LB")+"?api-version=2022-07-01", nil)
	if st != http.StatusOK || !strings.Contains(string(lb), `"frontendPortRangeStart":50000`) {
		t.Errorf("GET vmss1LB: %d %s", st, lb)
	}
	// Operations: VNet and PIP end before the LB starts, the LB before the VMSS.
	opsClient, err := armresources.NewDeploymentOperationsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	type span struct{ start, end time.Time }
	spans := map[string]span{}
	pager := opsClient.NewListPager("rg", "vmss_deploy", nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, op := range page.Value {
			pp := op.Properties
			if *pp.ProvisioningState != "Succeeded" {
				t.Errorf("operation %s: %s", *pp.TargetResource.ResourceName, *pp.ProvisioningState)
			}
			d, err := time.ParseDuration(strings.ToLower(strings.TrimPrefix(*pp.Duration, "PT")))
			if err != nil {
				t.Fatalf("duration %q: %v", *pp.Duration, err)
			}
			spans[*pp.TargetResource.ResourceName] = span{pp.Timestamp.Add(-d), *pp.Timestamp}
		}
	}
	if len(spans) != 4 {
		t.Fatalf("operations: %v", spans)
	}
	for _, before := range []string{"vmss1VNET", "vmss1LBPublicIP"} {
		if spans[before].end.After(spans["vmss1LB"].start.Add(time.Millisecond)) {
			t.Errorf("%s ended after vmss1LB started", before)
		}
	}
	if spans["vmss1LB"].end.After(spans["vmss1"].start.Add(time.Millisecond)) {
		t.Error("vmss1LB ended after vmss1 started")
	}
}

func TestDeploymentBadTemplatesCreateNothing(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	pip := func(name string) map[string]any {
		return map[string]any{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": name, "location": "eastus",
			"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}}
	}
	withDeps := func(r map[string]any, deps ...string) map[string]any {
		r["dependsOn"] = deps
		return r
	}
	tests := []struct {
		name     string
		template map[string]any
		params   map[string]any
		want     string
	}{
		{"cycle", map[string]any{"resources": []any{withDeps(pip("a"), "b"), withDeps(pip("b"), "a")}}, nil, "Circular dependency"},
		{"unknown function", map[string]any{"resources": []any{pip("a"), map[string]any{
			"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "[nope('b')]", "location": "eastus"}}}, nil,
			"The template function 'nope' is not valid"},
		{"missing parameter", map[string]any{"parameters": map[string]any{"n": map[string]any{"type": "string"}},
			"resources": []any{pip("a")}}, nil, "The value for the template parameter 'n' is not provided"},
		{"wrong type", map[string]any{"parameters": map[string]any{"n": map[string]any{"type": "int"}},
			"resources": []any{pip("a")}}, map[string]any{"n": map[string]any{"value": "many"}}, "Expected a value of type 'Int'"},
		{"type nimbus does not serve", map[string]any{"resources": []any{pip("a"), map[string]any{
			"type": "Microsoft.Network/routeTables", "apiVersion": "2022-07-01", "name": "rt", "location": "eastus"}}}, nil,
			`"code":"InvalidResourceType"`},
		// A scale set's extension as a resource of its own: the error
		// names the child type, not its parent.
		{"child type nimbus does not serve", map[string]any{"resources": []any{pip("a"), map[string]any{
			"type": "Microsoft.Compute/virtualMachineScaleSets/extensions", "apiVersion": "2022-08-01", "name": "vmss/ext",
			"properties": map[string]any{"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript"}}}}, nil,
			`The resource type 'virtualMachineScaleSets/extensions' could not be found in the namespace 'Microsoft.Compute'`},
		{"api-version nimbus does not serve", map[string]any{"resources": []any{map[string]any{
			"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2099-01-01", "name": "a", "location": "eastus"}}}, nil,
			`"code":"NoRegisteredProviderFound"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tc.template, "parameters": tc.params}}
			code := "InvalidTemplate"
			if strings.Contains(tc.want, `"code"`) || strings.Contains(tc.want, "could not be found") {
				code = "InvalidTemplateDeployment"
			}
			st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/bad")+depAPI, body)
			if st != http.StatusBadRequest || armtest.ErrCode(b) != code || !strings.Contains(string(b), tc.want) {
				t.Fatalf("PUT: %d %s", st, b)
			}
			st, _, b = n.Do(http.MethodPost, n.RGPath("rg", "Microsoft.Resources/deployments/bad/validate")+depAPI, body)
			if st != http.StatusBadRequest || armtest.ErrCode(b) != code {
				t.Fatalf("validate: %d %s", st, b)
			}
		})
	}
	if st, _, b := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Resources/deployments/bad")+depAPI, nil); st != http.StatusNotFound || armtest.ErrCode(b) != "DeploymentNotFound" {
		t.Errorf("GET bad deployment: %d %s", st, b)
	}
	st, _, b := n.Do(http.MethodGet, "/subscriptions/"+n.Sub+"/resourceGroups/rg/resources?api-version=2021-04-01", nil)
	if st != http.StatusOK || strings.Contains(string(b), "publicIPAddresses") {
		t.Errorf("resources after bad templates: %d %s", st, b)
	}
}

func TestDeploymentResourceFailure(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	tmpl := map[string]any{"resources": []any{
		map[string]any{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "name": "vn", "location": "eastus",
			"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}}}},
		map[string]any{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2022-07-01", "name": "lb", "location": "eastus",
			"dependsOn": []any{"vn"}, "sku": map[string]any{"name": "Standard"},
			"properties": map[string]any{"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{
				"publicIPAddress": map[string]any{"id": "[resourceId('Microsoft.Network/publicIPAddresses', 'missing')]"}}}}}},
		map[string]any{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "after", "location": "eastus",
			"dependsOn": []any{"lb"}, "sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}},
	}}
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl}}
	if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/fail")+depAPI, body); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	d := waitDeployment(n, "rg", "fail")
	props := d["properties"].(map[string]any)
	e := props["error"].(map[string]any)
	details := e["details"].([]any)
	if props["provisioningState"] != "Failed" || e["code"] != "DeploymentFailed" || len(details) != 1 {
		t.Fatalf("deployment = %v", props)
	}
	detail := details[0].(map[string]any)
	if detail["code"] != "InvalidResourceReference" || !strings.HasSuffix(detail["target"].(string), "/providers/Microsoft.Network/loadBalancers/lb") {
		t.Errorf("detail = %v", detail)
	}
	t.Logf("failed resource's error: %v", detail)
	if st, _, _ := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Network/publicIPAddresses/after")+"?api-version=2022-07-01", nil); st != http.StatusNotFound {
		t.Errorf("a resource after the failure was created: %d", st)
	}
	// Cancel of a finished deployment, then delete.
	if st, _, b := n.Do(http.MethodPost, n.RGPath("rg", "Microsoft.Resources/deployments/fail/cancel")+depAPI, nil); st != http.StatusConflict {
		t.Errorf("cancel: %d %s", st, b)
	}
	client, err := armresources.NewDeploymentsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	del, err := client.BeginDelete(ctx, "rg", "fail", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, &azPollOpts); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Resources/deployments/fail")+depAPI, nil); st != http.StatusNotFound {
		t.Errorf("deleted deployment: %d", st)
	}
	if st, _, _ := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn")+"?api-version=2022-07-01", nil); st != http.StatusOK {
		t.Errorf("deleting the deployment deleted its resources: %d", st)
	}
}

func TestDeploymentValidateWhatIfList(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	ctx := context.Background()
	tmpl := map[string]any{
		"parameters": map[string]any{"prefix": map[string]any{"type": "string", "defaultValue": "web"}},
		"resources": []any{map[string]any{
			"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "location": "[resourceGroup().location]",
			"name": "[concat(parameters('prefix'), '-pip', copyIndex())]", "copy": map[string]any{"name": "pips", "count": 2},
			"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}}},
	}
	client, err := armresources.NewDeploymentsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	dep := armresources.Deployment{Properties: &armresources.DeploymentProperties{Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: tmpl}}
	vp, err := client.BeginValidate(ctx, "rg", "d1", dep, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := vp.PollUntilDone(ctx, &azPollOpts)
	if err != nil || v.Properties == nil || len(v.Properties.ValidatedResources) != 2 {
		t.Fatalf("validate = %+v, %v", v, err)
	}
	whatIf := func(tmpl map[string]any) map[string]string {
		t.Helper()
		wp, err := client.BeginWhatIf(ctx, "rg", "d1", armresources.DeploymentWhatIf{Properties: &armresources.DeploymentWhatIfProperties{
			Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: tmpl}}, nil)
		if err != nil {
			t.Fatal(err)
		}
		w, err := wp.PollUntilDone(ctx, &azPollOpts)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]string{}
		for _, c := range w.Properties.Changes {
			name := (*c.ResourceID)[strings.LastIndex(*c.ResourceID, "/")+1:]
			out[name] = string(*c.ChangeType)
			for _, d := range c.Delta {
				out[name+" "+*d.Path] = string(*d.PropertyChangeType)
			}
		}
		return out
	}
	if got := whatIf(tmpl); got["web-pip0"] != "Create" || got["web-pip1"] != "Create" {
		t.Errorf("what-if before = %v", got)
	}
	poller, err := client.BeginCreateOrUpdate(ctx, "rg", "d1", dep, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(ctx, &azPollOpts); err != nil {
		t.Fatal(err)
	}
	if got := whatIf(tmpl); got["web-pip0"] != "NoChange" || got["web-pip1"] != "NoChange" {
		t.Errorf("what-if after = %v", got)
	}
	changed := map[string]any{"parameters": tmpl["parameters"], "resources": []any{map[string]any{
		"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "location": "[resourceGroup().location]",
		"name": "[concat(parameters('prefix'), '-pip', copyIndex())]", "copy": map[string]any{"name": "pips", "count": 3},
		"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static", "idleTimeoutInMinutes": 10}}}}
	if got := whatIf(changed); got["web-pip0"] != "Modify" || got["web-pip0 properties.idleTimeoutInMinutes"] != "Modify" || got["web-pip2"] != "Create" {
		t.Errorf("what-if changed = %v", got)
	}
	pager := client.NewListByResourceGroupPager("rg", nil)
	count := 0
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count += len(page.Value)
	}
	if count != 1 {
		t.Errorf("listed %d deployments", count)
	}
	if _, err := client.Get(ctx, "rg", "d1", nil); err != nil {
		t.Errorf("Get: %v", err)
	}
}

func TestDeploymentImageVersions(t *testing.T) {
	n := armtest.Start(t)
	base := "/subscriptions/" + n.Sub + "/providers/Microsoft.Compute/locations/eastus/publishers/"
	q := "?" + url.Values{"$top": {"1"}, "$orderby": {"name desc"}, "api-version": {"2020-06-01"}}.Encode()
	tests := []struct {
		path   string
		status int
		want   string
	}{
		{base + "nimbus/artifacttypes/vmimage/offers/workloads/skus/echo/versions" + q, http.StatusOK, `"name":"latest"`},
		{base + "NIMBUS/artifacttypes/vmimage/offers/workloads/skus/script/versions" + q, http.StatusOK, `"name":"latest"`},
		{base + "nimbus/artifacttypes/vmimage/offers/workloads/skus/echo/versions/latest?api-version=2020-06-01", http.StatusOK, `"operatingSystem":"Linux"`},
		{base + "Canonical/artifacttypes/vmimage/offers/UbuntuServer/skus/18.04-LTS/versions" + q, http.StatusNotFound, `"code":"NotFound"`},
		{base + "nimbus/artifacttypes/vmimage/offers/workloads/skus?api-version=2020-06-01", http.StatusOK, `"name":"script"`},
	}
	for _, tc := range tests {
		st, _, b := n.Do(http.MethodGet, tc.path, nil)
		if st != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("GET %s: %d %s", tc.path, st, b)
		}
	}
}

// TestDeploymentAZCreateCommands runs az 2.45's create commands, which
// submit template deployments (arm-clients.md §3.3).
func TestDeploymentAZCreateCommands(t *testing.T) {
	n := armtest.Start(t)
	env := armtest.LoginAZ(t, n)
	n.Group("rg")
	var lb struct {
		LoadBalancer struct {
			FrontendIPConfigurations []struct{ Name string }
			BackendAddressPools      []struct{ Name string }
			ProvisioningState        string
		} `json:"loadBalancer"`
	}
	out := armtest.RunAZ(t, env, "network", "lb", "create", "-g", "rg", "-n", "lb1", "--public-ip-address", "pip1", "-o", "json")
	if err := json.Unmarshal(out, &lb); err != nil || lb.LoadBalancer.ProvisioningState != "Succeeded" ||
		len(lb.LoadBalancer.FrontendIPConfigurations) != 1 || lb.LoadBalancer.BackendAddressPools[0].Name != "lb1bepool" {
		t.Fatalf("lb create: %v %s", err, out)
	}
	var vm struct {
		VMSS struct {
			ProvisioningState string
			UpgradePolicy     struct{ Mode string }
		} `json:"vmss"`
	}
	// The load balancer az network lb create made.
	out = armtest.RunAZ(t, env, "vmss", "create", "-g", "rg", "-n", "vmss2", "--image", "nimbus:workloads:echo:latest",
		"--lb", "lb1", "--backend-pool-name", "lb1bepool",
		"--admin-username", "azureuser", "--admin-password", "Secr3t-Passw0rd!", "--instance-count", "2", "-o", "json")
	if err := json.Unmarshal(out, &vm); err != nil || vm.VMSS.ProvisioningState != "Succeeded" {
		t.Fatalf("vmss create --lb: %v %s", err, out)
	}
	// A template file of our own, with parameters, as users deploy them.
	out = armtest.RunAZ(t, env, "deployment", "group", "create", "-g", "rg", "-n", "seed", "--template-file", "../template/testdata/seed-scenario.json",
		"--parameters", "adminPassword=Secr3t-Passw0rd!", "prefix=seed", "natPortStart=51000", "-o", "json")
	var seed struct {
		Properties struct {
			ProvisioningState string
			Outputs           map[string]struct{ Value any }
		}
	}
	if err := json.Unmarshal(out, &seed); err != nil || seed.Properties.ProvisioningState != "Succeeded" ||
		seed.Properties.Outputs["natPorts"].Value != "51000-51119" {
		t.Fatalf("deployment group create: %v %s", err, out)
	}
	armtest.RunAZ(t, env, "deployment", "group", "validate", "-g", "rg", "--template-file", "../template/testdata/seed-scenario.json",
		"--parameters", "adminPassword=Secr3t-Passw0rd!", "prefix=seed", "natPortStart=51000")
	if _, stderr, err := armtest.TryAZ(t, env, "deployment", "group", "validate", "-g", "rg", "--template-file", "../template/testdata/seed-scenario.json",
		"--parameters", "prefix=seed"); err == nil || !strings.Contains(stderr, "adminPassword") {
		t.Errorf("validate without adminPassword: %v %s", err, stderr)
	}
	out = armtest.RunAZ(t, env, "deployment", "group", "what-if", "-g", "rg", "--template-file", "../template/testdata/seed-scenario.json",
		"--parameters", "adminPassword=Secr3t-Passw0rd!", "prefix=seed", "natPortStart=51000", "instanceCount=4", "--no-pretty-print", "-o", "json")
	if !strings.Contains(string(out), `"changeType": "Modify"`) && !strings.Contains(string(out), `"changeType":"Modify"`) {
		t.Errorf("what-if: %s", out)
	}
	out = armtest.RunAZ(t, env, "deployment", "operation", "group", "list", "-g", "rg", "-n", "seed", "--query", "length(@)")
	if strings.TrimSpace(string(out)) != "4" {
		t.Errorf("deployment operations: %s", out)
	}
	out = armtest.RunAZ(t, env, "deployment", "sub", "create", "-l", "westus", "-n", "subdep", "--template-file", "../template/testdata/subscription-scope.json",
		"--query", "properties.outputs.subnet.value", "-o", "tsv")
	if !strings.HasSuffix(strings.TrimSpace(string(out)), "/resourceGroups/app/providers/Microsoft.Network/virtualNetworks/vn/subnets/default") {
		t.Errorf("deployment sub create: %s", out)
	}
	out = armtest.RunAZ(t, env, "deployment", "group", "list", "-g", "rg", "--query", "[].properties.provisioningState", "-o", "tsv")
	if strings.Count(string(out), "Succeeded") != 3 {
		t.Errorf("deployment list: %s", out)
	}
}

// TestDeploymentNested deploys a template with a nested deployment (what a
// Bicep module compiles to) and reads the module's output.
func TestDeploymentNested(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	module := map[string]any{
		"parameters": map[string]any{"name": map[string]any{"type": "string"}},
		"resources": []any{map[string]any{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01",
			"name": "[parameters('name')]", "location": "[resourceGroup().location]",
			"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}}},
		"outputs": map[string]any{"ip": map[string]any{"type": "string", "value": "[reference(parameters('name')).ipAddress]"}},
	}
	tmpl := map[string]any{
		"resources": []any{map[string]any{"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "pipModule",
			"properties": map[string]any{"mode": "Incremental", "expressionEvaluationOptions": map[string]any{"scope": "inner"},
				"parameters": map[string]any{"name": map[string]any{"value": "modpip"}}, "template": module}}},
		"outputs": map[string]any{
			"ip":  map[string]any{"type": "string", "value": "[reference('pipModule').outputs.ip.value]"},
			"api": map[string]any{"type": "string", "value": "[providers('Microsoft.Resources', 'deployments').apiVersions[0]]"},
		},
	}
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl}}
	if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/main")+depAPI, body); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	d := waitDeployment(n, "rg", "main")
	props := d["properties"].(map[string]any)
	if props["provisioningState"] != "Succeeded" {
		t.Fatalf("deployment = %v", props)
	}
	ip := props["outputs"].(map[string]any)["ip"].(map[string]any)["value"]
	if s, _ := ip.(string); !strings.HasPrefix(s, "127.77.") {
		t.Errorf("module output ip = %v", ip)
	}
	if api := props["outputs"].(map[string]any)["api"].(map[string]any)["value"]; api == "" || api == nil {
		t.Errorf("providers() output = %v", api)
	}
	if inner := waitDeployment(n, "rg", "pipModule"); inner["properties"].(map[string]any)["provisioningState"] != "Succeeded" {
		t.Errorf("module deployment = %v", inner)
	}
}

// TestDeploymentCancel cancels a long serial deployment while it runs.
func TestDeploymentCancel(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	tmpl := map[string]any{"resources": []any{map[string]any{
		"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "location": "eastus",
		"name":       "[concat('vn', copyIndex())]",
		"copy":       map[string]any{"name": "vns", "count": 800, "mode": "Serial"},
		"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}}},
	}}}
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl}}
	if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/long")+depAPI, body); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/long")+depAPI, body); st != http.StatusConflict || armtest.ErrCode(b) != "DeploymentActive" {
		t.Errorf("second PUT while running: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodDelete, n.RGPath("rg", "Microsoft.Resources/deployments/long")+depAPI, nil); st != http.StatusConflict {
		t.Errorf("DELETE while running: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodPost, n.RGPath("rg", "Microsoft.Resources/deployments/long/cancel")+depAPI, nil); st != http.StatusNoContent {
		t.Fatalf("cancel: %d %s", st, b)
	}
	d := waitDeployment(n, "rg", "long")
	props := d["properties"].(map[string]any)
	if props["provisioningState"] != "Canceled" || props["error"].(map[string]any)["code"] != "DeploymentCanceled" {
		t.Fatalf("deployment = %v", props)
	}
	_, _, b := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Resources/deployments/long/operations")+depAPI, nil)
	if c := strings.Count(string(b), `"provisioningState":"Succeeded"`); c >= 800 {
		t.Errorf("all %d resources deployed despite the cancel", c)
	}
}

// TestDeploymentSubscriptionScope deploys a subscription-scope template (a
// resource group and a module into it), as `az deployment sub create` and
// Bicep's targetScope = 'subscription' do.
func TestDeploymentSubscriptionScope(t *testing.T) {
	n := armtest.Start(t)
	ctx := context.Background()
	module := map[string]any{
		"resources": []any{map[string]any{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "name": "vn",
			"location":   "[resourceGroup().location]",
			"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}}}}},
		"outputs": map[string]any{"vnId": map[string]any{"type": "string", "value": "[resourceId('Microsoft.Network/virtualNetworks', 'vn')]"}},
	}
	tmpl := map[string]any{
		"parameters": map[string]any{"rgName": map[string]any{"type": "string", "defaultValue": "app"}},
		"resources": []any{
			map[string]any{"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2021-04-01", "name": "[parameters('rgName')]", "location": "[deployment().location]"},
			map[string]any{"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "net", "resourceGroup": "[parameters('rgName')]",
				"dependsOn":  []any{"[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('rgName'))]"},
				"properties": map[string]any{"mode": "Incremental", "expressionEvaluationOptions": map[string]any{"scope": "inner"}, "template": module}},
		},
		"outputs": map[string]any{"vnId": map[string]any{"type": "string", "value": "[reference(resourceId(parameters('rgName'), 'Microsoft.Resources/deployments', 'net')).outputs.vnId.value]"}},
	}
	client, err := armresources.NewDeploymentsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	poller, err := client.BeginCreateOrUpdateAtSubscriptionScope(ctx, "subdep", armresources.Deployment{Location: to.Ptr("westus"),
		Properties: &armresources.DeploymentProperties{Mode: to.Ptr(armresources.DeploymentModeIncremental), Template: tmpl}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := poller.PollUntilDone(ctx, &azPollOpts)
	if err != nil {
		t.Fatal(err)
	}
	vnID := "/subscriptions/" + n.Sub + "/resourceGroups/app/providers/Microsoft.Network/virtualNetworks/vn"
	if out := res.Properties.Outputs.(map[string]any)["vnId"].(map[string]any)["value"]; out != vnID {
		t.Errorf("vnId output = %v", out)
	}
	st, _, b := n.Do(http.MethodGet, "/subscriptions/"+n.Sub+"/resourcegroups/app?api-version=2021-04-01", nil)
	if st != http.StatusOK || !strings.Contains(string(b), `"location":"westus"`) {
		t.Errorf("group app: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodGet, vnID+"?api-version=2022-07-01", nil); st != http.StatusOK {
		t.Errorf("vnet: %d %s", st, b)
	}
	pager := client.NewListAtSubscriptionScopePager(nil)
	names := []string{}
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Value {
			names = append(names, *d.Name)
		}
	}
	if len(names) != 1 || names[0] != "subdep" {
		t.Errorf("subscription deployments = %v", names)
	}
	// Without a location the subscription-scope deployment is refused.
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl}}
	if st, _, b := n.Do(http.MethodPut, "/subscriptions/"+n.Sub+"/providers/Microsoft.Resources/deployments/noloc"+depAPI, body); st != http.StatusBadRequest || armtest.ErrCode(b) != "LocationRequired" {
		t.Errorf("no location: %d %s", st, b)
	}
}

// BenchmarkDeployment100VNets deploys 100 independent virtual networks in
// one template through the API (no runtime): PUT to Succeeded.
func BenchmarkDeployment100VNets(b *testing.B) {
	n := armtest.Start(b)
	tmpl := map[string]any{"resources": []any{map[string]any{
		"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "location": "eastus",
		"name":       "[concat('vn', copyIndex())]",
		"copy":       map[string]any{"name": "vns", "count": 100},
		"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}}},
	}}}
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl}}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		rg := fmt.Sprintf("rg%d", i)
		i++
		n.Group(rg)
		if st, _, out := n.Do(http.MethodPut, n.RGPath(rg, "Microsoft.Resources/deployments/d")+depAPI, body); st != http.StatusCreated {
			b.Fatalf("PUT: %d %s", st, out)
		}
		if d := waitDeployment(n, rg, "d"); d["properties"].(map[string]any)["provisioningState"] != "Succeeded" {
			b.Fatalf("deployment: %v", d["properties"])
		}
	}
}
