package metrics

import (
	"nimbus/internal/dataplane"
)

// ReportConfig sets the availability and SNAT allocation series from a
// data-plane Config and the probes' Health, for engines that do not report
// them themselves (the kernel engine: its packets never reach nimbus).
// VipAvailability is up when a rule has an eligible backend (health, admin
// state, noHealthyBackendsBehavior, as the engines decide) or is a NAT rule;
// DipAvailability is each backend's eligibility per rule.
func (m *Metrics) ReportConfig(cfg dataplane.Config, h dataplane.Health) {
	if m == nil {
		return
	}
	var vips []Vip
	var dips []Dip
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		elig, fallback := dataplane.Eligible(r, h)
		up := map[string]bool{}
		if !fallback {
			for _, b := range elig {
				up[b.ID] = true
			}
		}
		vips = append(vips, Vip{FrontendIP: r.Frontend.IP, FrontendPort: r.FrontendPort, Up: len(elig) > 0})
		for _, b := range r.Backends {
			dips = append(dips, Dip{Protocol: string(r.Protocol), BackendPort: r.BackendPort, FrontendIP: r.Frontend.IP,
				FrontendPort: r.FrontendPort, BackendIP: b.IP, Up: up[b.ID]})
		}
	}
	for _, n := range cfg.NATRules {
		vips = append(vips, Vip{FrontendIP: n.Frontend.IP, FrontendPort: n.FrontendPort, Up: true})
	}
	m.SetAvailability(vips, dips)
	var snat []SnatPorts
	for _, o := range cfg.Outbound {
		protos := []string{string(o.Protocol)}
		if o.Protocol == dataplane.All {
			protos = []string{string(dataplane.TCP), string(dataplane.UDP)}
		}
		for _, p := range protos {
			snat = append(snat, SnatPorts{FrontendIP: o.Frontend.IP, BackendIP: o.Backend.IP, Protocol: p,
				Allocated: int(o.PortEnd) - int(o.PortStart) + 1})
		}
	}
	m.SetSnatPorts(snat)
}
