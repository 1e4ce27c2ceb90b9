package nft

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Network security groups (Config.Security), enforced in forward on the
// first packet of every flow (ct state new; the rest of a flow follows
// conntrack, so rules are stateful), after inbound DNAT and before
// outbound SNAT, exactly as dataplane.SecurityIndex.Evaluate decides:
//
//	ct state new ip saddr vmap @nsg_out_nic      # a NIC sends: its NIC's group, then its subnet's
//	ct state new ip saddr vmap @nsg_out_subnet
//	ct state new ip daddr vmap @nsg_in_subnet    # a NIC receives: its subnet's group, then its NIC's
//	ct state new ip daddr vmap @nsg_in_nic
//	ct state new ct original ip daddr @nsg_secure ip daddr != @nsg_guarded counter name "nsg-closed" drop
//
// Each map sends a NIC's address to the chain of its group (nsgi-<hash>
// inbound, nsgo-<hash> outbound; one per group and virtual network, since
// the VirtualNetwork tag is the NIC's network). A chain has one rule per
// security rule in priority order, each ending "counter name ... return"
// (allow: on to the next group) or "... drop"; the default rules end it.
// What a rule matches lives in sets named after the rule (nsr-<hash>-s,
// -d, -sp, -dp: interval sets of prefixes and port ranges) and the network's
// vnet-<hash>, so a changed prefix, port, or ASG member is a set update; a
// changed priority, access, protocol or tag changes the chain (the table is
// replaced, atomically as always). Rules whose source is AzureLoadBalancer
// match no packet (the prober's probes do not cross forward; the compile
// step fails probes the groups deny instead, Probe.Denied). The last rule
// closes Standard frontends and Standard instance public IPs to NICs that
// no group guards.

// Set, map and counter names of network security.
const (
	setNSGGuarded    = "nsg_guarded"    // NICs a group guards
	setNSGSecure     = "nsg_secure"     // Standard public frontends and instance IPs
	setNSGPorted     = "nsg_ported"     // protocols with ports (tcp, udp)
	mapNSGInSubnet   = "nsg_in_subnet"  // NIC ip -> jump its subnet group's inbound chain
	mapNSGInNIC      = "nsg_in_nic"     // NIC ip -> jump its NIC group's inbound chain
	mapNSGOutNIC     = "nsg_out_nic"    // NIC ip -> jump its NIC group's outbound chain
	mapNSGOutSubnet  = "nsg_out_subnet" // NIC ip -> jump its subnet group's outbound chain
	counterNSGClosed = "nsg-closed"     // flows to Standard SKUs without any group
)

// securityCounter is what a counter object counts: the flows a rule
// decided.
type securityCounter struct {
	GroupID, RuleID string
	Allow           bool
}

// addSecurity adds the network security sets, chains and counters.
func (c *compiler) addSecurity(cfg dataplane.Config) {
	sec := cfg.Security
	c.counter(counterNSGClosed, securityCounter{RuleID: dataplane.NoGroupRuleID})
	for _, p := range []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP} {
		c.nsgPorted.add(element{key: []byte{p}, text: c.o.txt("%s", protoName(p))}) // a plain inet_proto key is 1 byte
	}
	for _, r := range sortedRules(cfg.Rules) {
		if r.Frontend.Secure {
			c.nsgSecure.add(c.addrElem(r.Frontend.IP))
		}
	}
	for _, n := range sortedNATRules(cfg.NATRules) {
		if n.Frontend.Secure {
			c.nsgSecure.add(c.addrElem(n.Frontend.IP))
		}
	}
	for _, ip := range cfg.InstanceIPs {
		if ip.Secure {
			c.nsgSecure.add(c.addrElem(ip.PublicIP))
		}
	}
	groups := map[string]*dataplane.SecurityGroup{}
	for i := range sec.Groups {
		groups[sec.Groups[i].ID] = &sec.Groups[i]
	}
	ifaces := append([]dataplane.InterfaceSecurity(nil), sec.Interfaces...)
	sort.Slice(ifaces, func(i, j int) bool { return ifaces[i].ID < ifaces[j].ID })
	for _, in := range ifaces {
		ip := in.DialIP
		if !ip.IsValid() {
			ip = in.IP
		}
		if !ip.Is4() && !ip.Is4In6() {
			continue
		}
		ip = ip.Unmap()
		c.nsgGuarded.add(c.addrElem(ip))
		vnet := c.vnetSet(in.VirtualNetwork)
		for _, b := range []struct {
			group string
			dir   dataplane.Direction
			m     *setSpec
		}{
			{in.SubnetGroup, dataplane.Inbound, c.nsgInSubnet}, {in.NICGroup, dataplane.Inbound, c.nsgInNIC},
			{in.NICGroup, dataplane.Outbound, c.nsgOutNIC}, {in.SubnetGroup, dataplane.Outbound, c.nsgOutSubnet},
		} {
			g := groups[b.group]
			if g == nil {
				continue
			}
			chain := c.groupChain(g, b.dir, vnet)
			b.m.add(element{key: ipBytes(ip), verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: chain},
				text: c.o.txt("%s : jump %s", ip, chain)})
		}
	}
}

// counter declares a named counter object.
func (c *compiler) counter(name string, what securityCounter) {
	if _, ok := c.rs.counters[name]; ok {
		return
	}
	c.rs.counters[name] = what
}

// vnetSet declares (once) the interval set of a virtual network's address
// space and returns its name.
func (c *compiler) vnetSet(space []netip.Prefix) string {
	var keys []string
	for _, p := range space {
		keys = append(keys, p.String())
	}
	name := "vnet-" + shortHash(strings.Join(keys, ","))
	if _, ok := c.declared[name]; !ok {
		s := c.newIntervalSet(name, "a virtual network's address space (the VirtualNetwork tag): "+strings.Join(keys, ", "), "ipv4_addr", nftables.TypeIPAddr)
		c.addPrefixes(s, space)
	}
	return name
}

// groupChain declares (once) the chain of group g in direction dir for
// NICs of the virtual network vnet, and returns its name.
func (c *compiler) groupChain(g *dataplane.SecurityGroup, dir dataplane.Direction, vnet string) string {
	prefix := "nsgi-"
	if dir == dataplane.Outbound {
		prefix = "nsgo-"
	}
	name := prefix + shortHash(g.ID+"|"+vnet)
	if _, ok := c.declared[name]; ok {
		return name
	}
	c.declared[name] = struct{}{}
	ch := &chainSpec{name: name, comment: fmt.Sprintf("%s rules of %s for NICs of %s", dir, g.ID, vnet)}
	for i := range g.Rules {
		r := &g.Rules[i]
		if r.Direction != dir {
			continue
		}
		if rs, ok := c.securityRule(name, r, vnet); ok {
			ch.rules = append(ch.rules, rs)
		}
	}
	ch.rules = append(ch.rules, ruleSpec{text: "drop", exprs: func(setRefs) []expr.Any { return []expr.Any{drop()} }})
	c.nsgChains = append(c.nsgChains, ch)
	return name
}

// securityRule renders one security rule of a group chain; ok is false for
// a rule no packet can match (an AzureLoadBalancer source or destination).
func (c *compiler) securityRule(chain string, r *dataplane.SecurityRule, vnet string) (ruleSpec, bool) {
	if r.Source.Tag == dataplane.TagAzureLoadBalancer || r.Destination.Tag == dataplane.TagAzureLoadBalancer {
		return ruleSpec{}, false
	}
	base := "nsr-" + shortHash(r.ID)
	cnt := "nsc-" + shortHash(chain+"|"+r.ID)
	c.counter(cnt, securityCounter{GroupID: groupOfRule(r.ID), RuleID: r.ID, Allow: r.Allow})
	type match struct {
		text  string
		exprs func(s setRefs) []expr.Any
	}
	var ms []match
	if r.Protocol != dataplane.ProtoAny {
		p := r.Protocol
		ms = append(ms, match{fmt.Sprintf("meta l4proto %d", p), func(setRefs) []expr.Any { return protoIs(p) }})
	} else if r.SourcePorts != nil || r.DestinationPorts != nil {
		ms = append(ms, match{"meta l4proto @" + setNSGPorted, func(s setRefs) []expr.Any {
			return []expr.Any{l4proto(reg0), lookup(s(setNSGPorted))}
		}})
	}
	for _, side := range []struct {
		set  dataplane.AddressSet
		what string
		load func(uint32) expr.Any
		sfx  string
	}{{r.Source, "saddr", saddr, "-s"}, {r.Destination, "daddr", daddr, "-d"}} {
		load := side.load
		switch side.set.Tag {
		case dataplane.TagAny:
		case dataplane.TagVirtualNetwork, dataplane.TagInternet:
			inv := side.set.Tag == dataplane.TagInternet
			op := "@"
			if inv {
				op = "!= @"
			}
			ms = append(ms, match{"ip " + side.what + " " + op + vnet, func(s setRefs) []expr.Any {
				return []expr.Any{load(reg0), lookupInv(s(vnet), inv)}
			}})
		default:
			name := base + side.sfx
			if _, ok := c.declared[name]; !ok {
				c.addPrefixes(c.newIntervalSet(name, "addresses of "+r.ID, "ipv4_addr", nftables.TypeIPAddr), side.set.Prefixes)
			}
			ms = append(ms, match{"ip " + side.what + " @" + name, func(s setRefs) []expr.Any {
				return []expr.Any{load(reg0), lookup(s(name))}
			}})
		}
	}
	for _, side := range []struct {
		ports []dataplane.PortRange
		what  string
		load  func(uint32) expr.Any
		sfx   string
	}{{r.SourcePorts, "sport", sport, "-sp"}, {r.DestinationPorts, "dport", dport, "-dp"}} {
		if side.ports == nil {
			continue
		}
		name, load := base+side.sfx, side.load
		if _, ok := c.declared[name]; !ok {
			c.addPorts(c.newIntervalSet(name, "ports of "+r.ID, "inet_service", nftables.TypeInetService), side.ports)
		}
		ms = append(ms, match{"th " + side.what + " @" + name, func(s setRefs) []expr.Any {
			return []expr.Any{load(reg0), lookup(s(name))}
		}})
	}
	verdict, kind := "return", expr.VerdictReturn
	if !r.Allow {
		verdict, kind = "drop", expr.VerdictDrop
	}
	var texts []string
	for _, m := range ms {
		texts = append(texts, m.text)
	}
	texts = append(texts, fmt.Sprintf("counter name %q %s", cnt, verdict), "# "+r.ID+fmt.Sprintf(" (%d)", r.Priority))
	return ruleSpec{text: strings.Join(texts, " "), exprs: func(s setRefs) []expr.Any {
		var out []expr.Any
		for _, m := range ms {
			out = append(out, m.exprs(s)...)
		}
		return append(out, &expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: cnt}, &expr.Verdict{Kind: kind})
	}}, true
}

// groupOfRule is the group id of a rule id (.../securityrules/x or
// .../defaultsecurityrules/x).
func groupOfRule(id string) string {
	for _, seg := range []string{"/securityrules/", "/defaultsecurityrules/"} {
		if i := strings.LastIndex(id, seg); i >= 0 {
			return id[:i]
		}
	}
	return ""
}

// securityRules are forward's network security rules (see the top of the
// file).
func securityRules() []ruleSpec {
	newState := func() []expr.Any { return ctStateIn(expr.CtStateBitNEW) }
	jump := func(m string, src bool) ruleSpec {
		what, load := "daddr", daddr
		if src {
			what, load = "saddr", saddr
		}
		return ruleSpec{text: "ct state new ip " + what + " vmap @" + m, exprs: func(s setRefs) []expr.Any {
			return append(newState(), load(reg0), vmap(s(m)))
		}}
	}
	return []ruleSpec{
		jump(mapNSGOutNIC, true), jump(mapNSGOutSubnet, true), jump(mapNSGInSubnet, false), jump(mapNSGInNIC, false),
		{
			text: "ct state new ct original ip daddr @" + setNSGSecure + " ip daddr != @" + setNSGGuarded + " counter name \"" + counterNSGClosed + "\" drop",
			exprs: func(s setRefs) []expr.Any {
				ex := append(newState(), &expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0}, lookup(s(setNSGSecure)))
				return append(ex, daddr(reg0), lookupInv(s(setNSGGuarded), true),
					&expr.Objref{Type: unix.NFT_OBJECT_COUNTER, Name: counterNSGClosed}, drop())
			},
		},
	}
}

// lookupInv matches when the key in reg0 is (inv: is not) in set s.
func lookupInv(s *nftables.Set, inv bool) expr.Any {
	return &expr.Lookup{SourceRegister: reg0, SetName: s.Name, SetID: s.ID, Invert: inv}
}

// newIntervalSet declares an interval set.
func (c *compiler) newIntervalSet(name, comment, keyText string, key nftables.SetDatatype) *setSpec {
	s := c.newSet(name, comment, keyText, key)
	s.interval = true
	c.declared[name] = struct{}{}
	return s
}

// addPrefixes fills an interval set with IPv4 prefixes, merged into
// disjoint ranges (the kernel refuses overlapping intervals).
func (c *compiler) addPrefixes(s *setSpec, ps []netip.Prefix) {
	var rs [][2]uint64
	for _, p := range ps {
		if !p.Addr().Is4() {
			continue
		}
		p = p.Masked()
		a := p.Addr().As4()
		first := uint64(binary.BigEndian.Uint32(a[:]))
		rs = append(rs, [2]uint64{first, first + (1 << (32 - p.Bits())) - 1})
	}
	for _, r := range mergeRanges(rs) {
		c.addInterval(s, r, 4, func(v uint64) string {
			var b [4]byte
			binary.BigEndian.PutUint32(b[:], uint32(v))
			return netip.AddrFrom4(b).String()
		})
	}
}

// addPorts fills an interval set with port ranges, merged.
func (c *compiler) addPorts(s *setSpec, ports []dataplane.PortRange) {
	var rs [][2]uint64
	for _, p := range ports {
		rs = append(rs, [2]uint64{uint64(p.First), uint64(p.Last)})
	}
	for _, r := range mergeRanges(rs) {
		c.addInterval(s, r, 2, func(v uint64) string { return fmt.Sprint(v) })
	}
}

// addInterval adds [first, last] as the kernel's interval encoding: an
// element at first and an end element at last+1 (none when last is the
// largest value).
func (c *compiler) addInterval(s *setSpec, r [2]uint64, width int, format func(uint64) string) {
	key := func(v uint64) []byte { // plain (not concatenated) keys: 4-byte addresses, 2-byte ports
		b := make([]byte, width)
		if width == 4 {
			binary.BigEndian.PutUint32(b, uint32(v))
		} else {
			binary.BigEndian.PutUint16(b, uint16(v))
		}
		return b
	}
	text := format(r[0])
	if r[1] != r[0] {
		text += "-" + format(r[1])
	}
	s.add(element{key: key(r[0]), text: c.o.txt("%s", text)})
	if max := uint64(1)<<(8*width) - 1; r[1] < max {
		s.addEnd(element{key: key(r[1] + 1), intervalEnd: true})
	}
}

// mergeRanges sorts inclusive ranges and merges the overlapping and the
// adjacent ones.
func mergeRanges(rs [][2]uint64) [][2]uint64 {
	sort.Slice(rs, func(i, j int) bool { return rs[i][0] < rs[j][0] })
	var out [][2]uint64
	for _, r := range rs {
		if n := len(out); n > 0 && r[0] <= out[n-1][1]+1 {
			out[n-1][1] = max(out[n-1][1], r[1])
			continue
		}
		out = append(out, r)
	}
	return out
}

func shortHash(s string) string {
	h := fnv.New32a()
	h.Write([]byte(s))
	return fmt.Sprintf("%08x", h.Sum32())
}
