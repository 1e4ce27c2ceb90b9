package arm

import (
	"context"
	"fmt"

	"nimbus/internal/controller/vmss"
	"nimbus/internal/resource"
)

// instanceMembership is the MembershipSource the server uses: the scale
// sets and instance records StoreMembership finds, with the data plane's
// rules applied (vmss.InPools, vmss.HasNATRules), so a load balancer's
// backendIPConfigurations, rule health and NAT port mappings list exactly
// the backends that receive traffic: the primary ipconfig of running,
// non-deleting instances; stopped and deallocated ones keep only their
// generated NAT pool rules. Safe for concurrent use.
type instanceMembership struct{}

var _ MembershipSource = instanceMembership{}

// Membership implements MembershipSource.
func (instanceMembership) Membership(ctx context.Context, rd Reader, lbID string) (*LBMembership, error) {
	m, err := StoreMembership{}.Membership(ctx, rd, lbID)
	if err != nil {
		return nil, err
	}
	cache := map[string]*resource.Instance{}
	out := m.Members[:0]
	for _, mem := range m.Members {
		key := resource.InstanceKey(mem.ScaleSetID, mem.InstanceID)
		in, ok := cache[key]
		if !ok {
			kv, err := rd.Get(ctx, key)
			if notFound(err) {
				cache[key] = nil
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("arm: membership of %s: %w", lbID, err)
			}
			if in, err = resource.DecodeInstance(kv.Value); err != nil {
				return nil, fmt.Errorf("arm: decode instance %s: %w", key, err)
			}
			cache[key] = in
		}
		if in == nil || !resource.SameID(mem.IPConfigID, in.PrimaryIPConfigID()) {
			continue
		}
		if !vmss.InPools(in) {
			mem.Pools = nil
		}
		if !vmss.HasNATRules(in) {
			mem.NatPools = nil
		}
		if len(mem.Pools) == 0 && len(mem.NatPools) == 0 {
			continue
		}
		mem.IPAddress = in.PrivateIP
		out = append(out, mem)
	}
	m.Members = out
	return m, nil
}
