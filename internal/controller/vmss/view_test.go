package vmss

import (
	"reflect"
	"testing"

	"nimbus/internal/resource"
)

// Address plan: instances get customer addresses from 198.18.0.0/24; no
// traffic is sent (pure functions).

const (
	viewSub  = "/subscriptions/s/resourceGroups/rg/providers"
	viewLB   = viewSub + "/Microsoft.Network/loadBalancers/lb1"
	viewVMSS = viewSub + "/Microsoft.Compute/virtualMachineScaleSets/web"
)

func viewI32(v int32) *int32 { return &v }

func viewLoadBalancer() *resource.LoadBalancer {
	fe := &resource.SubResource{ID: viewLB + "/frontendIPConfigurations/fe"}
	return &resource.LoadBalancer{
		Envelope: resource.Envelope{ID: viewLB, Name: "lb1"},
		Properties: resource.LoadBalancerProps{
			BackendAddressPools: []resource.BackendAddressPool{
				{ID: viewLB + "/backendAddressPools/be", Name: "be"},
				{ID: viewLB + "/backendAddressPools/other", Name: "other"},
			},
			InboundNatPools: []resource.InboundNatPool{{
				ID: viewLB + "/inboundNatPools/ssh", Name: "ssh", Etag: `W/"np"`,
				Properties: resource.NatPoolProps{FrontendIPConfiguration: fe, Protocol: "Tcp",
					FrontendPortRangeStart: viewI32(50000), FrontendPortRangeEnd: viewI32(50119),
					BackendPort: viewI32(22), IdleTimeoutInMinutes: viewI32(4)},
			}},
			InboundNatRules: []resource.InboundNatRule{{
				ID: viewLB + "/inboundNatRules/rdp", Name: "rdp",
				Properties: resource.NatRuleProps{FrontendIPConfiguration: fe, Protocol: "Tcp",
					FrontendPortRangeStart: viewI32(60000), FrontendPortRangeEnd: viewI32(60100), BackendPort: viewI32(3389),
					BackendAddressPool: &resource.SubResource{ID: viewLB + "/backendAddressPools/be"}},
			}},
		},
	}
}

// viewInstance returns instance n of the scale set, its applied model in
// the pool "be" (upper-case id, to check normalisation) and the NAT pool.
func viewInstance(n string, ip string, power string, ports map[string]uint16) *resource.Instance {
	primary := true
	model := &resource.VMProfile{NetworkProfile: &resource.NetworkProfile{NetworkInterfaceConfigurations: []resource.NICConfig{{
		Name: "nic", Properties: resource.NICConfigProps{Primary: &primary, IPConfigurations: []resource.IPConfig{{
			Name: "ipc", Properties: resource.IPConfigProps{
				LoadBalancerBackendAddressPools: []resource.SubResource{{ID: "/SUBSCRIPTIONS/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/LB1/backendAddressPools/BE"}},
				LoadBalancerInboundNatPools:     []resource.SubResource{{ID: viewLB + "/inboundNatPools/ssh"}},
			}}}}}}}}
	return &resource.Instance{ScaleSetID: viewVMSS, InstanceID: n, Name: "web_" + n, Model: model,
		PrivateIP: ip, Power: power, NATPorts: ports}
}

func viewIPC(n string) string {
	return viewVMSS + "/virtualMachines/" + n + "/networkInterfaces/nic/ipConfigurations/ipc"
}

func TestLBView(t *testing.T) {
	natPool := resource.NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	pool := resource.NormalizeRefID(viewLB + "/backendAddressPools/be")
	tests := []struct {
		name      string
		instances []*resource.Instance
		members   []string
		rules     map[string]int32 // generated rule name -> frontend port
		order     []string
	}{
		{name: "no instances"},
		{
			name: "running members sorted numerically, ports from records",
			instances: []*resource.Instance{
				viewInstance("10", "198.18.0.12", resource.PowerRunning, map[string]uint16{natPool: 50002}),
				viewInstance("2", "198.18.0.11", resource.PowerRunning, map[string]uint16{natPool: 50001}),
				viewInstance("0", "198.18.0.10", resource.PowerRunning, map[string]uint16{natPool: 50000}),
			},
			members: []string{viewIPC("0"), viewIPC("10"), viewIPC("2")},
			rules:   map[string]int32{"ssh.0": 50000, "ssh.2": 50001, "ssh.10": 50002},
			order:   []string{"ssh.0", "ssh.2", "ssh.10"},
		},
		{
			name: "stopped instance leaves the pool but keeps its NAT rule; deleting one leaves both",
			instances: []*resource.Instance{
				viewInstance("0", "198.18.0.10", resource.PowerStopped, map[string]uint16{natPool: 50000}),
				func() *resource.Instance {
					in := viewInstance("1", "198.18.0.11", resource.PowerRunning, map[string]uint16{natPool: 50001})
					in.Deleting = true
					return in
				}(),
				viewInstance("2", "198.18.0.12", resource.PowerDeallocated, nil),
			},
			rules: map[string]int32{"ssh.0": 50000},
			order: []string{"ssh.0"},
		},
		{
			name: "instance without a port yet has no generated rule",
			instances: []*resource.Instance{
				viewInstance("0", "198.18.0.10", resource.PowerRunning, nil),
			},
			members: []string{viewIPC("0")},
		},
		{
			name: "instance of a model without pools",
			instances: []*resource.Instance{
				{ScaleSetID: viewVMSS, InstanceID: "0", Power: resource.PowerRunning},
				nil,
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := LBView(viewLoadBalancer(), tt.instances)
			if got := v.PoolMembers[pool]; !reflect.DeepEqual(got, tt.members) {
				t.Errorf("pool members = %v, want %v", got, tt.members)
			}
			if len(v.PoolMembers[resource.NormalizeRefID(viewLB+"/backendAddressPools/other")]) != 0 {
				t.Errorf("pool 'other' has members: %v", v.PoolMembers)
			}
			if len(v.GeneratedNatRules) != len(tt.rules) {
				t.Fatalf("generated rules = %+v, want %v", v.GeneratedNatRules, tt.rules)
			}
			for i, r := range v.GeneratedNatRules {
				if r.Name != tt.order[i] {
					t.Errorf("rule %d = %s, want %s", i, r.Name, tt.order[i])
				}
				p := r.Properties
				n := r.Name[len("ssh."):]
				if r.ID != viewLB+"/inboundNatRules/"+r.Name || r.Type != resource.InboundNatRuleType || r.Etag != `W/"np"` {
					t.Errorf("rule %s envelope = %s %s %s", r.Name, r.ID, r.Type, r.Etag)
				}
				if *p.FrontendPort != tt.rules[r.Name] || *p.BackendPort != 22 || p.Protocol != "Tcp" || *p.IdleTimeoutInMinutes != 4 ||
					p.FrontendIPConfiguration.ID != viewLB+"/frontendIPConfigurations/fe" || p.ProvisioningState != resource.Succeeded {
					t.Errorf("rule %s properties = %+v", r.Name, p)
				}
				if p.BackendIPConfiguration == nil || p.BackendIPConfiguration.ID != viewIPC(n) {
					t.Errorf("rule %s backend = %+v, want %s", r.Name, p.BackendIPConfiguration, viewIPC(n))
				}
				if v.NatRuleBackends[resource.NormalizeRefID(r.ID)] != viewIPC(n) {
					t.Errorf("NatRuleBackends[%s] = %q", r.Name, v.NatRuleBackends[resource.NormalizeRefID(r.ID)])
				}
			}
		})
	}
}

func TestLBViewRender(t *testing.T) {
	natPool := resource.NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	lb := viewLoadBalancer()
	lb.Properties.FrontendIPConfigurations = []resource.FrontendIPConfiguration{{ID: viewLB + "/frontendIPConfigurations/fe", Name: "fe"}}
	v := LBView(lb, []*resource.Instance{viewInstance("0", "198.18.0.10", resource.PowerRunning, map[string]uint16{natPool: 50000})})
	resource.Render(lb, v)
	if got := lb.Properties.BackendAddressPools[0].Properties.BackendIPConfigurations; len(got) != 1 || got[0].ID != viewIPC("0") {
		t.Errorf("backendIPConfigurations = %+v", got)
	}
	names := []string{}
	for _, r := range lb.Properties.InboundNatRules {
		names = append(names, r.Name)
	}
	if !reflect.DeepEqual(names, []string{"rdp", "ssh.0"}) {
		t.Errorf("inbound NAT rules = %v", names)
	}
	fe := lb.Properties.FrontendIPConfigurations[0].Properties
	if len(fe.InboundNatRules) != 2 || len(fe.InboundNatPools) != 1 {
		t.Errorf("frontend back-references = %+v", fe)
	}
}

func TestPortMappings(t *testing.T) {
	rule := resource.NormalizeRefID(viewLB + "/inboundNatRules/rdp")
	tests := []struct {
		name      string
		pool      string
		instances []*resource.Instance
		want      []BackendPortMappings
	}{
		{
			name: "members with ports, sorted by ipconfig",
			pool: viewLB + "/backendAddressPools/BE",
			instances: []*resource.Instance{
				viewInstance("1", "198.18.0.11", resource.PowerRunning, map[string]uint16{rule: 60001}),
				viewInstance("0", "198.18.0.10", resource.PowerRunning, map[string]uint16{rule: 60000}),
			},
			want: []BackendPortMappings{
				{IPConfigID: viewIPC("0"), PrivateIP: "198.18.0.10", Mappings: []resource.NatRulePortMapping{{InboundNatRuleName: "rdp", Protocol: "Tcp", FrontendPort: 60000, BackendPort: 3389}}},
				{IPConfigID: viewIPC("1"), PrivateIP: "198.18.0.11", Mappings: []resource.NatRulePortMapping{{InboundNatRuleName: "rdp", Protocol: "Tcp", FrontendPort: 60001, BackendPort: 3389}}},
			},
		},
		{
			name: "stopped members and members without a port are left out",
			pool: viewLB + "/backendAddressPools/be",
			instances: []*resource.Instance{
				viewInstance("0", "198.18.0.10", resource.PowerStopped, map[string]uint16{rule: 60000}),
				viewInstance("1", "198.18.0.11", resource.PowerRunning, nil),
			},
		},
		{
			name:      "pool without v2 rules",
			pool:      viewLB + "/backendAddressPools/other",
			instances: []*resource.Instance{viewInstance("0", "198.18.0.10", resource.PowerRunning, map[string]uint16{rule: 60000})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := PortMappings(viewLoadBalancer(), tt.pool, tt.instances)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PortMappings = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestPoolBackends(t *testing.T) {
	tests := []struct {
		name      string
		pools     []string
		instances []*resource.Instance
		want      []PoolBackend
	}{
		{
			name:  "running members of any listed pool, once each",
			pools: []string{viewLB + "/backendAddressPools/be", viewLB + "/backendAddressPools/BE"},
			instances: []*resource.Instance{
				viewInstance("1", "198.18.0.11", resource.PowerRunning, nil),
				viewInstance("0", "198.18.0.10", resource.PowerRunning, nil),
				viewInstance("2", "198.18.0.12", resource.PowerDeallocated, nil),
			},
			want: []PoolBackend{{IPConfigID: viewIPC("0"), PrivateIP: "198.18.0.10"}, {IPConfigID: viewIPC("1"), PrivateIP: "198.18.0.11"}},
		},
		{
			name:      "other pool",
			pools:     []string{viewLB + "/backendAddressPools/other"},
			instances: []*resource.Instance{viewInstance("0", "198.18.0.10", resource.PowerRunning, nil)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PoolBackends(tt.pools, tt.instances); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PoolBackends = %+v, want %+v", got, tt.want)
			}
		})
	}
}
