package network

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// BackendMember is one backend ipconfig of a load balancer: a scale-set
// instance's NIC ipconfig that joins pools of the LB through the instance's
// applied model.
type BackendMember struct {
	// IPConfigID is the NIC ipconfig id
	// ({vmss}/virtualMachines/{n}/networkInterfaces/{nic}/ipConfigurations/{ipc}).
	IPConfigID string
	// IPAddress is the ipconfig's private (customer) address, "" if unknown.
	IPAddress string
	// ScaleSetID and InstanceID name the instance.
	ScaleSetID, InstanceID string
	// Pools and NatPools are the normalized ids (resource.NormalizeRefID) of
	// the LB's backend pools and NAT pools this ipconfig joins.
	Pools, NatPools []string
	// NATPorts maps a normalized NAT pool or NAT rule (v2) id to this
	// member's frontend port.
	NATPorts map[string]uint16
}

// LBMembership is everything instance-level about one load balancer.
type LBMembership struct {
	// Users are the scale-set models and instances that reference the LB
	// (validation input for the "in use by a scale set" rules).
	Users []resource.LBUser
	// Members are the backend ipconfigs, sorted by IPConfigID.
	Members []BackendMember
	// ScaleSets are the stored scale-set models that use the LB, as read;
	// writes of the LB guard them with their revisions.
	ScaleSets []store.KV
}

// MembershipSource answers which scale sets and instances use a load
// balancer. The default reads the scale-set models and the scale-set
// controller's instance records (resource.InstancePrefix) from the store, so
// it is exact whenever the controller has written its records; the compute
// provider passes its own to Register. Implementations must be safe for concurrent use.
type MembershipSource interface {
	// Membership returns the users and backend members of the LB lbID,
	// reading the store through rd.
	Membership(ctx context.Context, rd arm.Reader, lbID string) (*LBMembership, error)
}

// StoreMembership is the default MembershipSource: scale-set models found
// through the reference index or in the LB's resource group, and their
// instance records.
type StoreMembership struct{}

var _ MembershipSource = StoreMembership{}

// Membership implements MembershipSource.
func (StoreMembership) Membership(ctx context.Context, rd arm.Reader, lbID string) (*LBMembership, error) {
	id, err := resource.ParseID(lbID)
	if err != nil {
		return nil, err
	}
	cands := map[string]string{} // lower vmss id → id
	refs, err := arm.Referrers(ctx, rd, lbID, true)
	if err != nil {
		return nil, err
	}
	for _, r := range refs {
		src, err := resource.ParseID(r.Source)
		if err != nil || !strings.EqualFold(src.Top().Type(), resource.VirtualMachineScaleSetType) {
			continue
		}
		cands[strings.ToLower(src.Top().String())] = src.Top().String()
	}
	// Scale sets of the same group: their instances may still use the LB
	// after the model stopped referencing it.
	kvs, err := rd.List(ctx, resource.TypePrefix(id.Subscription, id.ResourceGroup, resource.VirtualMachineScaleSetType))
	if err != nil {
		return nil, fmt.Errorf("arm: membership of %s: %w", lbID, err)
	}
	byKey := map[string]store.KV{}
	for _, kv := range kvs {
		byKey[kv.Key] = kv
		v, err := resource.DecodeScaleSet(kv.Value)
		if err == nil && v.ID != "" {
			cands[strings.ToLower(v.ID)] = v.ID
		}
	}
	names := make([]string, 0, len(cands))
	for k := range cands {
		names = append(names, k)
	}
	sort.Strings(names)
	m := &LBMembership{}
	for _, lower := range names {
		vid, err := resource.ParseID(cands[lower])
		if err != nil {
			continue
		}
		key := resource.Key(vid)
		kv, ok := byKey[key]
		if !ok {
			if kv, err = rd.Get(ctx, key); err != nil {
				if arm.IsNotFound(err) {
					continue
				}
				return nil, err
			}
		}
		v, err := resource.DecodeScaleSet(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("arm: decode scale set %s: %w", key, err)
		}
		if u := v.Uses(); u.UsesLB(lbID) {
			m.Users = append(m.Users, u)
			m.ScaleSets = append(m.ScaleSets, kv)
		}
		if err := addInstances(ctx, rd, m, v.ID, lbID); err != nil {
			return nil, err
		}
	}
	sort.Slice(m.Members, func(i, j int) bool { return m.Members[i].IPConfigID < m.Members[j].IPConfigID })
	return m, nil
}

// addInstances adds the instances of scale set vmssID whose applied model
// uses the LB lbID.
func addInstances(ctx context.Context, rd arm.Reader, m *LBMembership, vmssID, lbID string) error {
	kvs, err := rd.List(ctx, resource.InstancesPrefix(vmssID))
	if err != nil {
		return fmt.Errorf("arm: instances of %s: %w", vmssID, err)
	}
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil || in.InstanceID == "" || in.Model == nil {
			continue
		}
		probe := ""
		if np := in.Model.NetworkProfile; np != nil && np.HealthProbe != nil {
			probe = np.HealthProbe.ID
		}
		u := resource.LBUser{ScaleSetID: vmssID, HealthProbe: probe}
		_, primary := resource.PrimaryIPConfig(in.Model)
		if np := in.Model.NetworkProfile; np != nil {
			for _, nic := range np.NetworkInterfaceConfigurations {
				for i := range nic.Properties.IPConfigurations {
					ipc := &nic.Properties.IPConfigurations[i]
					mem := BackendMember{
						IPConfigID: in.ID() + "/networkInterfaces/" + nic.Name + "/ipConfigurations/" + ipc.Name,
						ScaleSetID: vmssID, InstanceID: in.InstanceID, NATPorts: map[string]uint16{},
					}
					if primary == ipc {
						mem.IPAddress = in.PrivateIP
					}
					for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
						u.Pools = append(u.Pools, p.ID)
						if l, _, _, ok := resource.ParseLBChildID(p.ID); ok && resource.SameID(l, lbID) {
							mem.Pools = append(mem.Pools, resource.NormalizeRefID(p.ID))
						}
					}
					for _, p := range ipc.Properties.LoadBalancerInboundNatPools {
						u.NatPools = append(u.NatPools, p.ID)
						if l, _, _, ok := resource.ParseLBChildID(p.ID); ok && resource.SameID(l, lbID) {
							mem.NatPools = append(mem.NatPools, resource.NormalizeRefID(p.ID))
						}
					}
					for k, port := range in.NATPorts {
						mem.NATPorts[resource.NormalizeRefID(k)] = port
					}
					if !in.Deleting && (len(mem.Pools) > 0 || len(mem.NatPools) > 0) {
						m.Members = append(m.Members, mem)
					}
				}
			}
		}
		if u.UsesLB(lbID) {
			m.Users = append(m.Users, u)
		}
	}
	return nil
}

// instanceView turns a membership into what a rendered LB shows: pool
// members and the per-instance NAT rules generated from NAT pools
// ({pool}.{instanceId}).
func instanceView(lb *resource.LoadBalancer, m *LBMembership) resource.LBInstanceView {
	v := resource.LBInstanceView{PoolMembers: map[string][]string{}}
	pools := map[string]*resource.InboundNatPool{}
	for i := range lb.Properties.InboundNatPools {
		pools[resource.NormalizeRefID(lb.Properties.InboundNatPools[i].ID)] = &lb.Properties.InboundNatPools[i]
	}
	for _, mem := range m.Members {
		for _, p := range mem.Pools {
			v.PoolMembers[p] = append(v.PoolMembers[p], mem.IPConfigID)
		}
		for _, np := range mem.NatPools {
			pool := pools[np]
			port, ok := mem.NATPorts[np]
			if pool == nil || !ok {
				continue
			}
			name := pool.Name + "." + mem.InstanceID
			pp := pool.Properties
			fp, bp := int32(port), *pp.BackendPort
			v.GeneratedNatRules = append(v.GeneratedNatRules, resource.InboundNatRule{
				ID: resource.ChildID(lb.ID, resource.CollInboundNatRules, name), Name: name,
				Type: resource.InboundNatRuleType, Etag: pool.Etag,
				Properties: resource.NatRuleProps{
					FrontendIPConfiguration: pp.FrontendIPConfiguration, BackendIPConfiguration: &resource.SubResource{ID: mem.IPConfigID},
					Protocol: pp.Protocol, FrontendPort: &fp, BackendPort: &bp, IdleTimeoutInMinutes: pp.IdleTimeoutInMinutes,
					EnableFloatingIP: pp.EnableFloatingIP, EnableTCPReset: pp.EnableTCPReset, ProvisioningState: resource.Succeeded,
				},
			})
		}
	}
	return v
}

// dropGeneratedNatRules removes from a requested LB the NAT rules generated
// from its NAT pools ({pool}.{n}) that clients echo back after a GET; they
// are not client-owned and are re-rendered on read.
func dropGeneratedNatRules(lb, prev *resource.LoadBalancer) {
	if len(lb.Properties.InboundNatPools) == 0 || lb.Properties.InboundNatRules == nil {
		return
	}
	stored := map[string]bool{}
	if prev != nil {
		for _, r := range prev.Properties.InboundNatRules {
			stored[strings.ToLower(r.Name)] = true
		}
	}
	out := lb.Properties.InboundNatRules[:0]
	for _, r := range lb.Properties.InboundNatRules {
		if !stored[strings.ToLower(r.Name)] && generatedName(r.Name, lb.Properties.InboundNatPools) {
			continue
		}
		out = append(out, r)
	}
	lb.Properties.InboundNatRules = out
}

func generatedName(name string, pools []resource.InboundNatPool) bool {
	for _, p := range pools {
		rest, ok := strings.CutPrefix(strings.ToLower(name), strings.ToLower(p.Name)+".")
		if ok && rest != "" && strings.Trim(rest, "0123456789") == "" {
			return true
		}
	}
	return false
}
