package arm_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
)

// Address plan: virtual network vn1 198.18.0.0/16, subnet default
// 198.18.0.0/24 (internal frontends and instances). Public IPs come from the
// node's loopback pool. No test traffic leaves the process.

var lbPoll = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

// lbEnv is a node with group rg, vnet vn1/default and public IPs pip1, pip2
// (Standard) and basicpip (Basic), plus SDK clients.
type lbEnv struct {
	*testNode
	ctx    context.Context
	lbs    *armnetwork.LoadBalancersClient
	pools  *armnetwork.LoadBalancerBackendAddressPoolsClient
	nats   *armnetwork.InboundNatRulesClient
	rules  *armnetwork.LoadBalancerLoadBalancingRulesClient
	probes *armnetwork.LoadBalancerProbesClient
	fes    *armnetwork.LoadBalancerFrontendIPConfigurationsClient
	outs   *armnetwork.LoadBalancerOutboundRulesClient
	nics   *armnetwork.LoadBalancerNetworkInterfacesClient
	vmss   *armcompute.VirtualMachineScaleSetsClient
}

func newLBEnv(t *testing.T) *lbEnv {
	t.Helper()
	return newLBEnvOn(t, startTestNode(t))
}

// newLBEnvOn is newLBEnv on an already started node n.
func newLBEnvOn(t *testing.T, n *testNode) *lbEnv {
	t.Helper()
	e := &lbEnv{testNode: n, ctx: context.Background()}
	n.group("rg")
	n.lbMustPut(n.rgPath("rg", "Microsoft.Network/virtualNetworks/vn1")+"?api-version=2025-01-01", map[string]any{
		"location": "eastus",
		"properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}},
		},
	})
	for name, sku := range map[string]string{"pip1": "Standard", "pip2": "Standard", "basicpip": "Basic"} {
		n.lbMustPut(n.rgPath("rg", "Microsoft.Network/publicIPAddresses/"+name)+"?api-version=2025-01-01", map[string]any{
			"location": "eastus", "sku": map[string]any{"name": sku}, "properties": map[string]any{"publicIPAllocationMethod": "Static"},
		})
	}
	var err error
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.lbs, err = armnetwork.NewLoadBalancersClient(n.sub, n.cred, n.options)
	must(err)
	e.pools, err = armnetwork.NewLoadBalancerBackendAddressPoolsClient(n.sub, n.cred, n.options)
	must(err)
	e.nats, err = armnetwork.NewInboundNatRulesClient(n.sub, n.cred, n.options)
	must(err)
	e.rules, err = armnetwork.NewLoadBalancerLoadBalancingRulesClient(n.sub, n.cred, n.options)
	must(err)
	e.probes, err = armnetwork.NewLoadBalancerProbesClient(n.sub, n.cred, n.options)
	must(err)
	e.fes, err = armnetwork.NewLoadBalancerFrontendIPConfigurationsClient(n.sub, n.cred, n.options)
	must(err)
	e.outs, err = armnetwork.NewLoadBalancerOutboundRulesClient(n.sub, n.cred, n.options)
	must(err)
	e.nics, err = armnetwork.NewLoadBalancerNetworkInterfacesClient(n.sub, n.cred, n.options)
	must(err)
	e.vmss, err = armcompute.NewVirtualMachineScaleSetsClient(n.sub, n.cred, n.options)
	must(err)
	return e
}

// lbMustPut PUTs body at path and fails unless the answer is 200 or 201.
func (n *testNode) lbMustPut(path string, body any) []byte {
	n.t.Helper()
	st, _, b := n.do(http.MethodPut, path, body)
	if st != http.StatusOK && st != http.StatusCreated {
		n.t.Fatalf("PUT %s: %d %s", path, st, b)
	}
	return b
}

func (e *lbEnv) id(rest string) string { return e.rgPath("rg", rest) }

func (e *lbEnv) lbChild(lb, coll, name string) string {
	return e.id("Microsoft.Network/loadBalancers/" + lb + "/" + coll + "/" + name)
}

// publicLB returns a public Standard LB "name": frontend fe (pip1), pool
// be, Http probe p1, rule r1 80→8080 (SNAT disabled), NAT rule v1 ssh
// 2222→22, outbound rule o1.
func (e *lbEnv) publicLB(name string) armnetwork.LoadBalancer {
	fe := e.lbChild(name, "frontendIPConfigurations", "fe")
	pool := e.lbChild(name, "backendAddressPools", "be")
	return armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(e.id("Microsoft.Network/publicIPAddresses/pip1"))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("p1"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolHTTP), Port: to.Ptr[int32](8080), RequestPath: to.Ptr("/healthz")}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("r1"), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
				BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
				Probe:                   &armnetwork.SubResource{ID: to.Ptr(e.lbChild(name, "probes", "p1"))},
				Protocol:                to.Ptr(armnetwork.TransportProtocolTCP), FrontendPort: to.Ptr[int32](80), BackendPort: to.Ptr[int32](8080),
				DisableOutboundSnat: to.Ptr(true)}}},
			InboundNatRules: []*armnetwork.InboundNatRule{{Name: to.Ptr("ssh"), Properties: &armnetwork.InboundNatRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)}, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
				FrontendPort: to.Ptr[int32](2222), BackendPort: to.Ptr[int32](22)}}},
			OutboundRules: []*armnetwork.OutboundRule{{Name: to.Ptr("o1"), Properties: &armnetwork.OutboundRulePropertiesFormat{
				FrontendIPConfigurations: []*armnetwork.SubResource{{ID: to.Ptr(fe)}}, BackendAddressPool: &armnetwork.SubResource{ID: to.Ptr(pool)},
				Protocol: to.Ptr(armnetwork.LoadBalancerOutboundRuleProtocolAll), AllocatedOutboundPorts: to.Ptr[int32](1024)}}},
		},
	}
}

func (e *lbEnv) putLB(t *testing.T, name string, lb armnetwork.LoadBalancer) (armnetwork.LoadBalancer, error) {
	t.Helper()
	p, err := e.lbs.BeginCreateOrUpdate(e.ctx, "rg", name, lb, nil)
	if err != nil {
		return armnetwork.LoadBalancer{}, err
	}
	res, err := p.PollUntilDone(e.ctx, lbPoll)
	return res.LoadBalancer, err
}

func refIDs(refs []*armnetwork.SubResource) []string {
	var out []string
	for _, r := range refs {
		out = append(out, *r.ID)
	}
	return out
}

func TestLoadBalancerSDKCRUD(t *testing.T) {
	e := newLBEnv(t)
	lb, err := e.putLB(t, "lb1", e.publicLB("lb1"))
	if err != nil {
		t.Fatal(err)
	}
	if *lb.ID != e.id("Microsoft.Network/loadBalancers/lb1") || *lb.Type != "Microsoft.Network/loadBalancers" || lb.Etag == nil ||
		*lb.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded || *lb.SKU.Name != "Standard" {
		t.Fatalf("LB envelope: %+v", lb)
	}
	p := lb.Properties
	fe := p.FrontendIPConfigurations[0]
	if *fe.ID != e.lbChild("lb1", "frontendIPConfigurations", "fe") || *fe.Type != "Microsoft.Network/loadBalancers/frontendIPConfigurations" ||
		fe.Etag == nil || *fe.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded {
		t.Errorf("frontend: %+v", fe)
	}
	if got := refIDs(fe.Properties.LoadBalancingRules); len(got) != 1 || got[0] != e.lbChild("lb1", "loadBalancingRules", "r1") {
		t.Errorf("frontend.loadBalancingRules = %v", got)
	}
	if len(fe.Properties.InboundNatRules) != 1 || len(fe.Properties.OutboundRules) != 1 {
		t.Errorf("frontend NAT/outbound back-refs: %v %v", refIDs(fe.Properties.InboundNatRules), refIDs(fe.Properties.OutboundRules))
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
	st, _, b := e.do(http.MethodGet, e.id("Microsoft.Network/publicIPAddresses/pip1")+"?api-version=2025-01-01", nil)
	if st != 200 || !strings.Contains(strings.ToLower(string(b)), strings.ToLower(*fe.ID)) {
		t.Errorf("pip1 ipConfiguration: %d %s", st, b)
	}

	got, err := e.lbs.Get(e.ctx, "rg", "lb1", &armnetwork.LoadBalancersClientGetOptions{Expand: to.Ptr("frontendIPConfigurations")})
	if err != nil || *got.Etag != *lb.Etag {
		t.Fatalf("get: %v %v", err, got.Etag)
	}
	var n int
	for pg := e.lbs.NewListPager("rg", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.lbs.NewListAllPager(nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 2 {
		t.Errorf("list RG + subscription found %d", n)
	}
	tagged, err := e.lbs.UpdateTags(e.ctx, "rg", "lb1", armnetwork.TagsObject{Tags: map[string]*string{"env": to.Ptr("test")}}, nil)
	if err != nil || *tagged.Tags["env"] != "test" {
		t.Fatalf("tags: %v", err)
	}

	// Children through their own endpoints.
	pp, err := e.pools.BeginCreateOrUpdate(e.ctx, "rg", "lb1", "ipbased", armnetwork.BackendAddressPool{Properties: &armnetwork.BackendAddressPoolPropertiesFormat{
		LoadBalancerBackendAddresses: []*armnetwork.LoadBalancerBackendAddress{{Name: to.Ptr("a1"), Properties: &armnetwork.LoadBalancerBackendAddressPropertiesFormat{
			IPAddress: to.Ptr("198.18.0.10"), VirtualNetwork: &armnetwork.SubResource{ID: to.Ptr(e.id("Microsoft.Network/virtualNetworks/vn1"))}}}}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	newPool, err := pp.PollUntilDone(e.ctx, lbPoll)
	if err != nil || *newPool.Name != "ipbased" || *newPool.Etag == "" || len(newPool.Properties.LoadBalancerBackendAddresses) != 1 {
		t.Fatalf("pool PUT: %v %+v", err, newPool)
	}
	if _, err := e.pools.Get(e.ctx, "rg", "lb1", "ipbased", nil); err != nil {
		t.Fatal(err)
	}
	np, err := e.nats.BeginCreateOrUpdate(e.ctx, "rg", "lb1", "rdp", armnetwork.InboundNatRule{Properties: &armnetwork.InboundNatRulePropertiesFormat{
		FrontendIPConfiguration: &armnetwork.SubResource{ID: fe.ID}, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
		FrontendPort: to.Ptr[int32](3390), BackendPort: to.Ptr[int32](3389)}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if nat, err := np.PollUntilDone(e.ctx, lbPoll); err != nil || *nat.Properties.IdleTimeoutInMinutes != 4 {
		t.Fatalf("NAT rule PUT: %v", err)
	}
	counts := map[string]int{}
	for pg := e.pools.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["pools"] += len(page.Value)
	}
	for pg := e.nats.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["nats"] += len(page.Value)
	}
	for pg := e.rules.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["rules"] += len(page.Value)
	}
	for pg := e.probes.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["probes"] += len(page.Value)
	}
	for pg := e.fes.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["fes"] += len(page.Value)
	}
	for pg := e.outs.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		counts["outs"] += len(page.Value)
	}
	for pg := e.nics.NewListPager("rg", "lb1", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
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
	if _, err := e.rules.Get(e.ctx, "rg", "lb1", "r1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.probes.Get(e.ctx, "rg", "lb1", "p1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.fes.Get(e.ctx, "rg", "lb1", "fe", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.outs.Get(e.ctx, "rg", "lb1", "o1", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.nats.Get(e.ctx, "rg", "lb1", "ssh", nil); err != nil {
		t.Error(err)
	}
	if _, err := e.probes.Get(e.ctx, "rg", "lb1", "nope", nil); err == nil || responseError(t, err).StatusCode != 404 {
		t.Errorf("missing probe: %v", err)
	}
	hp, err := e.rules.BeginHealth(e.ctx, "rg", "lb1", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	health, err := hp.PollUntilDone(e.ctx, lbPoll)
	if err != nil || health.Up == nil || *health.Up != 0 || *health.Down != 0 {
		t.Fatalf("health: %v %+v", err, health)
	}
	mp, err := e.lbs.BeginListInboundNatRulePortMappings(e.ctx, "rg", "lb1", "be", armnetwork.QueryInboundNatRulePortMappingRequest{IPAddress: to.Ptr("198.18.0.4")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := mp.PollUntilDone(e.ctx, lbPoll); err != nil || m.InboundNatRulePortMappings == nil {
		t.Fatalf("port mappings: %v %+v", err, m)
	}

	dp, err := e.nats.BeginDelete(e.ctx, "rg", "lb1", "rdp", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
	dpool, err := e.pools.BeginDelete(e.ctx, "rg", "lb1", "ipbased", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dpool.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.pools.Get(e.ctx, "rg", "lb1", "ipbased", nil); err == nil {
		t.Error("deleted pool still there")
	}
	// A pool the rules use cannot go: the rule would dangle.
	if _, err := e.pools.BeginDelete(e.ctx, "rg", "lb1", "be", nil); err == nil || responseError(t, err).ErrorCode != "InvalidResourceReference" {
		t.Errorf("deleting a used pool: %v", err)
	}
	del, err := e.lbs.BeginDelete(e.ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
	if _, err := e.lbs.Get(e.ctx, "rg", "lb1", nil); err == nil || responseError(t, err).StatusCode != 404 {
		t.Errorf("LB after delete: %v", err)
	}
	// The public IP is free again.
	if _, err := e.putLB(t, "lb2", e.publicLB("lb2")); err != nil {
		t.Fatalf("reusing pip1 after delete: %v", err)
	}
}

// TestInternalLoadBalancerAllocatesAddress: a Dynamic internal frontend gets
// the lowest free host address of the subnet; a second LB the next one; a
// Static address in use is refused.
func TestInternalLoadBalancerAllocatesAddress(t *testing.T) {
	e := newLBEnv(t)
	subnet := e.id("Microsoft.Network/virtualNetworks/vn1/subnets/default")
	ilb := func(addr string) armnetwork.LoadBalancer {
		f := &armnetwork.FrontendIPConfigurationPropertiesFormat{Subnet: &armnetwork.Subnet{ID: to.Ptr(subnet)}}
		if addr != "" {
			f.PrivateIPAddress, f.PrivateIPAllocationMethod = to.Ptr(addr), to.Ptr(armnetwork.IPAllocationMethodStatic)
		}
		return armnetwork.LoadBalancer{Location: to.Ptr("eastus"), SKU: &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
			Properties: &armnetwork.LoadBalancerPropertiesFormat{FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: f}}}}
	}
	a, err := e.putLB(t, "ilb1", ilb(""))
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.putLB(t, "ilb2", ilb(""))
	if err != nil {
		t.Fatal(err)
	}
	fa, fb := a.Properties.FrontendIPConfigurations[0].Properties, b.Properties.FrontendIPConfigurations[0].Properties
	if *fa.PrivateIPAddress != "198.18.0.4" || *fb.PrivateIPAddress != "198.18.0.5" || *fa.PrivateIPAllocationMethod != armnetwork.IPAllocationMethodDynamic {
		t.Fatalf("addresses %s %s", *fa.PrivateIPAddress, *fb.PrivateIPAddress)
	}
	// Re-PUT keeps the address.
	again, err := e.putLB(t, "ilb1", ilb(""))
	if err != nil || *again.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress != "198.18.0.4" {
		t.Fatalf("re-PUT: %v", err)
	}
	if _, err := e.putLB(t, "ilb3", ilb("198.18.0.5")); err == nil || responseError(t, err).ErrorCode != "PrivateIPAddressInUse" {
		t.Fatalf("static address in use: %v", err)
	}
	if _, err := e.putLB(t, "ilb3", ilb("198.18.0.99")); err != nil {
		t.Fatal(err)
	}
	// Deleting ilb1 frees .4 for the next dynamic frontend.
	del, err := e.lbs.BeginDelete(e.ctx, "rg", "ilb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
	c, err := e.putLB(t, "ilb4", ilb(""))
	if err != nil || *c.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress != "198.18.0.4" {
		t.Fatalf("reuse after delete: %v", err)
	}
	// Outbound rules on an internal LB are refused with Azure's message.
	bad := ilb("")
	fe := e.lbChild("ilb5", "frontendIPConfigurations", "fe")
	bad.Properties.BackendAddressPools = []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}}
	bad.Properties.OutboundRules = []*armnetwork.OutboundRule{{Name: to.Ptr("o"), Properties: &armnetwork.OutboundRulePropertiesFormat{
		FrontendIPConfigurations: []*armnetwork.SubResource{{ID: to.Ptr(fe)}}, Protocol: to.Ptr(armnetwork.LoadBalancerOutboundRuleProtocolAll),
		BackendAddressPool: &armnetwork.SubResource{ID: to.Ptr(e.lbChild("ilb5", "backendAddressPools", "be"))}}}}
	_, err = e.putLB(t, "ilb5", bad)
	if err == nil || !strings.Contains(responseError(t, err).Error(), "Internal load balancer cannot have any outbound rules") {
		t.Fatalf("internal LB outbound: %v", err)
	}
}

// vmssBody returns a scale-set model in pool be of lbName, optionally with
// the LB's probe p1 as health probe and a given upgrade mode.
func (e *lbEnv) vmssBody(lbName string, probe bool, mode armcompute.UpgradeMode) armcompute.VirtualMachineScaleSet {
	ipc := &armcompute.VirtualMachineScaleSetIPConfigurationProperties{
		Subnet:                          &armcompute.APIEntityReference{ID: to.Ptr(e.id("Microsoft.Network/virtualNetworks/vn1/subnets/default"))},
		LoadBalancerBackendAddressPools: []*armcompute.SubResource{{ID: to.Ptr(e.lbChild(lbName, "backendAddressPools", "be"))}},
	}
	np := &armcompute.VirtualMachineScaleSetNetworkProfile{NetworkInterfaceConfigurations: []*armcompute.VirtualMachineScaleSetNetworkConfiguration{{
		Name: to.Ptr("nic"), Properties: &armcompute.VirtualMachineScaleSetNetworkConfigurationProperties{Primary: to.Ptr(true),
			IPConfigurations: []*armcompute.VirtualMachineScaleSetIPConfiguration{{Name: to.Ptr("ipc"), Properties: ipc}}}}}}
	if probe {
		np.HealthProbe = &armcompute.APIEntityReference{ID: to.Ptr(e.lbChild(lbName, "probes", "p1"))}
	}
	return armcompute.VirtualMachineScaleSet{
		Location: to.Ptr("eastus"),
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr[int64](2)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(mode)},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				OSProfile: &armcompute.VirtualMachineScaleSetOSProfile{ComputerNamePrefix: to.Ptr("vm"), AdminUsername: to.Ptr("azureuser"), AdminPassword: to.Ptr("Secr3t!pass")},
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{
					Publisher: to.Ptr("nimbus"), Offer: to.Ptr("workloads"), SKU: to.Ptr("echo"), Version: to.Ptr("latest")}},
				NetworkProfile: np,
			},
		},
	}
}

func (e *lbEnv) putVMSS(t *testing.T, name string, v armcompute.VirtualMachineScaleSet, opts *armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions) (armcompute.VirtualMachineScaleSet, error) {
	t.Helper()
	p, err := e.vmss.BeginCreateOrUpdate(e.ctx, "rg", name, v, opts)
	if err != nil {
		return armcompute.VirtualMachineScaleSet{}, err
	}
	res, err := p.PollUntilDone(e.ctx, lbPoll)
	return res.VirtualMachineScaleSet, err
}

func (e *lbEnv) patchVMSS(t *testing.T, name string, u armcompute.VirtualMachineScaleSetUpdate) (armcompute.VirtualMachineScaleSet, error) {
	t.Helper()
	p, err := e.vmss.BeginUpdate(e.ctx, "rg", name, u, nil)
	if err != nil {
		return armcompute.VirtualMachineScaleSet{}, err
	}
	res, err := p.PollUntilDone(e.ctx, lbPoll)
	return res.VirtualMachineScaleSet, err
}

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	if re := responseError(t, err); re.ErrorCode != code {
		t.Fatalf("%s: %s, want %s", what, re.ErrorCode, code)
	}
}

// TestScaleSetProbeRuleWayOut walks Azure's documented way out of
// CannotModifyRuleUsedByProbeUsedByVMSS step by step.
func TestScaleSetProbeRuleWayOut(t *testing.T) {
	e := newLBEnv(t)
	if _, err := e.putLB(t, "lb1", e.publicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	v, err := e.putVMSS(t, "vmss1", e.vmssBody("lb1", true, armcompute.UpgradeModeRolling), nil)
	if err != nil {
		t.Fatal(err)
	}
	if *v.Properties.ProvisioningState != "Succeeded" || v.Properties.UniqueID == nil || v.Properties.TimeCreated == nil ||
		v.Properties.VirtualMachineProfile.OSProfile.AdminPassword != nil || *v.Properties.OrchestrationMode != armcompute.OrchestrationModeUniform {
		t.Fatalf("VMSS response: %+v", v.Properties)
	}
	modified := e.publicLB("lb1")
	modified.Properties.LoadBalancingRules[0].Properties.BackendPort = to.Ptr[int32](9090)
	_, err = e.putLB(t, "lb1", modified)
	wantCode(t, "modify rule", err, "CannotModifyRuleUsedByProbeUsedByVMSS")
	removed := e.publicLB("lb1")
	removed.Properties.LoadBalancingRules = nil
	_, err = e.putLB(t, "lb1", removed)
	wantCode(t, "remove rule", err, "CannotRemoveRuleUsedByProbeUsedByVMSS")
	_, err = e.lbs.BeginDelete(e.ctx, "rg", "lb1", nil)
	wantCode(t, "delete LB", err, "LoadBalancerInUseByVirtualMachineScaleSet")

	// Step 1: remove the health probe. Rolling needs it, so first try that
	// alone (refused), then switch to Manual at the same time (GET→PUT, as az does).
	cur, err := e.vmss.Get(e.ctx, "rg", "vmss1", nil)
	if err != nil {
		t.Fatal(err)
	}
	noProbe := cur.VirtualMachineScaleSet
	noProbe.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = nil
	_, err = e.putVMSS(t, "vmss1", noProbe, nil)
	wantCode(t, "rolling without probe", err, "BadRequest")
	noProbe.Properties.UpgradePolicy.Mode = to.Ptr(armcompute.UpgradeModeManual)
	if _, err := e.putVMSS(t, "vmss1", noProbe, nil); err != nil {
		t.Fatalf("remove probe: %v", err)
	}
	// Step 2: change the rule's port.
	if _, err := e.putLB(t, "lb1", modified); err != nil {
		t.Fatalf("modify rule after removing the probe: %v", err)
	}
	// Step 3: re-attach the probe (PATCH) and go back to Rolling.
	back, err := e.patchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeRolling)},
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{NetworkProfile: &armcompute.VirtualMachineScaleSetUpdateNetworkProfile{
			HealthProbe: &armcompute.APIEntityReference{ID: to.Ptr(e.lbChild("lb1", "probes", "p1"))}}}}})
	if err != nil {
		t.Fatalf("re-attach probe: %v", err)
	}
	if *back.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe.ID == "" || len(back.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations) != 1 {
		t.Fatalf("PATCH lost the model: %+v", back.Properties.VirtualMachineProfile.NetworkProfile)
	}
	_, err = e.putLB(t, "lb1", e.publicLB("lb1"))
	wantCode(t, "modify again", err, "CannotModifyRuleUsedByProbeUsedByVMSS")
}

func TestScaleSetSDK(t *testing.T) {
	e := newLBEnv(t)
	if _, err := e.putLB(t, "lb1", e.publicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	_, err := e.putVMSS(t, "vmss1", e.vmssBody("lb1", false, armcompute.UpgradeModeRolling), nil)
	wantCode(t, "rolling without probe", err, "BadRequest")
	v, err := e.putVMSS(t, "vmss1", e.vmssBody("lb1", false, "manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")})
	if err != nil {
		t.Fatal(err)
	}
	if *v.Properties.UpgradePolicy.Mode != armcompute.UpgradeModeManual || !*v.Properties.Overprovision || v.Etag == nil {
		t.Errorf("defaults: %+v", v.Properties)
	}
	_, err = e.putVMSS(t, "vmss1", e.vmssBody("lb1", false, "Manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfNoneMatch: to.Ptr("*")})
	if err == nil || responseError(t, err).StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-None-Match * on existing: %v", err)
	}
	_, err = e.putVMSS(t, "vmss1", e.vmssBody("lb1", false, "Manual"), &armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions{IfMatch: to.Ptr(`"nope"`)})
	if err == nil || responseError(t, err).StatusCode != http.StatusPreconditionFailed {
		t.Fatalf("If-Match mismatch: %v", err)
	}
	scaled, err := e.patchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: to.Ptr[int64](5)}})
	if err != nil || *scaled.SKU.Capacity != 5 || *scaled.SKU.Name != "Standard_B1s" {
		t.Fatalf("scale: %v", err)
	}
	_, err = e.patchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{SKU: &armcompute.SKU{Capacity: to.Ptr[int64](-1)}})
	wantCode(t, "capacity -1", err, "InvalidParameter")
	st, _, b := e.do(http.MethodPatch, e.id("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"sku":{"capacity":1.5}}`)
	if st != 400 || !strings.Contains(string(b), "sku.capacity") {
		t.Errorf("capacity 1.5: %d %s", st, b)
	}
	_, err = e.patchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{NetworkProfile: &armcompute.VirtualMachineScaleSetUpdateNetworkProfile{
			HealthProbe: &armcompute.APIEntityReference{ID: to.Ptr(e.lbChild("lb1", "backendAddressPools", "be"))}}}}})
	wantCode(t, "health probe that is a pool", err, "InvalidJsonReferenceWrongType")
	_, err = e.patchVMSS(t, "vmss1", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		SinglePlacementGroup: to.Ptr(false)}})
	if err != nil {
		t.Fatalf("singlePlacementGroup true→false: %v", err)
	}
	st, _, b = e.do(http.MethodPatch, e.id("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"properties":{"platformFaultDomainCount":3}}`)
	if st != 400 || errCode(b) != "PropertyChangeNotAllowed" {
		t.Errorf("platformFaultDomainCount change: %d %s", st, b)
	}
	st, _, b = e.do(http.MethodPatch, e.id("Microsoft.Compute/virtualMachineScaleSets/vmss1")+"?api-version=2025-04-01", `{"properties":{"orchestrationMode":"Flexible"}}`)
	if st != 400 || errCode(b) != "PropertyChangeNotAllowed" {
		t.Errorf("orchestrationMode change: %d %s", st, b)
	}

	// Basic instance public IPs with a Standard LB.
	mixed := e.vmssBody("lb1", false, "Manual")
	mixed.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties.PublicIPAddressConfiguration =
		&armcompute.VirtualMachineScaleSetPublicIPAddressConfiguration{Name: to.Ptr("pip"), SKU: &armcompute.PublicIPAddressSKU{Name: to.Ptr(armcompute.PublicIPAddressSKUNameBasic)}}
	_, err = e.putVMSS(t, "vmss2", mixed, nil)
	wantCode(t, "basic instance PIP", err, "DifferentSkuLoadBalancerAndPublicIPAddressNotAllowedInVMSS")

	// What the scale set uses cannot be removed from the LB.
	_, err = e.pools.BeginDelete(e.ctx, "rg", "lb1", "be", nil)
	if err == nil {
		t.Fatal("deleted a pool in use")
	}
	if code := responseError(t, err).ErrorCode; code != "BackendAddressPoolInUseByVirtualMachineScaleSet" && code != "InvalidResourceReference" {
		t.Fatalf("pool delete: %s", code)
	}

	n := 0
	for pg := e.vmss.NewListPager("rg", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.vmss.NewListAllPager(nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	for pg := e.vmss.NewListByLocationPager("East US", nil); pg.More(); {
		page, err := pg.NextPage(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 3 {
		t.Errorf("lists found %d scale sets, want 3", n)
	}
	got, err := e.vmss.Get(e.ctx, "rg", "vmss1", nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(got)
	if strings.Contains(string(raw), "Secr3t") {
		t.Error("adminPassword returned")
	}
	dp, err := e.vmss.BeginDelete(e.ctx, "rg", "vmss1", &armcompute.VirtualMachineScaleSetsClientBeginDeleteOptions{ForceDeletion: to.Ptr(true)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
	// Once the scale set is gone, the LB can be deleted.
	del, err := e.lbs.BeginDelete(e.ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(e.ctx, lbPoll); err != nil {
		t.Fatal(err)
	}
}
