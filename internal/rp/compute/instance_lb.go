package compute

import (
	"context"
	"fmt"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/rp/network"
)

// Membership is the network.MembershipSource nimbus uses: the scale
// sets and instance records StoreMembership finds, with the model's one
// membership rule applied (resource.InPools, resource.HasNATRules — the
// rule the data-plane compile uses too), so a load balancer's
// backendIPConfigurations, rule health and NAT port mappings list exactly
// the backends that receive traffic: the primary ipconfig of non-deleting
// instances asked to run whose workload has started; stopped and
// deallocated ones keep only their generated NAT pool rules. Safe for
// concurrent use.
type Membership struct{}

var _ network.MembershipSource = Membership{}

// Membership implements network.MembershipSource.
func (Membership) Membership(ctx context.Context, rd arm.Reader, lbID string) (*network.LBMembership, error) {
	m, err := network.StoreMembership{}.Membership(ctx, rd, lbID)
	if err != nil {
		return nil, err
	}
	// One listing per scale set (not one read per member).
	records := map[string]map[string]*resource.Instance{} // lower vmss id -> instance id -> record
	out := m.Members[:0]
	for _, mem := range m.Members {
		lid := strings.ToLower(mem.ScaleSetID)
		byID, ok := records[lid]
		if !ok {
			recs, err := loadInstances(ctx, rd, mem.ScaleSetID)
			if err != nil {
				return nil, fmt.Errorf("arm: membership of %s: %w", lbID, err)
			}
			byID = make(map[string]*resource.Instance, len(recs))
			for _, r := range recs {
				byID[r.in.InstanceID] = r.in
			}
			records[lid] = byID
		}
		in := byID[mem.InstanceID]
		if in == nil || !resource.SameID(mem.IPConfigID, in.PrimaryIPConfigID()) {
			continue
		}
		if !resource.InPools(in) {
			mem.Pools = nil
		}
		if !resource.HasNATRules(in) {
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
