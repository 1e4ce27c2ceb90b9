package resource

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
)

// SNATPortsPerFrontend is the number of SNAT ports one frontend IP offers.
const SNATPortsPerFrontend = 64000

// PublicIPFacts is what LB and VMSS validation need to know about a public IP.
type PublicIPFacts struct {
	// SKU is the public IP's sku name (Basic|Standard).
	SKU string
	// UsedBy is the id of the ipConfiguration holding the address (an LB
	// frontend or a NIC ipconfig); "" when free.
	UsedBy string
}

// SubnetFacts is what LB validation needs to know about a subnet.
type SubnetFacts struct {
	// Prefixes are the subnet's address prefixes.
	Prefixes []netip.Prefix
}

// LBContext is the read-only view of the other resources that LB validation
// reads. Maps are keyed by NormalizeRefID; a missing key means the resource
// does not exist. The arm layer builds it from one store snapshot and
// guards every key it read with an expected revision when it writes.
type LBContext struct {
	PublicIPs        map[string]PublicIPFacts
	PublicIPPrefixes map[string]bool
	Subnets          map[string]SubnetFacts
	// Users are every scale-set model (and, once instances exist, every
	// instance's applied model) that references this load balancer.
	Users []LBUser
}

type lbValidator struct {
	lb, old *LoadBalancer
	c       *LBContext
	fe      map[string]*FrontendIPConfiguration
	// index holds, per collection name, the lowercased names of lb's
	// children (built by names, read by childRef).
	index map[string]map[string]bool
}

// ValidateLoadBalancer checks a normalized LB (NormalizeLoadBalancer) against
// Azure's rules: ranges, references, SKU rules, rule/port conflicts, outbound
// rules, NAT pools, and (using old, the stored LB or nil on create, and
// c.Users) the rules that protect what scale sets use. It returns the first
// broken rule as a *RuleError. It reads nothing but its arguments.
func ValidateLoadBalancer(lb, old *LoadBalancer, c *LBContext) error {
	if c == nil {
		c = &LBContext{}
	}
	v := &lbValidator{lb: lb, old: old, c: c}
	for _, step := range []func() error{
		v.limits, v.names, v.sku, v.frontends, v.probesCheck, v.poolsCheck, v.rules, v.natRules, v.natPools,
		v.portConflicts, v.backendPortConflicts, v.outbound, v.scaleSetUse,
	} {
		if err := step(); err != nil {
			return err
		}
	}
	return nil
}

// names checks every child's name and that names are unique per
// collection, and indexes the names for childRef.
func (v *lbValidator) names() error {
	v.index = make(map[string]map[string]bool, len(LBChildren))
	children := 0
	for _, c := range LBChildren {
		n := c.Len(v.lb)
		seen := make(map[string]bool, n)
		for i := range n {
			name := c.NameAt(v.lb, i)
			field := fmt.Sprintf("properties.%s[%d].name", c.Name(), i)
			if err := checkChildName(field, name); err != nil {
				return err
			}
			if seen[strings.ToLower(name)] {
				return ruleErr(CodeDuplicateResourceName, field,
					"Load balancer %s has more than one child in %s named '%s'.", v.lb.ID, c.Name(), name)
			}
			seen[strings.ToLower(name)] = true
		}
		v.index[c.Name()] = seen
		if c != LBFrontendIPConfigurations && c != LBBackendAddressPools {
			children += n
		}
	}
	if len(v.lb.Properties.FrontendIPConfigurations) == 0 && children > 0 {
		return ruleErr(CodeWithoutFrontendNoChildren, "properties.frontendIPConfigurations",
			"Load balancer %s does not have a frontend IP configuration, so it cannot have load balancing rules, probes, inbound NAT rules, inbound NAT pools or outbound rules.", v.lb.ID)
	}
	return nil
}

// checkChildName enforces the network provider's naming rule
// (CheckNetworkName) on the child name at field.
func checkChildName(field, name string) error {
	if name == "" {
		return ruleErr(CodeInvalidParameter, field, "Property %s is required.", field)
	}
	return atField(CheckNetworkName(name, 1, MaxNetworkNameLen), field)
}

// atField returns err (a *Error or nil) with its target set to field.
func atField(err error, field string) error {
	if e, ok := err.(*Error); ok {
		c := *e
		c.Target = field
		return &c
	}
	return err
}

func (v *lbValidator) sku() error {
	if v.old != nil && v.old.SKU != nil && v.lb.SKU != nil && v.old.SKU.Name != v.lb.SKU.Name {
		return ruleErr(CodeSkuCannotBeUpdated, "sku.name",
			"Sku of load balancer %s cannot be changed from %s to %s. Create a new load balancer instead.", v.lb.ID, v.old.SKU.Name, v.lb.SKU.Name)
	}
	return nil
}

func (v *lbValidator) frontends() error {
	v.fe = map[string]*FrontendIPConfiguration{}
	internal, public := 0, 0
	for i := range v.lb.Properties.FrontendIPConfigurations {
		f := &v.lb.Properties.FrontendIPConfigurations[i]
		v.fe[childKey(f.ID)] = f
		field := fmt.Sprintf("properties.frontendIPConfigurations[%d].properties", i)
		fp := &f.Properties
		n := 0
		for _, r := range []*SubResource{fp.Subnet, fp.PublicIPAddress, fp.PublicIPPrefix} {
			if r != nil {
				n++
			}
		}
		if n != 1 {
			return ruleErr(CodeFrontendNeedsOneAddress, field,
				"Frontend IP configuration %s must reference exactly one of subnet, publicIPAddress or publicIPPrefix.", f.ID)
		}
		switch {
		case fp.Subnet != nil:
			internal++
			if err := checkRefType(field+".subnet.id", fp.Subnet.ID, LoadBalancerSubnetType); err != nil {
				return err
			}
			sn, ok := v.c.Subnets[NormalizeRefID(fp.Subnet.ID)]
			if !ok {
				return danglingRef(field+".subnet.id", fp.Subnet.ID)
			}
			if fp.PrivateIPAllocationMethod == "Static" {
				if err := checkStaticIP(field+".privateIPAddress", fp.PrivateIPAddress, sn); err != nil {
					return err
				}
			}
		case fp.PublicIPAddress != nil:
			public++
			if err := checkRefType(field+".publicIPAddress.id", fp.PublicIPAddress.ID, LoadBalancerPublicIPType); err != nil {
				return err
			}
			pip, ok := v.c.PublicIPs[NormalizeRefID(fp.PublicIPAddress.ID)]
			if !ok {
				return danglingRef(field+".publicIPAddress.id", fp.PublicIPAddress.ID)
			}
			if !strings.EqualFold(pip.SKU, v.lb.SkuName()) {
				return ruleErr(CodePublicIPAndLBSkuDoNotMatch, field+".publicIPAddress.id",
					"%s sku load balancer %s cannot reference %s sku publicIP %s.", v.lb.SkuName(), v.lb.ID, skuCase(pip.SKU), fp.PublicIPAddress.ID)
			}
			if pip.UsedBy != "" && !SameID(pip.UsedBy, f.ID) {
				if l, _, _, ok := ParseLBChildID(pip.UsedBy); !ok || !SameID(l, v.lb.ID) {
					return ruleErr(CodePublicIPInUse, field+".publicIPAddress.id",
						"Public IP address %s is already in use by %s and cannot be referenced by %s.", fp.PublicIPAddress.ID, pip.UsedBy, f.ID)
				}
			}
		case fp.PublicIPPrefix != nil:
			public++
			if err := checkRefType(field+".publicIPPrefix.id", fp.PublicIPPrefix.ID, LoadBalancerPublicIPPrefType); err != nil {
				return err
			}
			if !v.c.PublicIPPrefixes[NormalizeRefID(fp.PublicIPPrefix.ID)] {
				return danglingRef(field+".publicIPPrefix.id", fp.PublicIPPrefix.ID)
			}
		}
	}
	if internal > 0 && public > 0 {
		return ruleErr(CodeInvalidParameter, "properties.frontendIPConfigurations",
			"Load balancer %s cannot have both public and private (subnet) frontend IP configurations.", v.lb.ID)
	}
	return nil
}

func skuCase(s string) string {
	if strings.EqualFold(s, LBSkuBasic) {
		return LBSkuBasic
	}
	if strings.EqualFold(s, LBSkuStandard) {
		return LBSkuStandard
	}
	return s
}

func checkStaticIP(field, ip string, sn SubnetFacts) error {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ruleErr(CodeInvalidParameter, field, "Private IP address '%s' in %s is not a valid IP address.", ip, field)
	}
	for _, p := range sn.Prefixes {
		if p.Contains(a) {
			return nil
		}
	}
	if len(sn.Prefixes) == 0 {
		return nil
	}
	return ruleErr(CodeInvalidParameter, field, "Private IP address %s in %s is not in the subnet's address range.", ip, field)
}

// checkRefType fails with InvalidResourceReference when id is not a
// well-formed id of the given type (e.g. Microsoft.Network/publicIPAddresses).
func checkRefType(field, id, typ string) error {
	if !refHasType(id, typ) {
		return ruleErr(CodeInvalidResourceReference, field,
			"Resource id '%s' in %s is not a valid %s resource id.", id, field, typ)
	}
	return nil
}

// refHasType reports whether id is
// /subscriptions/{s}/resourceGroups/{g}/providers/{ns}/{t1}/{n1}[/{t2}/{n2}]
// of type typ ("ns/t1[/t2]").
func refHasType(id, typ string) bool {
	parts := strings.Split(strings.TrimSuffix(id, "/"), "/")
	tp := strings.Split(typ, "/")
	want := 7 + 2*(len(tp)-1)
	if len(parts) != want || parts[0] != "" || !strings.EqualFold(parts[1], "subscriptions") ||
		!strings.EqualFold(parts[3], "resourceGroups") || !strings.EqualFold(parts[5], "providers") ||
		!strings.EqualFold(parts[6], tp[0]) {
		return false
	}
	for i, t := range tp[1:] {
		if !strings.EqualFold(parts[7+2*i], t) || parts[8+2*i] == "" {
			return false
		}
	}
	return parts[2] != "" && parts[4] != ""
}

func danglingRef(field, id string) error {
	return ruleErr(CodeInvalidResourceReference, field,
		"Resource %s referenced by %s was not found.", id, field)
}

// childRef resolves a reference to a child of this LB in collection coll.
func (v *lbValidator) childRef(field, id, coll string) error {
	l, c, _, ok := ParseLBChildID(id)
	if !ok || c != coll {
		return ruleErr(CodeInvalidResourceReference, field,
			"Resource id '%s' in %s is not a valid reference to a load balancer %s child.", id, field, coll)
	}
	if !SameID(l, v.lb.ID) {
		return ruleErr(CodeInvalidResourceReference, field,
			"Resource %s referenced by %s belongs to another load balancer; it must be a child of %s.", id, field, v.lb.ID)
	}
	if !v.index[coll][childKey(id)] {
		return danglingRef(field, id)
	}
	return nil
}

func portRange(field string, p *int32, lo, hi int32, required bool) error {
	if p == nil {
		if required {
			return ruleErr(CodeInvalidParameter, field, "Property %s is required.", field)
		}
		return nil
	}
	if *p < lo || *p > hi {
		return ruleErr(CodeInvalidParameter, field, "Value %d of %s is out of range: it must be between %d and %d.", *p, field, lo, hi)
	}
	return nil
}

func required(field, s string) error {
	if s == "" {
		return ruleErr(CodeInvalidParameter, field, "Property %s is required.", field)
	}
	return nil
}

func (v *lbValidator) probesCheck() error {
	for i := range v.lb.Properties.Probes {
		pr := &v.lb.Properties.Probes[i]
		f := fmt.Sprintf("properties.probes[%d].properties.", i)
		pp := &pr.Properties
		if err := required(f+"protocol", pp.Protocol); err != nil {
			return err
		}
		if err := portRange(f+"port", pp.Port, 1, 65535, true); err != nil {
			return err
		}
		if *pp.IntervalInSeconds < 5 {
			return ruleErr(CodeInvalidParameter, f+"intervalInSeconds",
				"Value %d of %sintervalInSeconds is out of range: it must be at least 5.", *pp.IntervalInSeconds, f)
		}
		if err := portRange(f+"numberOfProbes", pp.NumberOfProbes, 1, 100, false); err != nil {
			return err
		}
		if err := portRange(f+"probeThreshold", pp.ProbeThreshold, 1, 100, false); err != nil {
			return err
		}
		switch pp.Protocol {
		case "Tcp":
			if pp.RequestPath != "" {
				return ruleErr(CodeProbeRequestPathNotAllowed, f+"requestPath",
					"Probe %s uses protocol Tcp, so %srequestPath must not be set.", pr.ID, f)
			}
		default:
			if pp.RequestPath == "" {
				return ruleErr(CodeProbeRequestPathRequired, f+"requestPath",
					"Probe %s uses protocol %s, so %srequestPath is required.", pr.ID, pp.Protocol, f)
			}
			if pp.Protocol == "Https" && v.lb.SkuName() == LBSkuBasic {
				return ruleErr(CodeHTTPSProbeNeedsStandard, f+"protocol",
					"Probe %s uses protocol Https, which only Standard sku load balancers support.", pr.ID)
			}
		}
	}
	return nil
}

func (v *lbValidator) poolsCheck() error {
	for i := range v.lb.Properties.BackendAddressPools {
		bp := &v.lb.Properties.BackendAddressPools[i]
		f := fmt.Sprintf("properties.backendAddressPools[%d].properties.", i)
		if bp.Properties.DrainPeriodInSeconds != nil && *bp.Properties.DrainPeriodInSeconds < 0 {
			return ruleErr(CodeInvalidParameter, f+"drainPeriodInSeconds", "Value %d of %sdrainPeriodInSeconds must not be negative.", *bp.Properties.DrainPeriodInSeconds, f)
		}
		if len(bp.Properties.LoadBalancerBackendAddresses) > 0 && v.lb.SkuName() == LBSkuBasic {
			return ruleErr(CodeInvalidParameter, f+"loadBalancerBackendAddresses",
				"Backend pool %s: IP-based backend addresses are only supported by Standard sku load balancers.", bp.ID)
		}
		seen := map[string]bool{}
		for j, a := range bp.Properties.LoadBalancerBackendAddresses {
			af := fmt.Sprintf("%sloadBalancerBackendAddresses[%d]", f, j)
			if a.Properties.IPAddress != "" {
				if _, err := netip.ParseAddr(a.Properties.IPAddress); err != nil {
					return ruleErr(CodeInvalidParameter, af+".properties.ipAddress", "Value '%s' of %s.properties.ipAddress is not a valid IP address.", a.Properties.IPAddress, af)
				}
				if seen[a.Properties.IPAddress] {
					return ruleErr(CodeInvalidParameter, af+".properties.ipAddress", "Backend pool %s lists IP address %s more than once.", bp.ID, a.Properties.IPAddress)
				}
				seen[a.Properties.IPAddress] = true
			}
			if vn := a.Properties.VirtualNetwork; vn != nil {
				if err := checkRefType(af+".properties.virtualNetwork.id", vn.ID, LoadBalancerVirtualNetType); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

func (v *lbValidator) rules() error {
	for i := range v.lb.Properties.LoadBalancingRules {
		r := &v.lb.Properties.LoadBalancingRules[i]
		f := fmt.Sprintf("properties.loadBalancingRules[%d].properties.", i)
		rp := &r.Properties
		if rp.FrontendIPConfiguration == nil {
			return ruleErr(CodeInvalidParameter, f+"frontendIPConfiguration", "Property %sfrontendIPConfiguration is required.", f)
		}
		if err := v.childRef(f+"frontendIPConfiguration.id", rp.FrontendIPConfiguration.ID, CollFrontendIPConfigurations); err != nil {
			return err
		}
		for j, pid := range rp.BackendAddressPools {
			if err := v.childRef(fmt.Sprintf("%sbackendAddressPools[%d].id", f, j), pid.ID, CollBackendAddressPools); err != nil {
				return err
			}
		}
		if rp.BackendAddressPool != nil {
			if err := v.childRef(f+"backendAddressPool.id", rp.BackendAddressPool.ID, CollBackendAddressPools); err != nil {
				return err
			}
		}
		if rp.Probe != nil {
			if err := v.childRef(f+"probe.id", rp.Probe.ID, CollProbes); err != nil {
				return err
			}
		}
		if err := required(f+"protocol", rp.Protocol); err != nil {
			return err
		}
		if err := portRange(f+"frontendPort", rp.FrontendPort, 0, 65534, true); err != nil {
			return err
		}
		if err := portRange(f+"backendPort", rp.BackendPort, 0, 65535, true); err != nil {
			return err
		}
		if err := portRange(f+"idleTimeoutInMinutes", rp.IdleTimeoutInMinutes, 4, 100, false); err != nil {
			return err
		}
		if rp.Protocol == "All" && (*rp.FrontendPort != 0 || *rp.BackendPort != 0) {
			return ruleErr(CodeInvalidParameter, f+"frontendPort",
				"Load balancing rule %s uses protocol All (HA ports), so frontendPort and backendPort must be 0.", r.ID)
		}
		if rp.Protocol != "All" && (*rp.FrontendPort == 0) != (*rp.BackendPort == 0) {
			return ruleErr(CodeInvalidParameter, f+"backendPort",
				"Load balancing rule %s: frontendPort and backendPort must both be 0 (any port) or both be set.", r.ID)
		}
		if *rp.FrontendPort == 0 && rp.Protocol == "All" {
			fe := v.fe[childKey(rp.FrontendIPConfiguration.ID)]
			if fe != nil && (!fe.Internal() || v.lb.SkuName() != LBSkuStandard) {
				return ruleErr(CodeInvalidParameter, f+"protocol",
					"Load balancing rule %s uses HA ports (protocol All, port 0), which need an internal frontend of a Standard sku load balancer.", r.ID)
			}
		}
	}
	return nil
}

func (v *lbValidator) natRules() error {
	for i := range v.lb.Properties.InboundNatRules {
		r := &v.lb.Properties.InboundNatRules[i]
		f := fmt.Sprintf("properties.inboundNatRules[%d].properties.", i)
		if err := v.natRule(f, r); err != nil {
			return err
		}
	}
	// Pools exclude explicitly managed NAT rules.
	if len(v.lb.Properties.InboundNatPools) > 0 && !LBInboundNatRules.sameAll(v.lb, v.old) {
		return ruleErr(CodeNatRulesWithNatPool, "properties.inboundNatRules",
			"Adding or updating NAT Rules when NAT pool is present on loadbalancer %s is not supported. To modify the load balancer, pass in all NAT rules unchanged or remove the LoadBalancerInboundNatRules property from your PUT request.", v.lb.ID)
	}
	return nil
}

func (v *lbValidator) natRule(f string, r *InboundNatRule) error {
	rp := &r.Properties
	if rp.FrontendIPConfiguration == nil {
		return ruleErr(CodeInvalidParameter, f+"frontendIPConfiguration", "Property %sfrontendIPConfiguration is required.", f)
	}
	if err := v.childRef(f+"frontendIPConfiguration.id", rp.FrontendIPConfiguration.ID, CollFrontendIPConfigurations); err != nil {
		return err
	}
	if err := required(f+"protocol", rp.Protocol); err != nil {
		return err
	}
	if err := portRange(f+"idleTimeoutInMinutes", rp.IdleTimeoutInMinutes, 4, 100, false); err != nil {
		return err
	}
	if err := portRange(f+"backendPort", rp.BackendPort, 1, 65535, true); err != nil {
		return err
	}
	if r.IsV2() {
		if rp.FrontendPort != nil && *rp.FrontendPort != 0 {
			return ruleErr(CodeInvalidParameter, f+"frontendPort",
				"Inbound NAT rule %s uses a frontend port range, so %sfrontendPort must not be set.", r.ID, f)
		}
		if err := portRange(f+"frontendPortRangeStart", rp.FrontendPortRangeStart, 1, 65534, true); err != nil {
			return err
		}
		if err := portRange(f+"frontendPortRangeEnd", rp.FrontendPortRangeEnd, 1, 65534, true); err != nil {
			return err
		}
		if *rp.FrontendPortRangeStart > *rp.FrontendPortRangeEnd {
			return ruleErr(CodeInvalidParameter, f+"frontendPortRangeEnd",
				"Inbound NAT rule %s: frontendPortRangeEnd %d is lower than frontendPortRangeStart %d.", r.ID, *rp.FrontendPortRangeEnd, *rp.FrontendPortRangeStart)
		}
		if rp.BackendAddressPool == nil {
			return ruleErr(CodeInvalidParameter, f+"backendAddressPool", "Inbound NAT rule %s uses a frontend port range, so %sbackendAddressPool is required.", r.ID, f)
		}
		return v.childRef(f+"backendAddressPool.id", rp.BackendAddressPool.ID, CollBackendAddressPools)
	}
	return portRange(f+"frontendPort", rp.FrontendPort, 1, 65534, true)
}

func (v *lbValidator) natPools() error {
	for i := range v.lb.Properties.InboundNatPools {
		np := &v.lb.Properties.InboundNatPools[i]
		f := fmt.Sprintf("properties.inboundNatPools[%d].properties.", i)
		pp := &np.Properties
		if pp.FrontendIPConfiguration == nil {
			return ruleErr(CodeInvalidParameter, f+"frontendIPConfiguration", "Property %sfrontendIPConfiguration is required.", f)
		}
		if err := v.childRef(f+"frontendIPConfiguration.id", pp.FrontendIPConfiguration.ID, CollFrontendIPConfigurations); err != nil {
			return err
		}
		if err := required(f+"protocol", pp.Protocol); err != nil {
			return err
		}
		if err := portRange(f+"frontendPortRangeStart", pp.FrontendPortRangeStart, 1, 65534, true); err != nil {
			return err
		}
		if err := portRange(f+"frontendPortRangeEnd", pp.FrontendPortRangeEnd, 1, 65535, true); err != nil {
			return err
		}
		if *pp.FrontendPortRangeStart > *pp.FrontendPortRangeEnd {
			return ruleErr(CodeInvalidParameter, f+"frontendPortRangeEnd",
				"Inbound NAT pool %s: frontendPortRangeEnd %d is lower than frontendPortRangeStart %d.", np.ID, *pp.FrontendPortRangeEnd, *pp.FrontendPortRangeStart)
		}
		if err := portRange(f+"backendPort", pp.BackendPort, 1, 65535, true); err != nil {
			return err
		}
		if err := portRange(f+"idleTimeoutInMinutes", pp.IdleTimeoutInMinutes, 4, 100, false); err != nil {
			return err
		}
	}
	return nil
}

// portClaim is a frontend port (range) claimed by a rule, NAT rule or pool.
type portClaim struct {
	id, kind, fe, proto string
	lo, hi              int32
	field               string
}

func protoOverlap(a, b string) bool { return a == b || a == "All" || b == "All" }

func (v *lbValidator) portConflicts() error {
	var claims []portClaim
	p := &v.lb.Properties
	for i, r := range p.LoadBalancingRules {
		fp := *r.Properties.FrontendPort
		claims = append(claims, portClaim{r.ID, "rule", childKey(r.Properties.FrontendIPConfiguration.ID), r.Properties.Protocol, fp, fp,
			fmt.Sprintf("properties.loadBalancingRules[%d].properties.frontendPort", i)})
	}
	for i, r := range p.InboundNatRules {
		lo, hi := int32(0), int32(0)
		if r.IsV2() {
			lo, hi = *r.Properties.FrontendPortRangeStart, *r.Properties.FrontendPortRangeEnd
		} else {
			lo, hi = *r.Properties.FrontendPort, *r.Properties.FrontendPort
		}
		claims = append(claims, portClaim{r.ID, "natrule", childKey(r.Properties.FrontendIPConfiguration.ID), r.Properties.Protocol, lo, hi,
			fmt.Sprintf("properties.inboundNatRules[%d].properties", i)})
	}
	for i, np := range p.InboundNatPools {
		claims = append(claims, portClaim{np.ID, "natpool", childKey(np.Properties.FrontendIPConfiguration.ID), np.Properties.Protocol,
			*np.Properties.FrontendPortRangeStart, *np.Properties.FrontendPortRangeEnd,
			fmt.Sprintf("properties.inboundNatPools[%d].properties", i)})
	}
	// Group by frontend; sort by range start so only neighbours need checks
	// in the common case, but check every pair that can overlap.
	byFE := map[string][]portClaim{}
	for _, c := range claims {
		byFE[c.fe] = append(byFE[c.fe], c)
	}
	fes := make([]string, 0, len(byFE))
	for k := range byFE {
		fes = append(fes, k)
	}
	sort.Strings(fes)
	for _, fe := range fes {
		cs := byFE[fe]
		sort.SliceStable(cs, func(i, j int) bool { return cs[i].lo < cs[j].lo })
		for i := range cs {
			for j := i + 1; j < len(cs) && cs[j].lo <= cs[i].hi; j++ {
				a, b := cs[i], cs[j]
				if !protoOverlap(a.proto, b.proto) {
					continue
				}
				if a.kind == "natpool" || b.kind == "natpool" {
					return ruleErr(CodeNatPoolRangesOverlap, b.field,
						"Frontend port range %d-%d of %s overlaps frontend ports %d-%d of %s on frontend IP configuration %s.",
						b.lo, b.hi, b.id, a.lo, a.hi, a.id, feIDOf(v.fe, fe))
				}
				return ruleErr(CodeFrontendPortConflict, b.field,
					"%s and %s use the same frontend IP configuration %s, protocol %s and frontend port %d.",
					a.id, b.id, feIDOf(v.fe, fe), b.proto, max(a.lo, b.lo))
			}
		}
	}
	return nil
}

func feIDOf(m map[string]*FrontendIPConfiguration, norm string) string {
	if f := m[norm]; f != nil {
		return f.ID
	}
	return norm
}

func (v *lbValidator) backendPortConflicts() error {
	rs := v.lb.Properties.LoadBalancingRules
	// Rules grouped by backend port; only rules sharing one can conflict.
	byPort := map[int32][]int{}
	pools := make([][]string, len(rs))
	for i := range rs {
		if *rs[i].Properties.EnableFloatingIP {
			continue
		}
		for _, p := range rs[i].RulePools() {
			pools[i] = append(pools[i], childKey(p))
		}
		byPort[*rs[i].Properties.BackendPort] = append(byPort[*rs[i].Properties.BackendPort], i)
	}
	for i := range rs {
		if *rs[i].Properties.EnableFloatingIP {
			continue
		}
		for _, j := range byPort[*rs[i].Properties.BackendPort] {
			if j <= i {
				continue
			}
			a, b := &rs[i], &rs[j]
			if !protoOverlap(a.Properties.Protocol, b.Properties.Protocol) {
				continue
			}
			for k, pa := range pools[i] {
				if slices.Contains(pools[j], pa) {
					return ruleErr(CodeRulesUseSameBackendPortProtocolPool, fmt.Sprintf("properties.loadBalancingRules[%d].properties.backendPort", j),
						"Load balancing rules %s and %s with floating IP disabled use the same protocol %s and backend port %d, and must not be used with the same backend address pool %s.",
						a.ID, b.ID, b.Properties.Protocol, *b.Properties.BackendPort, a.RulePools()[k])
				}
			}
		}
	}
	return nil
}

func (v *lbValidator) outbound() error {
	ors := v.lb.Properties.OutboundRules
	if len(ors) == 0 {
		return nil
	}
	if v.lb.SkuName() == LBSkuBasic {
		return ruleErr(CodeBasicLBOutboundRules, "properties.outboundRules",
			"Basic sku load balancer %s cannot have outbound rules; outbound rules need a Standard sku load balancer.", v.lb.ID)
	}
	for i := range ors {
		o := &ors[i]
		f := fmt.Sprintf("properties.outboundRules[%d].properties.", i)
		op := &o.Properties
		if len(op.FrontendIPConfigurations) == 0 {
			return ruleErr(CodeInvalidParameter, f+"frontendIPConfigurations", "Property %sfrontendIPConfigurations is required.", f)
		}
		for j, fr := range op.FrontendIPConfigurations {
			if err := v.childRef(fmt.Sprintf("%sfrontendIPConfigurations[%d].id", f, j), fr.ID, CollFrontendIPConfigurations); err != nil {
				return err
			}
			if fe := v.fe[childKey(fr.ID)]; fe != nil && fe.Internal() {
				return ruleErr(CodeInternalLBOutboundRules, fmt.Sprintf("%sfrontendIPConfigurations[%d].id", f, j),
					"Internal load balancer cannot have any outbound rules. Either remove outbound rules or make sure frontend IP configurations %s reference public IP addresses and not subnets.", fr.ID)
			}
		}
		if op.BackendAddressPool == nil {
			return ruleErr(CodeInvalidParameter, f+"backendAddressPool", "Property %sbackendAddressPool is required.", f)
		}
		if err := v.childRef(f+"backendAddressPool.id", op.BackendAddressPool.ID, CollBackendAddressPools); err != nil {
			return err
		}
		if err := required(f+"protocol", op.Protocol); err != nil {
			return err
		}
		if err := portRange(f+"idleTimeoutInMinutes", op.IdleTimeoutInMinutes, 4, 120, false); err != nil {
			return err
		}
		ports := *op.AllocatedOutboundPorts
		if ports < 0 {
			return ruleErr(CodeInvalidParameter, f+"allocatedOutboundPorts", "Value %d of %sallocatedOutboundPorts must not be negative.", ports, f)
		}
		if ports%8 != 0 {
			return ruleErr(CodeAllocatedPortsNotMultipleOf8, f+"allocatedOutboundPorts",
				"Specified Allocated Outbound Ports %d for Outbound Rule %s is not a multiple of 8.", ports, o.ID)
		}
		total := int64(len(op.FrontendIPConfigurations)) * SNATPortsPerFrontend
		if int64(ports) > total {
			return ruleErr(CodeAllocatedPortsExceedPerRule, f+"allocatedOutboundPorts",
				"Specified Allocated Outbound Ports %d for Outbound Rule %s exceeds total number of allowed ports per rule %d (%d frontend IP configurations × %d).",
				ports, o.ID, total, len(op.FrontendIPConfigurations), SNATPortsPerFrontend)
		}
		if n := v.poolSize(op.BackendAddressPool.ID); n > 0 && int64(ports)*n > total {
			avail := total / n / 8 * 8
			return ruleErr(CodeAllocatedPortsExceedAvailable, f+"allocatedOutboundPorts",
				"Specified Allocated Outbound Ports %d for Outbound Rule %s exceeds total number of available ports %d. Reduce allocated ports or increase number of IP addresses for outbound rule.",
				ports, o.ID, avail)
		}
	}
	// One outbound rule per frontend and (overlapping) protocol.
	for i := range ors {
		for j := i + 1; j < len(ors); j++ {
			if !protoOverlap(ors[i].Properties.Protocol, ors[j].Properties.Protocol) {
				continue
			}
			for _, fa := range ors[i].Properties.FrontendIPConfigurations {
				for _, fb := range ors[j].Properties.FrontendIPConfigurations {
					if SameID(fa.ID, fb.ID) {
						return ruleErr(CodeMoreThanOneOutboundRule, fmt.Sprintf("properties.outboundRules[%d].properties.frontendIPConfigurations", j),
							"It is not supported to have more than a single outbound rule using frontendIPConfiguration %s with same or overlapping protocol. This frontendIPConfiguration is used by the following outbound rules: %s,%s",
							fa.ID, ors[i].ID, ors[j].ID)
					}
				}
			}
		}
	}
	// A LB rule on a frontend an outbound rule uses must not SNAT implicitly.
	for i, r := range v.lb.Properties.LoadBalancingRules {
		if *r.Properties.DisableOutboundSnat {
			continue
		}
		for _, o := range ors {
			for _, fr := range o.Properties.FrontendIPConfigurations {
				if SameID(fr.ID, r.Properties.FrontendIPConfiguration.ID) {
					return ruleErr(CodeMustDisableSNAT, fmt.Sprintf("properties.loadBalancingRules[%d].properties.disableOutboundSnat", i),
						"Load Balancing Rules %s must have disableOutboundSNAT set to true when same FrontendIPConfiguration %s is referenced by Outbound Rules %s",
						r.ID, fr.ID, o.ID)
				}
			}
		}
	}
	return nil
}

// poolSize is the number of backend ipconfigs the pool will hold: IP-based
// addresses plus the capacity of every scale set that uses it.
func (v *lbValidator) poolSize(poolID string) int64 {
	var n int64
	if bp := v.lb.Pool(poolID); bp != nil {
		n += int64(len(bp.Properties.LoadBalancerBackendAddresses))
	}
	for _, u := range v.c.Users {
		if hasRef(u.Pools, poolID) {
			n += u.Capacity
		}
	}
	return n
}

// scaleSetUse enforces the rules that protect what scale sets use: rules
// whose probe is a VMSS health probe (R1), and pools/NAT pools/probes in use
// (R6).
func (v *lbValidator) scaleSetUse() error {
	users := append([]LBUser(nil), v.c.Users...)
	sort.SliceStable(users, func(i, j int) bool { return users[i].ScaleSetID < users[j].ScaleSetID })
	for _, u := range users {
		if u.HealthProbe != "" && v.old != nil {
			if l, _, _, ok := ParseLBChildID(u.HealthProbe); ok && SameID(l, v.lb.ID) {
				if err := v.probeRules(u); err != nil {
					return err
				}
				if v.lb.ProbeByID(u.HealthProbe) == nil {
					_, _, name, _ := ParseLBChildID(u.HealthProbe)
					return ruleErr(CodeProbeInUseByVMSS, "properties.probes",
						"Cannot remove probe %s from load balancer since it is in use as health probe by virtual machine scale set %s.", name, u.ScaleSetID)
				}
			}
		}
		for _, pid := range u.Pools {
			if l, _, name, ok := ParseLBChildID(pid); ok && SameID(l, v.lb.ID) && v.lb.Pool(pid) == nil {
				return ruleErr(CodeBackendPoolInUseByVMSS, "properties.backendAddressPools",
					"Cannot remove backend address pool %s from load balancer since it is in use by virtual machine scale set %s.", name, u.ScaleSetID)
			}
		}
		for _, pid := range u.NatPools {
			if l, _, name, ok := ParseLBChildID(pid); ok && SameID(l, v.lb.ID) && !v.hasNatPool(pid) {
				return ruleErr(CodeNatPoolInUseByVMSS, "properties.inboundNatPools",
					"Cannot remove inbound nat pool %s from load balancer since it is in use by virtual machine scale set %s.", name, u.ScaleSetID)
			}
		}
	}
	return nil
}

func (v *lbValidator) hasNatPool(id string) bool {
	for _, np := range v.lb.Properties.InboundNatPools {
		if SameID(np.ID, id) {
			return true
		}
	}
	return false
}

// probeRules fails when a rule of old that uses u's health probe was removed
// or changed.
func (v *lbValidator) probeRules(u LBUser) error {
	news := map[string]*LoadBalancingRule{}
	for i := range v.lb.Properties.LoadBalancingRules {
		r := &v.lb.Properties.LoadBalancingRules[i]
		news[strings.ToLower(r.Name)] = r
	}
	for i := range v.old.Properties.LoadBalancingRules {
		o := &v.old.Properties.LoadBalancingRules[i]
		if o.Properties.Probe == nil || !SameID(o.Properties.Probe.ID, u.HealthProbe) {
			continue
		}
		n := news[strings.ToLower(o.Name)]
		if n == nil {
			return ruleErr(CodeCannotRemoveRuleUsedByProbeUsedByVM, "properties.loadBalancingRules",
				"Load balancer rule %s cannot be removed because the rule references the load balancer probe %s that is used as health probe by VM scale set %s. To remove this rule, please update VM scale set to remove the reference to the probe.",
				o.ID, o.Properties.Probe.ID, u.ScaleSetID)
		}
		if !LBLoadBalancingRules.same(n, o) {
			return ruleErr(CodeCannotModifyRuleUsedByProbeUsedByVM, "properties.loadBalancingRules",
				"Load balancer rule %s cannot be modified because it references the load balancer probe %s that used as health probe by VM scale set %s. To make changes to this rule, please update VM scale set to remove the reference to the probe.",
				o.ID, o.Properties.Probe.ID, u.ScaleSetID)
		}
	}
	return nil
}

// ValidateLoadBalancerDelete refuses to delete a load balancer that a scale
// set (model or instance) still uses.
func ValidateLoadBalancerDelete(lbID string, users []LBUser) error {
	for _, u := range users {
		if u.UsesLB(lbID) {
			return ruleErr(CodeLoadBalancerInUseByVMSS, "",
				"Cannot delete load balancer %s since its child resources are in use by virtual machine scale set %s.", lbID, u.ScaleSetID)
		}
	}
	return nil
}
