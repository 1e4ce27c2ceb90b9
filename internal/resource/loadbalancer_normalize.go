package resource

import (
	"fmt"
	"sort"
	"strings"
)

// Azure's defaults for LB properties (azure-behavior.md §1.5–§1.9).
const (
	DefaultIdleTimeoutMinutes = 4
	DefaultProbeInterval      = 15
	DefaultNumberOfProbes     = 2
	DefaultProbeThreshold     = 1
)

func i32(v int32) *int32 { return &v }
func bptr(v bool) *bool  { return &v }

// canonEnum returns the allowed value equal to v ignoring case, or a
// RuleError naming field. An empty v returns def.
func canonEnum(field, v, def string, allowed ...string) (string, error) {
	if v == "" {
		return def, nil
	}
	for _, a := range allowed {
		if strings.EqualFold(a, v) {
			return a, nil
		}
	}
	return "", ruleErr(CodeInvalidParameter, field, "Value '%s' of property %s is not valid; allowed values: %s.",
		v, field, strings.Join(allowed, ", "))
}

// NormalizeLoadBalancer prepares a requested LB for validation and storage:
// sets id, name, type and every child's id and type from lbID (the canonical
// id from the request path), puts enum values in Azure's canonical case
// (accepting any case), fills Azure's defaults, and clears read-only fields a
// client may echo back (back-references, provisioning states). It fails with
// a *RuleError naming the field for an unknown enum value.
func NormalizeLoadBalancer(lb *LoadBalancer, lbID, name string) error {
	lb.ID, lb.Name, lb.Type = lbID, name, LoadBalancerType
	if lb.SKU == nil {
		lb.SKU = &LoadBalancerSKU{}
	}
	var err error
	// Azure's API default is Basic, as for public IPs: a load balancer and a
	// public IP both created without a SKU match.
	if lb.SKU.Name, err = canonEnum("sku.name", lb.SKU.Name, LBSkuBasic, LBSkuBasic, LBSkuStandard, LBSkuGateway); err != nil {
		return err
	}
	if lb.SKU.Tier, err = canonEnum("sku.tier", lb.SKU.Tier, LBTierRegion, LBTierRegion, LBTierGlobal); err != nil {
		return err
	}
	lb.Properties.ProvisioningState = ""
	for _, c := range LBChildren {
		if err := c.normalizeAll(lb, lbID); err != nil {
			return err
		}
	}
	return nil
}

// The per-child normalizers of LBChildren: each gets the JSON path prefix
// of the child's properties for error messages (pref,
// "properties.probes[0].properties." or, for a child PUT body,
// "properties.") after the table set the id and type and cleared
// provisioningState.

// canonProtocol is canonEnum for a rule's transport protocol (no default).
func canonProtocol(field, v string) (string, error) {
	return canonEnum(field, v, "", "Tcp", "Udp", "All")
}

// defaultI32 and defaultBool set *p to v when the client left it out.
func defaultI32(p **int32, v int32) {
	if *p == nil {
		*p = i32(v)
	}
}

func defaultBool(p **bool, v bool) {
	if *p == nil {
		*p = bptr(v)
	}
}

func normFrontend(pref string, f *FrontendIPConfiguration) error {
	fp := &f.Properties
	fp.LoadBalancingRules, fp.InboundNatRules, fp.InboundNatPools, fp.OutboundRules = nil, nil, nil, nil
	if fp.Subnet == nil {
		fp.PrivateIPAddress, fp.PrivateIPAllocationMethod, fp.PrivateIPAddressVersion = "", "", ""
		return nil
	}
	def := "Dynamic"
	if fp.PrivateIPAddress != "" {
		def = "Static"
	}
	var err error
	if fp.PrivateIPAllocationMethod, err = canonEnum(pref+"privateIPAllocationMethod", fp.PrivateIPAllocationMethod, def, "Static", "Dynamic"); err != nil {
		return err
	}
	if fp.PrivateIPAddressVersion, err = canonEnum(pref+"privateIPAddressVersion", fp.PrivateIPAddressVersion, "IPv4", "IPv4", "IPv6"); err != nil {
		return err
	}
	return nil
}

// NormalizeBackendPool normalizes one backend pool as NormalizeLoadBalancer
// does; field is the JSON path of the pool for error messages ("" for a
// child PUT body).
func NormalizeBackendPool(lbID, field string, bp *BackendAddressPool) error {
	return LBBackendAddressPools.Normalize(lbID, field, bp)
}

func normPool(pref string, bp *BackendAddressPool) error {
	pp := &bp.Properties
	pp.BackendIPConfigurations, pp.LoadBalancingRules, pp.OutboundRule, pp.OutboundRules, pp.InboundNatRules = nil, nil, nil, nil, nil
	var err error
	if pp.SyncMode, err = canonEnum(pref+"syncMode", pp.SyncMode, "", "Automatic", "Manual"); err != nil {
		return err
	}
	for j := range pp.LoadBalancerBackendAddresses {
		a := &pp.LoadBalancerBackendAddresses[j].Properties
		a.NetworkInterfaceIPConfiguration, a.InboundNatRulesPortMapping = nil, nil
		if a.AdminState, err = canonEnum(fmt.Sprintf("%sloadBalancerBackendAddresses[%d].properties.adminState", pref, j),
			a.AdminState, "", "None", "Up", "Down"); err != nil {
			return err
		}
	}
	for j := range pp.TunnelInterfaces {
		t := &pp.TunnelInterfaces[j]
		if t.Protocol, err = canonEnum(fmt.Sprintf("%stunnelInterfaces[%d].protocol", pref, j), t.Protocol, "", "None", "Native", "VXLAN"); err != nil {
			return err
		}
		if t.Type, err = canonEnum(fmt.Sprintf("%stunnelInterfaces[%d].type", pref, j), t.Type, "", "None", "Internal", "External"); err != nil {
			return err
		}
	}
	return nil
}

func joinField(prefix, rest string) string {
	if prefix == "" {
		return rest
	}
	return prefix + "." + rest
}

func normRule(pref string, r *LoadBalancingRule) error {
	rp := &r.Properties
	var err error
	if rp.Protocol, err = canonProtocol(pref+"protocol", rp.Protocol); err != nil {
		return err
	}
	if rp.LoadDistribution, err = canonEnum(pref+"loadDistribution", rp.LoadDistribution, "Default", "Default", "SourceIP", "SourceIPProtocol"); err != nil {
		return err
	}
	// backendAddressPool and backendAddressPools describe the same thing.
	if rp.BackendAddressPool == nil && len(rp.BackendAddressPools) > 0 {
		rp.BackendAddressPool = &SubResource{ID: rp.BackendAddressPools[0].ID}
	}
	if rp.BackendAddressPool != nil && len(rp.BackendAddressPools) == 0 {
		rp.BackendAddressPools = []SubResource{{ID: rp.BackendAddressPool.ID}}
	}
	if rp.BackendPort == nil && rp.FrontendPort != nil {
		rp.BackendPort = i32(*rp.FrontendPort)
	}
	defaultI32(&rp.IdleTimeoutInMinutes, DefaultIdleTimeoutMinutes)
	defaultBool(&rp.EnableFloatingIP, false)
	defaultBool(&rp.EnableTCPReset, false)
	defaultBool(&rp.DisableOutboundSnat, false)
	defaultBool(&rp.EnableConnectionTracking, false)
	return nil
}

func normProbe(pref string, pr *Probe) error {
	pp := &pr.Properties
	pp.LoadBalancingRules = nil
	var err error
	if pp.Protocol, err = canonEnum(pref+"protocol", pp.Protocol, "", "Tcp", "Http", "Https"); err != nil {
		return err
	}
	if pp.NoHealthyBackendsBehavior, err = canonEnum(pref+"noHealthyBackendsBehavior", pp.NoHealthyBackendsBehavior, "", "AllProbedDown", "AllProbedUp"); err != nil {
		return err
	}
	defaultI32(&pp.IntervalInSeconds, DefaultProbeInterval)
	defaultI32(&pp.NumberOfProbes, DefaultNumberOfProbes)
	defaultI32(&pp.ProbeThreshold, DefaultProbeThreshold)
	return nil
}

// NormalizeInboundNatRule normalizes one NAT rule as NormalizeLoadBalancer
// does; field is its JSON path ("" for a child PUT body).
func NormalizeInboundNatRule(lbID, field string, r *InboundNatRule) error {
	return LBInboundNatRules.Normalize(lbID, field, r)
}

func normNatRule(pref string, r *InboundNatRule) error {
	rp := &r.Properties
	rp.BackendIPConfiguration = nil
	var err error
	if rp.Protocol, err = canonProtocol(pref+"protocol", rp.Protocol); err != nil {
		return err
	}
	defaultI32(&rp.IdleTimeoutInMinutes, DefaultIdleTimeoutMinutes)
	defaultBool(&rp.EnableFloatingIP, false)
	defaultBool(&rp.EnableTCPReset, false)
	return nil
}

func normNatPool(pref string, np *InboundNatPool) error {
	pp := &np.Properties
	var err error
	if pp.Protocol, err = canonProtocol(pref+"protocol", pp.Protocol); err != nil {
		return err
	}
	defaultI32(&pp.IdleTimeoutInMinutes, DefaultIdleTimeoutMinutes)
	defaultBool(&pp.EnableFloatingIP, false)
	defaultBool(&pp.EnableTCPReset, false)
	return nil
}

func normOutbound(pref string, o *OutboundRule) error {
	op := &o.Properties
	var err error
	if op.Protocol, err = canonProtocol(pref+"protocol", op.Protocol); err != nil {
		return err
	}
	defaultI32(&op.IdleTimeoutInMinutes, DefaultIdleTimeoutMinutes)
	defaultBool(&op.EnableTCPReset, false)
	defaultI32(&op.AllocatedOutboundPorts, 0)
	return nil
}

// The same* functions are LBChildren's equality tests: equal children are
// "unchanged" (they keep their etag; not a modification for the VMSS
// health-probe rule). Read-only fields are ignored, reference ids compared
// case-insensitively, nil and empty lists equal.
//
// The same* functions compare without allocating: they run for every
// child of every LB write.

func eqRef(a, b *SubResource) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return SameID(a.ID, b.ID)
}

func eqRefs(a, b []SubResource) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !SameID(a[i].ID, b[i].ID) {
			return false
		}
	}
	return true
}

func eqPtr[T comparable](a, b *T) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func sameRule(x, y *LoadBalancingRule) bool {
	a, b := &x.Properties, &y.Properties
	return strings.EqualFold(x.Name, y.Name) && eqRef(a.FrontendIPConfiguration, b.FrontendIPConfiguration) &&
		eqRef(a.BackendAddressPool, b.BackendAddressPool) && eqRefs(a.BackendAddressPools, b.BackendAddressPools) &&
		eqRef(a.Probe, b.Probe) && a.Protocol == b.Protocol && a.LoadDistribution == b.LoadDistribution &&
		eqPtr(a.FrontendPort, b.FrontendPort) && eqPtr(a.BackendPort, b.BackendPort) && eqPtr(a.IdleTimeoutInMinutes, b.IdleTimeoutInMinutes) &&
		eqPtr(a.EnableFloatingIP, b.EnableFloatingIP) && eqPtr(a.EnableTCPReset, b.EnableTCPReset) &&
		eqPtr(a.DisableOutboundSnat, b.DisableOutboundSnat) && eqPtr(a.EnableConnectionTracking, b.EnableConnectionTracking)
}

func sameProbe(x, y *Probe) bool {
	a, b := &x.Properties, &y.Properties
	return strings.EqualFold(x.Name, y.Name) && a.Protocol == b.Protocol && eqPtr(a.Port, b.Port) &&
		eqPtr(a.IntervalInSeconds, b.IntervalInSeconds) && eqPtr(a.NumberOfProbes, b.NumberOfProbes) &&
		eqPtr(a.ProbeThreshold, b.ProbeThreshold) && a.RequestPath == b.RequestPath && a.NoHealthyBackendsBehavior == b.NoHealthyBackendsBehavior
}

func sameNatRule(x, y *InboundNatRule) bool {
	a, b := &x.Properties, &y.Properties
	return strings.EqualFold(x.Name, y.Name) && eqRef(a.FrontendIPConfiguration, b.FrontendIPConfiguration) && a.Protocol == b.Protocol &&
		eqPtr(a.FrontendPort, b.FrontendPort) && eqPtr(a.BackendPort, b.BackendPort) && eqPtr(a.IdleTimeoutInMinutes, b.IdleTimeoutInMinutes) &&
		eqPtr(a.EnableFloatingIP, b.EnableFloatingIP) && eqPtr(a.EnableTCPReset, b.EnableTCPReset) &&
		eqPtr(a.FrontendPortRangeStart, b.FrontendPortRangeStart) && eqPtr(a.FrontendPortRangeEnd, b.FrontendPortRangeEnd) &&
		eqRef(a.BackendAddressPool, b.BackendAddressPool)
}

func sameNatPool(x, y *InboundNatPool) bool {
	a, b := &x.Properties, &y.Properties
	return strings.EqualFold(x.Name, y.Name) && eqRef(a.FrontendIPConfiguration, b.FrontendIPConfiguration) && a.Protocol == b.Protocol &&
		eqPtr(a.FrontendPortRangeStart, b.FrontendPortRangeStart) && eqPtr(a.FrontendPortRangeEnd, b.FrontendPortRangeEnd) &&
		eqPtr(a.BackendPort, b.BackendPort) && eqPtr(a.IdleTimeoutInMinutes, b.IdleTimeoutInMinutes) &&
		eqPtr(a.EnableFloatingIP, b.EnableFloatingIP) && eqPtr(a.EnableTCPReset, b.EnableTCPReset)
}

func sameOutbound(x, y *OutboundRule) bool {
	a, b := &x.Properties, &y.Properties
	return strings.EqualFold(x.Name, y.Name) && eqPtr(a.AllocatedOutboundPorts, b.AllocatedOutboundPorts) &&
		eqRefs(a.FrontendIPConfigurations, b.FrontendIPConfigurations) && eqRef(a.BackendAddressPool, b.BackendAddressPool) &&
		a.Protocol == b.Protocol && eqPtr(a.EnableTCPReset, b.EnableTCPReset) && eqPtr(a.IdleTimeoutInMinutes, b.IdleTimeoutInMinutes)
}

func cleanRef(r *SubResource) *SubResource {
	if r == nil {
		return nil
	}
	return &SubResource{ID: NormalizeRefID(r.ID)}
}

func cleanFrontend(f FrontendIPConfiguration) FrontendIPConfiguration {
	p := f.Properties
	return FrontendIPConfiguration{Name: strings.ToLower(f.Name), Zones: nilIfEmpty(f.Zones), Properties: FrontendIPConfigP{
		PrivateIPAddress: p.PrivateIPAddress, PrivateIPAllocationMethod: p.PrivateIPAllocationMethod, PrivateIPAddressVersion: p.PrivateIPAddressVersion,
		Subnet: cleanRef(p.Subnet), PublicIPAddress: cleanRef(p.PublicIPAddress), PublicIPPrefix: cleanRef(p.PublicIPPrefix),
		GatewayLoadBalancer: cleanRef(p.GatewayLoadBalancer)}}
}

func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}

func cleanPool(b BackendAddressPool) BackendAddressPool {
	p := b.Properties
	out := BackendAddressPool{Name: strings.ToLower(b.Name), Properties: BackendPool{Location: p.Location, VirtualNetwork: cleanRef(p.VirtualNetwork),
		SyncMode: p.SyncMode, DrainPeriodInSeconds: p.DrainPeriodInSeconds, TunnelInterfaces: nilIfEmpty(p.TunnelInterfaces)}}
	for _, a := range p.LoadBalancerBackendAddresses {
		ap := a.Properties
		out.Properties.LoadBalancerBackendAddresses = append(out.Properties.LoadBalancerBackendAddresses, LoadBalancerBackendAddress{Name: a.Name,
			Properties: BackendAddressProp{IPAddress: ap.IPAddress, VirtualNetwork: cleanRef(ap.VirtualNetwork), Subnet: cleanRef(ap.Subnet),
				LoadBalancerFrontendIPConfiguration: cleanRef(ap.LoadBalancerFrontendIPConfiguration), AdminState: ap.AdminState}})
	}
	return out
}

// AssignEtags gives lb a new etag (newTag()) and each child the etag of the
// same-named child in old when its content is unchanged, else a new one.
// Every child and the LB get provisioningState Succeeded; resourceGuid is
// kept from old or assigned on create.
func AssignEtags(lb, old *LoadBalancer, newTag func() string) {
	lb.Etag = newTag()
	lb.Properties.ProvisioningState = Succeeded
	if old != nil && old.Properties.ResourceGUID != "" {
		lb.Properties.ResourceGUID = old.Properties.ResourceGUID
	} else {
		lb.Properties.ResourceGUID = NewGUID()
	}
	for _, c := range LBChildren {
		c.assignEtags(lb, old, newTag)
	}
}

// childKey is the map key of an LB child reference inside its own LB: the
// child's name, lowercased (references were checked to point into the LB).
func childKey(id string) string {
	id = strings.TrimSuffix(id, "/")
	return strings.ToLower(id[strings.LastIndexByte(id, '/')+1:])
}

// LBInstanceView is the instance-level data a rendered LB shows in its
// read-only back-references. The zero value means "no instances".
type LBInstanceView struct {
	// PoolMembers maps a normalized pool id to the NIC ipconfig ids in it.
	PoolMembers map[string][]string
	// NatRuleBackends maps a normalized NAT rule id to its backend ipconfig id.
	NatRuleBackends map[string]string
	// GeneratedNatRules are per-instance NAT rules generated from NAT pools
	// ({pool}.{n}); Render lists them after the client's NAT rules.
	GeneratedNatRules []InboundNatRule
}

// Render fills lb's read-only back-references (computed from its children
// and view) and replaces every nil collection with an empty one, so the
// result is what GET returns. It modifies lb in place.
func Render(lb *LoadBalancer, view LBInstanceView) {
	p := &lb.Properties
	if len(view.GeneratedNatRules) > 0 {
		p.InboundNatRules = append(p.InboundNatRules, view.GeneratedNatRules...)
	}
	fe := map[string]*FrontendIPConfigP{}
	for i := range p.FrontendIPConfigurations {
		f := &p.FrontendIPConfigurations[i].Properties
		f.LoadBalancingRules, f.InboundNatRules, f.InboundNatPools, f.OutboundRules = []SubResource{}, []SubResource{}, []SubResource{}, []SubResource{}
		fe[childKey(p.FrontendIPConfigurations[i].ID)] = f
	}
	pools := map[string]*BackendPool{}
	for i := range p.BackendAddressPools {
		bp := &p.BackendAddressPools[i]
		pp := &bp.Properties
		pp.LoadBalancingRules, pp.OutboundRules, pp.InboundNatRules = []SubResource{}, []SubResource{}, []SubResource{}
		pp.OutboundRule = nil
		pp.BackendIPConfigurations = []SubResource{}
		members := view.PoolMembers[NormalizeRefID(bp.ID)]
		sorted := append([]string(nil), members...)
		sort.Strings(sorted)
		for _, m := range sorted {
			pp.BackendIPConfigurations = append(pp.BackendIPConfigurations, SubResource{ID: m})
		}
		if pp.LoadBalancerBackendAddresses == nil {
			pp.LoadBalancerBackendAddresses = []LoadBalancerBackendAddress{}
		}
		pools[childKey(bp.ID)] = pp
	}
	probes := map[string]*ProbeProps{}
	for i := range p.Probes {
		p.Probes[i].Properties.LoadBalancingRules = []SubResource{}
		probes[childKey(p.Probes[i].ID)] = &p.Probes[i].Properties
	}
	for _, r := range p.LoadBalancingRules {
		ref := SubResource{ID: r.ID}
		if r.Properties.FrontendIPConfiguration != nil {
			if f := fe[childKey(r.Properties.FrontendIPConfiguration.ID)]; f != nil {
				f.LoadBalancingRules = append(f.LoadBalancingRules, ref)
			}
		}
		for _, pid := range r.RulePools() {
			if pp := pools[childKey(pid)]; pp != nil {
				pp.LoadBalancingRules = append(pp.LoadBalancingRules, ref)
			}
		}
		if r.Properties.Probe != nil {
			if pr := probes[childKey(r.Properties.Probe.ID)]; pr != nil {
				pr.LoadBalancingRules = append(pr.LoadBalancingRules, ref)
			}
		}
	}
	for i := range p.LoadBalancingRules {
		if p.LoadBalancingRules[i].Properties.BackendAddressPools == nil {
			p.LoadBalancingRules[i].Properties.BackendAddressPools = []SubResource{}
		}
	}
	for i := range p.InboundNatRules {
		r := &p.InboundNatRules[i]
		ref := SubResource{ID: r.ID}
		if r.Properties.FrontendIPConfiguration != nil {
			if f := fe[childKey(r.Properties.FrontendIPConfiguration.ID)]; f != nil {
				f.InboundNatRules = append(f.InboundNatRules, ref)
			}
		}
		if r.Properties.BackendAddressPool != nil {
			if pp := pools[childKey(r.Properties.BackendAddressPool.ID)]; pp != nil {
				pp.InboundNatRules = append(pp.InboundNatRules, ref)
			}
		}
		if b, ok := view.NatRuleBackends[NormalizeRefID(r.ID)]; ok {
			r.Properties.BackendIPConfiguration = &SubResource{ID: b}
		}
	}
	for _, np := range p.InboundNatPools {
		if np.Properties.FrontendIPConfiguration != nil {
			if f := fe[childKey(np.Properties.FrontendIPConfiguration.ID)]; f != nil {
				f.InboundNatPools = append(f.InboundNatPools, SubResource{ID: np.ID})
			}
		}
	}
	for i := range p.OutboundRules {
		o := &p.OutboundRules[i]
		ref := SubResource{ID: o.ID}
		for _, fr := range o.Properties.FrontendIPConfigurations {
			if f := fe[childKey(fr.ID)]; f != nil {
				f.OutboundRules = append(f.OutboundRules, ref)
			}
		}
		if o.Properties.BackendAddressPool != nil {
			if pp := pools[childKey(o.Properties.BackendAddressPool.ID)]; pp != nil {
				pp.OutboundRules = append(pp.OutboundRules, ref)
				if pp.OutboundRule == nil {
					pp.OutboundRule = &SubResource{ID: o.ID}
				}
			}
		}
		if o.Properties.FrontendIPConfigurations == nil {
			o.Properties.FrontendIPConfigurations = []SubResource{}
		}
	}
	for _, c := range LBChildren {
		c.emptyIfNil(lb)
	}
}
