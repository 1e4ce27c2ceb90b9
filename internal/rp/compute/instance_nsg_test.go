package compute_test

import (
	"encoding/json"
	"net/http"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"

	"nimbus/internal/arm/armtest"
)

// TestEffectiveNSGs: POST effectiveNetworkSecurityGroups on a scale-set
// VM's NIC lists the subnet's group then the NIC's, each associated as
// Azure does, with the user and default rules expanded (ports as ranges,
// "*" as All and 0.0.0.0/0, VirtualNetwork as the network's space); a
// scale set cannot name a group that does not exist.
func TestEffectiveNSGs(t *testing.T) {
	e := armtest.NewEnv(t)
	q := "?api-version=2022-07-01"
	rule := func(name string, prio int, port string) map[string]any {
		return map[string]any{"name": name, "properties": map[string]any{"protocol": "Tcp", "sourcePortRange": "*", "destinationPortRange": port,
			"sourceAddressPrefix": "Internet", "destinationAddressPrefix": "*", "access": "Allow", "priority": prio, "direction": "Inbound"}}
	}
	subNSG, nicNSG := e.ID("Microsoft.Network/networkSecurityGroups/subnet-nsg"), e.ID("Microsoft.Network/networkSecurityGroups/nic-nsg")
	e.MustPut(subNSG+q, map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": []any{rule("http", 100, "80")}}})
	e.MustPut(nicNSG+q, map[string]any{"location": "eastus", "properties": map[string]any{"securityRules": []any{rule("alt", 200, "8080-8081")}}})
	e.MustPut(e.ID("Microsoft.Network/virtualNetworks/vn1")+q, map[string]any{"location": "eastus", "properties": map[string]any{
		"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
		"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24",
			"networkSecurityGroup": map[string]any{"id": subNSG}}}}}})
	if _, err := e.PutLB(t, "lb1", instLB(e)); err != nil {
		t.Fatal(err)
	}
	body := e.VMSSBody("lb1", true, armcompute.UpgradeModeManual)
	nic := body.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0]
	nic.Properties.NetworkSecurityGroup = &armcompute.SubResource{ID: to.Ptr(e.ID("Microsoft.Network/networkSecurityGroups/missing"))}
	if _, err := e.PutVMSS(t, "web", body, nil); err == nil {
		t.Fatal("a scale set naming a missing NSG was accepted")
	}
	nic.Properties.NetworkSecurityGroup = &armcompute.SubResource{ID: to.Ptr(nicNSG)}
	body.SKU.Capacity = to.Ptr[int64](1)
	if _, err := e.PutVMSS(t, "web", body, nil); err != nil {
		t.Fatal(err)
	}
	ie := &instEnv{Env: e, vmID: e.ID("Microsoft.Compute/virtualMachineScaleSets/web")}
	ie.writeInstance(t, 0)
	st, _, b := e.Do(http.MethodPost, ie.vmID+"/virtualMachines/0/networkInterfaces/nic/effectiveNetworkSecurityGroups?api-version=2018-10-01", nil)
	var got struct {
		Value []struct {
			NetworkSecurityGroup struct{ ID string }
			Association          struct {
				Subnet, NetworkInterface *struct{ ID string }
			}
			EffectiveSecurityRules []struct {
				Name, Protocol, SourcePortRange, DestinationPortRange, SourceAddressPrefix, DestinationAddressPrefix, Access, Direction string
				DestinationPortRanges                                                                                                   []string
				ExpandedSourceAddressPrefix                                                                                             []string
				Priority                                                                                                                int
			}
		}
	}
	if st != http.StatusOK || json.Unmarshal(b, &got) != nil || len(got.Value) != 2 {
		t.Fatalf("effective NSGs: %d %s", st, b)
	}
	sub, own := got.Value[0], got.Value[1]
	if sub.NetworkSecurityGroup.ID != subNSG || sub.Association.Subnet == nil || own.NetworkSecurityGroup.ID != nicNSG ||
		own.Association.NetworkInterface == nil || own.Association.NetworkInterface.ID != ie.vmID+"/virtualMachines/0/networkInterfaces/nic" {
		t.Fatalf("groups and associations: %s", b)
	}
	if len(sub.EffectiveSecurityRules) != 7 {
		t.Fatalf("subnet group: %d rules, want the user rule and 6 defaults: %s", len(sub.EffectiveSecurityRules), b)
	}
	r := sub.EffectiveSecurityRules[0]
	if r.Name != "securityRules/http" || r.Protocol != "Tcp" || r.SourcePortRange != "0-65535" || r.DestinationPortRange != "80-80" ||
		r.SourceAddressPrefix != "Internet" || r.DestinationAddressPrefix != "0.0.0.0/0" || r.Priority != 100 || r.Access != "Allow" {
		t.Errorf("first subnet rule: %+v", r)
	}
	var vnet []string
	for _, r := range sub.EffectiveSecurityRules {
		if r.Name == "defaultSecurityRules/AllowVnetInBound" {
			vnet = r.ExpandedSourceAddressPrefix
			if r.Protocol != "All" {
				t.Errorf("AllowVnetInBound protocol %s, want All", r.Protocol)
			}
		}
	}
	if len(vnet) != 1 || vnet[0] != "198.18.0.0/16" {
		t.Errorf("VirtualNetwork expanded to %v", vnet)
	}
	if a := own.EffectiveSecurityRules[0]; a.Name != "securityRules/alt" || a.DestinationPortRange != "8080-8081" {
		t.Errorf("NIC rule: %+v", a)
	}
}
