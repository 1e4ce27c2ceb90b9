package lb

import (
	"net/netip"
	"sort"
	"strings"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
)

// ProxyProtocolTag is the load-balancer tag that turns on PROXY protocol v2
// towards backends for the userspace engine: "*" for every rule, or a
// comma-separated list of rule names. Azure has no such property (its data
// plane is pass-through); see docs/guide.md.
const ProxyProtocolTag = "nimbus-proxy-protocol"

// Snapshot is everything Compile reads: stored load balancers, public IP
// addresses and scale-set instances, at one store revision.
type Snapshot struct {
	LoadBalancers []*resource.LoadBalancer
	// PublicIPs maps a normalized public IP id to its allocated address.
	PublicIPs map[string]netip.Addr
	// Instances are the scale-set instance records; each joins the pools its
	// applied model names.
	Instances []*resource.Instance
	// ListenIP maps a frontend address to where the userspace engine listens
	// for it (an internal frontend's private IP mapped to loopback). Nil
	// means frontends listen on their own address.
	ListenIP func(netip.Addr) netip.Addr
	// SecurityGroups maps a normalized network security group id to the
	// stored group; VirtualNetworks are the stored networks (subnets name
	// their group, the address space is the VirtualNetwork tag).
	SecurityGroups  map[string]*resource.NetworkSecurityGroup
	VirtualNetworks []*resource.VirtualNetwork
	// NetworkSecurity turns on network security groups: Config.Security,
	// Secure frontends and instance IPs, denied probes. Off, the Config
	// guards nothing (every flow passes, as before NSGs were enforced).
	NetworkSecurity bool
}

// member is one backend ipconfig in a pool.
type member struct {
	backend dataplane.Backend
	inst    *resource.Instance // nil for IP-based pool members
}

// Compile turns a Snapshot into the complete data-plane Config. It is pure
// and deterministic: the same Snapshot gives the same Config, with every
// list sorted. Parts that cannot be resolved (a frontend whose public IP has
// no address, a rule without a frontend) are left out rather than failing
// the whole configuration: the API validated what it stored.
func Compile(s Snapshot) dataplane.Config {
	var cfg dataplane.Config
	pools := poolMembers(s)
	lbs := append([]*resource.LoadBalancer(nil), s.LoadBalancers...)
	sort.Slice(lbs, func(i, j int) bool { return norm(lbs[i].ID) < norm(lbs[j].ID) })
	probes := map[string]*dataplane.Probe{}
	for _, lb := range lbs {
		compileLB(&cfg, s, lb, pools, probes)
	}
	for _, in := range s.Instances {
		if in.Deleting || in.PublicIP == "" {
			continue
		}
		if addr, err := netip.ParseAddr(in.PublicIP); err == nil {
			cfg.InstanceIPs = append(cfg.InstanceIPs, dataplane.InstancePublicIP{PublicIP: addr, Backend: instanceBackend(in),
				Secure: s.NetworkSecurity && standardInstanceIP(in)})
		}
	}
	for _, p := range probes {
		sort.Slice(p.Backends, func(i, j int) bool { return p.Backends[i].ID < p.Backends[j].ID })
		cfg.Probes = append(cfg.Probes, *p)
	}
	sort.Slice(cfg.Probes, func(i, j int) bool { return cfg.Probes[i].ID < cfg.Probes[j].ID })
	sort.Slice(cfg.Rules, func(i, j int) bool { return cfg.Rules[i].ID < cfg.Rules[j].ID })
	sort.Slice(cfg.NATRules, func(i, j int) bool { return cfg.NATRules[i].ID < cfg.NATRules[j].ID })
	sort.Slice(cfg.InstanceIPs, func(i, j int) bool { return cfg.InstanceIPs[i].Backend.ID < cfg.InstanceIPs[j].Backend.ID })
	if s.NetworkSecurity {
		compileSecurity(&cfg, s)
	}
	return cfg
}

func norm(id string) string { return resource.NormalizeRefID(id) }

// standardInstanceIP reports whether an instance's public IP is of the
// Standard SKU (the model's publicIPAddressConfiguration sku; Azure's
// default for a scale set's instance IPs is Basic).
func standardInstanceIP(in *resource.Instance) bool {
	_, ipc := resource.PrimaryIPConfig(in.Model)
	if ipc == nil || ipc.Properties.PublicIPAddressConfiguration == nil || ipc.Properties.PublicIPAddressConfiguration.SKU == nil {
		return false
	}
	return strings.EqualFold(ipc.Properties.PublicIPAddressConfiguration.SKU.Name, "Standard")
}

// instanceBackend is the data-plane view of an instance's primary ipconfig.
func instanceBackend(in *resource.Instance) dataplane.Backend {
	b := dataplane.Backend{ID: norm(in.PrimaryIPConfigID())}
	b.IP, _ = netip.ParseAddr(in.PrivateIP)
	b.DialIP, _ = netip.ParseAddr(in.ProviderIP)
	if !b.DialIP.IsValid() {
		b.DialIP = b.IP
	}
	return b
}

// poolMembers maps each normalized pool id to its members, sorted by id:
// the scale-set instances in it by the one membership rule
// (resource.MemberPools, the same the API's backendIPConfigurations shows),
// and the IP-based members of each pool.
func poolMembers(s Snapshot) map[string][]member {
	out := map[string][]member{}
	for _, in := range s.Instances {
		for _, p := range resource.MemberPools(in) {
			out[p] = append(out[p], member{backend: instanceBackend(in), inst: in})
		}
	}
	for _, lb := range s.LoadBalancers {
		for _, bp := range lb.Properties.BackendAddressPools {
			for _, a := range bp.Properties.LoadBalancerBackendAddresses {
				ip, err := netip.ParseAddr(a.Properties.IPAddress)
				if err != nil {
					continue
				}
				id := norm(bp.ID) + "/loadbalancerbackendaddresses/" + strings.ToLower(a.Name)
				out[norm(bp.ID)] = append(out[norm(bp.ID)], member{backend: dataplane.Backend{
					ID: id, IP: ip, DialIP: ip, AdminState: a.Properties.AdminState}})
			}
		}
	}
	for k, ms := range out {
		sort.Slice(ms, func(i, j int) bool { return ms[i].backend.ID < ms[j].backend.ID })
		out[k] = ms
	}
	return out
}

func compileLB(cfg *dataplane.Config, s Snapshot, lb *resource.LoadBalancer, pools map[string][]member, probes map[string]*dataplane.Probe) {
	fes := map[string]dataplane.Frontend{}
	standard := lb.SKU != nil && strings.EqualFold(lb.SKU.Name, "Standard")
	for _, f := range lb.Properties.FrontendIPConfigurations {
		fe := dataplane.Frontend{ID: norm(f.ID), Internal: f.Internal(), Secure: s.NetworkSecurity && standard && !f.Internal()}
		if f.Internal() {
			fe.IP, _ = netip.ParseAddr(f.Properties.PrivateIPAddress)
		} else if f.Properties.PublicIPAddress != nil {
			fe.IP = s.PublicIPs[norm(f.Properties.PublicIPAddress.ID)]
		}
		if !fe.IP.IsValid() {
			continue
		}
		if s.ListenIP != nil {
			if l := s.ListenIP(fe.IP); l.IsValid() && l != fe.IP {
				fe.ListenIP = l
			}
		}
		fes[fe.ID] = fe
	}
	proxyRules := proxyProtocolRules(lb)
	probeByID := map[string]*resource.Probe{}
	for i := range lb.Properties.Probes {
		probeByID[norm(lb.Properties.Probes[i].ID)] = &lb.Properties.Probes[i]
	}
	reserved := map[netip.Addr][]uint16{}
	// Load-balancing rules.
	for _, r := range lb.Properties.LoadBalancingRules {
		p := r.Properties
		fe, ok := fes[norm(ref(p.FrontendIPConfiguration))]
		if !ok {
			continue
		}
		rule := dataplane.Rule{
			ID: norm(r.ID), Frontend: fe, Protocol: dataplane.Protocol(p.Protocol),
			FrontendPort: u16(p.FrontendPort), BackendPort: u16(p.BackendPort),
			Distribution: dataplane.Distribution(orDefault(p.LoadDistribution, string(dataplane.Default))),
			IdleTimeout:  minutes(p.IdleTimeoutInMinutes), TCPReset: boolv(p.EnableTCPReset),
			FloatingIP: boolv(p.EnableFloatingIP), DisableOutboundSNAT: boolv(p.DisableOutboundSnat),
			NoHealthyBackends: dataplane.AllProbedDown,
			ProxyProtocol:     proxyRules["*"] || proxyRules[strings.ToLower(r.Name)],
		}
		reserved[fe.IP] = append(reserved[fe.IP], rule.FrontendPort)
		seen := map[string]bool{}
		for _, pid := range r.RulePools() {
			for _, m := range pools[norm(pid)] {
				if !seen[m.backend.ID] {
					seen[m.backend.ID] = true
					rule.Backends = append(rule.Backends, m.backend)
				}
			}
		}
		sort.Slice(rule.Backends, func(i, j int) bool { return rule.Backends[i].ID < rule.Backends[j].ID })
		if pr := probeByID[norm(ref(p.Probe))]; pr != nil {
			rule.ProbeID = norm(pr.ID)
			rule.NoHealthyBackends = dataplane.NoHealthyBehavior(orDefault(pr.Properties.NoHealthyBackendsBehavior, string(dataplane.AllProbedDown)))
			addProbe(probes, pr, rule.Backends)
		}
		cfg.Rules = append(cfg.Rules, rule)
	}
	// Inbound NAT rules: v1 (their target comes from a NIC; nimbus scale-set
	// NICs cannot name one, so only v2 and NAT-pool rules get targets) and v2.
	for _, r := range lb.Properties.InboundNatRules {
		p := r.Properties
		fe, ok := fes[norm(ref(p.FrontendIPConfiguration))]
		if !ok {
			continue
		}
		if !r.IsV2() {
			reserved[fe.IP] = append(reserved[fe.IP], u16(p.FrontendPort))
			continue
		}
		for _, m := range pools[norm(ref(p.BackendAddressPool))] {
			port := natPort(m, norm(r.ID))
			if port == 0 {
				continue
			}
			reserved[fe.IP] = append(reserved[fe.IP], port)
			cfg.NATRules = append(cfg.NATRules, dataplane.NATRule{
				ID: norm(r.ID) + "/" + m.backend.ID, Frontend: fe, Protocol: dataplane.Protocol(p.Protocol),
				FrontendPort: port, BackendPort: u16(p.BackendPort), IdleTimeout: minutes(p.IdleTimeoutInMinutes),
				TCPReset: boolv(p.EnableTCPReset), FloatingIP: boolv(p.EnableFloatingIP), Backend: m.backend,
			})
		}
	}
	// NAT pools: one rule per instance that uses the pool, named {pool}.{id}
	// (the rules the API generates, resource.NATPoolPorts), forwarding only
	// to instances in their pools (resource.InPools).
	for _, np := range lb.Properties.InboundNatPools {
		p := np.Properties
		fe, ok := fes[norm(ref(p.FrontendIPConfiguration))]
		if !ok {
			continue
		}
		for _, in := range s.Instances {
			if !resource.InPools(in) {
				continue
			}
			port := resource.NATPoolPorts(in)[norm(np.ID)]
			if port == 0 {
				continue
			}
			reserved[fe.IP] = append(reserved[fe.IP], port)
			cfg.NATRules = append(cfg.NATRules, dataplane.NATRule{
				ID:       norm(resource.ChildID(lb.ID, resource.CollInboundNatRules, np.Name+"."+in.InstanceID)),
				Frontend: fe, Protocol: dataplane.Protocol(p.Protocol), FrontendPort: port,
				BackendPort: u16(p.BackendPort), IdleTimeout: minutes(p.IdleTimeoutInMinutes),
				TCPReset: boolv(p.EnableTCPReset), FloatingIP: boolv(p.EnableFloatingIP), Backend: instanceBackend(in),
			})
		}
	}
	compileSNAT(cfg, lb, fes, pools, reserved)
}

// natPort returns the port a pool member got from a v2 NAT rule.
func natPort(m member, ruleID string) uint16 {
	if m.inst == nil {
		return 0
	}
	return m.inst.NATPorts[ruleID]
}

func addProbe(probes map[string]*dataplane.Probe, pr *resource.Probe, backends []dataplane.Backend) {
	id := norm(pr.ID)
	p, ok := probes[id]
	if !ok {
		pp := pr.Properties
		threshold := int(deref(pp.ProbeThreshold, 1))
		if pp.ProbeThreshold == nil && pp.NumberOfProbes != nil {
			threshold = int(*pp.NumberOfProbes)
		}
		if threshold < 1 {
			threshold = 1
		}
		p = &dataplane.Probe{
			ID: id, Protocol: dataplane.ProbeProtocol(pp.Protocol), Port: u16(pp.Port), RequestPath: pp.RequestPath,
			Interval: time.Duration(deref(pp.IntervalInSeconds, 15)) * time.Second, Threshold: threshold,
			NoHealthyBackends: dataplane.NoHealthyBehavior(orDefault(pp.NoHealthyBackendsBehavior, string(dataplane.AllProbedDown))),
		}
		probes[id] = p
	}
	have := map[string]bool{}
	for _, b := range p.Backends {
		have[b.ID] = true
	}
	for _, b := range backends {
		if !have[b.ID] {
			p.Backends = append(p.Backends, b)
			have[b.ID] = true
		}
	}
}

// compileSNAT allocates outbound SNAT port blocks: explicit outbound rules
// first; then implicit SNAT through each load-balancing rule's public
// frontend for pool members that no outbound rule covers, unless the rule
// disables it. Members with an instance-level public IP get no SNAT block
// (their own IP takes precedence, as in Azure).
func compileSNAT(cfg *dataplane.Config, lb *resource.LoadBalancer, fes map[string]dataplane.Frontend, pools map[string][]member, reserved map[netip.Addr][]uint16) {
	eligible := func(ms []member) []member {
		var out []member
		for _, m := range ms {
			if m.inst == nil || m.inst.PublicIP == "" {
				out = append(out, m)
			}
		}
		return out
	}
	covered := map[string]bool{} // backend id + protocol
	for _, o := range lb.Properties.OutboundRules {
		p := o.Properties
		var feIPs []netip.Addr
		var feByIP = map[netip.Addr]dataplane.Frontend{}
		for _, f := range p.FrontendIPConfigurations {
			if fe, ok := fes[norm(f.ID)]; ok && !fe.Internal {
				feIPs = append(feIPs, fe.IP)
				feByIP[fe.IP] = fe
			}
		}
		ms := eligible(pools[norm(ref(p.BackendAddressPool))])
		ports := int(deref(p.AllocatedOutboundPorts, 0))
		if ports == 0 {
			ports = DefaultOutboundPorts(len(ms))
		}
		for _, blk := range AllocateSNAT(feIPs, len(ms), ports, reserved) {
			m := ms[blk.Backend]
			reserveBlock(reserved, blk)
			cfg.Outbound = append(cfg.Outbound, dataplane.SNATAllocation{
				RuleID: norm(o.ID), Frontend: feByIP[blk.Frontend], Protocol: dataplane.Protocol(p.Protocol),
				Backend: m.backend, PortStart: blk.Start, PortEnd: blk.End,
				IdleTimeout: minutes(p.IdleTimeoutInMinutes), TCPReset: boolv(p.EnableTCPReset),
			})
			for _, proto := range protocols(p.Protocol) {
				covered[m.backend.ID+"|"+proto] = true
			}
		}
	}
	// The pools of each of lb's rules, by normalized rule id: looked up
	// once per rule (a search per rule made compiling O(rules²)).
	rulePools := make(map[string][]string, len(lb.Properties.LoadBalancingRules))
	for _, r := range lb.Properties.LoadBalancingRules {
		rulePools[norm(r.ID)] = r.RulePools()
	}
	prefix := norm(lb.ID) + "/"
	for _, r := range cfg.Rules {
		if !strings.HasPrefix(r.ID, prefix) || r.DisableOutboundSNAT || r.Frontend.Internal {
			continue
		}
		var ms []member
		for _, b := range r.Backends {
			for _, pid := range rulePools[r.ID] {
				for _, m := range eligible(pools[norm(pid)]) {
					if m.backend.ID == b.ID && !covered[b.ID+"|"+string(r.Protocol)] {
						ms = append(ms, m)
					}
				}
			}
		}
		ms = dedupe(ms)
		ports := DefaultOutboundPorts(len(ms))
		for _, blk := range AllocateSNAT([]netip.Addr{r.Frontend.IP}, len(ms), ports, reserved) {
			m := ms[blk.Backend]
			reserveBlock(reserved, blk)
			cfg.Outbound = append(cfg.Outbound, dataplane.SNATAllocation{
				RuleID: r.ID, Frontend: r.Frontend, Protocol: r.Protocol, Backend: m.backend,
				PortStart: blk.Start, PortEnd: blk.End, IdleTimeout: dataplane.DefaultIdleTimeout,
			})
			for _, proto := range protocols(string(r.Protocol)) {
				covered[m.backend.ID+"|"+proto] = true
			}
		}
	}
}

// reserveBlock takes an allocated SNAT block out of its frontend's free
// ports, so blocks of later rules on the same frontend never overlap it.
func reserveBlock(reserved map[netip.Addr][]uint16, blk SNATBlock) {
	for q := int(blk.Start); q <= int(blk.End); q += 8 {
		reserved[blk.Frontend] = append(reserved[blk.Frontend], uint16(q))
	}
}

func dedupe(ms []member) []member {
	seen := map[string]bool{}
	out := ms[:0:0]
	for _, m := range ms {
		if !seen[m.backend.ID] {
			seen[m.backend.ID] = true
			out = append(out, m)
		}
	}
	return out
}

func protocols(p string) []string {
	if strings.EqualFold(p, string(dataplane.All)) {
		return []string{string(dataplane.TCP), string(dataplane.UDP), string(dataplane.All)}
	}
	return []string{p}
}

func proxyProtocolRules(lb *resource.LoadBalancer) map[string]bool {
	out := map[string]bool{}
	for k, v := range lb.Tags {
		if strings.EqualFold(k, ProxyProtocolTag) {
			for _, n := range strings.Split(v, ",") {
				if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
					out[n] = true
				}
			}
		}
	}
	return out
}

func ref(r *resource.SubResource) string {
	if r == nil {
		return ""
	}
	return r.ID
}

func u16(p *int32) uint16 {
	if p == nil || *p < 0 || *p > 65535 {
		return 0
	}
	return uint16(*p)
}

func deref(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

func boolv(p *bool) bool { return p != nil && *p }

func minutes(p *int32) time.Duration {
	if p == nil || *p <= 0 {
		return dataplane.DefaultIdleTimeout
	}
	return time.Duration(*p) * time.Minute
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
