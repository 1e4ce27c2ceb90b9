package compute_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// putInstance writes a scale-set instance record as the scale-set
// controller does: running, with the given applied model and NAT ports.
func putInstance(e *armtest.Env, t *testing.T, vmssName, instanceID string, model *resource.VMProfile, natPorts map[string]uint16) {
	t.Helper()
	vmssID := e.ID("Microsoft.Compute/virtualMachineScaleSets/" + vmssName)
	in := resource.Instance{ScaleSetID: vmssID, InstanceID: instanceID, Name: vmssName + "_" + instanceID, Model: model,
		ModelHash: resource.ProfileHash(model), PrivateIP: "198.18.0.10", NATPorts: natPorts,
		Power: resource.PowerRunning, Actual: resource.PowerRunning, ProvisioningState: resource.Succeeded}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Store.Put(context.Background(), resource.InstanceKey(vmssID, instanceID), b, store.AnyRevision); err != nil {
		t.Fatal(err)
	}
}

// storedModel returns the scale set's stored virtualMachineProfile.
func storedModel(e *armtest.Env, t *testing.T, vmssName string) *resource.VMProfile {
	t.Helper()
	id, err := resource.ParseID(e.ID("Microsoft.Compute/virtualMachineScaleSets/" + vmssName))
	if err != nil {
		t.Fatal(err)
	}
	kv, err := e.Store.Get(context.Background(), resource.Key(id))
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.DecodeScaleSet(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v.Properties.VirtualMachineProfile
}

// TestLoadBalancerInstanceMembership: with an instance record in the store,
// the LB shows it in backendIPConfigurations, the NAT rule V2 port mapping
// query and rule health list it, and a pool the instance's applied model
// still uses cannot be removed even after the scale-set model dropped it.
func TestLoadBalancerInstanceMembership(t *testing.T) {
	e := armtest.NewEnv(t)
	body := e.PublicLB("lb1")
	p := body.Properties
	p.BackendAddressPools = append(p.BackendAddressPools, &armnetwork.BackendAddressPool{Name: to.Ptr("be2")})
	p.InboundNatRules = append(p.InboundNatRules, &armnetwork.InboundNatRule{Name: to.Ptr("natv2"), Properties: &armnetwork.InboundNatRulePropertiesFormat{
		FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(e.LBChild("lb1", "frontendIPConfigurations", "fe"))},
		BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(e.LBChild("lb1", "backendAddressPools", "be"))},
		Protocol:                to.Ptr(armnetwork.TransportProtocolTCP), FrontendPortRangeStart: to.Ptr[int32](50000), FrontendPortRangeEnd: to.Ptr[int32](50099),
		BackendPort: to.Ptr[int32](22)}})
	if _, err := e.PutLB(t, "lb1", body); err != nil {
		t.Fatal(err)
	}
	v := e.VMSSBody("lb1", false, armcompute.UpgradeModeManual)
	ipc := v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
	ipc.LoadBalancerBackendAddressPools = append(ipc.LoadBalancerBackendAddressPools, &armcompute.SubResource{ID: to.Ptr(e.LBChild("lb1", "backendAddressPools", "be2"))})
	if _, err := e.PutVMSS(t, "vmss1", v, nil); err != nil {
		t.Fatal(err)
	}
	natID := strings.ToLower(e.LBChild("lb1", "inboundNatRules", "natv2"))
	putInstance(e, t, "vmss1", "0", storedModel(e, t, "vmss1"), map[string]uint16{natID: 50000})
	ipcID := e.ID("Microsoft.Compute/virtualMachineScaleSets/vmss1/virtualMachines/0/networkInterfaces/nic/ipConfigurations/ipc")

	lb, err := e.LBs.Get(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations; len(got) != 1 || !strings.EqualFold(*got[0].ID, ipcID) {
		t.Fatalf("backendIPConfigurations = %v, want [%s]", got, ipcID)
	}
	if got := armtest.RefIDs(lb.Properties.BackendAddressPools[0].Properties.InboundNatRules); len(got) != 1 {
		t.Errorf("pool inboundNatRules back-reference = %v", got)
	}
	mp, err := e.LBs.BeginListInboundNatRulePortMappings(e.Ctx, "rg", "lb1", "be",
		armnetwork.QueryInboundNatRulePortMappingRequest{IPConfiguration: &armnetwork.SubResource{ID: to.Ptr(ipcID)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := mp.PollUntilDone(e.Ctx, armtest.Poll)
	if err != nil || len(m.InboundNatRulePortMappings) != 1 || *m.InboundNatRulePortMappings[0].FrontendPort != 50000 ||
		*m.InboundNatRulePortMappings[0].BackendPort != 22 || *m.InboundNatRulePortMappings[0].InboundNatRuleName != "natv2" {
		t.Fatalf("port mappings: %v %+v", err, m)
	}
	hp, err := e.Rules.BeginHealth(e.Ctx, "rg", "lb1", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hp.PollUntilDone(e.Ctx, armtest.Poll)
	if err != nil || len(h.LoadBalancerBackendAddresses) != 1 || *h.LoadBalancerBackendAddresses[0].IPAddress != "198.18.0.10" {
		t.Fatalf("health: %v %+v", err, h)
	}
	nics := 0
	for pg := e.NICs.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		nics += len(page.Value)
	}
	if nics != 1 {
		t.Errorf("networkInterfaces: %d", nics)
	}

	// The model leaves be2; the instance (not upgraded) still uses it.
	if _, err := e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", false, armcompute.UpgradeModeManual), nil); err != nil {
		t.Fatal(err)
	}
	_, err = e.Pools.BeginDelete(e.Ctx, "rg", "lb1", "be2", nil)
	armtest.WantCode(t, "delete pool an instance uses", err, "BackendAddressPoolInUseByVirtualMachineScaleSet")
	// After the instance is upgraded to the model, the pool can go.
	putInstance(e, t, "vmss1", "0", storedModel(e, t, "vmss1"), map[string]uint16{natID: 50000})
	dp, err := e.Pools.BeginDelete(e.Ctx, "rg", "lb1", "be2", nil)
	if err != nil {
		t.Fatalf("delete pool after upgrade: %v", err)
	}
	if _, err := dp.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
}

// TestNatPoolGeneratedRulesRoundTrip: NAT rules generated from a NAT pool
// for an instance ({pool}.{instanceId}) show in the LB, and a client that
// PUTs back what it GOT (az's GET → mutate → PUT) is not "adding NAT rules".
func TestNatPoolGeneratedRulesRoundTrip(t *testing.T) {
	e := armtest.NewEnv(t)
	fe := e.LBChild("lb1", "frontendIPConfigurations", "fe")
	body := armnetwork.LoadBalancer{Location: to.Ptr("eastus"), SKU: &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(e.ID("Microsoft.Network/publicIPAddresses/pip1"))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			InboundNatPools: []*armnetwork.InboundNatPool{{Name: to.Ptr("np"), Properties: &armnetwork.InboundNatPoolPropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)}, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
				FrontendPortRangeStart: to.Ptr[int32](50000), FrontendPortRangeEnd: to.Ptr[int32](50119), BackendPort: to.Ptr[int32](22)}}},
		}}
	if _, err := e.PutLB(t, "lb1", body); err != nil {
		t.Fatal(err)
	}
	v := e.VMSSBody("lb1", false, armcompute.UpgradeModeManual)
	ipc := v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
	ipc.LoadBalancerInboundNatPools = []*armcompute.SubResource{{ID: to.Ptr(e.LBChild("lb1", "inboundNatPools", "np"))}}
	if _, err := e.PutVMSS(t, "vmss1", v, nil); err != nil {
		t.Fatal(err)
	}
	putInstance(e, t, "vmss1", "0", storedModel(e, t, "vmss1"), map[string]uint16{strings.ToLower(e.LBChild("lb1", "inboundNatPools", "np")): 50001})
	got, err := e.LBs.Get(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	nats := got.Properties.InboundNatRules
	if len(nats) != 1 || *nats[0].Name != "np.0" || *nats[0].Properties.FrontendPort != 50001 || nats[0].Properties.BackendIPConfiguration == nil {
		t.Fatalf("generated NAT rules: %+v", nats)
	}
	if refs := armtest.RefIDs(got.Properties.FrontendIPConfigurations[0].Properties.InboundNatRules); len(refs) != 1 {
		t.Errorf("frontend inboundNatRules = %v", refs)
	}
	// az: GET → add a probe → PUT everything back.
	got.Properties.Probes = append(got.Properties.Probes, &armnetwork.Probe{Name: to.Ptr("p9"), Properties: &armnetwork.ProbePropertiesFormat{
		Protocol: to.Ptr(armnetwork.ProbeProtocolTCP), Port: to.Ptr[int32](22)}})
	after, err := e.PutLB(t, "lb1", got.LoadBalancer)
	if err != nil {
		t.Fatalf("PUT back with generated NAT rules: %v", err)
	}
	if len(after.Properties.Probes) != 1 || len(after.Properties.InboundNatRules) != 1 {
		t.Fatalf("after PUT: probes %d, NAT rules %d", len(after.Properties.Probes), len(after.Properties.InboundNatRules))
	}
}
