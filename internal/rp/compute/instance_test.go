package compute_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
	"nimbus/internal/node"
	"nimbus/internal/poll"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Address plan (instance tests): subnet vn1/default 198.18.0.0/24 (instance
// customer addresses 198.18.0.10+n), provider addresses 127.18.0.10+n,
// instance public IPs 127.77.9.n (inside the node's loopback public pool).
// The node runs WITHOUT controllers: the tests write the scale-set
// controller's instance records into the store themselves and check what
// the API shows and which desired state the actions set.

// instEnv is an armtest.Env with load balancer lb1 (pool be, probe p1, rule r1,
// NAT pool natpool 50000-50119→22) and scale set web (Manual upgrades, pool
// be + natpool, health probe p1, Standard instance public IPs) of capacity
// 3, plus the instance records of web 0, 1, 2.
type instEnv struct {
	*armtest.Env
	vmID   string
	vms    *armcompute.VirtualMachineScaleSetVMsClient
	ifaces *armnetwork.InterfacesClient
	pips   *armnetwork.PublicIPAddressesClient
}

// instLB is lb1 of instEnv.
func instLB(e *armtest.Env) armnetwork.LoadBalancer {
	fe := e.LBChild("lb1", "frontendIPConfigurations", "fe")
	pool := e.LBChild("lb1", "backendAddressPools", "be")
	return armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(e.ID("Microsoft.Network/publicIPAddresses/pip1"))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("p1"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolHTTP), Port: to.Ptr[int32](80), RequestPath: to.Ptr("/health")}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("r1"), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
				BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
				Probe:                   &armnetwork.SubResource{ID: to.Ptr(e.LBChild("lb1", "probes", "p1"))},
				Protocol:                to.Ptr(armnetwork.TransportProtocolTCP), FrontendPort: to.Ptr[int32](80), BackendPort: to.Ptr[int32](80)}}},
			InboundNatPools: []*armnetwork.InboundNatPool{{Name: to.Ptr("natpool"), Properties: &armnetwork.InboundNatPoolPropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)}, Protocol: to.Ptr(armnetwork.TransportProtocolTCP),
				FrontendPortRangeStart: to.Ptr[int32](50000), FrontendPortRangeEnd: to.Ptr[int32](50119), BackendPort: to.Ptr[int32](22)}}},
		},
	}
}

// newInstEnv builds instEnv on the node e.
func newInstEnv(t *testing.T, e *armtest.Env) *instEnv {
	t.Helper()
	if _, err := e.PutLB(t, "lb1", instLB(e)); err != nil {
		t.Fatal(err)
	}
	body := e.VMSSBody("lb1", true, armcompute.UpgradeModeManual)
	body.SKU.Capacity = to.Ptr[int64](3)
	ipc := body.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
	ipc.LoadBalancerInboundNatPools = []*armcompute.SubResource{{ID: to.Ptr(e.LBChild("lb1", "inboundNatPools", "natpool"))}}
	ipc.PublicIPAddressConfiguration = &armcompute.VirtualMachineScaleSetPublicIPAddressConfiguration{Name: to.Ptr("pub"),
		SKU: &armcompute.PublicIPAddressSKU{Name: to.Ptr(armcompute.PublicIPAddressSKUNameStandard)}}
	if _, err := e.PutVMSS(t, "web", body, nil); err != nil {
		t.Fatal(err)
	}
	ie := &instEnv{Env: e, vmID: e.ID("Microsoft.Compute/virtualMachineScaleSets/web")}
	var err error
	if ie.vms, err = armcompute.NewVirtualMachineScaleSetVMsClient(e.Sub, e.Cred, e.Options); err != nil {
		t.Fatal(err)
	}
	if ie.ifaces, err = armnetwork.NewInterfacesClient(e.Sub, e.Cred, e.Options); err != nil {
		t.Fatal(err)
	}
	if ie.pips, err = armnetwork.NewPublicIPAddressesClient(e.Sub, e.Cred, e.Options); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		ie.writeInstance(t, i)
	}
	return ie
}

// instScaleSet reads the stored model of scale set name in group rg.
func instScaleSet(t testing.TB, n *armtest.Node, name string) *resource.VirtualMachineScaleSet {
	t.Helper()
	id, _ := resource.ParseID(n.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/"+name))
	kv, err := n.Store.Get(context.Background(), resource.Key(id))
	if err != nil {
		t.Fatal(err)
	}
	v, err := resource.DecodeScaleSet(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// storeInstance writes instance num of scale set name as the controller
// would once it is running (the current model applied, addresses), changed
// by edit.
func storeInstance(t testing.TB, n *armtest.Node, name string, num int, edit func(*resource.Instance)) {
	t.Helper()
	v := instScaleSet(t, n, name)
	id := fmt.Sprint(num)
	in := &resource.Instance{
		ScaleSetID: v.ID, InstanceID: id, Name: name + "_" + id, ComputerName: fmt.Sprintf("vm%06d", num),
		VMID: fmt.Sprintf("00000000-0000-0000-0000-%012d", num), Location: v.Location,
		Created: time.Date(2026, 1, 1, 0, 0, num, 0, time.UTC),
		Model:   v.Properties.VirtualMachineProfile, ModelHash: resource.ProfileHash(v.Properties.VirtualMachineProfile),
		Subnet:    n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1/subnets/default"),
		PrivateIP: fmt.Sprintf("198.18.0.%d", 10+num), ProviderIP: fmt.Sprintf("127.18.0.%d", 10+num),
		Power: resource.PowerRunning, Actual: resource.PowerRunning,
		ProvisioningState: resource.Succeeded,
	}
	if edit != nil {
		edit(in)
	}
	b, _ := json.Marshal(in)
	if _, err := n.Store.Put(context.Background(), resource.InstanceKey(v.ID, id), b, store.AnyRevision); err != nil {
		t.Fatal(err)
	}
}

// writeInstance writes instance n of web with its public IP and NAT pool port.
func (e *instEnv) writeInstance(t *testing.T, n int) {
	t.Helper()
	storeInstance(t, e.Node, "web", n, func(in *resource.Instance) {
		in.PublicIP = fmt.Sprintf("127.77.9.%d", n)
		in.NATPorts = map[string]uint16{resource.NormalizeRefID(e.LBChild("lb1", "inboundNatPools", "natpool")): uint16(50000 + n)}
	})
}

// record reads instance n's record.
func (e *instEnv) record(t *testing.T, n string) *resource.Instance {
	t.Helper()
	kv, err := e.Store.Get(context.Background(), resource.InstanceKey(e.vmID, n))
	if err != nil {
		t.Fatalf("instance %s: %v", n, err)
	}
	in, err := resource.DecodeInstance(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// listVMs lists web's instances with the SDK.
func (e *instEnv) listVMs(t *testing.T, expand string) []*armcompute.VirtualMachineScaleSetVM {
	t.Helper()
	var opts *armcompute.VirtualMachineScaleSetVMsClientListOptions
	if expand != "" {
		opts = &armcompute.VirtualMachineScaleSetVMsClientListOptions{Expand: to.Ptr(expand), Filter: to.Ptr("startswith(instanceView/statuses/code, 'PowerState')"), Select: to.Ptr("instanceView")}
	}
	var out []*armcompute.VirtualMachineScaleSetVM
	for pg := e.vms.NewListPager("rg", "web", opts); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Value...)
	}
	return out
}

func instStatusCodes(sts []*armcompute.InstanceViewStatus) []string {
	var out []string
	for _, s := range sts {
		out = append(out, *s.Code)
	}
	return out
}

func TestInstanceSDKViews(t *testing.T) {
	e := newInstEnv(t, armtest.NewEnv(t))
	vms := e.listVMs(t, "instanceView")
	if len(vms) != 3 {
		t.Fatalf("list: %d instances", len(vms))
	}
	for i, vm := range vms {
		n := fmt.Sprint(i)
		p := vm.Properties
		if *vm.ID != e.vmID+"/virtualMachines/"+n || *vm.Name != "web_"+n || *vm.InstanceID != n ||
			*vm.Type != "Microsoft.Compute/virtualMachineScaleSets/virtualMachines" || *vm.Location != "eastus" ||
			*vm.SKU.Name != "Standard_B1s" || vm.Etag == nil {
			t.Errorf("instance %d envelope: %s %s %s %s", i, *vm.ID, *vm.Name, *vm.Type, *vm.Location)
		}
		if !*p.LatestModelApplied || *p.ProvisioningState != "Succeeded" || *p.VMID == "" || p.TimeCreated == nil ||
			*p.OSProfile.ComputerName != fmt.Sprintf("vm%06d", i) || *p.OSProfile.AdminUsername != "azureuser" || p.OSProfile.AdminPassword != nil ||
			*p.StorageProfile.ImageReference.Offer != "workloads" ||
			*p.NetworkProfile.NetworkInterfaces[0].ID != *vm.ID+"/networkInterfaces/nic" ||
			*p.NetworkProfileConfiguration.NetworkInterfaceConfigurations[0].Name != "nic" ||
			*p.ProtectionPolicy.ProtectFromScaleIn || *p.ProtectionPolicy.ProtectFromScaleSetActions {
			t.Errorf("instance %d properties: %+v", i, p)
		}
		codes := instStatusCodes(p.InstanceView.Statuses)
		if !slices.Contains(codes, "PowerState/running") || !slices.Contains(codes, "ProvisioningState/succeeded") ||
			!slices.Contains(codes, "NimbusAddressMapping/mapped") {
			t.Errorf("instance %d statuses: %v", i, codes)
		}
		if p.InstanceView.VMHealth == nil || *p.InstanceView.VMHealth.Status.Code != "HealthState/unknown" {
			t.Errorf("instance %d health without runtime: %+v", i, p.InstanceView.VMHealth)
		}
	}
	if vms := e.listVMs(t, ""); vms[0].Properties.InstanceView != nil {
		t.Errorf("list without $expand has instance views")
	}

	// GET one, its instance view (with the CA→PA mapping), the scale set's view.
	got, err := e.vms.Get(e.Ctx, "rg", "web", "1", &armcompute.VirtualMachineScaleSetVMsClientGetOptions{Expand: to.Ptr(armcompute.InstanceViewTypesUserData)})
	if err != nil || *got.Name != "web_1" || got.Properties.InstanceView != nil {
		t.Fatalf("get: %v %+v", err, got)
	}
	iv, err := e.vms.GetInstanceView(e.Ctx, "rg", "web", "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	var mapping string
	for _, s := range iv.Statuses {
		if strings.HasPrefix(*s.Code, "NimbusAddressMapping/") {
			mapping = *s.Message
		}
	}
	if mapping != "privateIp=198.18.0.11 providerIp=127.18.0.11" || *iv.ComputerName != "vm000001" {
		t.Errorf("instance view mapping %q, computer %s", mapping, *iv.ComputerName)
	}
	st, _, raw := e.Do(http.MethodGet, e.vmID+"/virtualMachines/1/instanceView?api-version=2025-04-01", nil)
	if st != 200 || !strings.Contains(string(raw), `"nimbusAddressMapping":{"privateIp":"198.18.0.11","providerIp":"127.18.0.11","publicIp":"127.77.9.1"}`) {
		t.Errorf("raw instance view: %d %s", st, raw)
	}
	siv, err := e.VMSS.GetInstanceView(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{}
	for _, c := range siv.VirtualMachine.StatusesSummary {
		counts[*c.Code] = *c.Count
	}
	if counts["ProvisioningState/succeeded"] != 3 || counts["PowerState/running"] != 3 || counts["HealthState/unknown"] != 3 {
		t.Errorf("scale-set instance view counts: %v", counts)
	}

	// NICs and public IPs.
	natRule := e.LBChild("lb1", "inboundNatRules", "natpool.2")
	var nics []*armnetwork.Interface
	for pg := e.ifaces.NewListVirtualMachineScaleSetVMNetworkInterfacesPager("rg", "web", "2", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		nics = append(nics, page.Value...)
	}
	if len(nics) != 1 {
		t.Fatalf("instance NICs: %d", len(nics))
	}
	ipc := nics[0].Properties.IPConfigurations[0]
	if *nics[0].ID != e.vmID+"/virtualMachines/2/networkInterfaces/nic" || !*nics[0].Properties.Primary ||
		*ipc.Properties.PrivateIPAddress != "198.18.0.12" || *ipc.Properties.Subnet.ID != e.ID("Microsoft.Network/virtualNetworks/vn1/subnets/default") ||
		*ipc.Properties.LoadBalancerBackendAddressPools[0].ID != e.LBChild("lb1", "backendAddressPools", "be") ||
		len(ipc.Properties.LoadBalancerInboundNatRules) != 1 || *ipc.Properties.LoadBalancerInboundNatRules[0].ID != natRule ||
		*ipc.Properties.PublicIPAddress.ID != *ipc.ID+"/publicIPAddresses/pub" {
		t.Errorf("NIC: %+v / %+v", nics[0].Properties, ipc.Properties)
	}
	one, err := e.ifaces.GetVirtualMachineScaleSetNetworkInterface(e.Ctx, "rg", "web", "2", "NIC", nil)
	if err != nil || *one.Name != "nic" {
		t.Errorf("get NIC: %v", err)
	}
	gotIPC, err := e.ifaces.GetVirtualMachineScaleSetIPConfiguration(e.Ctx, "rg", "web", "2", "nic", "ipc", nil)
	if err != nil || *gotIPC.Properties.PrivateIPAddress != "198.18.0.12" {
		t.Errorf("get ipconfig: %v", err)
	}
	all := 0
	for pg := e.ifaces.NewListVirtualMachineScaleSetNetworkInterfacesPager("rg", "web", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		all += len(page.Value)
	}
	if all != 3 {
		t.Errorf("scale-set NICs: %d", all)
	}
	var pips []*armnetwork.PublicIPAddress
	for pg := e.pips.NewListVirtualMachineScaleSetPublicIPAddressesPager("rg", "web", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		pips = append(pips, page.Value...)
	}
	if len(pips) != 3 || *pips[1].Properties.IPAddress != "127.77.9.1" || *pips[1].SKU.Name != armnetwork.PublicIPAddressSKUNameStandard ||
		*pips[1].Properties.PublicIPAllocationMethod != armnetwork.IPAllocationMethodStatic ||
		*pips[1].Properties.IPConfiguration.ID != e.vmID+"/virtualMachines/1/networkInterfaces/nic/ipConfigurations/ipc" {
		t.Fatalf("scale-set public IPs: %d %+v", len(pips), pips)
	}
	pip, err := e.pips.GetVirtualMachineScaleSetPublicIPAddress(e.Ctx, "rg", "web", "0", "nic", "ipc", "pub", nil)
	if err != nil || *pip.Properties.IPAddress != "127.77.9.0" {
		t.Errorf("get instance public IP: %v", err)
	}
	n := 0
	for pg := e.pips.NewListVirtualMachineScaleSetVMPublicIPAddressesPager("rg", "web", "0", "nic", "ipc", nil); pg.More(); {
		page, err := pg.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		n += len(page.Value)
	}
	if n != 1 {
		t.Errorf("instance public IPs: %d", n)
	}

	// The load balancer shows the pool members and the generated NAT rules.
	lb, err := e.LBs.Get(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	members := refIDsOf(lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations)
	if len(members) != 3 || members[2] != e.vmID+"/virtualMachines/2/networkInterfaces/nic/ipConfigurations/ipc" {
		t.Errorf("pool members: %v", members)
	}
	rules := map[string]*armnetwork.InboundNatRule{}
	for _, r := range lb.Properties.InboundNatRules {
		rules[*r.Name] = r
	}
	if r := rules["natpool.2"]; r == nil || *r.Properties.FrontendPort != 50002 || *r.Properties.BackendPort != 22 ||
		*r.Properties.BackendIPConfiguration.ID != members[2] || *r.ID != natRule {
		t.Errorf("generated NAT rules: %v", rules)
	}

	// Missing things are ARM 404s.
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"instance", func() error { _, err := e.vms.Get(e.Ctx, "rg", "web", "9", nil); return err }},
		{"instance view", func() error { _, err := e.vms.GetInstanceView(e.Ctx, "rg", "web", "9", nil); return err }},
		{"scale set", func() error { _, err := e.vms.NewListPager("rg", "nope", nil).NextPage(e.Ctx); return err }},
		{"NIC", func() error {
			_, err := e.ifaces.GetVirtualMachineScaleSetNetworkInterface(e.Ctx, "rg", "web", "0", "other", nil)
			return err
		}},
	} {
		t.Run("404 "+tc.name, func(t *testing.T) {
			err := tc.call()
			if err == nil || armtest.ResponseError(t, err).StatusCode != http.StatusNotFound {
				t.Fatalf("got %v, want 404", err)
			}
		})
	}
}

func refIDsOf(refs []*armnetwork.InterfaceIPConfiguration) []string {
	var out []string
	for _, r := range refs {
		out = append(out, *r.ID)
	}
	return out
}

// instPoll runs the poller a Begin call returned (with its error) to completion.
func instPoll[T any](t *testing.T, ctx context.Context, p *runtime.Poller[T], err error) error {
	t.Helper()
	if err != nil {
		return err
	}
	_, err = p.PollUntilDone(ctx, armtest.Poll)
	return err
}

func TestInstanceSDKActions(t *testing.T) {
	e := newInstEnv(t, armtest.NewEnv(t))
	ctx := e.Ctx
	ids := func(v ...string) *armcompute.VirtualMachineScaleSetVMInstanceIDs {
		return &armcompute.VirtualMachineScaleSetVMInstanceIDs{InstanceIDs: to.SliceOfPtrs(v...)}
	}
	reqIDs := func(v ...string) armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs {
		return armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{InstanceIDs: to.SliceOfPtrs(v...)}
	}
	power := func() string {
		var out []string
		for _, n := range []string{"0", "1", "2"} {
			out = append(out, e.record(t, n).Power)
		}
		return strings.Join(out, ",")
	}
	gens := func() string {
		var out []string
		for _, n := range []string{"0", "1", "2"} {
			out = append(out, fmt.Sprint(e.record(t, n).Generation))
		}
		return strings.Join(out, ",")
	}
	steps := []struct {
		name      string
		call      func() error
		power     string
		gens      string
		wantCode  string
		wantState int
	}{
		{name: "power off all (no ids)", call: func() error {
			p, err := e.VMSS.BeginPowerOff(ctx, "rg", "web", nil)
			return instPoll(t, ctx, p, err)
		}, power: "stopped,stopped,stopped", gens: "0,0,0"},
		{name: "start *", call: func() error {
			p, err := e.VMSS.BeginStart(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginStartOptions{VMInstanceIDs: ids("*")})
			return instPoll(t, ctx, p, err)
		}, power: "running,running,running", gens: "0,0,0"},
		{name: "deallocate 1", call: func() error {
			p, err := e.VMSS.BeginDeallocate(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginDeallocateOptions{VMInstanceIDs: ids("1")})
			return instPoll(t, ctx, p, err)
		}, power: "running,deallocated,running", gens: "0,0,0"},
		{name: "restart 0 and 2", call: func() error {
			p, err := e.VMSS.BeginRestart(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginRestartOptions{VMInstanceIDs: ids("0", "2")})
			return instPoll(t, ctx, p, err)
		}, power: "running,deallocated,running", gens: "1,0,1"},
		{name: "reimage 1 starts it", call: func() error {
			p, err := e.VMSS.BeginReimage(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginReimageOptions{
				VMScaleSetReimageInput: &armcompute.VirtualMachineScaleSetReimageParameters{InstanceIDs: to.SliceOfPtrs("1")}})
			return instPoll(t, ctx, p, err)
		}, power: "running,running,running", gens: "1,1,1"},
		{name: "instance powerOff 2", call: func() error {
			p, err := e.vms.BeginPowerOff(ctx, "rg", "web", "2", nil)
			return instPoll(t, ctx, p, err)
		}, power: "running,running,stopped", gens: "1,1,1"},
		{name: "instance start 2", call: func() error {
			p, err := e.vms.BeginStart(ctx, "rg", "web", "2", nil)
			return instPoll(t, ctx, p, err)
		}, power: "running,running,running", gens: "1,1,1"},
		{name: "instance restart 0", call: func() error {
			p, err := e.vms.BeginRestart(ctx, "rg", "web", "0", nil)
			return instPoll(t, ctx, p, err)
		}, power: "running,running,running", gens: "2,1,1"},
		{name: "instance redeploy 0", call: func() error {
			p, err := e.vms.BeginRedeploy(ctx, "rg", "web", "0", nil)
			return instPoll(t, ctx, p, err)
		}, power: "running,running,running", gens: "3,1,1"},
		{name: "unknown id", call: func() error {
			p, err := e.VMSS.BeginRestart(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginRestartOptions{VMInstanceIDs: ids("0", "7")})
			return instPoll(t, ctx, p, err)
		}, wantCode: "InvalidParameter", wantState: 400, power: "running,running,running", gens: "3,1,1"},
		{name: "unknown instance path", call: func() error {
			p, err := e.vms.BeginRestart(ctx, "rg", "web", "7", nil)
			return instPoll(t, ctx, p, err)
		}, wantCode: "ResourceNotFound", wantState: 404, power: "running,running,running", gens: "3,1,1"},
		{name: "manualupgrade without ids", call: func() error {
			p, err := e.VMSS.BeginUpdateInstances(ctx, "rg", "web", reqIDs(), nil)
			return instPoll(t, ctx, p, err)
		}, wantCode: "InvalidParameter", wantState: 400, power: "running,running,running", gens: "3,1,1"},
		{name: "unknown scale set", call: func() error {
			p, err := e.VMSS.BeginStart(ctx, "rg", "nope", nil)
			return instPoll(t, ctx, p, err)
		}, wantCode: "ResourceNotFound", wantState: 404, power: "running,running,running", gens: "3,1,1"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			err := s.call()
			if s.wantCode != "" {
				if err == nil {
					t.Fatalf("succeeded, want %s", s.wantCode)
				}
				if re := armtest.ResponseError(t, err); re.ErrorCode != s.wantCode || re.StatusCode != s.wantState {
					t.Fatalf("got %d %s, want %d %s", re.StatusCode, re.ErrorCode, s.wantState, s.wantCode)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := power(); got != s.power {
				t.Errorf("power = %s, want %s", got, s.power)
			}
			if got := gens(); got != s.gens {
				t.Errorf("generations = %s, want %s", got, s.gens)
			}
		})
	}

	// az's reimage of one instance goes to the lower-case path.
	st, h, b := e.Do(http.MethodPost, strings.Replace(e.vmID, "virtualMachineScaleSets", "virtualmachinescalesets", 1)+"/virtualmachines/1/reimage?api-version=2020-06-01", nil)
	if st != http.StatusAccepted || h.Get("Location") == "" || h.Get("Azure-AsyncOperation") == "" {
		t.Fatalf("lower-case reimage: %d %s", st, b)
	}
	if got := gens(); got != "3,2,1" {
		t.Errorf("generations after lower-case reimage = %s", got)
	}

	// A stopped instance leaves the pool but keeps its NAT rule.
	p, err := e.vms.BeginPowerOff(ctx, "rg", "web", "1", nil)
	if err := instPoll(t, ctx, p, err); err != nil {
		t.Fatal(err)
	}
	lb, err := e.LBs.Get(ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if got := refIDsOf(lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations); len(got) != 2 || strings.Contains(strings.Join(got, " "), "/virtualMachines/1/") {
		t.Errorf("pool members with 1 stopped: %v", got)
	}
	natRules := 0
	for _, r := range lb.Properties.InboundNatRules {
		if strings.HasPrefix(*r.Name, "natpool.") {
			natRules++
		}
	}
	if natRules != 3 {
		t.Errorf("generated NAT rules with 1 stopped: %d", natRules)
	}
	health, err := e.Rules.BeginHealth(ctx, "rg", "lb1", "r1", nil)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := health.PollUntilDone(ctx, armtest.Poll)
	if err != nil || len(hr.LoadBalancerBackendAddresses) != 2 || *hr.LoadBalancerBackendAddresses[0].IPAddress != "198.18.0.10" {
		t.Errorf("rule health: %v %+v", err, hr)
	}

	// Model change: latestModelApplied goes false; manualupgrade 0 brings it back.
	if _, err := e.PatchVMSS(t, "web", armcompute.VirtualMachineScaleSetUpdate{Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{
		VirtualMachineProfile: &armcompute.VirtualMachineScaleSetUpdateVMProfile{StorageProfile: &armcompute.VirtualMachineScaleSetUpdateStorageProfile{
			ImageReference: &armcompute.ImageReference{Publisher: to.Ptr("nimbus"), Offer: to.Ptr("workloads"), SKU: to.Ptr("script"), Version: to.Ptr("latest")}}}}}); err != nil {
		t.Fatal(err)
	}
	latest := func() string {
		var out []string
		for _, vm := range e.listVMs(t, "") {
			out = append(out, fmt.Sprint(*vm.Properties.LatestModelApplied))
		}
		return strings.Join(out, ",")
	}
	if got := latest(); got != "false,false,false" {
		t.Fatalf("latestModelApplied after model change = %s", got)
	}
	up, err := e.VMSS.BeginUpdateInstances(ctx, "rg", "web", reqIDs("0"), nil)
	if err := instPoll(t, ctx, up, err); err != nil {
		t.Fatal(err)
	}
	if got := latest(); got != "true,false,false" {
		t.Errorf("latestModelApplied after manualupgrade 0 = %s", got)
	}
	if r := e.record(t, "0"); r.Generation != 4 || r.Model.StorageProfile.ImageReference.SKU != "script" {
		t.Errorf("upgraded record: generation %d, image %+v", r.Generation, r.Model.StorageProfile.ImageReference)
	}

	// Protection: scale-set actions skip or refuse a protected instance;
	// actions on the instance itself still work.
	vm, err := e.vms.BeginUpdate(ctx, "rg", "web", "2", armcompute.VirtualMachineScaleSetVM{Properties: &armcompute.VirtualMachineScaleSetVMProperties{
		ProtectionPolicy: &armcompute.VirtualMachineScaleSetVMProtectionPolicy{ProtectFromScaleSetActions: to.Ptr(true)}}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	upd, err := vm.PollUntilDone(ctx, armtest.Poll)
	if err != nil || !*upd.Properties.ProtectionPolicy.ProtectFromScaleIn || !*upd.Properties.ProtectionPolicy.ProtectFromScaleSetActions {
		t.Fatalf("protect 2: %v %+v", err, upd.Properties)
	}
	_, err = e.vms.BeginUpdate(ctx, "rg", "web", "2", armcompute.VirtualMachineScaleSetVM{Properties: &armcompute.VirtualMachineScaleSetVMProperties{
		ProtectionPolicy: &armcompute.VirtualMachineScaleSetVMProtectionPolicy{ProtectFromScaleIn: to.Ptr(false)}}},
		&armcompute.VirtualMachineScaleSetVMsClientBeginUpdateOptions{IfMatch: to.Ptr(`"1"`)})
	armtest.WantCode(t, "update with a stale If-Match", err, "PreconditionFailed")
	_, err = e.vms.BeginUpdate(ctx, "rg", "web", "2", armcompute.VirtualMachineScaleSetVM{}, &armcompute.VirtualMachineScaleSetVMsClientBeginUpdateOptions{IfMatch: upd.Etag})
	if err != nil {
		t.Errorf("update with the current etag: %v", err)
	}
	rs, err := e.VMSS.BeginRestart(ctx, "rg", "web", nil)
	if err := instPoll(t, ctx, rs, err); err != nil {
		t.Fatal(err)
	}
	if got := gens(); got != "5,3,1" {
		t.Errorf("generations after restart of all with 2 protected = %s", got)
	}
	_, err = e.VMSS.BeginDeallocate(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginDeallocateOptions{VMInstanceIDs: ids("2")})
	armtest.WantCode(t, "deallocate protected 2", err, "OperationNotAllowed")
	own, err := e.vms.BeginRestart(ctx, "rg", "web", "2", nil)
	if err := instPoll(t, ctx, own, err); err != nil || e.record(t, "2").Generation != 2 {
		t.Errorf("instance restart of protected 2: %v", err)
	}

	// Delete instances lowers the capacity; so does deleting one instance.
	capacity := func() int64 {
		v, err := e.VMSS.Get(ctx, "rg", "web", nil)
		if err != nil {
			t.Fatal(err)
		}
		return *v.SKU.Capacity
	}
	_, err = e.VMSS.BeginDeleteInstances(ctx, "rg", "web", reqIDs("1", "8"), nil)
	armtest.WantCode(t, "delete unknown 8", err, "InvalidParameter")
	del, err := e.VMSS.BeginDeleteInstances(ctx, "rg", "web", reqIDs("2"), &armcompute.VirtualMachineScaleSetsClientBeginDeleteInstancesOptions{ForceDeletion: to.Ptr(true)})
	if err := instPoll(t, ctx, del, err); err != nil {
		t.Fatal(err)
	}
	if c := capacity(); c != 2 || !e.record(t, "2").Deleting {
		t.Errorf("after deleting protected 2: capacity %d, deleting %v", c, e.record(t, "2").Deleting)
	}
	got2, err := e.vms.Get(ctx, "rg", "web", "2", nil)
	if err != nil || *got2.Properties.ProvisioningState != "Deleting" {
		t.Errorf("deleting instance: %v %v", err, got2.Properties)
	}
	d1, err := e.vms.BeginDelete(ctx, "rg", "web", "1", nil)
	if err := instPoll(t, ctx, d1, err); err != nil {
		t.Fatal(err)
	}
	if c := capacity(); c != 1 || !e.record(t, "1").Deleting {
		t.Errorf("after deleting 1: capacity %d", c)
	}
	_, err = e.VMSS.BeginRestart(ctx, "rg", "web", &armcompute.VirtualMachineScaleSetsClientBeginRestartOptions{VMInstanceIDs: ids("1")})
	armtest.WantCode(t, "restart deleting 1", err, "InvalidParameter")
	if d, err := e.vms.BeginDelete(ctx, "rg", "web", "42", nil); instPoll(t, ctx, d, err) != nil {
		t.Errorf("delete of a missing instance: %v", err)
	}

	// Actions on a deleted scale set are 404s.
	vd, err := e.VMSS.BeginDelete(ctx, "rg", "web", nil)
	if err := instPoll(t, ctx, vd, err); err != nil {
		t.Fatal(err)
	}
	_, err = e.VMSS.BeginRestart(ctx, "rg", "web", nil)
	armtest.WantCode(t, "restart of a deleted scale set", err, "ResourceNotFound")
	_, err = e.vms.BeginPowerOff(ctx, "rg", "web", "0", nil)
	armtest.WantCode(t, "power off in a deleted scale set", err, "ResourceNotFound")
	_, err = e.VMSS.BeginDeleteInstances(ctx, "rg", "web", reqIDs("0"), nil)
	armtest.WantCode(t, "delete instances of a deleted scale set", err, "ResourceNotFound")
}

// instRuntime is a fake Runtime: health answers from a table, WaitScaleSet
// blocks until release is closed.
type instRuntime struct {
	arm.Runtime
	health  map[string]int // lower backend id part "/virtualmachines/{n}/" -> 1 up, 0 down, -1 unknown
	mu      sync.Mutex
	release chan struct{}
}

// hold makes WaitScaleSet block until the returned function is called.
func (r *instRuntime) hold() (release func()) {
	ch := make(chan struct{})
	r.mu.Lock()
	r.release = ch
	r.mu.Unlock()
	return func() { close(ch) }
}

func (r *instRuntime) WaitScaleSet(ctx context.Context, vmssID string) error {
	r.mu.Lock()
	ch := r.release
	r.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (r *instRuntime) BackendHealth(probeID, backendID string) (up, known bool, reason string) {
	for k, v := range r.health {
		if strings.Contains(strings.ToLower(backendID), k) {
			return v == 1, v >= 0, fmt.Sprintf("probe %s says %d", probeID[strings.LastIndex(probeID, "/")+1:], v)
		}
	}
	return false, false, ""
}

func TestInstanceRuntime(t *testing.T) {
	rt := &instRuntime{health: map[string]int{"/virtualmachines/0/": 1, "/virtualmachines/1/": 0, "/virtualmachines/2/": -1}}
	e := newInstEnv(t, armtest.NewEnvOn(t, armtest.StartWith(t, node.Config{Runtime: rt})))
	for n, want := range map[string]string{"0": "HealthState/healthy", "1": "HealthState/unhealthy", "2": "HealthState/unknown"} {
		iv, err := e.vms.GetInstanceView(e.Ctx, "rg", "web", n, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := *iv.VMHealth.Status.Code; got != want {
			t.Errorf("instance %s health = %s, want %s", n, got, want)
		}
	}
	siv, err := e.VMSS.GetInstanceView(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int32{}
	for _, c := range siv.VirtualMachine.StatusesSummary {
		counts[*c.Code] = *c.Count
	}
	if counts["HealthState/healthy"] != 1 || counts["HealthState/unhealthy"] != 1 || counts["HealthState/unknown"] != 1 {
		t.Errorf("health counts: %v", counts)
	}

	// An action's operation stays InProgress until the scale set converged.
	release := rt.hold()
	st, h, b := e.Do(http.MethodPost, e.vmID+"/restart?api-version=2025-04-01", `{"instanceIds":["0"]}`)
	if st != http.StatusAccepted {
		t.Fatalf("restart: %d %s", st, b)
	}
	status := func() string {
		_, _, body := e.Do(http.MethodGet, h.Get("Azure-AsyncOperation"), nil)
		var s struct{ Status string }
		_ = json.Unmarshal(body, &s)
		return s.Status
	}
	if got := status(); got != "InProgress" {
		t.Fatalf("operation before convergence: %s", got)
	}
	release()
	poll.Until(t, 10*time.Second, "the operation to succeed once the scale set converged", func() error {
		if got := status(); got != "Succeeded" {
			return fmt.Errorf("status %s", got)
		}
		return nil
	})
	if st, _, _ := e.Do(http.MethodGet, h.Get("Location"), nil); st != http.StatusNoContent {
		t.Errorf("operation result: %d", st)
	}
}

// TestInstanceAZ drives the instance API with the az CLI (hybrid profile,
// compute api-version 2020-06-01).
func TestInstanceAZ(t *testing.T) {
	e := newInstEnv(t, armtest.NewEnv(t))
	env := armtest.LoginAZ(t, e.Node)
	var list []struct {
		Name, InstanceID   string
		LatestModelApplied bool
		ProvisioningState  string
		OSProfile          struct{ ComputerName string }
	}
	out := armtest.RunAZ(t, env, "vmss", "list-instances", "-g", "rg", "-n", "web", "-o", "json")
	if err := json.Unmarshal(out, &list); err != nil || len(list) != 3 {
		t.Fatalf("list-instances: %v %s", err, out)
	}
	if l := list[2]; l.Name != "web_2" || l.InstanceID != "2" || !l.LatestModelApplied || l.ProvisioningState != "Succeeded" || l.OSProfile.ComputerName != "vm000002" {
		t.Errorf("list-instances[2] = %+v", l)
	}
	var conn map[string]string
	out = armtest.RunAZ(t, env, "vmss", "list-instance-connection-info", "-g", "rg", "-n", "web", "-o", "json")
	if err := json.Unmarshal(out, &conn); err != nil || len(conn) != 3 || !strings.HasSuffix(conn["instance 2"], ":50002") {
		t.Errorf("list-instance-connection-info: %v %s", err, out)
	}
	out = armtest.RunAZ(t, env, "vmss", "list-instance-public-ips", "-g", "rg", "-n", "web", "--query", "[].ipAddress", "-o", "tsv")
	if got := strings.Fields(string(out)); !slices.Equal(got, []string{"127.77.9.0", "127.77.9.1", "127.77.9.2"}) {
		t.Errorf("list-instance-public-ips: %s", out)
	}
	out = armtest.RunAZ(t, env, "vmss", "nic", "list", "-g", "rg", "--vmss-name", "web", "--query", "[].ipConfigurations[].privateIPAddress", "-o", "tsv")
	if got := strings.Fields(string(out)); !slices.Equal(got, []string{"198.18.0.10", "198.18.0.11", "198.18.0.12"}) {
		t.Errorf("vmss nic list: %s", out)
	}
	armtest.RunAZ(t, env, "vmss", "restart", "-g", "rg", "-n", "web", "--instance-ids", "0")
	if g0, g1 := e.record(t, "0").Generation, e.record(t, "1").Generation; g0 != 1 || g1 != 0 {
		t.Errorf("restart --instance-ids 0: generations %d, %d", g0, g1)
	}
	armtest.RunAZ(t, env, "vmss", "deallocate", "-g", "rg", "-n", "web")
	if p := e.record(t, "2").Power; p != resource.PowerDeallocated {
		t.Errorf("deallocate without ids (\"*\"): power %s", p)
	}
	var view struct {
		VirtualMachine struct {
			StatusesSummary []struct {
				Code  string
				Count int
			}
		}
	}
	out = armtest.RunAZ(t, env, "vmss", "get-instance-view", "-g", "rg", "-n", "web", "-o", "json")
	// No controller runs: the instances are asked to deallocate and still run.
	if err := json.Unmarshal(out, &view); err != nil || !strings.Contains(string(out), `"PowerState/deallocating"`) {
		t.Fatalf("get-instance-view: %v %s", err, out)
	}
	out = armtest.RunAZ(t, env, "vmss", "get-instance-view", "-g", "rg", "-n", "web", "--instance-id", "1", "--query", "statuses[].code", "-o", "tsv")
	if codes := string(out); !strings.Contains(codes, "NimbusAddressMapping/mapped") || !strings.Contains(codes, "ProvisioningState/succeeded") {
		t.Errorf("instance view codes: %s", codes)
	}
	armtest.RunAZ(t, env, "vmss", "update-instances", "-g", "rg", "-n", "web", "--instance-ids", "*")
	armtest.RunAZ(t, env, "vmss", "delete-instances", "-g", "rg", "-n", "web", "--instance-ids", "1")
	out = armtest.RunAZ(t, env, "vmss", "show", "-g", "rg", "-n", "web", "--query", "sku.capacity", "-o", "tsv")
	if c := strings.TrimSpace(string(out)); c != "2" || !e.record(t, "1").Deleting {
		t.Errorf("delete-instances 1: capacity %s, deleting %v", c, e.record(t, "1").Deleting)
	}
	_, stderr, err := armtest.TryAZ(t, env, "vmss", "restart", "-g", "rg", "-n", "web", "--instance-ids", "9")
	if err == nil || !strings.Contains(stderr, "InvalidParameter") {
		t.Errorf("restart of an unknown id: %v %s", err, stderr)
	}
}

// TestInstanceNATRuleV2 checks NAT rule v2 port mappings of instances:
// queryInboundNatRulePortMapping and the NIC's loadBalancerInboundNatRules.
func TestInstanceNATRuleV2(t *testing.T) {
	e := armtest.NewEnv(t)
	fe := e.LBChild("lb2", "frontendIPConfigurations", "fe")
	pool := e.LBChild("lb2", "backendAddressPools", "be")
	rule := e.LBChild("lb2", "inboundNatRules", "ssh")
	_, err := e.PutLB(t, "lb2", armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"), Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
				PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(e.ID("Microsoft.Network/publicIPAddresses/pip2"))}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			InboundNatRules: []*armnetwork.InboundNatRule{{Name: to.Ptr("ssh"), Properties: &armnetwork.InboundNatRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)}, BackendAddressPool: &armnetwork.SubResource{ID: to.Ptr(pool)},
				Protocol: to.Ptr(armnetwork.TransportProtocolTCP), FrontendPortRangeStart: to.Ptr[int32](60000), FrontendPortRangeEnd: to.Ptr[int32](60099),
				BackendPort: to.Ptr[int32](22)}}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutVMSS(t, "api", e.VMSSBody("lb2", false, armcompute.UpgradeModeManual), nil); err != nil {
		t.Fatal(err)
	}
	for i, power := range []string{resource.PowerRunning, resource.PowerStopped} {
		storeInstance(t, e.Node, "api", i, func(in *resource.Instance) {
			in.Power, in.Actual = power, power
			in.NATPorts = map[string]uint16{resource.NormalizeRefID(rule): uint16(60000 + i)}
		})
	}
	ipc := func(n string) string {
		return e.ID("Microsoft.Compute/virtualMachineScaleSets/api/virtualMachines/" + n + "/networkInterfaces/nic/ipConfigurations/ipc")
	}
	tests := []struct {
		name  string
		query armnetwork.QueryInboundNatRulePortMappingRequest
		want  string // "rule:frontend->backend", "" for none
	}{
		{"running instance by ipconfig", armnetwork.QueryInboundNatRulePortMappingRequest{IPConfiguration: &armnetwork.SubResource{ID: to.Ptr(ipc("0"))}}, "ssh:60000->22"},
		{"running instance by address", armnetwork.QueryInboundNatRulePortMappingRequest{IPAddress: to.Ptr("198.18.0.10")}, "ssh:60000->22"},
		{"stopped instance", armnetwork.QueryInboundNatRulePortMappingRequest{IPConfiguration: &armnetwork.SubResource{ID: to.Ptr(ipc("1"))}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := e.LBs.BeginListInboundNatRulePortMappings(e.Ctx, "rg", "lb2", "be", tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.PollUntilDone(e.Ctx, armtest.Poll)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, m := range res.InboundNatRulePortMappings {
				got = append(got, fmt.Sprintf("%s:%d->%d", *m.InboundNatRuleName, *m.FrontendPort, *m.BackendPort))
			}
			if strings.Join(got, ",") != tt.want {
				t.Errorf("mappings = %v, want %q", got, tt.want)
			}
		})
	}
	nics, err := armnetwork.NewInterfacesClient(e.Sub, e.Cred, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	nic, err := nics.GetVirtualMachineScaleSetNetworkInterface(e.Ctx, "rg", "api", "0", "nic", nil)
	if err != nil {
		t.Fatal(err)
	}
	if refs := nic.Properties.IPConfigurations[0].Properties.LoadBalancerInboundNatRules; len(refs) != 1 || !strings.EqualFold(*refs[0].ID, rule) {
		t.Errorf("NIC NAT rules: %v", refs)
	}
}

// instMissingKeys lists the key paths of want (a spec example) that got
// lacks; values may differ, arrays are compared element-wise by position.
func instMissingKeys(want, got any, path string, skip map[string]bool) []string {
	var out []string
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{path}
		}
		for k, v := range w {
			if skip[k] {
				continue
			}
			gv, ok := g[k]
			if !ok {
				out = append(out, path+"."+k)
				continue
			}
			out = append(out, instMissingKeys(v, gv, path+"."+k, skip)...)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			return []string{path + "[]"}
		}
		for i := range min(len(w), len(g)) {
			out = append(out, instMissingKeys(w[i], g[i], fmt.Sprintf("%s[%d]", path, i), skip)...)
		}
	}
	return out
}

// TestInstanceConformance compares GET of an instance with the spec example
// VirtualMachineScaleSetVM_Get_WithUserData: every field the example shows
// is there, except those about things nimbus does not model (extensions,
// data disks, Windows, image exact versions, NIC settings the model lacks).
func TestInstanceConformance(t *testing.T) {
	e := newInstEnv(t, armtest.NewEnv(t))
	st, _, b := e.Do(http.MethodPatch, e.vmID+"?api-version=2025-04-01", map[string]any{
		"tags": map[string]string{"myTag1": "tagValue1"},
		"properties": map[string]any{"virtualMachineProfile": map[string]any{
			"userData":           "RXhhbXBsZSBVc2VyRGF0YQ==",
			"diagnosticsProfile": map[string]any{"bootDiagnostics": map[string]any{"enabled": true}},
			"storageProfile":     map[string]any{"osDisk": map[string]any{"createOption": "FromImage", "caching": "None"}},
		}},
	})
	if st != http.StatusOK {
		t.Fatalf("patch: %d %s", st, b)
	}
	storeInstance(t, e.Node, "web", 0, nil)
	raw, err := os.ReadFile("testdata/arm-examples/VirtualMachineScaleSetVM_Get_WithUserData.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Responses map[string]struct {
			Body any `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	st, _, b = e.Do(http.MethodGet, e.vmID+"/virtualMachines/0?api-version=2025-04-01&$expand=userData", nil)
	if st != http.StatusOK {
		t.Fatalf("get: %d %s", st, b)
	}
	var got any
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	skip := map[string]bool{"resources": true, "dataDisks": true, "windowsConfiguration": true, "secrets": true,
		"exactVersion": true, "dnsSettings": true, "enableAcceleratedNetworking": true, "enableIPForwarding": true,
		"managedDisk": true, "osType": true, "diskSizeGB": true, "privateIPAddressVersion": true}
	if missing := instMissingKeys(ex.Responses["200"].Body, got, "", skip); len(missing) > 0 {
		t.Errorf("GET instance lacks %v\n%s", missing, b)
	}
}

// TestInstanceLBViewMatches checks that a load balancer's GET shows exactly
// what resource.LBView computes from the instance records (the data plane's
// membership rules) for running, stopped and deleting instances.
func TestInstanceLBViewMatches(t *testing.T) {
	e := newInstEnv(t, armtest.NewEnv(t))
	storeInstance(t, e.Node, "web", 1, func(in *resource.Instance) {
		in.Power, in.Actual = resource.PowerStopped, resource.PowerStopped
		in.NATPorts = map[string]uint16{resource.NormalizeRefID(e.LBChild("lb1", "inboundNatPools", "natpool")): 50001}
	})
	storeInstance(t, e.Node, "web", 2, func(in *resource.Instance) { in.Deleting = true })
	storeInstance(t, e.Node, "web", 3, nil) // running, no NAT port yet
	kv, err := e.Store.Get(context.Background(), resource.Key(resource.NewID(e.Sub, "rg", resource.LoadBalancerType, "lb1")))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := resource.DecodeLoadBalancer(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	var records []*resource.Instance
	for _, n := range []string{"0", "1", "2", "3"} {
		records = append(records, e.record(t, n))
	}
	want := resource.LBView(stored, records)
	lb, err := e.LBs.Get(e.Ctx, "rg", "lb1", nil)
	if err != nil {
		t.Fatal(err)
	}
	gotMembers := refIDsOf(lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations)
	wantMembers := want.PoolMembers[resource.NormalizeRefID(e.LBChild("lb1", "backendAddressPools", "be"))]
	if !slices.Equal(gotMembers, wantMembers) || len(wantMembers) != 2 {
		t.Errorf("pool members = %v, LBView %v", gotMembers, wantMembers)
	}
	var gotRules, wantRules []string
	for _, r := range lb.Properties.InboundNatRules {
		gotRules = append(gotRules, fmt.Sprintf("%s %d %s", *r.Name, *r.Properties.FrontendPort, *r.Properties.BackendIPConfiguration.ID))
	}
	for _, r := range want.GeneratedNatRules {
		wantRules = append(wantRules, fmt.Sprintf("%s %d %s", r.Name, *r.Properties.FrontendPort, r.Properties.BackendIPConfiguration.ID))
	}
	slices.Sort(gotRules)
	slices.Sort(wantRules)
	if !slices.Equal(gotRules, wantRules) || len(wantRules) != 2 {
		t.Errorf("generated NAT rules = %v, LBView %v", gotRules, wantRules)
	}
}
