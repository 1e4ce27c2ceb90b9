package deployments_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
)

// unservedTemplate has a served public IP and three types nimbus does not
// serve: a storage account, a Bastion host (top-level, with nested
// properties and a reference to the IP) and a scale set's extension as a
// resource of its own (a child type).
func unservedTemplate() map[string]any {
	return map[string]any{
		"$schema":        "https://schema.management.azure.com/schemas/2019-04-01/deploymentTemplate.json#",
		"contentVersion": "1.0.0.0",
		"resources": []any{
			map[string]any{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "pip", "location": "eastus",
				"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}},
			map[string]any{"type": "Microsoft.Storage/storageAccounts", "apiVersion": "2022-09-01", "name": "[concat('st', uniqueString(resourceGroup().id))]",
				"location": "eastus", "kind": "StorageV2", "sku": map[string]any{"name": "Standard_LRS"},
				"tags":       map[string]any{"team": "web"},
				"properties": map[string]any{"minimumTlsVersion": "TLS1_2", "encryption": map[string]any{"keySource": "Microsoft.Storage"}}},
			map[string]any{"type": "Microsoft.Network/bastionHosts", "apiVersion": "2022-07-01", "name": "bastion", "location": "eastus",
				"dependsOn": []any{"[resourceId('Microsoft.Network/publicIPAddresses/', 'pip')]"},
				"properties": map[string]any{"ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
					"publicIPAddress": map[string]any{"id": "[resourceId('Microsoft.Network/publicIPAddresses', 'pip')]"}}}}}},
			map[string]any{"type": "Microsoft.Compute/virtualMachineScaleSets/extensions", "apiVersion": "2022-08-01", "name": "vmss/health",
				"properties": map[string]any{"publisher": "Microsoft.ManagedServices", "type": "ApplicationHealthLinux", "typeHandlerVersion": "1.0"}},
		},
		"outputs": map[string]any{
			"tls": map[string]any{"type": "string", "value": "[reference(resourceId('Microsoft.Storage/storageAccounts', concat('st', uniqueString(resourceGroup().id)))).minimumTlsVersion]"},
		},
	}
}

func TestUnservedTypesRefusedByDefault(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": unservedTemplate()}}
	st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/d")+depAPI, body)
	if st != http.StatusBadRequest || armtest.ErrCode(b) != "InvalidTemplateDeployment" {
		t.Fatalf("PUT: %d %s", st, b)
	}
	for _, want := range []string{"'storageAccounts' could not be found in the namespace 'Microsoft.Storage'",
		"'bastionHosts' could not be found in the namespace 'Microsoft.Network'",
		"'virtualMachineScaleSets/extensions' could not be found in the namespace 'Microsoft.Compute'"} {
		if !strings.Contains(string(b), want) {
			t.Errorf("error lacks %q: %s", want, b)
		}
	}
	if st, _, b := n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip")+"?api-version=2022-07-01", nil); st != http.StatusNotFound {
		t.Errorf("the served resource was created: %d %s", st, b)
	}
	// A direct PUT is refused too, naming the type.
	st, _, b = n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.KeyVault/vaults/kv")+"?api-version=2022-07-01", map[string]any{"location": "eastus"})
	if st != http.StatusNotFound || armtest.ErrCode(b) != "InvalidResourceType" || !strings.Contains(string(b), "'vaults'") {
		t.Errorf("direct PUT: %d %s", st, b)
	}
}

func TestUnservedTypesStoredWithGroupTag(t *testing.T) {
	n := armtest.Start(t)
	n.MustPut("/subscriptions/"+n.Sub+"/resourceGroups/rg?api-version=2021-04-01",
		map[string]any{"location": "eastus", "tags": map[string]any{arm.UnservedGroupTag: arm.UnservedStore}})
	n.Group("other") // refuses: the server's default
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": unservedTemplate()}}
	if st, _, b := n.Do(http.MethodPut, n.RGPath("rg", "Microsoft.Resources/deployments/d")+depAPI, body); st != http.StatusCreated {
		t.Fatalf("PUT: %d %s", st, b)
	}
	d := waitDeployment(n, "rg", "d")
	props := d["properties"].(map[string]any)
	if props["provisioningState"] != "Succeeded" {
		t.Fatalf("deployment: %v", props)
	}
	if out := props["outputs"].(map[string]any)["tls"].(map[string]any)["value"]; out != "TLS1_2" {
		t.Errorf("reference() of a stored resource = %v", out)
	}
	get := func(path string) (int, map[string]any) {
		st, _, b := n.Do(http.MethodGet, n.RGPath("rg", path)+"?api-version=2022-09-01", nil)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		return st, m
	}
	// The storage account round-trips what the template sent, marked.
	var saName string
	st, _, b := n.Do(http.MethodGet, "/subscriptions/"+n.Sub+"/resourceGroups/rg/resources?api-version=2021-04-01", nil)
	var list struct {
		Value []struct{ ID, Name, Type string }
	}
	if err := json.Unmarshal(b, &list); st != http.StatusOK || err != nil {
		t.Fatalf("resources: %d %s", st, b)
	}
	types := map[string]bool{}
	for _, r := range list.Value {
		types[r.Type] = true
		if r.Type == "Microsoft.Storage/storageAccounts" {
			saName = r.Name
		}
	}
	if !types["Microsoft.Storage/storageAccounts"] || !types["Microsoft.Network/bastionHosts"] || !types["Microsoft.Network/publicIPAddresses"] {
		t.Fatalf("GET resources lists %v: %s", types, b)
	}
	st, sa := get("Microsoft.Storage/storageAccounts/" + saName)
	if st != http.StatusOK {
		t.Fatalf("GET storage account: %d %v", st, sa)
	}
	sp := sa["properties"].(map[string]any)
	tags := sa["tags"].(map[string]any)
	if sa["kind"] != "StorageV2" || sa["sku"].(map[string]any)["name"] != "Standard_LRS" || sa["location"] != "eastus" ||
		sp["minimumTlsVersion"] != "TLS1_2" || sp["encryption"].(map[string]any)["keySource"] != "Microsoft.Storage" ||
		sp["provisioningState"] != "Succeeded" || tags["team"] != "web" || tags[arm.UnservedMarkTag] != arm.UnservedMarkValue {
		t.Errorf("storage account = %v", sa)
	}
	if st, ext := get("Microsoft.Compute/virtualMachineScaleSets/vmss/extensions/health"); st != http.StatusOK ||
		ext["type"] != "Microsoft.Compute/virtualMachineScaleSets/extensions" || ext["name"] != "health" {
		t.Errorf("GET extension: %d %v", st, ext)
	}
	// Listed at /nimbus/info.
	st, _, b = n.Do(http.MethodGet, "/nimbus/info", nil)
	if st != http.StatusOK || !strings.Contains(string(b), "/providers/Microsoft.Network/bastionHosts/bastion") ||
		!strings.Contains(string(b), `"default":"refuse"`) {
		t.Errorf("/nimbus/info: %d %s", st, b)
	}
	// Direct PUT, PATCH, list and DELETE of another unserved type.
	kv := n.RGPath("rg", "Microsoft.KeyVault/vaults/kv") + "?api-version=2022-07-01"
	st, _, b = n.Do(http.MethodPut, kv, map[string]any{"location": "East US", "properties": map[string]any{"tenantId": "t", "sku": map[string]any{"name": "standard"}}})
	if st != http.StatusCreated || !strings.Contains(string(b), `"provisioningState":"Succeeded"`) {
		t.Fatalf("PUT vault: %d %s", st, b)
	}
	st, _, b = n.Do(http.MethodPatch, kv, map[string]any{"tags": map[string]any{"env": "ci"}, "properties": map[string]any{"enableSoftDelete": false}})
	if st != http.StatusOK || !strings.Contains(string(b), `"env":"ci"`) || !strings.Contains(string(b), `"tenantId":"t"`) ||
		!strings.Contains(string(b), `"enableSoftDelete":false`) || !strings.Contains(string(b), arm.UnservedMarkTag) {
		t.Errorf("PATCH vault: %d %s", st, b)
	}
	st, _, b = n.Do(http.MethodGet, n.RGPath("rg", "Microsoft.KeyVault/vaults")+"?api-version=2022-07-01", nil)
	if st != http.StatusOK || !strings.Contains(string(b), "/vaults/kv") {
		t.Errorf("list vaults: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodDelete, kv, nil); st != http.StatusOK {
		t.Errorf("DELETE vault: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodDelete, kv, nil); st != http.StatusNoContent {
		t.Errorf("DELETE vault again: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodGet, kv, nil); st != http.StatusNotFound || armtest.ErrCode(b) != "ResourceNotFound" {
		t.Errorf("GET deleted vault: %d %s", st, b)
	}
	// The other group keeps refusing.
	if st, _, b := n.Do(http.MethodPut, n.RGPath("other", "Microsoft.KeyVault/vaults/kv")+"?api-version=2022-07-01", map[string]any{"location": "eastus"}); st != http.StatusNotFound {
		t.Errorf("PUT in a group without the tag: %d %s", st, b)
	}
	// Deleting the group removes its stored resources.
	if st, _, b := n.Do(http.MethodDelete, "/subscriptions/"+n.Sub+"/resourceGroups/rg?api-version=2021-04-01", nil); st != http.StatusAccepted {
		t.Fatalf("DELETE group: %d %s", st, b)
	}
	st, _, b = n.Do(http.MethodGet, "/nimbus/info", nil)
	if st != http.StatusOK || strings.Contains(string(b), "bastionHosts") {
		t.Errorf("/nimbus/info after the group's delete: %d %s", st, b)
	}
}
