package resource

import (
	"reflect"
	"testing"
)

// Address plan: instances get customer addresses from 198.18.0.0/24; no
// traffic is sent (pure functions).

const (
	viewSub  = "/subscriptions/s/resourceGroups/rg/providers"
	viewLB   = viewSub + "/Microsoft.Network/loadBalancers/lb1"
	viewVMSS = viewSub + "/Microsoft.Compute/virtualMachineScaleSets/web"
)

func viewI32(v int32) *int32 { return &v }

func viewLoadBalancer() *LoadBalancer {
	fe := &SubResource{ID: viewLB + "/frontendIPConfigurations/fe"}
	return &LoadBalancer{
		Envelope: Envelope{ID: viewLB, Name: "lb1"},
		Properties: LoadBalancerProps{
			BackendAddressPools: []BackendAddressPool{
				{ID: viewLB + "/backendAddressPools/be", Name: "be"},
				{ID: viewLB + "/backendAddressPools/other", Name: "other"},
			},
			InboundNatPools: []InboundNatPool{{
				ID: viewLB + "/inboundNatPools/ssh", Name: "ssh", Etag: `W/"np"`,
				Properties: NatPoolProps{FrontendIPConfiguration: fe, Protocol: "Tcp",
					FrontendPortRangeStart: viewI32(50000), FrontendPortRangeEnd: viewI32(50119),
					BackendPort: viewI32(22), IdleTimeoutInMinutes: viewI32(4)},
			}},
			InboundNatRules: []InboundNatRule{{
				ID: viewLB + "/inboundNatRules/rdp", Name: "rdp",
				Properties: NatRuleProps{FrontendIPConfiguration: fe, Protocol: "Tcp",
					FrontendPortRangeStart: viewI32(60000), FrontendPortRangeEnd: viewI32(60100), BackendPort: viewI32(3389),
					BackendAddressPool: &SubResource{ID: viewLB + "/backendAddressPools/be"}},
			}},
		},
	}
}

// viewInstance returns instance n of the scale set, its applied model in
// the pool "be" (upper-case id, to check normalisation) and the NAT pool,
// settled in power state power (the driver reports what was asked).
func viewInstance(n string, ip string, power string, ports map[string]uint16) *Instance {
	primary := true
	model := &VMProfile{NetworkProfile: &NetworkProfile{NetworkInterfaceConfigurations: []NICConfig{{
		Name: "nic", Properties: NICConfigProps{Primary: &primary, IPConfigurations: []IPConfig{{
			Name: "ipc", Properties: IPConfigProps{
				LoadBalancerBackendAddressPools: []SubResource{{ID: "/SUBSCRIPTIONS/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/LB1/backendAddressPools/BE"}},
				LoadBalancerInboundNatPools:     []SubResource{{ID: viewLB + "/inboundNatPools/ssh"}},
			}}}}}}}}
	return &Instance{ScaleSetID: viewVMSS, InstanceID: n, Name: "web_" + n, Model: model,
		PrivateIP: ip, Power: power, Actual: power, NATPorts: ports}
}

func viewIPC(n string) string {
	return viewVMSS + "/virtualMachines/" + n + "/networkInterfaces/nic/ipConfigurations/ipc"
}

func TestLBView(t *testing.T) {
	natPool := NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	pool := NormalizeRefID(viewLB + "/backendAddressPools/be")
	tests := []struct {
		name      string
		instances []*Instance
		members   []string
		rules     map[string]int32 // generated rule name -> frontend port
		order     []string
	}{
		{name: "no instances"},
		{
			name: "running members sorted numerically, ports from records",
			instances: []*Instance{
				viewInstance("10", "198.18.0.12", PowerRunning, map[string]uint16{natPool: 50002}),
				viewInstance("2", "198.18.0.11", PowerRunning, map[string]uint16{natPool: 50001}),
				viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{natPool: 50000}),
			},
			members: []string{viewIPC("0"), viewIPC("10"), viewIPC("2")},
			rules:   map[string]int32{"ssh.0": 50000, "ssh.2": 50001, "ssh.10": 50002},
			order:   []string{"ssh.0", "ssh.2", "ssh.10"},
		},
		{
			name: "stopped instance leaves the pool but keeps its NAT rule; deleting one leaves both",
			instances: []*Instance{
				viewInstance("0", "198.18.0.10", PowerStopped, map[string]uint16{natPool: 50000}),
				func() *Instance {
					in := viewInstance("1", "198.18.0.11", PowerRunning, map[string]uint16{natPool: 50001})
					in.Deleting = true
					return in
				}(),
				viewInstance("2", "198.18.0.12", PowerDeallocated, nil),
			},
			rules: map[string]int32{"ssh.0": 50000},
			order: []string{"ssh.0"},
		},
		{
			name: "instance without a port yet has no generated rule",
			instances: []*Instance{
				viewInstance("0", "198.18.0.10", PowerRunning, nil),
			},
			members: []string{viewIPC("0")},
		},
		{
			name: "instance of a model without pools",
			instances: []*Instance{
				{ScaleSetID: viewVMSS, InstanceID: "0", Power: PowerRunning},
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
			if len(v.PoolMembers[NormalizeRefID(viewLB+"/backendAddressPools/other")]) != 0 {
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
				if r.ID != viewLB+"/inboundNatRules/"+r.Name || r.Type != InboundNatRuleType || r.Etag != `W/"np"` {
					t.Errorf("rule %s envelope = %s %s %s", r.Name, r.ID, r.Type, r.Etag)
				}
				if *p.FrontendPort != tt.rules[r.Name] || *p.BackendPort != 22 || p.Protocol != "Tcp" || *p.IdleTimeoutInMinutes != 4 ||
					p.FrontendIPConfiguration.ID != viewLB+"/frontendIPConfigurations/fe" || p.ProvisioningState != Succeeded {
					t.Errorf("rule %s properties = %+v", r.Name, p)
				}
				if p.BackendIPConfiguration == nil || p.BackendIPConfiguration.ID != viewIPC(n) {
					t.Errorf("rule %s backend = %+v, want %s", r.Name, p.BackendIPConfiguration, viewIPC(n))
				}
				if v.NatRuleBackends[NormalizeRefID(r.ID)] != viewIPC(n) {
					t.Errorf("NatRuleBackends[%s] = %q", r.Name, v.NatRuleBackends[NormalizeRefID(r.ID)])
				}
			}
		})
	}
}

func TestLBViewRender(t *testing.T) {
	natPool := NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	lb := viewLoadBalancer()
	lb.Properties.FrontendIPConfigurations = []FrontendIPConfiguration{{ID: viewLB + "/frontendIPConfigurations/fe", Name: "fe"}}
	v := LBView(lb, []*Instance{viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{natPool: 50000})})
	Render(lb, v)
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
	rule := NormalizeRefID(viewLB + "/inboundNatRules/rdp")
	tests := []struct {
		name      string
		pool      string
		instances []*Instance
		want      []BackendPortMappings
	}{
		{
			name: "members with ports, sorted by ipconfig",
			pool: viewLB + "/backendAddressPools/BE",
			instances: []*Instance{
				viewInstance("1", "198.18.0.11", PowerRunning, map[string]uint16{rule: 60001}),
				viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{rule: 60000}),
			},
			want: []BackendPortMappings{
				{IPConfigID: viewIPC("0"), PrivateIP: "198.18.0.10", Mappings: []NatRulePortMapping{{InboundNatRuleName: "rdp", Protocol: "Tcp", FrontendPort: 60000, BackendPort: 3389}}},
				{IPConfigID: viewIPC("1"), PrivateIP: "198.18.0.11", Mappings: []NatRulePortMapping{{InboundNatRuleName: "rdp", Protocol: "Tcp", FrontendPort: 60001, BackendPort: 3389}}},
			},
		},
		{
			name: "stopped members and members without a port are left out",
			pool: viewLB + "/backendAddressPools/be",
			instances: []*Instance{
				viewInstance("0", "198.18.0.10", PowerStopped, map[string]uint16{rule: 60000}),
				viewInstance("1", "198.18.0.11", PowerRunning, nil),
			},
		},
		{
			name:      "pool without v2 rules",
			pool:      viewLB + "/backendAddressPools/other",
			instances: []*Instance{viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{rule: 60000})},
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
		instances []*Instance
		want      []PoolBackend
	}{
		{
			name:  "running members of any listed pool, once each",
			pools: []string{viewLB + "/backendAddressPools/be", viewLB + "/backendAddressPools/BE"},
			instances: []*Instance{
				viewInstance("1", "198.18.0.11", PowerRunning, nil),
				viewInstance("0", "198.18.0.10", PowerRunning, nil),
				viewInstance("2", "198.18.0.12", PowerDeallocated, nil),
			},
			want: []PoolBackend{{IPConfigID: viewIPC("0"), PrivateIP: "198.18.0.10"}, {IPConfigID: viewIPC("1"), PrivateIP: "198.18.0.11"}},
		},
		{
			name:      "other pool",
			pools:     []string{viewLB + "/backendAddressPools/other"},
			instances: []*Instance{viewInstance("0", "198.18.0.10", PowerRunning, nil)},
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

// TestMembershipRule: the one rule for every state an instance record goes
// through (see the table in membership.go).
func TestMembershipRule(t *testing.T) {
	natPool := NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	pool := NormalizeRefID(viewLB + "/backendAddressPools/be")
	tests := []struct {
		name        string
		edit        func(in *Instance)
		pools, nats bool
	}{
		{"creating", func(in *Instance) { in.Actual, in.ProvisioningState = "", Creating }, false, true},
		{"starting", func(in *Instance) { in.Actual = PowerStopped }, false, true},
		{"running", func(*Instance) {}, true, true},
		{"workload died", func(in *Instance) { in.Message = "workload exited: exit status 2" }, true, true},
		{"stopping", func(in *Instance) { in.Power = PowerStopped }, false, true},
		{"stopped", func(in *Instance) { in.Power, in.Actual = PowerStopped, PowerStopped }, false, true},
		{"deallocated", func(in *Instance) { in.Power, in.Actual = PowerDeallocated, PowerDeallocated }, false, true},
		{"deleting", func(in *Instance) { in.Deleting = true }, false, false},
		{"no customer address", func(in *Instance) { in.PrivateIP = "" }, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{natPool: 50000})
			tt.edit(in)
			if got := InPools(in); got != tt.pools {
				t.Errorf("InPools = %v, want %v", got, tt.pools)
			}
			if got := HasNATRules(in); got != tt.nats {
				t.Errorf("HasNATRules = %v, want %v", got, tt.nats)
			}
			wantPools := []string(nil)
			if tt.pools {
				wantPools = []string{pool}
			}
			if got := MemberPools(in); !reflect.DeepEqual(got, wantPools) {
				t.Errorf("MemberPools = %v, want %v", got, wantPools)
			}
			wantPorts := map[string]uint16(nil)
			if tt.nats {
				wantPorts = map[string]uint16{natPool: 50000}
			}
			if got := NATPoolPorts(in); !reflect.DeepEqual(got, wantPorts) {
				t.Errorf("NATPoolPorts = %v, want %v", got, wantPorts)
			}
		})
	}
	if InPools(nil) || HasNATRules(nil) || MemberPools(nil) != nil || NATPoolPorts(nil) != nil {
		t.Error("a nil instance is a member")
	}
}

// TestNATPoolPortsFollowTheModel: a port the record still holds for a NAT
// pool its applied model no longer lists generates no rule.
func TestNATPoolPortsFollowTheModel(t *testing.T) {
	natPool := NormalizeRefID(viewLB + "/inboundNatPools/ssh")
	in := viewInstance("0", "198.18.0.10", PowerRunning, map[string]uint16{natPool: 50000, "/other/pool": 50001})
	if got := NATPoolPorts(in); !reflect.DeepEqual(got, map[string]uint16{natPool: 50000}) {
		t.Errorf("NATPoolPorts = %v", got)
	}
	_, ipc := PrimaryIPConfig(in.Model)
	ipc.Properties.LoadBalancerInboundNatPools = nil
	if got := NATPoolPorts(in); got != nil {
		t.Errorf("NATPoolPorts without model references = %v", got)
	}
}
