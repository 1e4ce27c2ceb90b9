package dataplane

import (
	"net/netip"
	"reflect"
	"slices"
	"sort"
)

// This file is the data-plane model of network security groups and the one
// definition of what they let through (SecurityIndex.Evaluate), which both
// engines follow: the userspace engine calls it at accept time, the kernel
// engine's compiler renders the same rules into nftables and its tests
// check the table against it.
//
// Azure's semantics, which Evaluate implements:
//   - Inbound traffic to a NIC is evaluated by the NSG of its subnet, then by
//     the NSG of the NIC; outbound traffic by the NIC's, then the subnet's.
//     Each group that is there must allow the flow.
//   - In a group, rules are tried by priority (lowest number first) and the
//     first that matches decides; the default rules (65000–65500) end every
//     direction, so a group always decides.
//   - Rules are stateful: they decide the first packet of a flow; its return
//     traffic and later packets follow (the engines keep the flow).
//   - A NIC with no group at all: outbound is open; inbound is open unless
//     the flow came through a Standard public frontend or a Standard
//     instance public IP (Flow.Secure), which are closed unless an NSG
//     allows ("secure by default"). Basic SKUs and internal frontends are
//     open.
//   - Service tags: VirtualNetwork is the NIC's virtual network address
//     space; AzureLoadBalancer is the source of health probes (Flow.Probe)
//     and matches nothing else; Internet is every address outside
//     VirtualNetwork (nimbus's hosts and clients included); "*" is
//     everything.

// Direction is the direction of a security rule and of a flow relative to
// the NIC being evaluated.
type Direction uint8

// Directions.
const (
	Inbound Direction = iota + 1
	Outbound
)

// String returns Azure's name of the direction.
func (d Direction) String() string {
	if d == Outbound {
		return "Outbound"
	}
	return "Inbound"
}

// AddressTag says what an AddressSet matches.
type AddressTag uint8

// Address tags. TagPrefixes (the zero value) matches the set's Prefixes.
const (
	TagPrefixes AddressTag = iota
	TagAny
	TagVirtualNetwork
	TagInternet
	TagAzureLoadBalancer
)

// AddressSet is the source or destination of a security rule: a service tag,
// or a list of prefixes (CIDRs, addresses, and the customer addresses of
// the members of application security groups). An empty TagPrefixes set
// matches nothing (an application security group without members, or a
// service tag of an Azure service nimbus does not have).
type AddressSet struct {
	Tag      AddressTag
	Prefixes []netip.Prefix
}

// PortRange is an inclusive range of ports.
type PortRange struct{ First, Last uint16 }

// IP protocol numbers of security rules (SecurityRule.Protocol); 0 is "*".
const (
	ProtoAny  uint8 = 0
	ProtoICMP uint8 = 1
	ProtoTCP  uint8 = 6
	ProtoUDP  uint8 = 17
	ProtoESP  uint8 = 50
	ProtoAH   uint8 = 51
)

// SecurityRule is one rule of a group, user or default.
type SecurityRule struct {
	// ID is the rule's resource id (lowercase): .../securityrules/{name} or
	// .../defaultsecurityrules/{name}.
	ID        string
	Priority  int32
	Direction Direction
	Allow     bool
	// Protocol is an IP protocol number; ProtoAny matches every protocol.
	Protocol    uint8
	Source      AddressSet
	Destination AddressSet
	// SourcePorts and DestinationPorts: nil matches every port; otherwise
	// only TCP and UDP flows whose port is in a range match.
	SourcePorts      []PortRange
	DestinationPorts []PortRange
}

// SecurityGroup is one network security group in use.
type SecurityGroup struct {
	// ID is the group's resource id (lowercase).
	ID string
	// FlushConnection: when the group's rules change, established flows
	// are evaluated again and those now denied end (Azure's
	// flushConnection). Otherwise established flows are never interrupted
	// by a rule change.
	FlushConnection bool
	// Rules are the user rules and the six default rules, sorted by
	// direction (inbound first) then priority.
	Rules []SecurityRule
}

// InterfaceSecurity binds a NIC ipconfiguration to the groups that guard it.
type InterfaceSecurity struct {
	// ID is the ipconfiguration id (lowercase), the Backend.ID of the same
	// NIC in rules.
	ID string
	// IP is the customer address; DialIP where the engines reach it (the
	// address its packets carry on the kernel path), IP when zero.
	IP     netip.Addr
	DialIP netip.Addr
	// VirtualNetwork is the address space of the NIC's virtual network (the
	// VirtualNetwork service tag).
	VirtualNetwork []netip.Prefix
	// SubnetGroup and NICGroup are the ids of the groups on the NIC's subnet
	// and on the NIC itself, "" when there is none.
	SubnetGroup string
	NICGroup    string
}

// Security is the network security part of a Config: the groups in use and
// the NICs they guard. The zero value guards nothing: every flow is
// allowed except Secure ones, which no NSG can then allow.
type Security struct {
	// Groups sorted by ID.
	Groups []SecurityGroup
	// Interfaces sorted by ID; a NIC without any group is not listed.
	Interfaces []InterfaceSecurity
}

// Flow is the first packet of a flow as an NSG sees it: after inbound DNAT
// (Dst is the NIC's customer address and backend port) and before outbound
// SNAT (Src is the NIC's customer address).
type Flow struct {
	// Protocol is the IP protocol number (ProtoTCP, ProtoUDP, ...).
	Protocol uint8
	Src, Dst netip.AddrPort
	// Probe marks a health probe: its source is the AzureLoadBalancer tag.
	Probe bool
	// Secure marks an inbound flow that came through a Standard public
	// frontend or a Standard instance public IP.
	Secure bool
}

// Verdict is the outcome of evaluating a flow.
type Verdict struct {
	Allow bool
	// GroupID and RuleID name the group and rule that decided (the first
	// denying one, or the last allowing one); "" when no group was there.
	GroupID, RuleID string
}

// Reasons why a flow without a deciding rule was denied.
const (
	// NoGroupRuleID is the Verdict.RuleID of a Secure flow to a NIC without
	// any group: Standard SKUs are closed unless an NSG allows.
	NoGroupRuleID = "standard-sku-closed-without-nsg"
)

// SecurityIndex answers Evaluate for a Security; build it with
// NewSecurityIndex. It is immutable and safe for concurrent use.
type SecurityIndex struct {
	groups map[string]*SecurityGroup
	byID   map[string]*InterfaceSecurity
	byIP   map[netip.Addr]*InterfaceSecurity
}

// NewSecurityIndex indexes s. It copies nothing: s must not change while
// the index is in use.
func NewSecurityIndex(s Security) *SecurityIndex {
	ix := &SecurityIndex{groups: map[string]*SecurityGroup{}, byID: map[string]*InterfaceSecurity{}, byIP: map[netip.Addr]*InterfaceSecurity{}}
	for i := range s.Groups {
		ix.groups[s.Groups[i].ID] = &s.Groups[i]
	}
	for i := range s.Interfaces {
		in := &s.Interfaces[i]
		ix.byID[in.ID] = in
		ix.byIP[in.IP] = in
		if in.DialIP.IsValid() {
			ix.byIP[in.DialIP] = in
		}
	}
	return ix
}

// Interface returns the guarded NIC with ipconfiguration id, or nil.
func (ix *SecurityIndex) Interface(id string) *InterfaceSecurity { return ix.byID[id] }

// InterfaceByIP returns the guarded NIC with customer (or dial) address ip,
// or nil.
func (ix *SecurityIndex) InterfaceByIP(ip netip.Addr) *InterfaceSecurity { return ix.byIP[ip.Unmap()] }

// Group returns the group with id, or nil.
func (ix *SecurityIndex) Group(id string) *SecurityGroup { return ix.groups[id] }

// Evaluate decides flow f in direction dir for the NIC nic (nil: a NIC
// that no group guards). It is the one definition of NSG semantics (see
// the top of this file).
func (ix *SecurityIndex) Evaluate(nic *InterfaceSecurity, dir Direction, f Flow) Verdict {
	f.Src = netip.AddrPortFrom(f.Src.Addr().Unmap(), f.Src.Port())
	f.Dst = netip.AddrPortFrom(f.Dst.Addr().Unmap(), f.Dst.Port())
	var order []string
	if nic != nil {
		order = []string{nic.SubnetGroup, nic.NICGroup}
		if dir == Outbound {
			order = []string{nic.NICGroup, nic.SubnetGroup}
		}
	}
	var v Verdict
	decided := false
	for _, gid := range order {
		if gid == "" {
			continue
		}
		g := ix.groups[gid]
		if g == nil {
			continue
		}
		decided = true
		r := firstMatch(g, nic, dir, f)
		v = Verdict{Allow: r != nil && r.Allow, GroupID: g.ID}
		if r != nil {
			v.RuleID = r.ID
		}
		if !v.Allow {
			return v
		}
	}
	if decided {
		return v
	}
	if dir == Inbound && f.Secure {
		return Verdict{RuleID: NoGroupRuleID}
	}
	return Verdict{Allow: true}
}

// firstMatch returns the rule of g that decides f, or nil (a group without
// default rules that nothing matched: denied).
func firstMatch(g *SecurityGroup, nic *InterfaceSecurity, dir Direction, f Flow) *SecurityRule {
	for i := range g.Rules {
		r := &g.Rules[i]
		if r.Direction == dir && r.Matches(nic, f) {
			return r
		}
	}
	return nil
}

// Matches reports whether r matches flow f on NIC nic (whose virtual network
// resolves the VirtualNetwork and Internet tags; nil: no virtual network).
// Direction is not checked.
func (r *SecurityRule) Matches(nic *InterfaceSecurity, f Flow) bool {
	if r.Protocol != ProtoAny && r.Protocol != f.Protocol {
		return false
	}
	ported := f.Protocol == ProtoTCP || f.Protocol == ProtoUDP
	if (r.SourcePorts != nil || r.DestinationPorts != nil) && !ported {
		return false
	}
	if !inPorts(r.SourcePorts, f.Src.Port()) || !inPorts(r.DestinationPorts, f.Dst.Port()) {
		return false
	}
	var vnet []netip.Prefix
	if nic != nil {
		vnet = nic.VirtualNetwork
	}
	return r.Source.matches(f.Src.Addr(), f.Probe, vnet) && r.Destination.matches(f.Dst.Addr(), false, vnet)
}

func inPorts(rs []PortRange, p uint16) bool {
	if rs == nil {
		return true
	}
	for _, r := range rs {
		if p >= r.First && p <= r.Last {
			return true
		}
	}
	return false
}

// matches reports whether address a (probe: the AzureLoadBalancer source,
// which has no address of its own) is in the set.
func (s AddressSet) matches(a netip.Addr, probe bool, vnet []netip.Prefix) bool {
	switch s.Tag {
	case TagAny:
		return true
	case TagAzureLoadBalancer:
		return probe
	case TagVirtualNetwork:
		return !probe && inPrefixes(vnet, a)
	case TagInternet:
		return !probe && !inPrefixes(vnet, a)
	default:
		return !probe && inPrefixes(s.Prefixes, a)
	}
}

func inPrefixes(ps []netip.Prefix, a netip.Addr) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// SortSecurityRules sorts rules by direction (inbound first) then priority,
// the order Evaluate tries them in.
func SortSecurityRules(rules []SecurityRule) {
	sort.SliceStable(rules, func(i, j int) bool {
		if rules[i].Direction != rules[j].Direction {
			return rules[i].Direction < rules[j].Direction
		}
		return rules[i].Priority < rules[j].Priority
	})
}

// Clone returns a deep copy of s (engines keep no reference into a Config).
func (s Security) Clone() Security {
	out := Security{Groups: make([]SecurityGroup, len(s.Groups)), Interfaces: make([]InterfaceSecurity, len(s.Interfaces))}
	for i, g := range s.Groups {
		g.Rules = slices.Clone(g.Rules)
		for j := range g.Rules {
			r := &g.Rules[j]
			r.Source.Prefixes, r.Destination.Prefixes = slices.Clone(r.Source.Prefixes), slices.Clone(r.Destination.Prefixes)
			r.SourcePorts, r.DestinationPorts = slices.Clone(r.SourcePorts), slices.Clone(r.DestinationPorts)
		}
		out.Groups[i] = g
	}
	for i, in := range s.Interfaces {
		in.VirtualNetwork = slices.Clone(in.VirtualNetwork)
		out.Interfaces[i] = in
	}
	return out
}

// Empty reports whether s guards nothing.
func (s Security) Empty() bool { return len(s.Groups) == 0 && len(s.Interfaces) == 0 }

// FlushedGroups returns the ids of the groups of cur with flushConnection
// whose rules differ from old's (or that were added, or whose
// flushConnection was just turned on: Azure's "initial enablement will
// trigger re-evaluation"): an engine evaluates the established flows of
// their NICs again and ends those now denied.
func FlushedGroups(old, cur Security) map[string]bool {
	prev := map[string]*SecurityGroup{}
	for i := range old.Groups {
		prev[old.Groups[i].ID] = &old.Groups[i]
	}
	out := map[string]bool{}
	for i := range cur.Groups {
		g := &cur.Groups[i]
		if o := prev[g.ID]; g.FlushConnection && (o == nil || !o.FlushConnection || !reflect.DeepEqual(o.Rules, g.Rules)) {
			out[g.ID] = true
		}
	}
	return out
}
