package lb

import (
	"encoding/json"
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
)

// Address plan: public frontends 198.18.10.0/24, instances 10.0.0.0/24 (CA)
// mapped to 127.100.0.0/16 (PA).

var update = flag.Bool("update", false, "rewrite golden files")

const (
	sub  = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"
	lbID = sub + "/providers/Microsoft.Network/loadBalancers/lb1"
	vmss = sub + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	pip  = sub + "/providers/Microsoft.Network/publicIPAddresses/pip1"
	snet = sub + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"
)

func i32(v int32) *int32 { return &v }
func bp(v bool) *bool    { return &v }

func testLB() *resource.LoadBalancer {
	fe := resource.ChildID(lbID, "frontendIPConfigurations", "fe")
	pool := resource.ChildID(lbID, "backendAddressPools", "be")
	pr := resource.ChildID(lbID, "probes", "http")
	return &resource.LoadBalancer{
		Envelope: resource.Envelope{ID: lbID, Name: "lb1", Tags: map[string]string{ProxyProtocolTag: "udp"}},
		SKU:      &resource.LoadBalancerSKU{Name: "Standard"},
		Properties: resource.LoadBalancerProps{
			FrontendIPConfigurations: []resource.FrontendIPConfiguration{{ID: fe, Name: "fe",
				Properties: resource.FrontendIPConfigP{PublicIPAddress: &resource.SubResource{ID: pip}}}},
			BackendAddressPools: []resource.BackendAddressPool{{ID: pool, Name: "be"}},
			Probes: []resource.Probe{{ID: pr, Name: "http", Properties: resource.ProbeProps{
				Protocol: "Http", Port: i32(80), RequestPath: "/health", IntervalInSeconds: i32(5), ProbeThreshold: i32(2)}}},
			LoadBalancingRules: []resource.LoadBalancingRule{
				{ID: resource.ChildID(lbID, "loadBalancingRules", "http"), Name: "http", Properties: resource.RuleProps{
					FrontendIPConfiguration: &resource.SubResource{ID: fe}, BackendAddressPool: &resource.SubResource{ID: pool},
					Probe: &resource.SubResource{ID: pr}, Protocol: "Tcp", FrontendPort: i32(80), BackendPort: i32(80),
					IdleTimeoutInMinutes: i32(4), LoadDistribution: "Default", DisableOutboundSnat: bp(true)}},
				{ID: resource.ChildID(lbID, "loadBalancingRules", "udp"), Name: "udp", Properties: resource.RuleProps{
					FrontendIPConfiguration: &resource.SubResource{ID: fe}, BackendAddressPool: &resource.SubResource{ID: pool},
					Protocol: "Udp", FrontendPort: i32(53), BackendPort: i32(80), LoadDistribution: "SourceIP", DisableOutboundSnat: bp(true)}},
			},
			InboundNatPools: []resource.InboundNatPool{{ID: resource.ChildID(lbID, "inboundNatPools", "ssh"), Name: "ssh",
				Properties: resource.NatPoolProps{FrontendIPConfiguration: &resource.SubResource{ID: fe}, Protocol: "Tcp",
					FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(22)}}},
			OutboundRules: []resource.OutboundRule{{ID: resource.ChildID(lbID, "outboundRules", "out"), Name: "out",
				Properties: resource.OutboundProps{FrontendIPConfigurations: []resource.SubResource{{ID: fe}},
					BackendAddressPool: &resource.SubResource{ID: pool}, Protocol: "All", AllocatedOutboundPorts: i32(1024)}}},
		},
	}
}

func testInstance(id, ca, pa string, natPort uint16) *resource.Instance {
	model := &resource.VMProfile{NetworkProfile: &resource.NetworkProfile{
		HealthProbe: &resource.SubResource{ID: resource.ChildID(lbID, "probes", "http")},
		NetworkInterfaceConfigurations: []resource.NICConfig{{Name: "nic", Properties: resource.NICConfigProps{
			IPConfigurations: []resource.IPConfig{{Name: "ipc", Properties: resource.IPConfigProps{
				Subnet:                          &resource.SubResource{ID: snet},
				LoadBalancerBackendAddressPools: []resource.SubResource{{ID: resource.ChildID(lbID, "backendAddressPools", "be")}},
				LoadBalancerInboundNatPools:     []resource.SubResource{{ID: resource.ChildID(lbID, "inboundNatPools", "ssh")}},
			}}}}}}}}
	return &resource.Instance{ScaleSetID: vmss, InstanceID: id, Name: "web_" + id, Model: model,
		PrivateIP: ca, ProviderIP: pa, Power: resource.PowerRunning, Actual: resource.PowerRunning, ProvisioningState: resource.Succeeded,
		NATPorts: map[string]uint16{resource.NormalizeRefID(resource.ChildID(lbID, "inboundNatPools", "ssh")): natPort}}
}

func TestCompileGolden(t *testing.T) {
	stopped := testInstance("2", "10.0.0.6", "127.100.0.6", 50002)
	stopped.Power = resource.PowerStopped
	snap := Snapshot{
		LoadBalancers: []*resource.LoadBalancer{testLB()},
		PublicIPs:     map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances: []*resource.Instance{
			testInstance("1", "10.0.0.5", "127.100.0.5", 50001),
			testInstance("0", "10.0.0.4", "127.100.0.4", 50000),
			stopped,
		},
	}
	got := Compile(snap)
	checkGolden(t, "compile_basic.json", got)

	// Determinism: the same snapshot in another order compiles the same.
	snap.Instances[0], snap.Instances[1] = snap.Instances[1], snap.Instances[0]
	again, _ := json.Marshal(Compile(snap))
	first, _ := json.Marshal(got)
	if string(again) != string(first) {
		t.Fatal("Compile is not deterministic over input order")
	}

	// Behaviour checks that do not depend on the golden file.
	if len(got.Rules) != 2 || len(got.Rules[0].Backends) != 2 {
		t.Fatalf("want 2 rules with 2 running backends each, got %+v", got.Rules)
	}
	if len(got.NATRules) != 2 || got.NATRules[0].FrontendPort != 50000 || got.NATRules[0].BackendPort != 22 {
		t.Fatalf("NAT pool rules: %+v", got.NATRules)
	}
	if len(got.Probes) != 1 || got.Probes[0].Threshold != 2 || len(got.Probes[0].Backends) != 2 {
		t.Fatalf("probes: %+v", got.Probes)
	}
	if len(got.Outbound) != 2 || got.Outbound[0].PortEnd-got.Outbound[0].PortStart+1 != 1024 {
		t.Fatalf("outbound: %+v", got.Outbound)
	}
	if !got.Rules[1].ProxyProtocol || got.Rules[0].ProxyProtocol {
		t.Fatal("proxy protocol tag should select only the udp rule")
	}
}

func TestCompileImplicitSNATAndInternalFrontend(t *testing.T) {
	lb := testLB()
	lb.Properties.OutboundRules = nil
	for i := range lb.Properties.LoadBalancingRules {
		lb.Properties.LoadBalancingRules[i].Properties.DisableOutboundSnat = bp(false)
	}
	snap := Snapshot{
		LoadBalancers: []*resource.LoadBalancer{lb},
		PublicIPs:     map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances:     []*resource.Instance{testInstance("0", "10.0.0.4", "127.100.0.4", 50000)},
		ListenIP:      func(a netip.Addr) netip.Addr { return netip.MustParseAddr("127.77.0.9") },
	}
	got := Compile(snap)
	// One implicit block per (backend, protocol): Tcp from the http rule, Udp from the udp rule.
	if len(got.Outbound) != 2 {
		t.Fatalf("implicit SNAT: %+v", got.Outbound)
	}
	for _, o := range got.Outbound {
		if o.PortEnd-o.PortStart+1 != 1024 {
			t.Fatalf("default ports for a pool of 1 are 1024: %+v", o)
		}
	}
	if got.Rules[0].Frontend.ListenIP != netip.MustParseAddr("127.77.0.9") {
		t.Fatalf("ListenIP not applied: %+v", got.Rules[0].Frontend)
	}
	// An instance-level public IP takes precedence over SNAT.
	snap.Instances[0].PublicIP = "198.18.10.50"
	got = Compile(snap)
	if len(got.Outbound) != 0 || len(got.InstanceIPs) != 1 {
		t.Fatalf("ILPIP: outbound %+v, instance IPs %+v", got.Outbound, got.InstanceIPs)
	}
}

func TestCompileEmpty(t *testing.T) {
	got := Compile(Snapshot{})
	if len(got.Rules)+len(got.NATRules)+len(got.Outbound)+len(got.Probes) != 0 {
		t.Fatalf("empty snapshot compiled to %+v", got)
	}
	var _ dataplane.Config = got
}

func checkGolden(t *testing.T, name string, v any) {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create)", err)
	}
	if string(want) != string(b)+"\n" {
		t.Fatalf("%s differs from golden file; run go test -update and review the diff:\n%s", name, b)
	}
}

// TestCompileSNATBlocksNeverOverlap: two rules with implicit SNAT on one
// frontend, over different pools, get disjoint port blocks.
func TestCompileSNATBlocksNeverOverlap(t *testing.T) {
	lb := testLB()
	lb.Properties.OutboundRules = nil
	pool2 := resource.ChildID(lbID, "backendAddressPools", "be2")
	lb.Properties.BackendAddressPools = append(lb.Properties.BackendAddressPools, resource.BackendAddressPool{ID: pool2, Name: "be2"})
	for i := range lb.Properties.LoadBalancingRules {
		lb.Properties.LoadBalancingRules[i].Properties.DisableOutboundSnat = bp(false)
	}
	lb.Properties.LoadBalancingRules[1].Properties.BackendAddressPool = &resource.SubResource{ID: pool2}
	lb.Properties.LoadBalancingRules[1].Properties.Protocol = "Tcp"
	in0 := testInstance("0", "10.0.0.4", "127.100.0.4", 50000)
	in1 := testInstance("1", "10.0.0.5", "127.100.0.5", 50001)
	_, ipc := resource.PrimaryIPConfig(in1.Model)
	ipc.Properties.LoadBalancerBackendAddressPools = []resource.SubResource{{ID: pool2}}
	got := Compile(Snapshot{
		LoadBalancers: []*resource.LoadBalancer{lb},
		PublicIPs:     map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances:     []*resource.Instance{in0, in1},
	})
	if len(got.Outbound) != 2 {
		t.Fatalf("want one block per instance, got %+v", got.Outbound)
	}
	a, b := got.Outbound[0], got.Outbound[1]
	if a.Frontend.IP == b.Frontend.IP && a.PortStart <= b.PortEnd && b.PortStart <= a.PortEnd {
		t.Fatalf("blocks overlap: %d-%d and %d-%d", a.PortStart, a.PortEnd, b.PortStart, b.PortEnd)
	}
}

// TestCompileSkipsInstancesNotStarted: an instance whose record exists but
// whose workload has not started yet is in no pool and no NAT rule.
func TestCompileSkipsInstancesNotStarted(t *testing.T) {
	starting := testInstance("1", "10.0.0.5", "127.100.0.5", 50001)
	starting.Actual, starting.ProvisioningState = "", resource.Creating
	got := Compile(Snapshot{
		LoadBalancers: []*resource.LoadBalancer{testLB()},
		PublicIPs:     map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances:     []*resource.Instance{testInstance("0", "10.0.0.4", "127.100.0.4", 50000), starting},
	})
	if len(got.Rules[0].Backends) != 1 || len(got.NATRules) != 1 || len(got.Probes[0].Backends) != 1 {
		t.Fatalf("an instance not yet started joined the data plane: %+v", got)
	}
}
