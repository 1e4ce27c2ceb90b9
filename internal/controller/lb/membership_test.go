package lb

import (
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
)

// Address plan: as compile_test.go (frontend 198.18.10.1, instances
// 10.0.0.0/24 mapped to 127.100.0.0/16). No traffic is sent.

// TestMembershipAPIAndDataPlaneAgree: for every state an instance record
// goes through, what the API shows (resource.LBView's pool members and
// generated NAT rules, PoolBackends, PortMappings) and what the compiled
// data-plane Config sends traffic to (rule backends, probe targets, NAT
// pool and NAT rule v2 forwarding, SNAT blocks) name the same instances.
func TestMembershipAPIAndDataPlaneAgree(t *testing.T) {
	lb := testLB()
	pool := resource.ChildID(lbID, "backendAddressPools", "be")
	v2 := resource.ChildID(lbID, "inboundNatRules", "rdp")
	lb.Properties.InboundNatRules = []resource.InboundNatRule{{ID: v2, Name: "rdp", Properties: resource.NatRuleProps{
		FrontendIPConfiguration: &resource.SubResource{ID: resource.ChildID(lbID, "frontendIPConfigurations", "fe")},
		BackendAddressPool:      &resource.SubResource{ID: pool}, Protocol: "Tcp",
		FrontendPortRangeStart: i32(60000), FrontendPortRangeEnd: i32(60100), BackendPort: i32(3389)}}}
	pips := map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")}

	// Instance 0 is always running, so every compile has a pool member;
	// instance 1 is in the state under test.
	tests := []struct {
		name  string
		edit  func(in *resource.Instance)
		pools bool // in its pools (API and data plane)
		rules bool // its generated NAT pool rule exists in the API
	}{
		{name: "creating", edit: func(in *resource.Instance) {
			in.Actual, in.ProvisioningState = "", resource.Creating
		}, rules: true},
		{name: "starting", edit: func(in *resource.Instance) {
			in.Actual = resource.PowerStopped
		}, rules: true},
		{name: "running", edit: func(*resource.Instance) {}, pools: true, rules: true},
		{name: "workload died", edit: func(in *resource.Instance) {
			in.Message = "workload exited: exit status 1"
		}, pools: true, rules: true},
		{name: "stopping", edit: func(in *resource.Instance) {
			in.Power = resource.PowerStopped
		}, rules: true},
		{name: "stopped", edit: func(in *resource.Instance) {
			in.Power, in.Actual = resource.PowerStopped, resource.PowerStopped
		}, rules: true},
		{name: "deallocated", edit: func(in *resource.Instance) {
			in.Power, in.Actual = resource.PowerDeallocated, resource.PowerDeallocated
		}, rules: true},
		{name: "deleting", edit: func(in *resource.Instance) {
			in.Deleting, in.ProvisioningState = true, resource.Deleting
		}},
		{name: "deleting while stopped", edit: func(in *resource.Instance) {
			in.Power, in.Actual, in.Deleting = resource.PowerStopped, resource.PowerStopped, true
		}},
		{name: "no address yet", edit: func(in *resource.Instance) {
			in.PrivateIP, in.ProviderIP = "", ""
		}, rules: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steady := testInstance("0", "10.0.0.4", "127.100.0.4", 50000)
			subject := testInstance("1", "10.0.0.5", "127.100.0.5", 50001)
			steady.NATPorts[resource.NormalizeRefID(v2)] = 60000
			subject.NATPorts[resource.NormalizeRefID(v2)] = 60001
			tt.edit(subject)
			instances := []*resource.Instance{steady, subject}
			cfg := Compile(Snapshot{LoadBalancers: []*resource.LoadBalancer{lb}, PublicIPs: pips, Instances: instances})
			view := resource.LBView(lb, instances)
			ipc := norm(subject.PrimaryIPConfigID())

			// Pools: backendIPConfigurations == every rule's backends ==
			// probe targets == PoolBackends.
			api := normAll(view.PoolMembers[norm(pool)])
			for _, r := range cfg.Rules {
				if got := dataplane.BackendIDs(r.Backends); !slices.Equal(got, api) {
					t.Errorf("rule %s backends %v, API pool members %v", r.ID, got, api)
				}
			}
			for _, p := range cfg.Probes {
				if got := dataplane.BackendIDs(p.Backends); !slices.Equal(got, api) {
					t.Errorf("probe %s targets %v, API pool members %v", p.ID, got, api)
				}
			}
			var pb []string
			for _, b := range resource.PoolBackends([]string{pool}, instances) {
				pb = append(pb, norm(b.IPConfigID))
			}
			if !slices.Equal(pb, api) {
				t.Errorf("PoolBackends %v, LBView %v", pb, api)
			}
			if got := slices.Contains(api, ipc); got != tt.pools {
				t.Errorf("instance in pools = %v, want %v", got, tt.pools)
			}
			if got := resource.InPools(subject); got != tt.pools {
				t.Errorf("InPools = %v, want %v", got, tt.pools)
			}
			var snat []string
			for _, o := range cfg.Outbound {
				snat = append(snat, o.Backend.ID)
			}
			if got := slices.Contains(snat, ipc); got != tt.pools {
				t.Errorf("instance has a SNAT block = %v, want %v", got, tt.pools)
			}

			// NAT pool rules: the data plane forwards exactly the generated
			// rules of the instances in their pools.
			var apiRules, dpRules []string
			for _, r := range view.GeneratedNatRules {
				backend := norm(view.NatRuleBackends[norm(r.ID)])
				if slices.Contains(api, backend) {
					apiRules = append(apiRules, norm(r.ID)+" -> "+backend)
				}
				if backend == ipc && !tt.rules {
					t.Errorf("API lists NAT rule %s of an instance that has none", r.Name)
				}
			}
			if got := slices.ContainsFunc(view.GeneratedNatRules, func(r resource.InboundNatRule) bool {
				return norm(view.NatRuleBackends[norm(r.ID)]) == ipc
			}); got != tt.rules {
				t.Errorf("API lists the instance's NAT pool rule = %v, want %v", got, tt.rules)
			}
			var dpV2 []string
			for _, n := range cfg.NATRules {
				if strings.HasPrefix(n.ID, norm(v2)+"/") {
					dpV2 = append(dpV2, n.Backend.ID+":"+strconv.Itoa(int(n.FrontendPort)))
					continue
				}
				dpRules = append(dpRules, n.ID+" -> "+n.Backend.ID)
			}
			sort.Strings(apiRules)
			sort.Strings(dpRules)
			if !slices.Equal(dpRules, apiRules) {
				t.Errorf("data-plane NAT pool rules %v, API's forwarding ones %v", dpRules, apiRules)
			}

			// NAT rule v2: queryInboundNatRulePortMapping == data-plane
			// mappings.
			var apiV2 []string
			for _, m := range resource.PortMappings(lb, pool, instances) {
				for _, mp := range m.Mappings {
					apiV2 = append(apiV2, norm(m.IPConfigID)+":"+strconv.Itoa(int(mp.FrontendPort)))
				}
			}
			sort.Strings(apiV2)
			sort.Strings(dpV2)
			if !slices.Equal(dpV2, apiV2) {
				t.Errorf("data-plane NAT rule v2 mappings %v, API port mappings %v", dpV2, apiV2)
			}
		})
	}
}

// TestMemberPoolsOnce: a pool the model lists twice (in two spellings) holds
// the instance once, in the API and in the data plane.
func TestMemberPoolsOnce(t *testing.T) {
	in := testInstance("0", "10.0.0.4", "127.100.0.4", 50000)
	_, ipc := resource.PrimaryIPConfig(in.Model)
	ipc.Properties.LoadBalancerBackendAddressPools = append(ipc.Properties.LoadBalancerBackendAddressPools,
		resource.SubResource{ID: strings.ToUpper(resource.ChildID(lbID, "backendAddressPools", "be"))})
	if got := resource.MemberPools(in); len(got) != 1 {
		t.Fatalf("MemberPools = %v, want one pool", got)
	}
	cfg := Compile(Snapshot{LoadBalancers: []*resource.LoadBalancer{testLB()},
		PublicIPs: map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances: []*resource.Instance{in}})
	if len(cfg.Rules[0].Backends) != 1 || len(cfg.Outbound) != 1 {
		t.Fatalf("instance listed twice: backends %v, outbound %v", cfg.Rules[0].Backends, cfg.Outbound)
	}
}

func normAll(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		out = append(out, norm(id))
	}
	sort.Strings(out)
	return out
}
