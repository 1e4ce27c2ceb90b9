package metrics

import (
	"cmp"
	"net/netip"
	"slices"

	"nimbus/internal/dataplane"
)

// Availability computes the VipAvailability and DipAvailability samples of
// a data-plane Config under the probes' Health. It is the one definition
// both engines' metrics use: the userspace engine passes the part of its
// Config it serves, the kernel path goes through ReportConfig. It is pure;
// the samples are sorted.
//
// Per load-balancing rule and per transport protocol it carries (All counts
// as Tcp and Udp), each backend gets one Dip, up when it is eligible for new
// flows (dataplane.Eligible: probe health, admin state; backends reached only
// through the AllProbedUp fallback count as down), labelled with the port
// the rule sends to (its frontend port when BackendPort is 0). Each frontend
// address and port gets one Vip, up when some rule on it has a backend to
// send new flows to (the fallback included) or an inbound NAT rule forwards
// from it.
func Availability(cfg dataplane.Config, h dataplane.Health) ([]Vip, []Dip) {
	type vipKey struct {
		ip   netip.Addr
		port uint16
	}
	vipUp := map[vipKey]bool{}
	var dips []Dip
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		elig, fallback := dataplane.Eligible(r, h)
		k := vipKey{r.Frontend.IP, r.FrontendPort}
		vipUp[k] = vipUp[k] || len(elig) > 0
		up := map[string]bool{}
		if !fallback {
			for _, b := range elig {
				up[b.ID] = true
			}
		}
		port := r.BackendPort
		if port == 0 {
			port = r.FrontendPort
		}
		for _, proto := range transports(r.Protocol) {
			for _, b := range r.Backends {
				dips = append(dips, Dip{Protocol: proto, BackendPort: port, FrontendIP: r.Frontend.IP,
					FrontendPort: r.FrontendPort, BackendIP: b.IP, Up: up[b.ID]})
			}
		}
	}
	for _, n := range cfg.NATRules {
		vipUp[vipKey{n.Frontend.IP, n.FrontendPort}] = true
	}
	vips := make([]Vip, 0, len(vipUp))
	for k, up := range vipUp {
		vips = append(vips, Vip{FrontendIP: k.ip, FrontendPort: k.port, Up: up})
	}
	slices.SortFunc(vips, func(a, b Vip) int {
		return cmp.Or(a.FrontendIP.Compare(b.FrontendIP), cmp.Compare(a.FrontendPort, b.FrontendPort))
	})
	slices.SortFunc(dips, func(a, b Dip) int {
		return cmp.Or(a.FrontendIP.Compare(b.FrontendIP), cmp.Compare(a.FrontendPort, b.FrontendPort),
			cmp.Compare(a.Protocol, b.Protocol), a.BackendIP.Compare(b.BackendIP), cmp.Compare(a.BackendPort, b.BackendPort))
	})
	return vips, dips
}

// SnatAllocated returns the AllocatedSnatPorts samples of SNAT allocations:
// one per allocation and transport protocol (All counts as Tcp and Udp),
// with the size of its port block.
func SnatAllocated(out []dataplane.SNATAllocation) []SnatPorts {
	var s []SnatPorts
	for _, o := range out {
		for _, p := range transports(o.Protocol) {
			s = append(s, SnatPorts{FrontendIP: o.Frontend.IP, BackendIP: o.Backend.IP, Protocol: p,
				Allocated: int(o.PortEnd) - int(o.PortStart) + 1})
		}
	}
	return s
}

// transports returns the ProtocolType labels of a protocol: Tcp and Udp for
// All.
func transports(p dataplane.Protocol) []string {
	if p == dataplane.All {
		return []string{string(dataplane.TCP), string(dataplane.UDP)}
	}
	return []string{string(p)}
}

// ReportConfig sets the availability series (Availability) and the SNAT
// allocation series (SnatAllocated) from a data-plane Config and the probes'
// Health, for engines that do not see packets themselves (the kernel
// engine). A nil *Metrics records nothing.
func (m *Metrics) ReportConfig(cfg dataplane.Config, h dataplane.Health) {
	if m == nil {
		return
	}
	m.SetAvailability(Availability(cfg, h))
	m.SetSnatPorts(SnatAllocated(cfg.Outbound))
}
