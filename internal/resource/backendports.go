package resource

import (
	"slices"
	"strings"
)

// BackendPort is a port a load balancer sends traffic or health probes to
// on its backends.
type BackendPort struct {
	// Protocol is "tcp" or "udp".
	Protocol string
	Port     int
}

// BackendPorts returns the ports the load balancers lbs send to on an
// instance whose primary ipconfig (ipconfigID, "" when unknown) joins the
// backend pools pools and the NAT pools natPools, plus the port of
// healthProbe ("" for none): each load-balancing rule's backendPort (its
// frontend port when 0 but not HA ports; both protocols for "All") and its
// probe's port, each NAT pool's backendPort, each NAT rule's backendPort
// whose pool (V2) or backend ipconfig (V1) is the instance's, and the
// probes those use. The result is sorted and has no duplicates.
func BackendPorts(lbs []*LoadBalancer, pools, natPools []string, ipconfigID, healthProbe string) []BackendPort {
	var out []BackendPort
	add := func(proto string, p *int32) {
		if p == nil || *p <= 0 || *p > 65535 {
			return
		}
		switch strings.ToLower(proto) {
		case "udp":
			out = append(out, BackendPort{"udp", int(*p)})
		case "all":
			out = append(out, BackendPort{"tcp", int(*p)}, BackendPort{"udp", int(*p)})
		default: // Tcp, and the probe protocols Tcp, Http, Https
			out = append(out, BackendPort{"tcp", int(*p)})
		}
	}
	in := func(list []string, id string) bool {
		return slices.ContainsFunc(list, func(x string) bool { return SameID(x, id) })
	}
	probe := func(lb *LoadBalancer, ref *SubResource) {
		if ref == nil {
			return
		}
		if pr := lb.ProbeByID(ref.ID); pr != nil {
			add(pr.Properties.Protocol, pr.Properties.Port)
		}
	}
	for _, lb := range lbs {
		if lb == nil {
			continue
		}
		if healthProbe != "" {
			probe(lb, &SubResource{ID: healthProbe})
		}
		for _, r := range lb.Properties.LoadBalancingRules {
			if !slices.ContainsFunc(r.RulePools(), func(p string) bool { return in(pools, p) }) {
				continue
			}
			bp := r.Properties.BackendPort
			if bp == nil || *bp == 0 {
				bp = r.Properties.FrontendPort
			}
			add(r.Properties.Protocol, bp)
			probe(lb, r.Properties.Probe)
		}
		for _, np := range lb.Properties.InboundNatPools {
			if in(natPools, np.ID) {
				add(np.Properties.Protocol, np.Properties.BackendPort)
			}
		}
		for _, nr := range lb.Properties.InboundNatRules {
			p := nr.Properties
			v2 := p.BackendAddressPool != nil && in(pools, p.BackendAddressPool.ID)
			v1 := p.BackendIPConfiguration != nil && ipconfigID != "" && SameID(p.BackendIPConfiguration.ID, ipconfigID)
			if v1 || v2 {
				add(p.Protocol, p.BackendPort)
			}
		}
	}
	slices.SortFunc(out, func(a, b BackendPort) int {
		if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
			return c
		}
		return a.Port - b.Port
	})
	return slices.Compact(out)
}
