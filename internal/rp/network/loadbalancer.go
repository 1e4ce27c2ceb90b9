package network

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// lbModel is the Model of Microsoft.Network/loadBalancers: the LB with every
// child stored inline as one value; read-only back-references are computed
// at read time (resource.Render) from the LB and its membership.
type lbModel struct{ s *server }

var _ arm.Model = lbModel{}

// registerLoadbalancer registers the routes of loadbalancer.go.
func registerLoadbalancer(s *server) {
	var children []string // the provider metadata's child types: the served collections
	for _, c := range resource.LBChildren {
		if c.API() != resource.ChildNoAPI {
			children = append(children, c.Name())
		}
	}
	k := &arm.Kind{Type: resource.LoadBalancerType, Versions: Versions, Model: lbModel{s}, CheckName: networkName,
		Children: append(children, "networkInterfaces")}
	s.RegisterPagedLists(k)
	s.RegisterKind(k)
	registerLBChildren(s, k)
}

// New returns an empty load balancer to decode into.
func (lbModel) New() arm.Object { return &resource.LoadBalancer{} }

// Prepare normalizes and validates the LB against the stored one and the
// resources it references, allocates private frontend addresses, assigns
// child etags and guards the scale sets it read.
func (m lbModel) Prepare(ctx context.Context, tx *arm.Tx, obj, old arm.Object) error {
	lb := obj.(*resource.LoadBalancer)
	var prev *resource.LoadBalancer
	if old != nil {
		prev = old.(*resource.LoadBalancer)
	}
	// Azure: a PUT without inboundNatRules keeps the existing ones.
	if lb.Properties.InboundNatRules == nil && prev != nil {
		lb.Properties.InboundNatRules = append([]resource.InboundNatRule(nil), prev.Properties.InboundNatRules...)
	}
	if err := resource.NormalizeLoadBalancer(lb, lb.ID, lb.Name); err != nil {
		return err
	}
	dropDataplaneErrors(lb)
	dropGeneratedNatRules(lb, prev)
	mem, err := m.s.members.Membership(ctx, tx, lb.ID)
	if err != nil {
		return err
	}
	lctx, err := lbContext(ctx, tx, lb, mem.Users)
	if err != nil {
		return err
	}
	if err := resource.ValidateLoadBalancer(lb, prev, lctx); err != nil {
		return err
	}
	if err := allocateFrontends(ctx, tx, lb, prev, lctx); err != nil {
		return err
	}
	resource.AssignEtags(lb, prev, resource.NewEtag)
	arm.GuardRead(tx, mem.ScaleSets)
	m.waitApplied(tx, lb.ID)
	return nil
}

// References lists the public IPs, prefixes and subnets the frontends use.
func (lbModel) References(obj arm.Object) []resource.Ref {
	lb := obj.(*resource.LoadBalancer)
	var out []resource.Ref
	for _, f := range lb.Properties.FrontendIPConfigurations {
		for _, r := range []*resource.SubResource{f.Properties.PublicIPAddress, f.Properties.PublicIPPrefix, f.Properties.Subnet} {
			if r != nil && r.ID != "" {
				out = append(out, resource.Ref{Source: f.ID, Target: r.ID})
			}
		}
	}
	return out
}

// Release refuses to delete an LB a scale set uses and frees its private
// frontend addresses.
func (m lbModel) Release(ctx context.Context, tx *arm.Tx, obj arm.Object) error {
	lb := obj.(*resource.LoadBalancer)
	mem, err := m.s.members.Membership(ctx, tx, lb.ID)
	if err != nil {
		return err
	}
	if err := resource.ValidateLoadBalancerDelete(lb.ID, mem.Users); err != nil {
		return err
	}
	arm.GuardRead(tx, mem.ScaleSets)
	return allocateFrontends(ctx, tx, &resource.LoadBalancer{}, lb, &resource.LBContext{})
}

// Render fills the read-only back-references.
func (m lbModel) Render(ctx context.Context, rd arm.Reader, obj arm.Object) error {
	lb := obj.(*resource.LoadBalancer)
	mem, err := m.s.members.Membership(ctx, rd, lb.ID)
	if err != nil {
		return err
	}
	resource.Render(lb, instanceView(lb, mem))
	m.s.renderDataplaneErrors(lb)
	return nil
}

// pipDoc is the part of a stored public IP that LB validation reads.
type pipDoc struct {
	SKU *struct {
		Name string `json:"name"`
	} `json:"sku"`
}

// lbContext reads what LB validation needs: the public IPs, prefixes and
// subnets its frontends reference.
func lbContext(ctx context.Context, rd arm.Reader, lb *resource.LoadBalancer, users []resource.LBUser) (*resource.LBContext, error) {
	c := &resource.LBContext{PublicIPs: map[string]resource.PublicIPFacts{}, PublicIPPrefixes: map[string]bool{},
		Subnets: map[string]resource.SubnetFacts{}, Users: users}
	for _, f := range lb.Properties.FrontendIPConfigurations {
		fp := f.Properties
		if fp.PublicIPAddress != nil {
			facts, ok, err := readPublicIP(ctx, rd, fp.PublicIPAddress.ID, lb.ID)
			if err != nil {
				return nil, err
			}
			if ok {
				c.PublicIPs[resource.NormalizeRefID(fp.PublicIPAddress.ID)] = facts
			}
		}
		if fp.PublicIPPrefix != nil {
			if _, ok, err := arm.ReadTop(ctx, rd, fp.PublicIPPrefix.ID); err != nil {
				return nil, err
			} else if ok {
				c.PublicIPPrefixes[resource.NormalizeRefID(fp.PublicIPPrefix.ID)] = true
			}
		}
		if fp.Subnet != nil {
			if err := ReadSubnet(ctx, rd, fp.Subnet.ID, c.Subnets); err != nil {
				return nil, err
			}
		}
	}
	return c, nil
}

// readPublicIP returns the facts about a public IP: its sku and which
// ipconfig other than lbID's frontends holds it.
func readPublicIP(ctx context.Context, rd arm.Reader, id, lbID string) (resource.PublicIPFacts, bool, error) {
	kv, ok, err := arm.ReadTop(ctx, rd, id)
	if err != nil || !ok {
		return resource.PublicIPFacts{}, false, err
	}
	var d pipDoc
	if err := json.Unmarshal(kv.Value, &d); err != nil {
		return resource.PublicIPFacts{}, false, fmt.Errorf("arm: decode public IP %s: %w", id, err)
	}
	facts := resource.PublicIPFacts{SKU: resource.LBSkuBasic}
	if d.SKU != nil && d.SKU.Name != "" {
		facts.SKU = d.SKU.Name
	}
	refs, err := arm.Referrers(ctx, rd, id, false)
	if err != nil {
		return resource.PublicIPFacts{}, false, err
	}
	for _, r := range refs {
		if l, _, _, isLB := resource.ParseLBChildID(r.Source); isLB && resource.SameID(l, lbID) {
			continue
		}
		facts.UsedBy = r.Source
	}
	return facts, true, nil
}

// ReadSubnet adds the subnet id (if it exists) to out.
func ReadSubnet(ctx context.Context, rd arm.Reader, id string, out map[string]resource.SubnetFacts) error {
	sid, err := resource.ParseID(id)
	if err != nil || len(sid.Types) != 2 || !strings.EqualFold(sid.Type(), resource.LoadBalancerSubnetType) {
		return nil
	}
	kv, ok, err := arm.ReadTop(ctx, rd, id)
	if err != nil || !ok {
		return err
	}
	var v resource.VirtualNetwork
	if err := json.Unmarshal(kv.Value, &v); err != nil {
		return fmt.Errorf("arm: decode virtual network %s: %w", sid.Top(), err)
	}
	if sn := v.Subnet(sid.Names[1]); sn != nil {
		var f resource.SubnetFacts
		for _, p := range sn.ParsedPrefixes() {
			f.Prefixes = append(f.Prefixes, p.Masked())
		}
		out[resource.NormalizeRefID(id)] = f
	}
	return nil
}

// privateKey returns the IPAM key of a private address in a subnet.
func privateKey(subnetID, addr string) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return ipam.PrivateKey(subnetID, a)
	}
	return ipam.SubnetPrefix(subnetID) + addr
}

// allocateFrontends gives internal frontends their private address: the
// stored one when the frontend keeps its subnet, the requested one for
// Static, else the lowest free host of the subnet (Azure reserves the first
// four and the last address). Addresses of frontends that went away are
// released. Allocations are IPAM keys written in the same transaction.
func allocateFrontends(ctx context.Context, tx *arm.Tx, lb, prev *resource.LoadBalancer, c *resource.LBContext) error {
	held := map[string]bool{} // ipam keys lb keeps
	for i := range lb.Properties.FrontendIPConfigurations {
		f := &lb.Properties.FrontendIPConfigurations[i]
		fp := &f.Properties
		if fp.Subnet == nil {
			continue
		}
		var was *resource.FrontendIPConfiguration
		if prev != nil {
			if w := prev.Frontend(f.ID); w != nil && w.Properties.Subnet != nil && resource.SameID(w.Properties.Subnet.ID, fp.Subnet.ID) {
				was = w
			}
		}
		if fp.PrivateIPAllocationMethod == "Dynamic" {
			if was != nil && was.Properties.PrivateIPAddress != "" {
				fp.PrivateIPAddress = was.Properties.PrivateIPAddress
				held[privateKey(fp.Subnet.ID, fp.PrivateIPAddress)] = true
				continue
			}
			addr, err := freeAddress(ctx, tx, fp.Subnet.ID, c.Subnets[resource.NormalizeRefID(fp.Subnet.ID)])
			if err != nil {
				return err
			}
			fp.PrivateIPAddress = addr
		}
		key := privateKey(fp.Subnet.ID, fp.PrivateIPAddress)
		held[key] = true
		kv, err := tx.Get(ctx, key)
		switch {
		case arm.IsNotFound(err):
			tx.Put(key, []byte(f.ID), store.MustNotExist)
		case err != nil:
			return err
		case !resource.SameID(string(kv.Value), f.ID):
			if l, _, _, ok := resource.ParseLBChildID(string(kv.Value)); !ok || !resource.SameID(l, lb.ID) || lb.Frontend(string(kv.Value)) != nil {
				e := resource.InvalidParameter(fmt.Sprintf("properties.frontendIPConfigurations[%d].properties.privateIPAddress", i),
					"Private static IP address %s is already in use by %s.", fp.PrivateIPAddress, string(kv.Value))
				e.Code = "PrivateIPAddressInUse"
				return e
			}
			tx.Put(key, []byte(f.ID), kv.Revision)
		}
	}
	if prev == nil {
		return nil
	}
	for _, f := range prev.Properties.FrontendIPConfigurations {
		fp := f.Properties
		if fp.Subnet == nil || fp.PrivateIPAddress == "" {
			continue
		}
		key := privateKey(fp.Subnet.ID, fp.PrivateIPAddress)
		if held[key] {
			continue
		}
		kv, err := tx.Get(ctx, key)
		if arm.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if resource.SameID(string(kv.Value), f.ID) {
			tx.Delete(key, kv.Revision)
		}
	}
	return nil
}

// freeAddress returns the lowest free IPv4 host address of the subnet.
func freeAddress(ctx context.Context, tx *arm.Tx, subnetID string, sn resource.SubnetFacts) (string, error) {
	prefix := privateKey(subnetID, "")
	kvs, err := tx.List(ctx, prefix)
	if err != nil {
		return "", err
	}
	taken := map[string]bool{}
	for _, kv := range kvs {
		taken[kv.Key[len(prefix):]] = true
	}
	for _, p := range sn.Prefixes {
		if !p.Addr().Is4() || p.Bits() > 29 {
			continue
		}
		first := p.Addr()
		for range 4 {
			first = first.Next()
		}
		size := uint64(1) << (32 - p.Bits())
		n := uint64(0)
		for a := first; p.Contains(a) && n < size-5; a, n = a.Next(), n+1 {
			if !taken[a.String()] {
				return a.String(), nil
			}
		}
	}
	return "", resource.BadRequest("SubnetIsFull", "Subnet %s has no free private IP address left.", subnetID)
}

// lbKind returns the registered LB kind.
func (s *server) lbKind() *arm.Kind { return s.Kind(resource.LoadBalancerType) }

// lbID returns the LB id named by the request's {sub}, {rg}, {name}.
func lbIDOf(r *arm.Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), resource.LoadBalancerType, r.Param("name"))
}

// loadLB reads and renders the LB of the request.
func (s *server) loadLB(ctx context.Context, r *arm.Request) (*resource.LoadBalancer, error) {
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, s.lbKind(), lbIDOf(r))
	if err != nil {
		return nil, err
	}
	if obj, err = s.Render(ctx, s.lbKind(), obj); err != nil {
		return nil, err
	}
	return obj.(*resource.LoadBalancer), nil
}
