package system

// Address plan: the public pool is 127.77.0.0/16 (loopback, userspace
// engine); instances' customer addresses come from 10.0.0.0/24 and map to
// provider addresses in 127.100.0.0/16. Traffic goes only to loopback.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"nimbus/internal/hostnet"
	"nimbus/internal/node"
	"nimbus/internal/poll"
	"nimbus/internal/sdktest"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// testLogger writes the system's logs to $NIMBUS_TEST_LOG when set.
func testLogger() *slog.Logger {
	if p := os.Getenv("NIMBUS_TEST_LOG"); p != "" {
		if f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			return slog.New(slog.NewTextHandler(f, nil))
		}
	}
	return nil
}

// env is a running nimbus with SDK clients.
type env struct {
	t    testing.TB
	sys  *System
	dir  string
	sub  string
	opts *arm.ClientOptions
	cred sdktest.Credential
	rg   string
}

func startSystem(t testing.TB, dir string) *System { return startSystemMode(t, dir, Process) }

// providerPool is the process driver's range in these tests (a /22: the
// 1,000-instance benchmark needs room).
var providerPool = netip.MustParsePrefix("127.80.0.0/22")

// internalPoolForTests is where these tests' private frontends listen, off
// the default so that other packages' nimbus can run side by side.
var internalPoolForTests = netip.MustParsePrefix("127.104.0.0/16")

// startSystemMode starts nimbus with the process driver and proxy, or the
// netns driver and nft (kernel), with address pools and a namespace of its
// own: other test packages run nimbus side by side.
func startSystemMode(t testing.TB, dir, driver string, tweak ...func(*Options)) *System {
	t.Helper()
	ctx := context.Background()
	pool, dp := netip.MustParsePrefix("127.78.1.0/24"), Proxy
	if driver == Netns {
		pool, dp = netip.MustParsePrefix("198.18.131.0/24"), NFT
	}
	opt := Options{
		Node: node.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicPool: pool,
			Logger: testLogger()},
		ProviderPool:  providerPool,
		InternalPool:  internalPoolForTests,
		HostNet:       hostnet.Options{Name: "nbsys", Uplink: netip.MustParsePrefix("198.19.253.0/30")},
		Driver:        driver,
		Dataplane:     dp,
		WorkloadEnv:   map[string]string{workload.ReexecEnv: "1"},
		Resync:        200 * time.Millisecond,
		ProbeInterval: time.Second,
		RepairGrace:   2 * time.Second,
		MetricsListen: "127.0.0.1:0",
	}
	for _, f := range tweak {
		f(&opt)
	}
	s, err := Start(ctx, opt)
	if err != nil {
		t.Fatalf("start nimbus: %v", err)
	}
	return s
}

func newEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	dir := t.TempDir()
	e := &env{t: t, dir: dir, rg: "rg"}
	e.restart(nil)
	t.Cleanup(func() {
		if e.sys == nil {
			return
		}
		// Delete the scale sets so no instance outlives the test, then stop.
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := e.vmss()
		pager := c.NewListPager(e.rg, nil)
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				break
			}
			for _, v := range page.Value {
				if p, err := c.BeginDelete(ctx, e.rg, *v.Name, nil); err == nil {
					_, _ = p.PollUntilDone(ctx, sdktest.Poll)
				}
			}
		}
		_ = e.sys.VMSS.WaitConverged(ctx, "/subscriptions/"+e.sub+"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web")
		_ = e.sys.Stop()
	})
	return e
}

// restart stops the running system (if any) and starts a new one over the
// same data directory.
func (e *env) restart(before func()) {
	e.t.Helper()
	if e.sys != nil {
		if err := e.sys.Stop(); err != nil {
			e.t.Fatalf("stop: %v", err)
		}
	}
	if before != nil {
		before()
	}
	e.sys = startSystem(e.t, e.dir)
	ep := e.sys.Node.Endpoint
	opts, err := sdktest.Options(ep.Endpoint, ep.CAFile)
	if err != nil {
		e.t.Fatal(err)
	}
	e.sub, e.opts = ep.SubscriptionID, opts
	e.cred = sdktest.Credential{Minter: e.sys.Node.Issuer, Audience: ep.Audience}
}

func (e *env) vmss() *armcompute.VirtualMachineScaleSetsClient {
	c, err := armcompute.NewVirtualMachineScaleSetsClient(e.sub, e.cred, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) vms() *armcompute.VirtualMachineScaleSetVMsClient {
	c, err := armcompute.NewVirtualMachineScaleSetVMsClient(e.sub, e.cred, e.opts)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) id(kind, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", e.sub, e.rg, kind, name)
}

// setup creates the group, network, public IP and a Standard load balancer
// with an HTTP probe, a rule 80→80 and a NAT pool 50000-50119 → 22, and
// returns the frontend address.
func (e *env) setup(ctx context.Context) string { return e.setupLB(ctx, false) }

// setupLB is setup; with v2 the load balancer has a pool-based NAT rule
// ssh2 (51000-51099 → 22) instead of the NAT pool (Azure allows only one of
// the two on a load balancer).
func (e *env) setupLB(ctx context.Context, v2 bool) string {
	t := e.t
	rgc, err := armresources.NewResourceGroupsClient(e.sub, e.cred, e.opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rgc.CreateOrUpdate(ctx, e.rg, armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
		t.Fatalf("create group: %v", err)
	}
	vnc, _ := armnetwork.NewVirtualNetworksClient(e.sub, e.cred, e.opts)
	vp, err := vnc.BeginCreateOrUpdate(ctx, e.rg, "vn", armnetwork.VirtualNetwork{
		Location: to.Ptr("eastus"),
		Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: []*string{to.Ptr("10.0.0.0/16")}},
			Subnets: []*armnetwork.Subnet{{Name: to.Ptr("default"),
				Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.0.0.0/24")}}},
		},
	}, nil)
	if err == nil {
		_, err = vp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create vnet: %v", err)
	}
	pipc, _ := armnetwork.NewPublicIPAddressesClient(e.sub, e.cred, e.opts)
	pp, err := pipc.BeginCreateOrUpdate(ctx, e.rg, "pip", armnetwork.PublicIPAddress{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{
			PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic)},
	}, nil)
	var pipRes armnetwork.PublicIPAddressesClientCreateOrUpdateResponse
	if err == nil {
		pipRes, err = pp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create public ip: %v", err)
	}
	lbID := e.id("Microsoft.Network/loadBalancers", "lb")
	fe, pool, probe := lbID+"/frontendIPConfigurations/fe", lbID+"/backendAddressPools/be", lbID+"/probes/http"
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	lbBody := armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"),
				Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
					PublicIPAddress: &armnetwork.PublicIPAddress{ID: pipRes.ID}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("http"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolHTTP), Port: to.Ptr[int32](80),
				RequestPath: to.Ptr("/health"), IntervalInSeconds: to.Ptr[int32](5)}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("http"),
				Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
					FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
					BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
					Probe:                   &armnetwork.SubResource{ID: to.Ptr(probe)},
					Protocol:                to.Ptr(armnetwork.TransportProtocolTCP),
					FrontendPort:            to.Ptr[int32](80), BackendPort: to.Ptr[int32](80),
				}}},
			InboundNatPools: []*armnetwork.InboundNatPool{{Name: to.Ptr("ssh"),
				Properties: &armnetwork.InboundNatPoolPropertiesFormat{
					FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
					Protocol:                to.Ptr(armnetwork.TransportProtocolTCP),
					FrontendPortRangeStart:  to.Ptr[int32](50000), FrontendPortRangeEnd: to.Ptr[int32](50119),
					BackendPort: to.Ptr[int32](22),
				}}},
		},
	}
	if v2 {
		lbBody.Properties.InboundNatPools = nil
		lbBody.Properties.InboundNatRules = []*armnetwork.InboundNatRule{{Name: to.Ptr("ssh2"),
			Properties: &armnetwork.InboundNatRulePropertiesFormat{
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
				BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
				Protocol:                to.Ptr(armnetwork.TransportProtocolTCP),
				FrontendPortRangeStart:  to.Ptr[int32](51000), FrontendPortRangeEnd: to.Ptr[int32](51099),
				BackendPort: to.Ptr[int32](22),
			}}}
	}
	lp, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "lb", lbBody, nil)
	if err == nil {
		_, err = lp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create load balancer: %v", err)
	}
	return *pipRes.Properties.IPAddress
}

// scaleSet is the model of the test scale set.
func (e *env) scaleSet(capacity int64) armcompute.VirtualMachineScaleSet {
	lbID := e.id("Microsoft.Network/loadBalancers", "lb")
	return armcompute.VirtualMachineScaleSet{
		Location: to.Ptr("eastus"),
		SKU:      &armcompute.SKU{Name: to.Ptr("Standard_B1s"), Capacity: to.Ptr(capacity)},
		Properties: &armcompute.VirtualMachineScaleSetProperties{
			UpgradePolicy: &armcompute.UpgradePolicy{Mode: to.Ptr(armcompute.UpgradeModeManual)},
			// Repairs are switched on only where a test exercises them: under
			// load a slow probe answer would otherwise replace instances.
			AutomaticRepairsPolicy: &armcompute.AutomaticRepairsPolicy{Enabled: to.Ptr(false), GracePeriod: to.Ptr("PT10M")},
			ScaleInPolicy:          &armcompute.ScaleInPolicy{Rules: []*armcompute.VirtualMachineScaleSetScaleInRules{to.Ptr(armcompute.VirtualMachineScaleSetScaleInRulesNewestVM)}},
			VirtualMachineProfile: &armcompute.VirtualMachineScaleSetVMProfile{
				OSProfile: &armcompute.VirtualMachineScaleSetOSProfile{ComputerNamePrefix: to.Ptr("web"), AdminUsername: to.Ptr("azureuser")},
				StorageProfile: &armcompute.VirtualMachineScaleSetStorageProfile{ImageReference: &armcompute.ImageReference{
					Publisher: to.Ptr("nimbus"), Offer: to.Ptr("workloads"), SKU: to.Ptr("echo"), Version: to.Ptr("latest")}},
				NetworkProfile: &armcompute.VirtualMachineScaleSetNetworkProfile{
					HealthProbe: &armcompute.APIEntityReference{ID: to.Ptr(lbID + "/probes/http")},
					NetworkInterfaceConfigurations: []*armcompute.VirtualMachineScaleSetNetworkConfiguration{{
						Name: to.Ptr("nic"),
						Properties: &armcompute.VirtualMachineScaleSetNetworkConfigurationProperties{
							Primary: to.Ptr(true),
							IPConfigurations: []*armcompute.VirtualMachineScaleSetIPConfiguration{{
								Name: to.Ptr("ipc"),
								Properties: &armcompute.VirtualMachineScaleSetIPConfigurationProperties{
									Subnet:                          &armcompute.APIEntityReference{ID: to.Ptr(e.id("Microsoft.Network/virtualNetworks", "vn") + "/subnets/default")},
									LoadBalancerBackendAddressPools: []*armcompute.SubResource{{ID: to.Ptr(lbID + "/backendAddressPools/be")}},
									LoadBalancerInboundNatPools:     []*armcompute.SubResource{{ID: to.Ptr(lbID + "/inboundNatPools/ssh")}},
								},
							}},
						},
					}},
				},
			},
		},
	}
}

// instances lists the scale set web's instances through the API.
func (e *env) instances(ctx context.Context) []*armcompute.VirtualMachineScaleSetVM {
	return e.instancesOf(ctx, "web")
}

// instancesOf lists a scale set's instances through the API.
func (e *env) instancesOf(ctx context.Context, vmss string) []*armcompute.VirtualMachineScaleSetVM {
	e.t.Helper()
	var out []*armcompute.VirtualMachineScaleSetVM
	pager := e.vms().NewListPager(e.rg, vmss, nil)
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			e.t.Fatalf("list instances: %v", err)
		}
		out = append(out, page.Value...)
	}
	return out
}

// waitFor waits with poll.Until for cond to report that it holds; cond
// also returns the state it saw, for the failure.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	poll.Until(t, timeout, what, func() error {
		if ok, state := cond(); !ok {
			return fmt.Errorf("state %s", state)
		}
		return nil
	})
}

// hit sends one HTTP request to addr and returns the echo reply.
func hit(addr string) (workload.EchoReply, error) {
	var r workload.EchoReply
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	return r, json.Unmarshal(b, &r)
}

// spread sends n requests to addr and counts the instance names answering.
func spread(addr string, n int) map[string]int {
	out := map[string]int{}
	for i := 0; i < n; i++ {
		r, err := hit(addr)
		if err != nil {
			out["error"]++
			continue
		}
		out[r.Name]++
	}
	return out
}

// banner reads the SSH-style banner of the NAT port.
func banner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

func running(list []*armcompute.VirtualMachineScaleSetVM) (names []string) {
	for _, v := range list {
		if v.Properties != nil && v.Properties.ProvisioningState != nil && *v.Properties.ProvisioningState == "Succeeded" {
			names = append(names, *v.Name)
		}
	}
	return names
}

func TestScaleSetEndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	vip := e.setup(ctx)

	// A scale set of 3 echo instances behind the load balancer.
	start := time.Now()
	cp, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(3), nil)
	if err == nil {
		_, err = cp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	waitFor(t, "3 running instances", 30*time.Second, func() (bool, string) {
		r := running(e.instances(ctx))
		return len(r) == 3, fmt.Sprint(r)
	})
	t.Logf("3 instances running %v after the create", time.Since(start).Round(time.Millisecond))

	// Traffic through the frontend reaches all three.
	waitFor(t, "traffic spread over 3 instances", 20*time.Second, func() (bool, string) {
		s := spread(vip+":80", 60)
		return len(s) == 3 && s["error"] == 0, fmt.Sprint(s)
	})

	// Each generated NAT rule reaches its own instance.
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	var nat map[string]int32
	waitFor(t, "3 generated NAT rules", 10*time.Second, func() (bool, string) {
		lb, err := lbc.Get(ctx, e.rg, "lb", nil)
		if err != nil {
			return false, err.Error()
		}
		nat = map[string]int32{}
		for _, r := range lb.Properties.InboundNatRules {
			if strings.HasPrefix(*r.Name, "ssh.") && r.Properties.FrontendPort != nil {
				nat[strings.TrimPrefix(*r.Name, "ssh.")] = *r.Properties.FrontendPort
			}
		}
		return len(nat) == 3, fmt.Sprint(nat)
	})
	for id, port := range nat {
		line, err := banner(fmt.Sprintf("%s:%d", vip, port))
		if err != nil || line != "SSH-2.0-nimbus web_"+id {
			t.Fatalf("NAT port %d: banner %q, err %v; want instance web_%s", port, line, err, id)
		}
	}

	// Scale out to 5 (PATCH sku.capacity, as the SDK does).
	up, err := e.vmss().BeginUpdate(ctx, e.rg, "web", armcompute.VirtualMachineScaleSetUpdate{
		SKU: &armcompute.SKU{Capacity: to.Ptr[int64](5)}}, nil)
	if err == nil {
		_, err = up.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("scale to 5: %v", err)
	}
	waitFor(t, "5 running instances", 30*time.Second, func() (bool, string) {
		r := running(e.instances(ctx))
		return len(r) == 5, fmt.Sprint(r)
	})

	// Protect the newest instance, then scale in to 2 under NewestVM: the
	// protected one survives, the other newest ones go.
	protected := "4"
	vp, err := e.vms().BeginUpdate(ctx, e.rg, "web", protected, armcompute.VirtualMachineScaleSetVM{
		Properties: &armcompute.VirtualMachineScaleSetVMProperties{ProtectionPolicy: &armcompute.VirtualMachineScaleSetVMProtectionPolicy{
			ProtectFromScaleIn: to.Ptr(true)}}}, nil)
	if err == nil {
		_, err = vp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("protect instance %s: %v", protected, err)
	}
	down, err := e.vmss().BeginUpdate(ctx, e.rg, "web", armcompute.VirtualMachineScaleSetUpdate{
		SKU: &armcompute.SKU{Capacity: to.Ptr[int64](2)}}, nil)
	if err == nil {
		_, err = down.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("scale to 2: %v", err)
	}
	waitFor(t, "2 instances, the protected one kept", 30*time.Second, func() (bool, string) {
		ids := map[string]bool{}
		for _, v := range e.instances(ctx) {
			ids[*v.InstanceID] = true
		}
		return len(ids) == 2 && ids[protected] && ids["0"], fmt.Sprint(ids)
	})

	// Manual upgrade: a model change leaves instances out of date until
	// manualupgrade applies it.
	model := e.scaleSet(2)
	model.Properties.VirtualMachineProfile.OSProfile.CustomData = to.Ptr("ZWNobyBoaQo=")
	mp, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", model, nil)
	if err == nil {
		_, err = mp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("update model: %v", err)
	}
	latest := func(id string) bool {
		vm, err := e.vms().Get(ctx, e.rg, "web", id, nil)
		if err != nil {
			t.Fatalf("get instance %s: %v", id, err)
		}
		return vm.Properties.LatestModelApplied != nil && *vm.Properties.LatestModelApplied
	}
	if latest("0") {
		t.Fatal("instance 0 reports latestModelApplied after a model change in Manual mode")
	}
	ug, err := e.vmss().BeginUpdateInstances(ctx, e.rg, "web", armcompute.VirtualMachineScaleSetVMInstanceRequiredIDs{
		InstanceIDs: []*string{to.Ptr("0")}}, nil)
	if err == nil {
		_, err = ug.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("manualupgrade: %v", err)
	}
	waitFor(t, "latestModelApplied on instance 0", 10*time.Second, func() (bool, string) {
		return latest("0"), ""
	})

	// Automatic repairs: switch them on (not part of the instances' model),
	// kill instance 0's workload; its probe fails, and after the (test-short)
	// grace period it is replaced.
	rp, err := e.vmss().BeginUpdate(ctx, e.rg, "web", armcompute.VirtualMachineScaleSetUpdate{
		Properties: &armcompute.VirtualMachineScaleSetUpdateProperties{AutomaticRepairsPolicy: &armcompute.AutomaticRepairsPolicy{
			Enabled: to.Ptr(true), GracePeriod: to.Ptr("PT10M")}}}, nil)
	if err == nil {
		_, err = rp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("enable automatic repairs: %v", err)
	}
	before := map[string]bool{}
	for _, v := range e.instances(ctx) {
		before[*v.InstanceID] = true
	}
	st, err := e.sys.Driver.Inspect(ctx, strings.ToLower(e.id("Microsoft.Compute/virtualMachineScaleSets", "web"))+"/0")
	if err != nil {
		t.Fatalf("inspect instance 0: %v", err)
	}
	if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill instance 0: %v", err)
	}
	waitFor(t, "instance 0 replaced by a new instance", 30*time.Second, func() (bool, string) {
		ids := map[string]bool{}
		for _, v := range e.instances(ctx) {
			ids[*v.InstanceID] = true
		}
		r := running(e.instances(ctx))
		return !ids["0"] && len(ids) == 2 && len(r) == 2, fmt.Sprint(ids)
	})
	waitFor(t, "traffic on 2 healthy instances", 20*time.Second, func() (bool, string) {
		s := spread(vip+":80", 30)
		return len(s) == 2 && s["error"] == 0, fmt.Sprint(s)
	})

	// Restart nimbus with instances running: the same instances come back
	// (same PIDs), no duplicates, no orphans.
	pids := map[string]int{}
	list, err := e.sys.Driver.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range list {
		pids[s.Key] = s.PID
	}
	e.restart(nil)
	waitFor(t, "the same instances after a restart", 30*time.Second, func() (bool, string) {
		r := running(e.instances(ctx))
		return len(r) == 2, fmt.Sprint(r)
	})
	after, err := e.sys.Driver.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(pids) {
		t.Fatalf("after restart the driver has %d instances, before %d", len(after), len(pids))
	}
	for _, s := range after {
		if pids[s.Key] != s.PID {
			t.Fatalf("instance %s: pid %d after restart, %d before (not re-adopted)", s.Key, s.PID, pids[s.Key])
		}
	}
	waitFor(t, "traffic after restart", 20*time.Second, func() (bool, string) {
		s := spread(vip+":80", 20)
		return len(s) == 2 && s["error"] == 0, fmt.Sprint(s)
	})
}

func TestBadScaleSetRequests(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.setup(ctx)
	// Capacity -1 is refused with an ARM error naming the field.
	_, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(-1), nil)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.StatusCode != 400 || !strings.Contains(err.Error(), "capacity") {
		t.Fatalf("capacity -1: err = %v, want a 400 naming sku.capacity", err)
	}
	// Actions on a scale set that does not exist: 404, not 500.
	_, err = e.vmss().BeginRestart(ctx, e.rg, "nope", nil)
	if !errors.As(err, &re) || re.StatusCode != 404 {
		t.Fatalf("restart of a missing scale set: err = %v, want 404", err)
	}
}

func TestNATRuleV2EndToEnd(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vip := e.setupLB(ctx, true)
	model := e.scaleSet(2)
	ipcs := model.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations
	ipcs[0].Properties.LoadBalancerInboundNatPools = nil
	cp, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", model, nil)
	if err == nil {
		_, err = cp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	// The v2 NAT rule maps each pool member to its own port of 51000-51099,
	// as queryInboundNatRulePortMapping reports.
	for _, v := range e.instances(ctx) {
		ipc := e.id("Microsoft.Compute/virtualMachineScaleSets", "web") + "/virtualMachines/" + *v.InstanceID +
			"/networkInterfaces/nic/ipConfigurations/ipc"
		var port int32
		waitFor(t, "v2 NAT mapping of instance "+*v.InstanceID, 10*time.Second, func() (bool, string) {
			p, err := lbc.BeginListInboundNatRulePortMappings(ctx, e.rg, "lb", "be", armnetwork.QueryInboundNatRulePortMappingRequest{
				IPConfiguration: &armnetwork.SubResource{ID: to.Ptr(ipc)}}, nil)
			if err != nil {
				return false, err.Error()
			}
			res, err := p.PollUntilDone(ctx, sdktest.Poll)
			if err != nil {
				return false, err.Error()
			}
			for _, m := range res.InboundNatRulePortMappings {
				if m.InboundNatRuleName != nil && *m.InboundNatRuleName == "ssh2" && m.FrontendPort != nil {
					port = *m.FrontendPort
				}
			}
			return port >= 51000 && port <= 51099, fmt.Sprint(port)
		})
		line, err := banner(fmt.Sprintf("%s:%d", vip, port))
		if err != nil || line != "SSH-2.0-nimbus "+*v.Name {
			t.Fatalf("v2 NAT port %d: banner %q, err %v; want %s", port, line, err, *v.Name)
		}
	}

}

// TestInternalFrontendAndInstancesShareSubnet: an internal load balancer's
// dynamic frontend and the scale set's instances take addresses from one
// allocator, so they never collide.
func TestInternalFrontendAndInstancesShareSubnet(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e.setup(ctx)
	subnet := e.id("Microsoft.Network/virtualNetworks", "vn") + "/subnets/default"
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	p, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "ilb", armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"), SKU: &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"),
				Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
					Subnet:                    &armnetwork.Subnet{ID: to.Ptr(subnet)},
					PrivateIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic)}}},
		}}, nil)
	var ilb armnetwork.LoadBalancersClientCreateOrUpdateResponse
	if err == nil {
		ilb, err = p.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create internal load balancer: %v", err)
	}
	feIP := *ilb.Properties.FrontendIPConfigurations[0].Properties.PrivateIPAddress
	cp, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(3), nil)
	if err == nil {
		_, err = cp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	seen := map[string]string{feIP: "frontend"}
	list, err := e.sys.Driver.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, st := range list {
		ip := st.PrivateIP.String()
		if who, dup := seen[ip]; dup {
			t.Fatalf("address %s given to %s and to instance %s", ip, who, st.Key)
		}
		seen[ip] = st.Key
	}
	if len(seen) != 4 {
		t.Fatalf("want the frontend and 3 instances on distinct addresses, got %v", seen)
	}
}

// TestInstanceDeadWhileNimbusDownIsRestarted: an instance whose workload
// ended while nimbus was stopped (a crash, a host reboot) is started again
// by the next nimbus, as Azure restarts VMs after host maintenance.
func TestInstanceDeadWhileNimbusDownIsRestarted(t *testing.T) {
	e := newEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vip := e.setup(ctx)
	cp, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(1), nil)
	if err == nil {
		_, err = cp.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	key := strings.ToLower(e.id("Microsoft.Compute/virtualMachineScaleSets", "web")) + "/0"
	st, err := e.sys.Driver.Inspect(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	e.restart(func() {
		if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
			t.Fatalf("kill instance: %v", err)
		}
	})
	waitFor(t, "instance 0 running again with a new process", 30*time.Second, func() (bool, string) {
		now, err := e.sys.Driver.Inspect(ctx, key)
		if err != nil {
			return false, err.Error()
		}
		return now.State == "running" && now.PID != st.PID, fmt.Sprintf("%s pid %d", now.State, now.PID)
	})
	waitFor(t, "traffic to the restarted instance", 20*time.Second, func() (bool, string) {
		s := spread(vip+":80", 5)
		return s["web_0"] == 5, fmt.Sprint(s)
	})
}
