package resource

import (
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
)

func i64(v int64) *int64 { return &v }

// baseVMSS returns a valid Uniform model with capacity 2 in pool be of lb1.
func baseVMSS() *VirtualMachineScaleSet {
	v := &VirtualMachineScaleSet{}
	v.Location = "eastus"
	v.SKU = &VMSSSku{Name: "Standard_B1s", Capacity: i64(2)}
	v.Properties.UpgradePolicy = &UpgradePolicy{Mode: "manual"}
	v.Properties.VirtualMachineProfile = &VMProfile{
		OSProfile:      &OSProfile{ComputerNamePrefix: "vm", AdminUsername: "azureuser", AdminPassword: "s3cret!"},
		StorageProfile: &StorageProfile{ImageReference: &ImageReference{Publisher: "Canonical", Offer: "ubuntu", SKU: "22_04-lts", Version: "latest"}},
		NetworkProfile: &NetworkProfile{NetworkInterfaceConfigurations: []NICConfig{{Name: "nic", Properties: NICConfigProps{
			Primary: bptr(true),
			IPConfigurations: []IPConfig{{Name: "ipc", Properties: IPConfigProps{
				Subnet:                          ref(tSubnet),
				LoadBalancerBackendAddressPools: []SubResource{{ID: tLB + "/backendAddressPools/be"}},
			}}},
		}}}},
	}
	return v
}

func baseVMSSCtx(t *testing.T) *VMSSContext {
	lb := stored(t, baseLB())
	return &VMSSContext{
		LoadBalancers: map[string]*LoadBalancer{NormalizeRefID(tLB): lb},
		Subnets:       baseCtx().Subnets,
	}
}

func TestNormalizeScaleSetDefaults(t *testing.T) {
	v := baseVMSS()
	if err := NormalizeScaleSet(v, nil, tVMSS, "vmss1"); err != nil {
		t.Fatal(err)
	}
	p := v.Properties
	if p.OrchestrationMode != "Uniform" || p.UpgradePolicy.Mode != "Manual" || !*p.Overprovision || !*p.SinglePlacementGroup {
		t.Errorf("defaults: %+v %+v", p, p.UpgradePolicy)
	}
	ipc := p.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0]
	if ipc.Properties.PrivateIPAddressVersion != "IPv4" {
		t.Errorf("ipconfig version %q", ipc.Properties.PrivateIPAddressVersion)
	}
	v.ScrubSecrets()
	b, _ := json.Marshal(v)
	if strings.Contains(string(b), "s3cret") || strings.Contains(string(b), "adminPassword") {
		t.Errorf("adminPassword returned: %s", b)
	}
	u := v.Uses()
	if len(u.Pools) != 1 || u.Capacity != 2 || !u.UsesLB(strings.ToUpper(tLB)) {
		t.Errorf("uses: %+v", u)
	}
}

func TestConformanceScaleSetCreate(t *testing.T) {
	raw, err := os.ReadFile("../rp/compute/testdata/arm-examples/VirtualMachineScaleSet_Create_WithAzureLoadBalancer.json")
	if err != nil {
		t.Fatalf("spec example (in the repository): %v", err)
	}
	var ex struct {
		Parameters struct {
			Parameters json.RawMessage `json:"parameters"`
		} `json:"parameters"`
	}
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	body := strings.NewReplacer(
		"{subscription-id}", "00000000-0000-0000-0000-000000000001",
		"myResourceGroup", "rg1",
		"{existing-virtual-network-name}", "vn1", "{existing-subnet-name}", "default",
		"{existing-load-balancer-name}", "lb1", "{existing-backend-address-pool-name}", "be",
		"{existing-nat-pool-name}", "np1", "{vmss-name}", "vmss1").Replace(string(ex.Parameters.Parameters))
	v, err := DecodeScaleSet([]byte(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := NormalizeScaleSet(v, nil, tVMSS, "vmss1"); err != nil {
		t.Fatal(err)
	}
	lb := baseLB()
	lb.Properties.InboundNatPools = []InboundNatPool{{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(tLB + "/frontendIPConfigurations/fe"),
		Protocol: "Tcp", FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(3389)}}}
	c := &VMSSContext{LoadBalancers: map[string]*LoadBalancer{NormalizeRefID(tLB): stored(t, lb)}, Subnets: baseCtx().Subnets}
	if err := ValidateScaleSet(v, nil, c); err != nil {
		t.Fatalf("example rejected: %v", err)
	}
	if v.Capacity() != 3 || v.Properties.UpgradePolicy.Mode != "Manual" || len(v.Uses().NatPools) != 1 {
		t.Errorf("decoded: capacity %d uses %+v", v.Capacity(), v.Uses())
	}
}

func TestValidateScaleSetRules(t *testing.T) {
	probe := tLB + "/probes/p1"
	withProbe := func(v *VirtualMachineScaleSet) {
		v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = ref(probe)
	}
	ipc := func(v *VirtualMachineScaleSet) *IPConfigProps {
		return &v.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
	}
	tests := []struct {
		name   string
		mutate func(v *VirtualMachineScaleSet, c *VMSSContext)
		old    func() *VirtualMachineScaleSet
		want   string
		target string
	}{
		{name: "valid", mutate: func(*VirtualMachineScaleSet, *VMSSContext) {}},
		{name: "capacity -1", want: CodeInvalidParameter, target: "sku.capacity", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.SKU.Capacity = i64(-1)
		}},
		{name: "rolling without probe", want: CodeBadRequest, target: "properties.upgradePolicy.mode", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.UpgradePolicy.Mode = "rolling"
		}},
		{name: "rolling with probe ok", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.UpgradePolicy.Mode = "Rolling"
			withProbe(v)
		}},
		{name: "rolling with health extension ok", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.UpgradePolicy.Mode = "Rolling"
			v.Properties.VirtualMachineProfile.ExtensionProfile = json.RawMessage(`{"extensions":[{"name":"h","properties":{"publisher":"Microsoft.ManagedServices","type":"ApplicationHealthLinux"}}]}`)
		}},
		{name: "health probe is a pool", want: CodeInvalidJSONReferenceWrongType, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = ref(tLB + "/backendAddressPools/be")
		}},
		{name: "health probe of an app gateway", want: CodeInvalidJSONReferenceWrongType, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = ref(tRG + "/providers/Microsoft.Network/applicationGateways/ag/probes/p1")
		}},
		{name: "health probe missing", want: CodeInvalidResourceReference, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = ref(tLB + "/probes/nope")
		}},
		{name: "inactive health probe", want: CodeCannotUseInactiveHealthProbe, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			lb := baseLB()
			lb.Properties.Probes = append(lb.Properties.Probes, Probe{Name: "p2", Properties: ProbeProps{Protocol: "Tcp", Port: i32(22)}})
			c.LoadBalancers[NormalizeRefID(tLB)] = stored(t, lb)
			v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = ref(tLB + "/probes/p2")
		}},
		{name: "dangling pool", want: CodeInvalidResourceReference, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			ipc(v).LoadBalancerBackendAddressPools = []SubResource{{ID: tLB + "/backendAddressPools/None"}}
		}},
		{name: "dangling subnet", want: CodeInvalidResourceReference, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			ipc(v).Subnet = ref(tRG + "/providers/Microsoft.Network/virtualNetworks/vn1/subnets/nope")
		}},
		{name: "basic instance PIP with standard LB", want: CodeDifferentSkuInVMSS, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			ipc(v).PublicIPAddressConfiguration = &PIPConfig{Name: "pip", SKU: &PIPConfigSku{Name: "basic"}}
		}},
		{name: "standard instance PIP ok", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			ipc(v).PublicIPAddressConfiguration = &PIPConfig{Name: "pip", SKU: &PIPConfigSku{Name: "Standard"}}
		}},
		{name: "basic and standard LBs", want: CodeDifferentSkuInVMSS, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			lb2 := baseLB()
			lb2.SKU.Name = "Basic"
			lb2.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tBasic)
			id2 := tRG + "/providers/Microsoft.Network/loadBalancers/lb2"
			if err := NormalizeLoadBalancer(lb2, id2, "lb2"); err != nil {
				t.Fatal(err)
			}
			c.LoadBalancers[NormalizeRefID(id2)] = lb2
			ipc(v).LoadBalancerBackendAddressPools = append(ipc(v).LoadBalancerBackendAddressPools, SubResource{ID: id2 + "/backendAddressPools/be"})
		}},
		{name: "two public LBs", want: CodeMultipleLBsOfSameType, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			lb2 := baseLB()
			lb2.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tPIP2)
			id2 := tRG + "/providers/Microsoft.Network/loadBalancers/lb2"
			if err := NormalizeLoadBalancer(lb2, id2, "lb2"); err != nil {
				t.Fatal(err)
			}
			c.LoadBalancers[NormalizeRefID(id2)] = lb2
			ipc(v).LoadBalancerBackendAddressPools = append(ipc(v).LoadBalancerBackendAddressPools, SubResource{ID: id2 + "/backendAddressPools/be"})
		}},
		{name: "orchestration mode change", want: CodePropertyChangeNotAllowed, target: "properties.orchestrationMode", old: baseVMSS, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.OrchestrationMode = "Flexible"
			v.Properties.SinglePlacementGroup = bptr(false)
		}},
		{name: "fault domain change", want: CodePropertyChangeNotAllowed, target: "properties.platformFaultDomainCount", old: baseVMSS, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.PlatformFaultDomainCount = i32(2)
		}},
		{name: "single placement group false to true", want: CodePropertyChangeNotAllowed, old: func() *VirtualMachineScaleSet {
			o := baseVMSS()
			o.Properties.SinglePlacementGroup = bptr(false)
			return o
		}, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) { v.Properties.SinglePlacementGroup = bptr(true) }},
		{name: "single placement group true to false ok", old: baseVMSS, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.SinglePlacementGroup = bptr(false)
		}},
		{name: "nat pool on flexible", want: CodeNatPoolNotForFlexible, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.OrchestrationMode = "flexible"
			v.Properties.PlatformFaultDomainCount = i32(1)
			ipc(v).LoadBalancerInboundNatPools = []SubResource{{ID: tLB + "/inboundNatPools/np1"}}
		}},
		{name: "automatic OS upgrade without health signal", want: CodeBadRequest, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.UpgradePolicy.AutomaticOSUpgradePolicy = json.RawMessage(`{"enableAutomaticOSUpgrade":true}`)
		}},
		{name: "automatic OS upgrade with probe ok", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			withProbe(v)
			v.Properties.UpgradePolicy.AutomaticOSUpgradePolicy = json.RawMessage(`{"enableAutomaticOSUpgrade":true}`)
		}},
		{name: "flexible without fault domain count", want: CodeInvalidParameter, target: "properties.platformFaultDomainCount", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.OrchestrationMode = "Flexible"
		}},
		{name: "grace period too short", want: CodeInvalidParameter, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			withProbe(v)
			v.Properties.AutomaticRepairsPolicy = &AutomaticRepairsPolicy{Enabled: bptr(true), GracePeriod: "PT5M"}
		}},
		{name: "repairs without health signal", want: CodeBadRequest, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.AutomaticRepairsPolicy = &AutomaticRepairsPolicy{Enabled: bptr(true)}
		}},
		{name: "bad repair action", want: CodeInvalidParameter, mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			v.Properties.AutomaticRepairsPolicy = &AutomaticRepairsPolicy{RepairAction: "Explode"}
		}},
		{name: "capacity exceeds SNAT ports", want: CodeAllocatedPortsExceedAvailable, target: "sku.capacity", mutate: func(v *VirtualMachineScaleSet, c *VMSSContext) {
			lb := baseLB()
			lb.Properties.LoadBalancingRules[0].Properties.DisableOutboundSnat = bptr(true)
			lb.Properties.OutboundRules = []OutboundRule{{Name: "o1", Properties: OutboundProps{
				FrontendIPConfigurations: []SubResource{{ID: tLB + "/frontendIPConfigurations/fe"}}, BackendAddressPool: ref(tLB + "/backendAddressPools/be"),
				Protocol: "All", AllocatedOutboundPorts: i32(16000)}}}
			c.LoadBalancers[NormalizeRefID(tLB)] = stored(t, lb)
			v.SKU.Capacity = i64(5)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v, c := baseVMSS(), baseVMSSCtx(t)
			tc.mutate(v, c)
			var old *VirtualMachineScaleSet
			if tc.old != nil {
				old = tc.old()
				if err := NormalizeScaleSet(old, nil, tVMSS, "vmss1"); err != nil {
					t.Fatal(err)
				}
			}
			err := NormalizeScaleSet(v, old, tVMSS, "vmss1")
			if err == nil {
				err = ValidateScaleSet(v, old, c)
			}
			if got := codeOf(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			var e *Error
			if errors.As(err, &e) && tc.target != "" && e.Target != tc.target {
				t.Errorf("target %q, want %q", e.Target, tc.target)
			}
			if tc.name == "rolling without probe" && e.Message != RollingNeedsHealthMessage {
				t.Errorf("message %q", e.Message)
			}
		})
	}
}
