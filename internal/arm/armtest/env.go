package armtest

import (
	"context"
	"net/http"
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

var Poll = &runtime.PollUntilDoneOptions{Frequency: 100 * time.Millisecond}

// Env is a node with group rg, vnet vn1/default and public IPs pip1, pip2
// (Standard) and basicpip (Basic), plus SDK clients.
type Env struct {
	*Node
	// Ctx is the context of the SDK calls.
	Ctx context.Context
	// The SDK clients of the node's default subscription.
	LBs       *armnetwork.LoadBalancersClient
	Pools     *armnetwork.LoadBalancerBackendAddressPoolsClient
	NATs      *armnetwork.InboundNatRulesClient
	Rules     *armnetwork.LoadBalancerLoadBalancingRulesClient
	Probes    *armnetwork.LoadBalancerProbesClient
	Frontends *armnetwork.LoadBalancerFrontendIPConfigurationsClient
	Outbound  *armnetwork.LoadBalancerOutboundRulesClient
	NICs      *armnetwork.LoadBalancerNetworkInterfacesClient
	VMSS      *armcompute.VirtualMachineScaleSetsClient
}

// NewEnv starts a node and prepares it as Env describes.
func NewEnv(t *testing.T) *Env {
	t.Helper()
	return NewEnvOn(t, Start(t))
}

// NewEnvOn is NewEnv on an already started node n.
func NewEnvOn(t *testing.T, n *Node) *Env {
	t.Helper()
	e := &Env{Node: n, Ctx: context.Background()}
	n.Group("rg")
	n.MustPut(n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1")+"?api-version=2025-01-01", map[string]any{
		"location": "eastus",
		"properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}},
		},
	})
	for name, sku := range map[string]string{"pip1": "Standard", "pip2": "Standard", "basicpip": "Basic"} {
		n.MustPut(n.RGPath("rg", "Microsoft.Network/publicIPAddresses/"+name)+"?api-version=2025-01-01", map[string]any{
			"location": "eastus", "sku": map[string]any{"name": sku}, "properties": map[string]any{"publicIPAllocationMethod": "Static"},
		})
	}
	var err error
	must := func(err error) {
		if err != nil {
			t.Fatal(err)
		}
	}
	e.LBs, err = armnetwork.NewLoadBalancersClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.Pools, err = armnetwork.NewLoadBalancerBackendAddressPoolsClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.NATs, err = armnetwork.NewInboundNatRulesClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.Rules, err = armnetwork.NewLoadBalancerLoadBalancingRulesClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.Probes, err = armnetwork.NewLoadBalancerProbesClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.Frontends, err = armnetwork.NewLoadBalancerFrontendIPConfigurationsClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.Outbound, err = armnetwork.NewLoadBalancerOutboundRulesClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.NICs, err = armnetwork.NewLoadBalancerNetworkInterfacesClient(n.Sub, n.Cred, n.Options)
	must(err)
	e.VMSS, err = armcompute.NewVirtualMachineScaleSetsClient(n.Sub, n.Cred, n.Options)
	must(err)
	return e
}

// MustPut PUTs body at path and fails unless the answer is 200 or 201.
func (n *Node) MustPut(path string, body any) []byte {
	n.T.Helper()
	st, _, b := n.Do(http.MethodPut, path, body)
	if st != http.StatusOK && st != http.StatusCreated {
		n.T.Fatalf("PUT %s: %d %s", path, st, b)
	}
	return b
}

func (e *Env) ID(rest string) string { return e.RGPath("rg", rest) }

func (e *Env) LBChild(lb, coll, name string) string {
	return e.ID("Microsoft.Network/loadBalancers/" + lb + "/" + coll + "/" + name)
}

// PublicLB returns a public Standard LB "name": frontend fe (pip1), pool
// be, Http probe p1, rule r1 80→8080 (SNAT disabled), NAT rule v1 ssh
// 2222→22, outbound rule o1.
func (e *Env) PublicLB(name string) armnetwork.LoadBalancer {
	fe := e.LBChild(name, "frontendIPConfigurations", "fe")
	pool := e.LBChild(name, "backendAddressPools", "be")
	return armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(e.ID("Microsoft.Network/publicIPAddresses/pip1"))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("p1"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolHTTP), Port: to.Ptr[int32](8080), RequestPath: to.Ptr("/healthz")}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("r1"), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
				BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
				Probe:                   &armnetwork.SubResource{ID: to.Ptr(e.LBChild(name, "probes", "p1"))},
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

func (e *Env) PutLB(t *testing.T, name string, lb armnetwork.LoadBalancer) (armnetwork.LoadBalancer, error) {
	t.Helper()
	p, err := e.LBs.BeginCreateOrUpdate(e.Ctx, "rg", name, lb, nil)
	if err != nil {
		return armnetwork.LoadBalancer{}, err
	}
	res, err := p.PollUntilDone(e.Ctx, Poll)
	return res.LoadBalancer, err
}

func RefIDs(refs []*armnetwork.SubResource) []string {
	var out []string
	for _, r := range refs {
		out = append(out, *r.ID)
	}
	return out
}

func (e *Env) VMSSBody(lbName string, probe bool, mode armcompute.UpgradeMode) armcompute.VirtualMachineScaleSet {
	ipc := &armcompute.VirtualMachineScaleSetIPConfigurationProperties{
		Subnet:                          &armcompute.APIEntityReference{ID: to.Ptr(e.ID("Microsoft.Network/virtualNetworks/vn1/subnets/default"))},
		LoadBalancerBackendAddressPools: []*armcompute.SubResource{{ID: to.Ptr(e.LBChild(lbName, "backendAddressPools", "be"))}},
	}
	np := &armcompute.VirtualMachineScaleSetNetworkProfile{NetworkInterfaceConfigurations: []*armcompute.VirtualMachineScaleSetNetworkConfiguration{{
		Name: to.Ptr("nic"), Properties: &armcompute.VirtualMachineScaleSetNetworkConfigurationProperties{Primary: to.Ptr(true),
			IPConfigurations: []*armcompute.VirtualMachineScaleSetIPConfiguration{{Name: to.Ptr("ipc"), Properties: ipc}}}}}}
	if probe {
		np.HealthProbe = &armcompute.APIEntityReference{ID: to.Ptr(e.LBChild(lbName, "probes", "p1"))}
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

func (e *Env) PutVMSS(t *testing.T, name string, v armcompute.VirtualMachineScaleSet, opts *armcompute.VirtualMachineScaleSetsClientBeginCreateOrUpdateOptions) (armcompute.VirtualMachineScaleSet, error) {
	t.Helper()
	p, err := e.VMSS.BeginCreateOrUpdate(e.Ctx, "rg", name, v, opts)
	if err != nil {
		return armcompute.VirtualMachineScaleSet{}, err
	}
	res, err := p.PollUntilDone(e.Ctx, Poll)
	return res.VirtualMachineScaleSet, err
}

func (e *Env) PatchVMSS(t *testing.T, name string, u armcompute.VirtualMachineScaleSetUpdate) (armcompute.VirtualMachineScaleSet, error) {
	t.Helper()
	p, err := e.VMSS.BeginUpdate(e.Ctx, "rg", name, u, nil)
	if err != nil {
		return armcompute.VirtualMachineScaleSet{}, err
	}
	res, err := p.PollUntilDone(e.Ctx, Poll)
	return res.VirtualMachineScaleSet, err
}

func WantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: succeeded, want %s", what, code)
	}
	if re := ResponseError(t, err); re.ErrorCode != code {
		t.Fatalf("%s: %s, want %s", what, re.ErrorCode, code)
	}
}

// TestScaleSetProbeRuleWayOut walks Azure's documented way out of
// CannotModifyRuleUsedByProbeUsedByVMSS step by step.
