package network_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/arm/armtest"
)

// Address plan: virtual network vn1 198.18.0.0/16, subnet default
// 198.18.0.0/24 (internal frontends and instances). Public IPs come from the
// node's loopback pool. No test traffic leaves the process.

func TestLoadBalancerSDKCRUD(t *testing.T) {
	e := armtest.NewEnv(t)
	lb, err := e.PutLB(t, "lb1", e.PublicLB("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	if *lb.ID != e.ID("Microsoft.Network/loadBalancers/lb1") || *lb.Type != "Microsoft.Network/loadBalancers" || lb.Etag == nil ||
		*lb.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded || *lb.SKU.Name != "Standard" {
		t.Fatalf("LB envelope: %+v", lb)
	}
	p := lb.Properties
	fe := p.FrontendIPConfigurations[0]
	if *fe.ID != e.LBChild("lb1", "frontendIPConfigurations", "fe") || *fe.Type != "Microsoft.Network/loadBalancers/frontendIPConfigurations" ||
		fe.Etag == nil || *fe.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded {
		t.Errorf("frontend: %+v", fe)
	}
	if got := armtest.RefIDs(fe.Properties.LoadBalancingRules); len(got) != 1 || got[0] != e.LBChild("lb1", "loadBalancingRules", "r1") {
		t.Errorf("frontend.loadBalancingRules = %v", got)
	}
	if len(fe.Properties.InboundNatRules) != 1 || len(fe.Properties.OutboundRules) != 1 {
		t.Errorf("frontend NAT/outbound back-refs: %v %v", armtest.RefIDs(fe.Properties.InboundNatRules), armtest.RefIDs(fe.Properties.OutboundRules))
	}
	pool := p.BackendAddressPools[0]
	if len(pool.Properties.LoadBalancingRules) != 1 || len(pool.Properties.OutboundRules) != 1 || pool.Properties.BackendIPConfigurations == nil {
		t.Errorf("pool back-refs: %+v", pool.Properties)
	}
	if len(p.Probes[0].Properties.LoadBalancingRules) != 1 || *p.Probes[0].Properties.IntervalInSeconds != 15 || *p.Probes[0].Properties.NumberOfProbes != 2 {
		t.Errorf("probe: %+v", p.Probes[0].Properties)
	}
	r1 := p.LoadBalancingRules[0].Properties
	if *r1.IdleTimeoutInMinutes != 4 || *r1.LoadDistribution != armnetwork.LoadDistributionDefault || *r1.EnableFloatingIP {
		t.Errorf("rule defaults: %+v", r1)
	}
	if p.InboundNatPools == nil {
		t.Error("inboundNatPools not returned as []")
	}
	// The public IP shows the frontend as its ipConfiguration.
	st, _, b := e.Do(http.MethodGet, e.ID("Microsoft.Network/publicIPAddresses/pip1")+"?api-version=2025-01-01", nil)
	if st != 200 || !strings.Contains(strings.ToLower(string(b)), strings.ToLower(*fe.ID)) {
		t.Errorf("pip1 ipConfiguration: %d %s", st, b)
	}

	got, err := e.LBs.Get(e.Ctx, "rg", "lb1", &armnetwork.LoadBalancersClientGetOptions{Expand: to.Ptr("frontendIPConfigurations")})
	if err != nil || *got.Etag != *lb.Etag {
		t.Fatalf("get: %v %v", err, got.Etag)
	}
	var n int
	for pg := e.LBs.NewListPager("rg", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.LBs.NewListAllPager(nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 2 {
		t.Errorf("list RG + subscription found %d", n)
	}
	tagged, err := e.LBs.UpdateTags(e.Ctx, "rg", "lb1", armnetwork.TagsObject{Tags: map[string]*string{"env": to.Ptr("test")}}, nil)
	if err != nil || *tagged.Tags["env"] != "test" {
		t.Fatalf("tags: %v", err)
	}

	// Children through their own endpoints.
	pp, err := e.Pools.BeginCreateOrUpdate(e.Ctx, "rg", "lb1", "ipbased", armnetwork.BackendAddressPool{Properties: &armnetwork.BackendAddressPoolPropertiesFormat{
		LoadBalancerBackendAddresses: []*armnetwork.LoadBalancerBackendAddress{{Name: to.Ptr("a1"), Properties: &armnetwork.LoadBalancerBackendAddressPropertiesFormat{
			IPAddress: to.Ptr("198.18.0.10"), VirtualNetwork: &armnetwork.SubResource{ID: to.Ptr(e.ID("Microsoft.Network/virtualNetworks/vn1"))}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	newPool, err := pp.PollUntilDone(e.Ctx, armtest.Poll)
	if err != nil || *newPool.Name != "ipbased" || *newPool.Etag == "" || len(newPool.Properties.LoadBalancerBackendAddresses) != 1 {
		t.Fatalf("pool PUT: %v %+v", err, newPool)
	}
	if _, err := e.Pools.Get(e.Ctx, "rg", "lb1", "ipbased", nil); err != nil {
		t.Fatal(err)
	}
	np, err := e.NATs.BeginCreateOrUpdate(e.Ctx, "rg", "lb1", "rdp", armnetwork.InboundNatRule{Properties: &armnetwork.InboundNatRulePropertiesFormat{
		FrontendIPConfiguration: &armnetwork.SubResource{ID: fe.ID}, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
		FrontendPort: to.Ptr[int32](3390), BackendPort: to.Ptr[int32](3389)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nat, err := np.PollUntilDone(e.Ctx, armtest.Poll); err != nil || *nat.Properties.IdleTimeoutInMinutes != 4 {
		t.Fatalf("NAT rule PUT: %v", err)
	}
	counts := map[string]int{}
	for pg := e.Pools.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["pools"] += len(page.Value)
	}
	for pg := e.NATs.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["nats"] += len(page.Value)
	}
	for pg := e.Rules.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["rules"] += len(page.Value)
	}
	for pg := e.Probes.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["probes"] += len(page.Value)
	}
	for pg := e.Frontends.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["fes"] += len(page.Value)
	}
	for pg := e.Outbound.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["outs"] += len(page.Value)
	}
	for pg := e.NICs.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["nics"] += len(page.Value)
	}
	want := map[string]int{"pools": 2, "nats": 2, "rules": 1, "probes": 1, "fes": 1, "outs": 1}
	for k, v := range want {
		if counts[k] != v {
			t.Errorf("%s: %d children, want %d", k, counts[k], v)
		}
	}
	if _, err := e.Rules.Get(e.Ctx, "rg", "lb1", "r1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.Probes.Get(e.Ctx, "rg", "lb1", "p1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.Frontends.Get(e.Ctx, "rg", "lb1", "fe", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.Outbound.Get(e.Ctx, "rg", "lb1", "o1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.NATs.Get(e.Ctx, "rg", "lb1", "ssh", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.Probes.Get(e.Ctx, "rg", "lb1", "nope", nil); err == nil || armtest.ResponseError(t, err).StatusCode != 404 {
		t.Errorf("missing probe: %v", err)
	}
	hp, err := e.Rules.BeginHealth(e.Ctx, "rg", "lb1", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	health, err := hp.PollUntilDone(e.Ctx, armtest.Poll)
	if err != nil || health.Up == nil || *health.Up != 0 || *health.Down != 0 {
		t.Fatalf("health: %v %+v", err, health)
	}
	mp, err := e.LBs.BeginListInboundNatRulePortMappings(e.Ctx, "rg", "lb1", "be", armnetwork.QueryInboundNatRulePortMappingRequest{IPAddress: to.Ptr("198.18.0.4")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := mp.PollUntilDone(e.Ctx, armtest.Poll); err != nil || m.InboundNatRulePortMappings == nil {
		t.Fatalf("port mappings: %v %+v", err, m)
	}

	dp, err := e.NATs.BeginDelete(e.Ctx, "rg", "lb1", "rdp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	dpool, err := e.Pools.BeginDelete(e.Ctx, "rg", "lb1", "ipbased", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dpool.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Pools.Get(e.Ctx, "rg", "lb1", "ipbased", nil); err == nil {
		t.Error("deleted pool still there")
	}
	// A pool the rules use cannot go: the rule would dangle.
	if _, err := e.Pools.BeginDelete(e.Ctx, "rg", "lb1", "be", nil); err == nil || armtest.ResponseError(t, err).ErrorCode != "InvalidResourceReference" {
		t.Errorf("deleting a used pool: %v", err)
	}
	del, err := e.LBs.BeginDelete(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.LBs.Get(e.Ctx, "rg", "lb1", nil); err == nil || armtest.ResponseError(t, err).StatusCode != 404 {
		t.Errorf("LB after delete: %v", err)
	}
	// The public IP is free again.
	if _, err := e.PutLB(t, "lb2", e.PublicLB("lb2")); err != nil {
		t.Fatalf("reusing pip1 after delete: %v", err)
	}
}

// TestInternalLoadBalancerAllocatesAddress: a Dynamic internal frontend gets
// the lowest free host address of the subnet; a second LB the next one; a
// Static address in use is refused.
func TestInternalLoadBalancerAllocatesAddress(t *testing.T) {
	e := armtest.NewEnv(t)
	subnet := e.ID("Microsoft.Network/virtualNetworks/vn1/subnets/default")
	ilb := func(addr string) armnetwork.LoadBalancer {
		f := &armnetwork.FrontendIPConfigurationPropertiesFormat{Subnet: &armnetwork.Subnet{ID: to.Ptr(subnet)}}
		if addr != "" {
			f.PrivateIPAddress, f.PrivateIPAllocationMethod = to.Ptr(addr), to.Ptr(armnetwork.IPAllocationMethodStatic)
		}
		return armnetwork.LoadBalancer{Location: to.Ptr("eastus"), SKU: &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
			Properties: &armnetwork.LoadBalancerPropertiesFormat{FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: f}}}}
	}
	a, err := e.PutLB(t, "ilb1", ilb(""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.PutLB(t, "ilb2", ilb(""))
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := a.Properties.FrontendIPConfigurations[0].Properties, b.Properties.FrontendIPConfigurations[0].Properties
	if *fa.PrivateIPAddress != "198.18.0.4" || *fb.PrivateIPAddress != "198.18.0.5" || *fa.PrivateIPAllocationMethod != armnetwork.IPAllocationMethodDynamic {
		t.Fatalf("addresses %s %s", *fa.PrivateIPAddress, *fb.PrivateIPAddress)
	}
	// Re-PUT keeps the address.
	again, err := e.PutLB(t, "ilb1", ilb(""))
	if err != nil || *again.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress != "198.18.0.4" {
		t.Fatalf("re-PUT: %v", err)
	}
	if _, err := e.PutLB(t, "ilb3", ilb("198.18.0.5")); err == nil || armtest.ResponseError(t, err).ErrorCode != "PrivateIPAddressInUse" {
		t.Fatalf("static address in use: %v", err)
	}
	if _, err := e.PutLB(t, "ilb3", ilb("198.18.0.99")); err != nil {
		t.Fatal(err)
	}
	// Deleting ilb1 frees .4 for the next dynamic frontend.
	del, err := e.LBs.BeginDelete(e.Ctx, "rg", "ilb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	c, err := e.PutLB(t, "ilb4", ilb(""))
	if err != nil || *c.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress != "198.18.0.4" {
		t.Fatalf("reuse after delete: %v", err)
	}
	// Outbound rules on an internal LB are refused with Azure's message.
	bad := ilb("")
	fe := e.LBChild("ilb5", "frontendIPConfigurations", "fe")
	bad.Properties.BackendAddressPools = []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}}
	bad.Properties.OutboundRules = []*armnetwork.OutboundRule{{Name: to.Ptr("o"), Properties: &armnetwork.OutboundRulePropertiesFormat{
		FrontendIPConfigurations: []*armnetwork.SubResource{{ID: to.Ptr(fe)}}, Protocol: to.Ptr(armnetwork.LoadBalancerOutboundRuleProtocolAll),
		BackendAddressPool: &armnetwork.SubResource{ID: to.Ptr(e.LBChild("ilb5", "backendAddressPools", "be"))}}}}
	_, err = e.PutLB(t, "ilb5", bad)
	if err == nil || !strings.Contains(armtest.ResponseError(t, err).Error(), "Internal load balancer cannot have any outbound rules") {
		t.Fatalf("internal LB outbound: %v", err)
	}
}

// vmssBody returns a scale-set model in pool be of lbName, optionally with
// the LB's probe p1 as health probe and a given upgrade mode.
func TestScaleSetProbeRuleWayOut(t *testing.T) {
	e := armtest.NewEnv(t)
	if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	v, err := e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", true, armcompute.UpgradeModeRolling), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *v.Properties.ProvisioningState != "Succeeded" || v.Properties.UniqueID == nil || v.Properties.TimeCreated == nil ||
		v.Properties.VirtualMachineProfile.OSProfile.AdminPassword != nil || *v.Properties.OrchestrationMode != armcompute.OrchestrationModeUniform {
		t.Fatalf("VMSS response: %+v", v.Properties)
	}
	modified := e.PublicLB("lb1")
	modified.Properties.LoadBalancingRules[0].Properties.BackendPort = to.Ptr[int32](9090)
	_, err = e.PutLB(t, "lb1", modified)
	armtest.WantCode(t, "modify rule", err, "CannotModifyRuleUsedByProbeUsedByVMSS")
	removed := e.PublicLB("lb1")
	removed.Properties.LoadBalancingRules = nil
	_, err = e.PutLB(t, "lb1", removed)
	armtest.WantCode(t, "remove rule", err, "CannotRemoveRuleUsedByProbeUsedByVMSS")
	_, err = e.LBs.BeginDelete(e.Ctx, "rg", "lb1", nil)
	armtest.WantCode(t, "delete LB", err, "LoadBalancerInUseByVirtualMachineScaleSet")

	// Step 1: remove the health probe. Rolling needs it, so first try that
	// alone (refused), then switch to Manual at the same time (GET→PUT, as az does).
	cur, err := e.VMSS.Get(e.Ctx, "rg", "vmss1", nil)
	if err != nil {
		t.Fatal(err)
	}
	noProbe := cur.VirtualMachineScaleSet
	noProbe.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = nil
	_, err = e.PutVMSS(t, "vmss1", noProbe, nil)
	armtest.WantCode(t, "rolling without probe", err, "BadRequest")
	noProbe.Properties.UpgradePolicy.Mode = to.Ptr(armcompute.UpgradeModeManual)
	if _, err := e.PutVMSS(t, "vmss1", noProbe, nil); err != nil {
		t.Fatalf("remove probe: %v", err)
	}
	// Step 2: change the rule's port.
	if _, err := e.PutLB(t, "lb1", modified); err != nil {
		t.Fatalf("modify rule after removing the probe: %v", err)
	}
	// Step 3: re-attach the probe (PATCH) and go back to Rolling.
	back, err := e.PatchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeRolling)},
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{NetworkProfile: &armcompute.VirtualMachineScaleSetUpdateNetworkProfile{
			HealthProbe: &armcompute.APIEntityReference{ID: to.Ptr(e.LBChild("lb1", "probes", "p1"))}}}}})
	if err != nil {
		t.Fatalf("re-attach probe: %v", err)
	}
	if *back.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe.ID == "" || len(back.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations) != 1 {
		t.Fatalf("PATCH lost the model: %+v", back.Properties.VirtualMachineProfile.NetworkProfile)
	}
	_, err = e.PutLB(t, "lb1", e.PublicLB("lb1"))
	armtest.WantCode(t, "modify again", err, "CannotModifyRuleUsedByProbeUsedByVMSS")
}

func TestScaleSetSDK(t *testing.T) {
	e := armtest.NewEnv(t)
	if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	_, err := e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", false, armcompute.UpgradeModeRolling), nil)
	armtest.WantCode(t, "rolling without probe", err, "BadRequest")
	v, err := e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", false, "manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")})
	if err != nil {
		t.Fatal(err)
	}
	if *v.Properties.UpgradePolicy.Mode != armcompute.UpgradeModeManual || !*v.Properties.Overprovision || v.Etag == nil {
		t.Errorf("defaults: %+v", v.Properties)
	}
	_, err = e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", false, "Manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")})
	if err == nil || armtest.ResponseError(t, err).StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-None-Match * on existing: %v", err)
	}
	_, err = e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", false, "Manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfMatch: to.Ptr(`"nope"`)})
	if err == nil || armtest.ResponseError(t, err).StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-Match mismatch: %v", err)
	}
	scaled, err := e.PatchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: to.Ptr[int64](5)}})
	if err != nil || *scaled.SKU.Capacity != 5 || *scaled.SKU.Name != "Standard_B1s" {
		t.Fatalf("scale: %v", err)
	}
	_, err = e.PatchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: to.Ptr[int64](-1)}})
	armtest.WantCode(t, "capacity -1", err, "InvalidParameter")
	st, _, b := e.Do(http.MethodPatch, e.ID("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"sku":{"capacity":1.5}}`)
	if st != 400 || !strings.Contains(string(b), "sku.capacity") {
		t.Errorf("capacity 1.5: %d %s", st, b)
	}
	_, err = e.PatchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{NetworkProfile: &armcompute.VirtualMachineScaleSetUpdateNetworkProfile{
			HealthProbe: &armcompute.APIEntityReference{ID: to.Ptr(e.LBChild("lb1", "backendAddressPools", "be"))}}}}})
	armtest.WantCode(t, "health probe that is a pool", err, "InvalidJsonReferenceWrongType")
	_, err = e.PatchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		SinglePlacementGroup: to.Ptr(false)}})
	if err != nil {
		t.Fatalf("singlePlacementGroup true→false: %v", err)
	}
	st, _, b = e.Do(http.MethodPatch, e.ID("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"properties":{"platformFaultDomainCount":3}}`)
	if st != 400 || armtest.ErrCode(b) != "PropertyChangeNotAllowed" {
		t.Errorf("platformFaultDomainCount change: %d %s", st, b)
	}
	st, _, b = e.Do(http.MethodPatch, e.ID("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"properties":{"orchestrationMode":"Flexible"}}`)
	if st != 400 || armtest.ErrCode(b) != "PropertyChangeNotAllowed" {
		t.Errorf("orchestrationMode change: %d %s", st, b)
	}

	// Basic instance public IPs with a Standard LB.
	mixed := e.VMSSBody("lb1", false, "Manual")
	mixed.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties.PublicIPAddressConfiguration =
		&armcompute.VirtualMachineScaleSetPublicIPAddressConfiguration{Name: to.Ptr("pip"), SKU: &armcompute.PublicIPAddressSKU{Name: to.Ptr(armcompute.PublicIPAddressSKUNameBasic)}}
	_, err = e.PutVMSS(t, "vmss2", mixed, nil)
	armtest.WantCode(t, "basic instance PIP", err, "DifferentSkuLoadBalancerAndPublicIPAddressNotAllowedInVMSS")

	// What the scale set uses cannot be removed from the LB.
	_, err = e.Pools.BeginDelete(e.Ctx, "rg", "lb1", "be", nil)
	if err == nil {
		t.Fatal("deleted a pool in use")
	}
	if code := armtest.ResponseError(t, err).ErrorCode; code != "BackendAddressPoolInUseByVirtualMachineScaleSet" && code != "InvalidResourceReference" {
		t.Fatalf("pool delete: %s", code)
	}

	n := 0
	for pg := e.VMSS.NewListPager("rg", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.VMSS.NewListAllPager(nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.VMSS.NewListByLocationPager("East US", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 3 {
		t.Errorf("lists found %d scale sets, want 3", n)
	}
	got, err := e.VMSS.Get(e.Ctx, "rg", "vmss1", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "Secr3t") {
		t.Error("adminPassword returned")
	}
	dp, err := e.VMSS.BeginDelete(e.Ctx, "rg", "vmss1", &armcompute.VirtualMachineScaleSetsClientBeginDeleteOptions{ForceDeletion: to.Ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
	// Once the scale set is gone, the LB can be deleted.
	del, err := e.LBs.BeginDelete(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.Ctx, armtest.Poll); err != nil {
		t.Fatal(err)
	}
}
