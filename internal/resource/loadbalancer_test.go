package resource

import (
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"testing"
)

// Address plan: the subnet is 198.18.0.0/24 (RFC 2544 benchmark range);
// nothing here touches the network.

const (
	tSub    = "/subscriptions/00000000-0000-0000-0000-000000000001"
	tRG     = tSub + "/resourceGroups/rg1"
	tLB     = tRG + "/providers/Microsoft.Network/loadBalancers/lb1"
	tPIP    = tRG + "/providers/Microsoft.Network/publicIPAddresses/pip1"
	tPIP2   = tRG + "/providers/Microsoft.Network/publicIPAddresses/pip2"
	tBasic  = tRG + "/providers/Microsoft.Network/publicIPAddresses/basicpip"
	tSubnet = tRG + "/providers/Microsoft.Network/virtualNetworks/vn1/subnets/default"
	tVMSS   = tRG + "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1"
)

func ref(id string) *SubResource { return &SubResource{ID: id} }

// baseLB returns a valid, not yet normalized public Standard LB: frontend
// fe (pip1), pool be, Tcp probe p1, rule r1 80→80 using both.
func baseLB() *LoadBalancer {
	lb := &LoadBalancer{}
	lb.Location = "eastus"
	lb.SKU = &LoadBalancerSKU{Name: "standard"}
	lb.Properties.FrontendIPConfigurations = []FrontendIPConfiguration{{Name: "fe", Properties: FrontendIPConfigP{PublicIPAddress: ref(tPIP)}}}
	lb.Properties.BackendAddressPools = []BackendAddressPool{{Name: "be"}}
	lb.Properties.Probes = []Probe{{Name: "p1", Properties: ProbeProps{Protocol: "tcp", Port: i32(80)}}}
	lb.Properties.LoadBalancingRules = []LoadBalancingRule{{Name: "r1", Properties: RuleProps{
		FrontendIPConfiguration: ref(tLB + "/frontendIPConfigurations/fe"),
		BackendAddressPool:      ref(tLB + "/backendAddressPools/be"),
		Probe:                   ref(tLB + "/probes/p1"),
		Protocol:                "tcp", FrontendPort: i32(80), BackendPort: i32(80),
	}}}
	return lb
}

func baseCtx() *LBContext {
	return &LBContext{
		PublicIPs: map[string]PublicIPFacts{
			NormalizeRefID(tPIP):   {SKU: "Standard"},
			NormalizeRefID(tPIP2):  {SKU: "Standard"},
			NormalizeRefID(tBasic): {SKU: "Basic"},
		},
		Subnets: map[string]SubnetFacts{NormalizeRefID(tSubnet): {Prefixes: []netip.Prefix{netip.MustParsePrefix("198.18.0.0/24")}}},
	}
}

func norm(t *testing.T, lb *LoadBalancer) *LoadBalancer {
	t.Helper()
	if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
		t.Fatalf("normalize: %v", err)
	}
	return lb
}

func stored(t *testing.T, lb *LoadBalancer) *LoadBalancer {
	t.Helper()
	norm(t, lb)
	n := 0
	AssignEtags(lb, nil, func() string { n++; return NewEtag() })
	return lb
}

func codeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if err != nil {
		return "non-ARM error: " + err.Error()
	}
	return ""
}

func TestNormalizeLoadBalancerDefaults(t *testing.T) {
	lb := norm(t, baseLB())
	if lb.SKU.Name != "Standard" || lb.SKU.Tier != "Regional" || lb.Type != LoadBalancerType || lb.ID != tLB {
		t.Fatalf("envelope: %+v %+v", lb.Envelope, lb.SKU)
	}
	r := lb.Properties.LoadBalancingRules[0]
	if r.ID != tLB+"/loadBalancingRules/r1" || r.Type != LoadBalancingRuleType {
		t.Errorf("rule id/type: %s %s", r.ID, r.Type)
	}
	if r.Properties.Protocol != "Tcp" || r.Properties.LoadDistribution != "Default" || *r.Properties.IdleTimeoutInMinutes != 4 ||
		*r.Properties.EnableFloatingIP || *r.Properties.EnableTCPReset || *r.Properties.DisableOutboundSnat {
		t.Errorf("rule defaults: %+v", r.Properties)
	}
	if len(r.Properties.BackendAddressPools) != 1 {
		t.Errorf("backendAddressPools not mirrored: %+v", r.Properties.BackendAddressPools)
	}
	p := lb.Properties.Probes[0].Properties
	if p.Protocol != "Tcp" || *p.IntervalInSeconds != 15 || *p.NumberOfProbes != 2 || *p.ProbeThreshold != 1 {
		t.Errorf("probe defaults: %+v", p)
	}
	if err := ValidateLoadBalancer(lb, nil, baseCtx()); err != nil {
		t.Fatalf("valid LB rejected: %v", err)
	}
	bad := baseLB()
	bad.Properties.LoadBalancingRules[0].Properties.Protocol = "sctp"
	err := NormalizeLoadBalancer(bad, tLB, "lb1")
	if codeOf(err) != CodeInvalidParameter || !strings.Contains(err.Error(), "properties.loadBalancingRules[0].properties.protocol") {
		t.Errorf("bad enum: %v", err)
	}
}

// TestConformanceLoadBalancerCreate runs the spec example body through the
// whole pipeline and compares the read-only back-references with the
// example response.
func TestConformanceLoadBalancerCreate(t *testing.T) {
	raw, err := os.ReadFile("../rp/network/testdata/arm-examples/LoadBalancerCreate.json")
	if err != nil {
		t.Fatalf("spec example (in the repository): %v", err)
	}
	var ex struct {
		Parameters struct {
			Parameters json.RawMessage `json:"parameters"`
		} `json:"parameters"`
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal(raw, &ex); err != nil {
		t.Fatal(err)
	}
	lb, err := DecodeLoadBalancer(ex.Parameters.Parameters)
	if err != nil {
		t.Fatal(err)
	}
	id := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/loadBalancers/lb"
	if err := NormalizeLoadBalancer(lb, id, "lb"); err != nil {
		t.Fatal(err)
	}
	subnet := "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg1/providers/Microsoft.Network/virtualNetworks/vnetlb/subnets/subnetlb"
	ctx := &LBContext{Subnets: map[string]SubnetFacts{NormalizeRefID(subnet): {}}}
	if err := ValidateLoadBalancer(lb, nil, ctx); err != nil {
		t.Fatalf("example rejected: %v", err)
	}
	AssignEtags(lb, nil, NewEtag)
	Render(lb, LBInstanceView{})
	got, _ := json.Marshal(lb)
	var gotM, wantM map[string]any
	_ = json.Unmarshal(got, &gotM)
	_ = json.Unmarshal(ex.Responses["201"].Body, &wantM)
	// Every key path of the example response must be present in ours.
	var missing []string
	walkKeys(wantM, gotM, "", &missing)
	for _, m := range missing {
		if strings.HasSuffix(m, "privateIPAddress") || strings.HasSuffix(m, "enableConnectionTracking") {
			continue // assigned by the arm layer (IPAM) / optional
		}
		t.Errorf("missing in response: %s", m)
	}
	fe := lb.Properties.FrontendIPConfigurations[0].Properties
	if len(fe.LoadBalancingRules) != 1 || len(fe.InboundNatRules) != 1 {
		t.Errorf("frontend back-refs: %+v", fe)
	}
	if len(lb.Properties.Probes[0].Properties.LoadBalancingRules) != 1 || len(lb.Properties.BackendAddressPools[0].Properties.LoadBalancingRules) != 1 {
		t.Errorf("probe/pool back-refs missing")
	}
}

func walkKeys(want, got any, path string, missing *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*missing = append(*missing, path)
			return
		}
		for k, v := range w {
			gv, ok := g[k]
			if !ok {
				*missing = append(*missing, path+"."+k)
				continue
			}
			walkKeys(v, gv, path+"."+k, missing)
		}
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			*missing = append(*missing, path+"[]")
			return
		}
		for i := range w {
			walkKeys(w[i], g[i], path+"[]", missing)
		}
	}
}

func TestEtagsChangeOnlyWithChild(t *testing.T) {
	old := stored(t, baseLB())
	nw := baseLB()
	nw.Properties.Probes = append(nw.Properties.Probes, Probe{Name: "p2", Properties: ProbeProps{Protocol: "Tcp", Port: i32(81)}})
	nw.Properties.LoadBalancingRules[0].Properties.IdleTimeoutInMinutes = i32(10)
	norm(t, nw)
	AssignEtags(nw, old, NewEtag)
	if nw.Etag == old.Etag {
		t.Error("LB etag unchanged")
	}
	if nw.Properties.Probes[0].Etag != old.Properties.Probes[0].Etag {
		t.Error("unchanged probe got a new etag")
	}
	if nw.Properties.FrontendIPConfigurations[0].Etag != old.Properties.FrontendIPConfigurations[0].Etag {
		t.Error("unchanged frontend got a new etag")
	}
	if nw.Properties.LoadBalancingRules[0].Etag == old.Properties.LoadBalancingRules[0].Etag {
		t.Error("changed rule kept its etag")
	}
	if nw.Properties.Probes[1].Etag == "" || nw.Properties.Probes[1].Properties.ProvisioningState != Succeeded {
		t.Error("new probe lacks etag/provisioningState")
	}
}

func TestValidateLoadBalancerRules(t *testing.T) {
	feID := tLB + "/frontendIPConfigurations/fe"
	poolID := tLB + "/backendAddressPools/be"
	vmssUser := LBUser{ScaleSetID: tVMSS, Capacity: 2, HealthProbe: tLB + "/probes/p1", Pools: []string{poolID}}
	outbound := func(lb *LoadBalancer) {
		lb.Properties.OutboundRules = []OutboundRule{{Name: "o1", Properties: OutboundProps{
			FrontendIPConfigurations: []SubResource{{ID: feID}}, BackendAddressPool: ref(poolID), Protocol: "All"}}}
		lb.Properties.LoadBalancingRules[0].Properties.DisableOutboundSnat = bptr(true)
	}
	tests := []struct {
		name   string
		mutate func(lb *LoadBalancer, c *LBContext)
		old    func() *LoadBalancer
		want   string
		target string
	}{
		{name: "valid", mutate: func(*LoadBalancer, *LBContext) {}},
		{name: "basic PIP on standard LB", want: CodePublicIPAndLBSkuDoNotMatch, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tBasic)
		}},
		{name: "standard PIP on basic LB", want: CodePublicIPAndLBSkuDoNotMatch, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.SKU.Name = "basic"
		}},
		{name: "dangling PIP", want: CodeInvalidResourceReference, target: "properties.frontendIPConfigurations[0].properties.publicIPAddress.id",
			mutate: func(lb *LoadBalancer, c *LBContext) {
				lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tRG + "/providers/Microsoft.Network/publicIPAddresses/nope")
			}},
		{name: "PIP wrong type", want: CodeInvalidResourceReference, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tSubnet)
		}},
		{name: "PIP used elsewhere", want: CodePublicIPInUse, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.PublicIPs[NormalizeRefID(tPIP)] = PublicIPFacts{SKU: "Standard", UsedBy: tRG + "/providers/Microsoft.Network/loadBalancers/other/frontendIPConfigurations/x"}
		}},
		{name: "SNAT on outbound frontend", want: CodeMustDisableSNAT, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.LoadBalancingRules[0].Properties.DisableOutboundSnat = bptr(false)
		}},
		{name: "outbound ok", mutate: func(lb *LoadBalancer, c *LBContext) { outbound(lb) }},
		{name: "outbound idle 121", want: CodeInvalidParameter, target: "properties.outboundRules[0].properties.idleTimeoutInMinutes", mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.OutboundRules[0].Properties.IdleTimeoutInMinutes = i32(121)
		}},
		{name: "outbound idle 120 ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.OutboundRules[0].Properties.IdleTimeoutInMinutes = i32(120)
		}},
		{name: "ports not multiple of 8", want: CodeAllocatedPortsNotMultipleOf8, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.OutboundRules[0].Properties.AllocatedOutboundPorts = i32(1001)
		}},
		{name: "ports exceed per rule", want: CodeAllocatedPortsExceedPerRule, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.OutboundRules[0].Properties.AllocatedOutboundPorts = i32(64008)
		}},
		{name: "ports exceed available", want: CodeAllocatedPortsExceedAvailable, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.OutboundRules[0].Properties.AllocatedOutboundPorts = i32(32008)
			c.Users = []LBUser{{ScaleSetID: tVMSS, Capacity: 2, Pools: []string{poolID}}}
		}},
		{name: "two outbound rules same frontend", want: CodeMoreThanOneOutboundRule, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			o := lb.Properties.OutboundRules[0]
			o.Name = "o2"
			o.Properties.Protocol = "Tcp"
			lb.Properties.OutboundRules = append(lb.Properties.OutboundRules, o)
		}},
		{name: "internal LB outbound", want: CodeInternalLBOutboundRules, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.Properties.FrontendIPConfigurations[0].Properties = FrontendIPConfigP{Subnet: ref(tSubnet)}
		}},
		{name: "basic LB outbound", want: CodeBasicLBOutboundRules, mutate: func(lb *LoadBalancer, c *LBContext) {
			outbound(lb)
			lb.SKU.Name = "Basic"
			lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tBasic)
		}},
		{name: "no frontend with children", want: CodeWithoutFrontendNoChildren, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations = nil
		}},
		{name: "no frontend, only pool ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations, lb.Properties.LoadBalancingRules, lb.Properties.Probes = nil, nil, nil
		}},
		{name: "duplicate probe name", want: CodeDuplicateResourceName, target: "properties.probes[1].name", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes = append(lb.Properties.Probes, Probe{Name: "P1", Properties: ProbeProps{Protocol: "Tcp", Port: i32(81)}})
		}},
		{name: "dangling probe ref", want: CodeInvalidResourceReference, target: "properties.loadBalancingRules[0].properties.probe.id", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.Probe = ref(tLB + "/probes/nope")
		}},
		{name: "probe ref wrong type", want: CodeInvalidResourceReference, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.Probe = ref(poolID)
		}},
		{name: "frontend of another LB", want: CodeInvalidResourceReference, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.FrontendIPConfiguration = ref(tRG + "/providers/Microsoft.Network/loadBalancers/lb2/frontendIPConfigurations/fe")
		}},
		{name: "frontend port 65535", want: CodeInvalidParameter, target: "properties.loadBalancingRules[0].properties.frontendPort", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.FrontendPort = i32(65535)
		}},
		{name: "backend port 65536", want: CodeInvalidParameter, target: "properties.loadBalancingRules[0].properties.backendPort", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.BackendPort = i32(65536)
		}},
		{name: "rule idle 3", want: CodeInvalidParameter, target: "properties.loadBalancingRules[0].properties.idleTimeoutInMinutes", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.IdleTimeoutInMinutes = i32(3)
		}},
		{name: "rule idle 101", want: CodeInvalidParameter, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.IdleTimeoutInMinutes = i32(101)
		}},
		{name: "rule idle 100 ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.IdleTimeoutInMinutes = i32(100)
		}},
		{name: "probe interval 4", want: CodeInvalidParameter, target: "properties.probes[0].properties.intervalInSeconds", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes[0].Properties.IntervalInSeconds = i32(4)
		}},
		{name: "probe threshold 101", want: CodeInvalidParameter, target: "properties.probes[0].properties.probeThreshold", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes[0].Properties.ProbeThreshold = i32(101)
		}},
		{name: "probe port 0", want: CodeInvalidParameter, target: "properties.probes[0].properties.port", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes[0].Properties.Port = i32(0)
		}},
		{name: "http probe without path", want: CodeProbeRequestPathRequired, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes[0].Properties.Protocol = "http"
		}},
		{name: "tcp probe with path", want: CodeProbeRequestPathNotAllowed, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.Probes[0].Properties.RequestPath = "/"
		}},
		{name: "https probe on basic", want: CodeHTTPSProbeNeedsStandard, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.SKU.Name = "Basic"
			lb.Properties.FrontendIPConfigurations[0].Properties.PublicIPAddress = ref(tBasic)
			lb.Properties.Probes[0].Properties.Protocol, lb.Properties.Probes[0].Properties.RequestPath = "Https", "/"
		}},
		{name: "same frontend port and protocol", want: CodeFrontendPortConflict, mutate: func(lb *LoadBalancer, c *LBContext) {
			r := lb.Properties.LoadBalancingRules[0]
			r.Name, r.Properties.BackendPort, r.Properties.Probe = "r2", i32(81), nil
			lb.Properties.LoadBalancingRules = append(lb.Properties.LoadBalancingRules, r)
		}},
		{name: "same frontend port, other protocol ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			r := lb.Properties.LoadBalancingRules[0]
			r.Name, r.Properties.Protocol, r.Properties.Probe = "r2", "Udp", nil
			lb.Properties.LoadBalancingRules = append(lb.Properties.LoadBalancingRules, r)
		}},
		{name: "same backend port and pool", want: CodeRulesUseSameBackendPortProtocolPool, mutate: func(lb *LoadBalancer, c *LBContext) {
			r := lb.Properties.LoadBalancingRules[0]
			r.Name, r.Properties.FrontendPort = "r2", i32(8080)
			lb.Properties.LoadBalancingRules = append(lb.Properties.LoadBalancingRules, r)
		}},
		{name: "same backend port with floating IP ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.LoadBalancingRules[0].Properties.EnableFloatingIP = bptr(true)
			r := lb.Properties.LoadBalancingRules[0]
			r.Name, r.Properties.FrontendPort = "r2", i32(8080)
			lb.Properties.LoadBalancingRules = append(lb.Properties.LoadBalancingRules, r)
		}},
		{name: "nat rule v1 port 0", want: CodeInvalidParameter, target: "properties.inboundNatRules[0].properties.frontendPort", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPort: i32(0), BackendPort: i32(22)}}}
		}},
		{name: "nat rule conflicts with rule port", want: CodeFrontendPortConflict, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPort: i32(80), BackendPort: i32(22)}}}
		}},
		{name: "nat rule v2 ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp",
				FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50099), BackendPort: i32(22), BackendAddressPool: ref(poolID)}}}
		}},
		{name: "nat rule v2 without pool", want: CodeInvalidParameter, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp",
				FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50099), BackendPort: i32(22)}}}
		}},
		{name: "nat pools overlap", want: CodeNatPoolRangesOverlap, target: "properties.inboundNatPools[1].properties", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatPools = []InboundNatPool{
				{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(22)}},
				{Name: "np2", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50100), FrontendPortRangeEnd: i32(50199), BackendPort: i32(3389)}},
			}
		}},
		{name: "nat pools disjoint ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatPools = []InboundNatPool{
				{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(22)}},
				{Name: "np2", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50120), FrontendPortRangeEnd: i32(50199), BackendPort: i32(3389)}},
			}
		}},
		{name: "nat pool overlaps rule port", want: CodeNatPoolRangesOverlap, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatPools = []InboundNatPool{
				{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(1), FrontendPortRangeEnd: i32(100), BackendPort: i32(22)}}}
		}},
		{name: "nat pool range reversed", want: CodeInvalidParameter, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatPools = []InboundNatPool{
				{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50100), FrontendPortRangeEnd: i32(50000), BackendPort: i32(22)}}}
		}},
		{name: "adding nat rule with nat pool", want: CodeNatRulesWithNatPool, mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.InboundNatPools = []InboundNatPool{
				{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(22)}}}
			lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPort: i32(40000), BackendPort: i32(22)}}}
		}},
		{name: "sku change", want: CodeSkuCannotBeUpdated, target: "sku.name", old: func() *LoadBalancer {
			o := baseLB()
			o.SKU.Name = "Basic"
			return o
		}, mutate: func(lb *LoadBalancer, c *LBContext) {}},
		{name: "modify rule of VMSS probe", want: CodeCannotModifyRuleUsedByProbeUsedByVM, old: baseLB, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.Users = []LBUser{vmssUser}
			lb.Properties.LoadBalancingRules[0].Properties.BackendPort = i32(8080)
		}},
		{name: "remove rule of VMSS probe", want: CodeCannotRemoveRuleUsedByProbeUsedByVM, old: baseLB, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.Users = []LBUser{vmssUser}
			lb.Properties.LoadBalancingRules = nil
		}},
		{name: "unchanged rule of VMSS probe, other change ok", old: baseLB, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.Users = []LBUser{vmssUser}
			lb.Properties.Probes = append(lb.Properties.Probes, Probe{Name: "p2", Properties: ProbeProps{Protocol: "Tcp", Port: i32(443)}})
		}},
		{name: "remove pool used by VMSS", want: CodeBackendPoolInUseByVMSS, old: baseLB, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.Users = []LBUser{{ScaleSetID: tVMSS, Pools: []string{poolID}}}
			lb.Properties.BackendAddressPools = []BackendAddressPool{{Name: "other"}}
			lb.Properties.LoadBalancingRules[0].Properties.BackendAddressPool = ref(tLB + "/backendAddressPools/other")
		}},
		{name: "remove nat pool used by VMSS", want: CodeNatPoolInUseByVMSS, old: baseLB, mutate: func(lb *LoadBalancer, c *LBContext) {
			c.Users = []LBUser{{ScaleSetID: tVMSS, NatPools: []string{tLB + "/inboundNatPools/np1"}}}
		}},
		{name: "static IP outside subnet", want: CodeInvalidParameter, target: "properties.frontendIPConfigurations[0].properties.privateIPAddress", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations[0].Properties = FrontendIPConfigP{Subnet: ref(tSubnet), PrivateIPAddress: "198.19.0.5"}
		}},
		{name: "internal static ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations[0].Properties = FrontendIPConfigP{Subnet: ref(tSubnet), PrivateIPAddress: "198.18.0.5"}
		}},
		{name: "HA ports on public frontend", want: CodeInvalidParameter, mutate: func(lb *LoadBalancer, c *LBContext) {
			rp := &lb.Properties.LoadBalancingRules[0].Properties
			rp.Protocol, rp.FrontendPort, rp.BackendPort = "All", i32(0), i32(0)
		}},
		{name: "HA ports on internal frontend ok", mutate: func(lb *LoadBalancer, c *LBContext) {
			lb.Properties.FrontendIPConfigurations[0].Properties = FrontendIPConfigP{Subnet: ref(tSubnet)}
			rp := &lb.Properties.LoadBalancingRules[0].Properties
			rp.Protocol, rp.FrontendPort, rp.BackendPort = "All", i32(0), i32(0)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lb, c := baseLB(), baseCtx()
			tc.mutate(lb, c)
			var old *LoadBalancer
			if tc.old != nil {
				old = stored(t, tc.old())
			}
			err := NormalizeLoadBalancer(lb, tLB, "lb1")
			if err == nil {
				err = ValidateLoadBalancer(lb, old, c)
			}
			if got := codeOf(err); got != tc.want {
				t.Fatalf("code = %q, want %q (err %v)", got, tc.want, err)
			}
			if tc.target != "" {
				var e *Error
				errors.As(err, &e)
				if e.Target != tc.target {
					t.Errorf("target = %q, want %q", e.Target, tc.target)
				}
			}
			if err != nil {
				var e *Error
				errors.As(err, &e)
				if e.Status != 400 || e.Message == "" {
					t.Errorf("status %d message %q", e.Status, e.Message)
				}
			}
		})
	}
}

// TestNatRulesUnchangedWithNatPool: Azure's escape hatch — passing all NAT
// rules unchanged is allowed when a NAT pool exists.
func TestNatRulesUnchangedWithNatPool(t *testing.T) {
	feID := tLB + "/frontendIPConfigurations/fe"
	mk := func() *LoadBalancer {
		lb := baseLB()
		lb.Properties.InboundNatRules = []InboundNatRule{{Name: "n1", Properties: NatRuleProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp", FrontendPort: i32(40000), BackendPort: i32(22)}}}
		return lb
	}
	old := stored(t, mk())
	nw := mk()
	nw.Properties.InboundNatPools = []InboundNatPool{{Name: "np1", Properties: NatPoolProps{FrontendIPConfiguration: ref(feID), Protocol: "Tcp",
		FrontendPortRangeStart: i32(50000), FrontendPortRangeEnd: i32(50119), BackendPort: i32(22)}}}
	norm(t, nw)
	// The client echoes read-only fields and a different id case: still unchanged.
	nw.Properties.InboundNatRules[0].Properties.FrontendIPConfiguration.ID = strings.ToUpper(feID)
	if err := ValidateLoadBalancer(nw, old, baseCtx()); err != nil {
		t.Fatalf("unchanged NAT rules refused: %v", err)
	}
	nw.Properties.InboundNatRules[0].Properties.BackendPort = i32(2222)
	if got := codeOf(ValidateLoadBalancer(nw, old, baseCtx())); got != CodeNatRulesWithNatPool {
		t.Fatalf("changed NAT rule: code %q", got)
	}
}

func TestValidateLoadBalancerDelete(t *testing.T) {
	users := []LBUser{{ScaleSetID: tVMSS, Pools: []string{strings.ToLower(tLB) + "/backendAddressPools/be"}}}
	if got := codeOf(ValidateLoadBalancerDelete(tLB, users)); got != CodeLoadBalancerInUseByVMSS {
		t.Fatalf("code %q", got)
	}
	if err := ValidateLoadBalancerDelete(tRG+"/providers/Microsoft.Network/loadBalancers/other", users); err != nil {
		t.Fatal(err)
	}
}

func TestParseLBChildID(t *testing.T) {
	tests := []struct {
		id         string
		ok         bool
		coll, name string
	}{
		{tLB + "/probes/p1", true, CollProbes, "p1"},
		{strings.ToLower(tLB) + "/PROBES/p1", true, CollProbes, "p1"},
		{tLB + "/backendAddressPools/be/", true, CollBackendAddressPools, "be"},
		{tLB, false, "", ""},
		{tLB + "/widgets/x", false, "", ""},
		{tRG + "/providers/Microsoft.Network/applicationGateways/ag/probes/p1", false, "", ""},
		{"", false, "", ""},
	}
	for _, tc := range tests {
		lb, coll, name, ok := ParseLBChildID(tc.id)
		if ok != tc.ok || coll != tc.coll || name != tc.name || (ok && !SameID(lb, tLB)) {
			t.Errorf("%q: got %q %q %q %v", tc.id, lb, coll, name, ok)
		}
	}
}

// TestGetPutRoundTripUnchanged: what a client GETs (rendered, with
// back-references and [] lists) PUT back unchanged is not a modification:
// the VMSS health-probe rule does not fire and every etag stays.
func TestGetPutRoundTripUnchanged(t *testing.T) {
	old := baseLB()
	old.Properties.LoadBalancingRules = append(old.Properties.LoadBalancingRules, LoadBalancingRule{Name: "nopool", Properties: RuleProps{
		FrontendIPConfiguration: ref(tLB + "/frontendIPConfigurations/fe"), Protocol: "Udp", FrontendPort: i32(53), BackendPort: i32(53)}})
	old = stored(t, old)
	raw, _ := json.Marshal(old)
	view, _ := DecodeLoadBalancer(raw)
	Render(view, LBInstanceView{})
	raw, _ = json.Marshal(view)
	again, err := DecodeLoadBalancer(raw)
	if err != nil {
		t.Fatal(err)
	}
	norm(t, again)
	users := []LBUser{{ScaleSetID: tVMSS, HealthProbe: strings.ToUpper(tLB) + "/probes/P1", Pools: []string{tLB + "/backendAddressPools/be"}}}
	c := baseCtx()
	c.Users = users
	if err := ValidateLoadBalancer(again, old, c); err != nil {
		t.Fatalf("unchanged round trip refused: %v", err)
	}
	AssignEtags(again, old, NewEtag)
	for i := range again.Properties.LoadBalancingRules {
		if again.Properties.LoadBalancingRules[i].Etag != old.Properties.LoadBalancingRules[i].Etag {
			t.Errorf("rule %d etag changed", i)
		}
	}
	if again.Properties.BackendAddressPools[0].Etag != old.Properties.BackendAddressPools[0].Etag ||
		again.Properties.Probes[0].Etag != old.Properties.Probes[0].Etag {
		t.Error("pool/probe etag changed")
	}
}

// bigLB returns a valid LB with n rules (distinct ports), one pool, one probe.
func bigLB(n int) *LoadBalancer {
	lb := baseLB()
	r0 := lb.Properties.LoadBalancingRules[0]
	lb.Properties.LoadBalancingRules = nil
	for i := range n {
		r := r0
		r.Name = "rule" + strconv.Itoa(i)
		r.Properties.FrontendPort, r.Properties.BackendPort = i32(int32(1000+i)), i32(int32(20000+i))
		lb.Properties.LoadBalancingRules = append(lb.Properties.LoadBalancingRules, r)
	}
	return lb
}

// BenchmarkValidateLoadBalancer100 is the pure model cost of one PUT of a
// 100-rule LB: normalize, validate against the stored one, assign etags,
// render.
func BenchmarkValidateLoadBalancer100(b *testing.B) {
	old := bigLB(100)
	if err := NormalizeLoadBalancer(old, tLB, "lb1"); err != nil {
		b.Fatal(err)
	}
	AssignEtags(old, nil, NewEtag)
	c := baseCtx()
	b.ReportAllocs()
	for b.Loop() {
		lb := bigLB(100)
		if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
			b.Fatal(err)
		}
		if err := ValidateLoadBalancer(lb, old, c); err != nil {
			b.Fatal(err)
		}
		AssignEtags(lb, old, NewEtag)
		Render(lb, LBInstanceView{})
	}
}
