package resource

import (
	"fmt"
	"testing"
)

// limitLB returns a load balancer of sku with n of each counted child.
func limitLB(sku string, frontends, rules, probes, outbound, addrs int) *LoadBalancer {
	id := "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/big"
	lb := &LoadBalancer{Envelope: Envelope{ID: id, Name: "big"}, SKU: &LoadBalancerSKU{Name: sku}}
	p := &lb.Properties
	for i := range frontends {
		p.FrontendIPConfigurations = append(p.FrontendIPConfigurations, FrontendIPConfiguration{Name: fmt.Sprintf("fe%d", i)})
	}
	for i := range rules {
		p.LoadBalancingRules = append(p.LoadBalancingRules, LoadBalancingRule{Name: fmt.Sprintf("r%d", i)})
	}
	for i := range probes {
		p.Probes = append(p.Probes, Probe{Name: fmt.Sprintf("p%d", i)})
	}
	for i := range outbound {
		p.OutboundRules = append(p.OutboundRules, OutboundRule{Name: fmt.Sprintf("o%d", i)})
	}
	bp := BackendAddressPool{ID: id + "/backendAddressPools/be", Name: "be"}
	for i := range addrs {
		bp.Properties.LoadBalancerBackendAddresses = append(bp.Properties.LoadBalancerBackendAddresses, LoadBalancerBackendAddress{Name: fmt.Sprintf("a%d", i)})
	}
	p.BackendAddressPools = []BackendAddressPool{bp}
	return lb
}

func TestLBLimits(t *testing.T) {
	for _, tc := range []struct {
		name string
		lb   *LoadBalancer
		code string
	}{
		{"1501 rules", limitLB(LBSkuStandard, 1, 1501, 0, 0, 0), "LoadBalancerRuleCountLimitReached"},
		{"251 rules on Basic", limitLB(LBSkuBasic, 1, 251, 0, 0, 0), "LoadBalancerRuleCountLimitReached"},
		{"601 frontends", limitLB(LBSkuStandard, 601, 0, 0, 0, 0), "LoadBalancerFrontendIPConfigurationCountLimitReached"},
		{"201 frontends on Basic", limitLB(LBSkuBasic, 201, 0, 0, 0, 0), "LoadBalancerFrontendIPConfigurationCountLimitReached"},
		{"1501 probes", limitLB(LBSkuStandard, 1, 0, 1501, 0, 0), "LoadBalancerProbeCountLimitReached"},
		{"601 outbound rules", limitLB(LBSkuStandard, 1, 0, 0, 601, 0), "LoadBalancerOutboundRuleCountLimitReached"},
		{"5001 pool addresses", limitLB(LBSkuStandard, 1, 0, 0, 0, 5001), "LoadBalancerBackendPoolSizeLimitReached"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := (&lbValidator{lb: tc.lb, c: &LBContext{}}).limits()
			e, ok := err.(*Error)
			if !ok || e.Code != tc.code || e.Status != 400 {
				t.Fatalf("limits() = %v, want 400 %s", err, tc.code)
			}
		})
	}
	at := limitLB(LBSkuStandard, 600, 1500, 1500, 600, 5000)
	if err := (&lbValidator{lb: at, c: &LBContext{}}).limits(); err != nil {
		t.Fatalf("an LB exactly at every limit was refused: %v", err)
	}
}
