package resource

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// This file holds the one definition of load-balancer membership, and the
// pure functions that turn instance records into what the API shows about
// load balancers: pool membership (backendIPConfigurations), the inbound NAT
// rules generated from NAT pools ({pool}.{instanceId}) and the port mappings
// of NAT rules v2 (queryInboundNatRulePortMapping).
//
// The data plane (internal/controller/lb) reads membership through the same
// functions (InPools, MemberPools, NATPoolPorts), so the API and the data
// plane cannot disagree on who takes traffic. An instance takes part through
// the primary ipconfig of its APPLIED model (Instance.Model), never the
// scale set's current model, so a pool added to the model shows up only on
// upgraded or new instances, as in Azure.
//
// The states of an instance record and what they mean here:
//
//	state          Power        Actual   Deleting  InPools  HasNATRules
//	creating       running      ""       no        no       yes
//	starting       running      stopped  no        no       yes
//	running        running      running  no        yes      yes
//	workload died  running      running  no        yes      yes   (Message says why)
//	stopping       stopped      running  no        no       yes
//	stopped        stopped      stopped  no        no       yes
//	deallocated    deallocated  ...      no        no       yes
//	deleting       any          any      yes       no       no

// InPools is the membership rule: it reports whether an instance takes
// traffic through the load balancers its applied model names. Its primary
// ipconfig is then a member of the backend pools that model lists (what
// backendIPConfigurations, rule health and NAT rule v2 port mappings show,
// and what load-balancing rules, probes, outbound SNAT and NAT rules v2 send
// to), and the NAT rules generated for it from NAT pools forward to it.
//
// An instance is in when it is not being deleted, is asked to run
// (Power running), its workload has started (Actual running) and it has a
// customer address. A record still being created, or starting again after a
// stop, is not yet in its pools, so the first probe never finds a closed port
// and marks a starting instance down; stopped and deallocated instances are
// out, as Azure stops probing and sending to them. An instance whose
// workload died after it started stays in: its health probe takes it out of
// rotation, and automatic repairs replace it. A nil instance is out.
func InPools(in *Instance) bool {
	return in != nil && !in.Deleting && in.Power == PowerRunning && in.Actual == PowerRunning && in.PrivateIP != ""
}

// HasNATRules reports whether the inbound NAT rules generated for an
// instance from NAT pools exist (the API lists them): until it is being
// deleted, whatever its power state, as in Azure. They forward traffic only
// while InPools(in) holds. A nil instance has none.
func HasNATRules(in *Instance) bool { return in != nil && !in.Deleting }

// MemberPools returns the normalized ids of the backend pools the instance
// is a member of: those the primary ipconfig of its applied model lists,
// each once, in the model's order; nil when InPools(in) is false or the
// model has no primary ipconfig. Pools of any load balancer are listed.
func MemberPools(in *Instance) []string {
	if !InPools(in) || in.PrimaryIPConfigID() == "" {
		return nil
	}
	_, ipc := PrimaryIPConfig(in.Model)
	var out []string
	for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
		id := NormalizeRefID(p.ID)
		if !slices.Contains(out, id) {
			out = append(out, id)
		}
	}
	return out
}

// NATPoolPorts returns the frontend port the instance holds in each NAT pool
// the primary ipconfig of its applied model lists, keyed by normalized NAT
// pool id: one generated inbound NAT rule {pool}.{instanceId} each. NAT
// pools it holds no port of yet (Instance.NATPorts) are left out. Nil when
// HasNATRules(in) is false or the model has no primary ipconfig.
func NATPoolPorts(in *Instance) map[string]uint16 {
	if !HasNATRules(in) || in.PrimaryIPConfigID() == "" {
		return nil
	}
	_, ipc := PrimaryIPConfig(in.Model)
	var out map[string]uint16
	for _, ref := range ipc.Properties.LoadBalancerInboundNatPools {
		id := NormalizeRefID(ref.ID)
		if port := in.NATPorts[id]; port != 0 {
			if out == nil {
				out = map[string]uint16{}
			}
			out[id] = port
		}
	}
	return out
}

// LBView computes the instance-level part of a load balancer's rendering
// (Render): for each of lb's backend pools, the ipconfig ids of the
// instances in it (MemberPools); for each NAT pool, one generated inbound
// NAT rule {pool}.{instanceId} per instance holding a port of it
// (NATPoolPorts), carrying the pool's protocol, backend port, frontend,
// idle timeout, floating IP and TCP reset settings; and the backend of each
// generated rule. Instances of any scale set may be passed: only references
// to lb count. The result is deterministic (members and rules sorted). A nil
// lb gives the zero view.
func LBView(lb *LoadBalancer, instances []*Instance) LBInstanceView {
	var view LBInstanceView
	if lb == nil {
		return view
	}
	pools := map[string]bool{}
	for _, bp := range lb.Properties.BackendAddressPools {
		pools[NormalizeRefID(bp.ID)] = true
	}
	for _, in := range sortedInstances(instances) {
		backend := in.PrimaryIPConfigID()
		for _, id := range MemberPools(in) {
			if !pools[id] {
				continue
			}
			if view.PoolMembers == nil {
				view.PoolMembers = map[string][]string{}
			}
			view.PoolMembers[id] = append(view.PoolMembers[id], backend)
		}
		ports := NATPoolPorts(in)
		for i := range lb.Properties.InboundNatPools {
			np := &lb.Properties.InboundNatPools[i]
			port := ports[NormalizeRefID(np.ID)]
			if port == 0 {
				continue
			}
			rule := generatedNatRule(lb, np, in, port, backend)
			view.GeneratedNatRules = append(view.GeneratedNatRules, rule)
			if view.NatRuleBackends == nil {
				view.NatRuleBackends = map[string]string{}
			}
			view.NatRuleBackends[NormalizeRefID(rule.ID)] = backend
		}
	}
	sort.SliceStable(view.GeneratedNatRules, func(i, j int) bool {
		a, b := view.GeneratedNatRules[i].Name, view.GeneratedNatRules[j].Name
		ap, ai, _ := strings.Cut(a, ".")
		bp, bi, _ := strings.Cut(b, ".")
		if !strings.EqualFold(ap, bp) {
			return strings.ToLower(ap) < strings.ToLower(bp)
		}
		return LessInstanceID(ai, bi)
	})
	for id := range view.PoolMembers {
		sort.Strings(view.PoolMembers[id])
	}
	return view
}

// generatedNatRule is the inbound NAT rule Azure generates for instance in
// from NAT pool np: name {pool}.{instanceId}, the pool's settings, the
// instance's frontend port and its ipconfig as backend.
func generatedNatRule(lb *LoadBalancer, np *InboundNatPool, in *Instance, port uint16, backend string) InboundNatRule {
	name := np.Name + "." + in.InstanceID
	fp := int32(port)
	p := np.Properties
	return InboundNatRule{
		ID:   ChildID(lb.ID, CollInboundNatRules, name),
		Name: name,
		Type: InboundNatRuleType,
		Etag: np.Etag,
		Properties: NatRuleProps{
			FrontendIPConfiguration: copyRef(p.FrontendIPConfiguration),
			BackendIPConfiguration:  &SubResource{ID: backend},
			Protocol:                p.Protocol,
			FrontendPort:            &fp,
			BackendPort:             copyInt32(p.BackendPort),
			IdleTimeoutInMinutes:    copyInt32(p.IdleTimeoutInMinutes),
			EnableFloatingIP:        copyBool(p.EnableFloatingIP),
			EnableTCPReset:          copyBool(p.EnableTCPReset),
			ProvisioningState:       Succeeded,
		},
	}
}

// BackendPortMappings is one pool member's NAT rule v2 port mappings, the
// answer of queryInboundNatRulePortMapping for it.
type BackendPortMappings struct {
	// IPConfigID is the member's NIC ipconfig id; PrivateIP its address.
	IPConfigID string
	PrivateIP  string
	// Mappings lists, per v2 NAT rule on the pool, the member's frontend
	// port, sorted by rule name.
	Mappings []NatRulePortMapping
}

// PortMappings returns the NAT rule v2 port mappings of every member of the
// backend pool poolID of lb: for each v2 inbound NAT rule whose
// backendAddressPool is the pool, each instance in the pool (MemberPools)
// that holds a port of the rule (Instance.NATPorts keyed by the rule's
// normalized id) gets {inboundNatRuleName, protocol, frontendPort,
// backendPort}. Members without any mapping are left out. The result is
// sorted by ipconfig id.
func PortMappings(lb *LoadBalancer, poolID string, instances []*Instance) []BackendPortMappings {
	if lb == nil {
		return nil
	}
	pool := NormalizeRefID(poolID)
	var rules []*InboundNatRule
	for i := range lb.Properties.InboundNatRules {
		r := &lb.Properties.InboundNatRules[i]
		if r.IsV2() && r.Properties.BackendAddressPool != nil && NormalizeRefID(r.Properties.BackendAddressPool.ID) == pool {
			rules = append(rules, r)
		}
	}
	sort.Slice(rules, func(i, j int) bool { return strings.ToLower(rules[i].Name) < strings.ToLower(rules[j].Name) })
	var out []BackendPortMappings
	for _, in := range sortedInstances(instances) {
		if !slices.Contains(MemberPools(in), pool) {
			continue
		}
		m := BackendPortMappings{IPConfigID: in.PrimaryIPConfigID(), PrivateIP: in.PrivateIP}
		for _, r := range rules {
			port := in.NATPorts[NormalizeRefID(r.ID)]
			if port == 0 {
				continue
			}
			bp := int32(0)
			if r.Properties.BackendPort != nil {
				bp = *r.Properties.BackendPort
			}
			m.Mappings = append(m.Mappings, NatRulePortMapping{
				InboundNatRuleName: r.Name, Protocol: r.Properties.Protocol, FrontendPort: int32(port), BackendPort: bp,
			})
		}
		if len(m.Mappings) > 0 {
			out = append(out, m)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return NormalizeRefID(out[i].IPConfigID) < NormalizeRefID(out[j].IPConfigID)
	})
	return out
}

// PoolBackend is one instance ipconfig in a backend pool, as the
// load-balancing rule health API lists it.
type PoolBackend struct {
	// IPConfigID is the NIC ipconfig id, PrivateIP its customer address.
	IPConfigID string
	PrivateIP  string
}

// PoolBackends returns the members of the given pools (normalized or not):
// the instances whose MemberPools list one of them, each once, sorted by
// ipconfig id.
func PoolBackends(poolIDs []string, instances []*Instance) []PoolBackend {
	want := map[string]bool{}
	for _, p := range poolIDs {
		want[NormalizeRefID(p)] = true
	}
	var out []PoolBackend
	for _, in := range sortedInstances(instances) {
		for _, p := range MemberPools(in) {
			if want[p] {
				out = append(out, PoolBackend{IPConfigID: in.PrimaryIPConfigID(), PrivateIP: in.PrivateIP})
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return NormalizeRefID(out[i].IPConfigID) < NormalizeRefID(out[j].IPConfigID)
	})
	return out
}

// sortedInstances returns the non-nil instances ordered by scale set id,
// then numeric instance id.
func sortedInstances(instances []*Instance) []*Instance {
	out := make([]*Instance, 0, len(instances))
	for _, in := range instances {
		if in != nil {
			out = append(out, in)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := strings.ToLower(out[i].ScaleSetID), strings.ToLower(out[j].ScaleSetID)
		if a != b {
			return a < b
		}
		return LessInstanceID(out[i].InstanceID, out[j].InstanceID)
	})
	return out
}

func copyRef(r *SubResource) *SubResource {
	if r == nil {
		return nil
	}
	c := *r
	return &c
}

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyBool(p *bool) *bool {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// ApplyModel gives the instance record in a copy of the scale set's
// virtualMachineProfile p as its applied model (manualupgrade, automatic and
// rolling upgrades): Model and ModelHash change, and Generation is bumped
// when what the workload runs (image, customData) changed, so the
// controller restarts it; network membership changes apply in place, as in
// Azure.
func ApplyModel(in *Instance, p *VMProfile) error {
	model, err := CloneProfile(p)
	if err != nil {
		return err
	}
	if workloadChanged(in.Model, model) {
		in.Generation++
	}
	in.Model, in.ModelHash = model, ProfileHash(p)
	return nil
}

// workloadChanged reports whether what an instance runs differs between two
// models: the image or the customData.
func workloadChanged(a, b *VMProfile) bool {
	img := func(p *VMProfile) ImageReference {
		if p == nil || p.StorageProfile == nil || p.StorageProfile.ImageReference == nil {
			return ImageReference{}
		}
		return *p.StorageProfile.ImageReference
	}
	cd := func(p *VMProfile) string {
		if p == nil || p.OSProfile == nil {
			return ""
		}
		return p.OSProfile.CustomData
	}
	return img(a) != img(b) || cd(a) != cd(b)
}

// CloneProfile returns a deep copy of p (nil for nil).
func CloneProfile(p *VMProfile) (*VMProfile, error) {
	if p == nil {
		return nil, nil
	}
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("copy model: %w", err)
	}
	var out VMProfile
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("copy model: %w", err)
	}
	return &out, nil
}

// LessInstanceID orders scale-set instance ids numerically ("2" before
// "10"), falling back to string order for ids that are not numbers.
func LessInstanceID(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr == nil && berr == nil {
		return ai < bi
	}
	return a < b
}
