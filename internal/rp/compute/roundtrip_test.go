package compute_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"nimbus/internal/arm/armtest"
)

// TestUpdateKeepsModel: what a client leaves out of an update is kept, as
// Azure keeps it — az 2.45's `vmss update` (which drops imageReference on
// purpose) and a partial PUT — and properties nimbus does not act on
// survive every update.
func TestUpdateKeepsModel(t *testing.T) {
	e := armtest.NewEnv(t)
	if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	vmss := e.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/web") + "?api-version=2024-07-01"
	subnet := e.ID("Microsoft.Network/virtualNetworks/vn1/subnets/default")
	body := map[string]any{
		"location": "eastus", "sku": map[string]any{"name": "Standard_B1s", "capacity": 1},
		"properties": map[string]any{
			"upgradePolicy":    map[string]any{"mode": "Manual"},
			"scaleInPolicy":    map[string]any{"rules": []string{"Default"}, "prioritizeUnhealthyVMs": true},
			"resiliencyPolicy": map[string]any{"resilientVMCreationPolicy": map[string]any{"enabled": true}},
			"virtualMachineProfile": map[string]any{
				"hardwareProfile": map[string]any{"vmSizeProperties": map[string]any{"vCPUsAvailable": 1}},
				"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Secr3t-Passw0rd!",
					"customData": scriptA, "linuxConfiguration": map[string]any{"patchSettings": map[string]any{"patchMode": "ImageDefault"}}},
				"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "Canonical", "offer": "0001-com-ubuntu-server-jammy",
					"sku": "22_04-lts-gen2", "version": "latest"}},
				"diagnosticsProfile": map[string]any{"bootDiagnostics": map[string]any{"enabled": true}},
				"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
					"primary": true, "auxiliaryMode": "None", "ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
						"subnet":                          map[string]any{"id": subnet},
						"loadBalancerBackendAddressPools": []any{map[string]any{"id": e.LBChild("lb1", "backendAddressPools", "be")}}}}}}}}},
			},
		},
	}
	e.MustPut(vmss, body)
	check := func(when string) {
		t.Helper()
		st, _, b := e.Do(http.MethodGet, vmss, nil)
		if st != http.StatusOK {
			t.Fatalf("%s: GET %d %s", when, st, b)
		}
		var got struct {
			Properties struct {
				ScaleInPolicy         struct{ PrioritizeUnhealthyVMs bool }
				ResiliencyPolicy      struct{ ResilientVMCreationPolicy struct{ Enabled bool } }
				VirtualMachineProfile struct {
					HardwareProfile struct{ VMSizeProperties struct{ VCPUsAvailable int } }
					OSProfile       struct {
						LinuxConfiguration struct {
							PatchSettings    struct{ PatchMode string }
							ProvisionVMAgent *bool
						}
					}
					StorageProfile struct {
						ImageReference struct{ Publisher, Offer string }
					}
					DiagnosticsProfile struct{ BootDiagnostics struct{ Enabled bool } }
					NetworkProfile     struct {
						NetworkInterfaceConfigurations []struct {
							Properties struct{ AuxiliaryMode string }
						}
					}
				}
			}
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatal(err)
		}
		p := got.Properties
		vp := p.VirtualMachineProfile
		switch {
		case vp.StorageProfile.ImageReference.Publisher != "Canonical":
			t.Errorf("%s: imageReference lost: %s", when, b)
		case !p.ScaleInPolicy.PrioritizeUnhealthyVMs, !p.ResiliencyPolicy.ResilientVMCreationPolicy.Enabled,
			vp.HardwareProfile.VMSizeProperties.VCPUsAvailable != 1, vp.OSProfile.LinuxConfiguration.PatchSettings.PatchMode != "ImageDefault",
			!vp.DiagnosticsProfile.BootDiagnostics.Enabled,
			len(vp.NetworkProfile.NetworkInterfaceConfigurations) != 1 || vp.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.AuxiliaryMode != "None":
			t.Errorf("%s: a property nimbus does not act on was lost: %s", when, b)
		case vp.OSProfile.LinuxConfiguration.ProvisionVMAgent == nil || !*vp.OSProfile.LinuxConfiguration.ProvisionVMAgent:
			t.Errorf("%s: Azure's default linuxConfiguration.provisionVMAgent is missing: %s", when, b)
		}
		if cd := instScaleSet(t, e.Node, "web").Properties.VirtualMachineProfile.OSProfile.CustomData; cd != scriptA {
			t.Errorf("%s: stored customData %q; want it kept", when, cd)
		}
	}
	check("after create")

	// A partial PUT: a new capacity and a profile with only an osProfile.
	e.MustPut(vmss, map[string]any{"location": "eastus", "sku": map[string]any{"capacity": 2},
		"properties": map[string]any{"virtualMachineProfile": map[string]any{"osProfile": map[string]any{"computerNamePrefix": "web"}}}})
	check("after a partial PUT")
	if v := instScaleSet(t, e.Node, "web"); v.Capacity() != 2 || v.SKU.Name != "Standard_B1s" {
		t.Errorf("partial PUT: sku %+v", v.SKU)
	}

	env := armtest.LoginAZ(t, e.Node)
	armtest.RunAZ(t, env, "vmss", "update", "-g", "rg", "-n", "web", "--set", "tags.x=y", "-o", "none")
	check("after az vmss update --set tags.x=y")
	if v := instScaleSet(t, e.Node, "web"); v.Tags["x"] != "y" {
		t.Errorf("az vmss update: tags %v", v.Tags)
	}
	armtest.RunAZ(t, env, "vmss", "scale", "-g", "rg", "-n", "web", "--new-capacity", "3", "-o", "none")
	check("after az vmss scale")
	if v := instScaleSet(t, e.Node, "web"); v.Capacity() != 3 {
		t.Errorf("az vmss scale: capacity %d", v.Capacity())
	}
}
