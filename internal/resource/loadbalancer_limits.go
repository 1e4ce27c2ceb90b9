package resource

import "fmt"

// LBLimits are Azure's published per-load-balancer limits for one SKU
// (learn.microsoft.com: azure-resource-manager/management/
// azure-subscription-service-limits, "Load balancer"). Probes have no
// published limit; nimbus bounds them like rules, so a body can never grow
// without bound.
type LBLimits struct {
	// Frontends bounds frontendIPConfigurations.
	Frontends int
	// Rules bounds load-balancing rules, inbound NAT rules and inbound NAT
	// pools together ("rules per resource").
	Rules int
	// Probes bounds health probes.
	Probes int
	// Outbound bounds outbound rules (Standard only).
	Outbound int
	// PoolSize bounds the backend ipconfigs of one pool: IP-based
	// addresses plus the capacity of the scale sets that use it.
	PoolSize int64
}

// StandardLBLimits and BasicLBLimits are the limits of each SKU.
var (
	StandardLBLimits = LBLimits{Frontends: 600, Rules: 1500, Probes: 1500, Outbound: 600, PoolSize: 5000}
	BasicLBLimits    = LBLimits{Frontends: 200, Rules: 250, Probes: 250, Outbound: 0, PoolSize: 300}
)

// Limits returns the limits of lb's SKU.
func (lb *LoadBalancer) Limits() LBLimits {
	if lb.SkuName() == LBSkuBasic {
		return BasicLBLimits
	}
	return StandardLBLimits
}

// limits enforces LBLimits, with codes in the style of Azure's
// LoadBalancerFrontendIPConfigurationCountLimitReached. It runs first, so
// an oversized body is refused before any per-child work.
func (v *lbValidator) limits() error {
	l, p, sku := v.lb.Limits(), &v.lb.Properties, v.lb.SkuName()
	count := func(code, field string, n, max int, what string) error {
		if n <= max {
			return nil
		}
		return ruleErr(code, field, "%s sku load balancer %s cannot have more than %d %s (it has %d).", sku, v.lb.ID, max, what, n)
	}
	for _, c := range []struct {
		code, field string
		n, max      int
		what        string
	}{
		{"LoadBalancerFrontendIPConfigurationCountLimitReached", "properties.frontendIPConfigurations", len(p.FrontendIPConfigurations), l.Frontends, "FrontendIPConfigurations"},
		{"LoadBalancerRuleCountLimitReached", "properties.loadBalancingRules", len(p.LoadBalancingRules) + len(p.InboundNatRules) + len(p.InboundNatPools), l.Rules,
			"load balancing rules, inbound NAT rules and inbound NAT pools combined"},
		{"LoadBalancerProbeCountLimitReached", "properties.probes", len(p.Probes), l.Probes, "probes"},
		{"LoadBalancerOutboundRuleCountLimitReached", "properties.outboundRules", len(p.OutboundRules), l.Outbound, "outbound rules"},
	} {
		if c.n > 0 && c.max == 0 && c.code == "LoadBalancerOutboundRuleCountLimitReached" {
			continue // Basic has no outbound rules at all: outbound() says so with Azure's own code
		}
		if err := count(c.code, c.field, c.n, c.max, c.what); err != nil {
			return err
		}
	}
	for i := range p.BackendAddressPools {
		bp := &p.BackendAddressPools[i]
		if n := v.poolSize(bp.ID); n > l.PoolSize {
			return ruleErr("LoadBalancerBackendPoolSizeLimitReached", fmt.Sprintf("properties.backendAddressPools[%d]", i),
				"Backend address pool %s of %s sku load balancer %s cannot hold more than %d IP configurations (it would hold %d).",
				bp.Name, sku, v.lb.ID, l.PoolSize, n)
		}
	}
	return nil
}
