package nft

// The compile step: a Config and a Health snapshot in, the whole table
// (a *ruleset) out. This file holds the names, the set declarations and
// the order of the concerns; each concern (frontends, load balancing,
// inbound NAT, instance public IPs, outbound SNAT and hairpin, idle
// timeouts, TCP reset, floating IP) lives in its own compile_*.go with the
// elements it adds and the rules that read them.

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Seed is the fixed jhash seed of every slot lookup. A zero seed would make
// the kernel pick a random one per rule load, so flows would hash
// differently after every reload and on every node.
const Seed uint32 = 0x6e696d62 // "nimb"

// Floating IP packets carry a mark floatTag|routeID; a policy route per
// routeID sends them to their backend with the frontend address intact.
const (
	floatMask uint32 = 0xff000000
	floatTag  uint32 = 0x4e000000
)

// Chain names. Per-rule chains and maps are named "lb-<hash of rule id>".
const (
	chainMangle      = "mangle"      // prerouting, priority mangle: idle timeouts, floating-IP marks
	chainPrerouting  = "prerouting"  // nat prerouting: frontend dispatch, inbound NAT, instance IPs
	chainOutput      = "output"      // nat output: the same dispatch for nimbus's own connections
	chainPostrouting = "postrouting" // nat postrouting: outbound SNAT, hairpin
	chainForward     = "forward"     // filter forward: silent drop of unused frontend ports, lazy TCP reset
	chainInput       = "input"       // filter input: the same for frontends that are local
)

// Set and map names.
const (
	setFrontends       = "frontends"        // every frontend address: unmatched traffic is dropped
	setPublicFrontends = "public_frontends" // public frontends: hairpin through them is SNATed
	mapDispatch        = "fe_dispatch"      // frontend ip . proto . port -> goto rule chain
	mapHA              = "fe_ha"            // frontend ip -> goto HA-ports rule chain
	mapBackendPort     = "be_port"          // frontend ip . proto . port -> backend port
	mapNAT             = "nat_dnat"         // frontend ip . proto . port -> backend ip . port
	mapNATMark         = "nat_mark"         // floating-IP NAT rules: frontend ip . proto . port -> route mark
	mapILPIPIn         = "ilpip_dnat"       // instance public ip -> instance ip
	mapILPIPOut        = "ilpip_snat"       // instance ip -> instance public ip
	mapSNAT            = "snat_ports"       // instance ip . proto -> frontend ip . port block
	setSelf            = "self_pairs"       // backend ip . same ip: hairpin to itself
	mapTimeoutFE       = "fe_timeout"       // frontend ip . proto . port -> jump idle chain (TCP)
	mapTimeoutHA       = "fe_ha_timeout"    // frontend ip . proto -> jump idle chain (HA ports, TCP)
	mapTimeoutOut      = "out_timeout"      // instance ip . proto -> jump idle chain (outbound, TCP)
	setResetFE         = "reset_fe"         // frontend ip . port of rules with TCP reset
	setResetBE         = "reset_be"         // backend ip . port of rules with TCP reset
	mapResetIdle       = "reset_idle"       // frontend ip . port of rules with TCP reset -> jump rst-<idle>
	mapRstC2S          = "rst_c2s"          // live flow (original tuple) -> the client's last ack, expires when idle
	mapRstS2C          = "rst_s2c"          // live flow -> the backend's last ack . backend ip . port
)

var (
	typeFPP     = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto, nftables.TypeInetService)
	typeIPPort  = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService)
	typeIPProt  = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetProto)
	typeIPIP    = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeIPAddr)
	typeRange   = nftables.MustConcatSetType(nftables.TypeIPAddr, nftables.TypeInetService, nftables.TypeIPAddr, nftables.TypeInetService)
	typeAckAddr = nftables.MustConcatSetType(nftables.TypeInteger, nftables.TypeIPAddr, nftables.TypeInetService)
)

// compileOptions are the engine settings compile needs.
type compileOptions struct {
	table     string
	uplink    string
	slotSize  func(ruleID string, backends int) uint64 // nil = SlotTableSize
	floatMark func(ip netip.Addr) uint32
	withText  bool       // render element texts (golden files, Ruleset)
	slots     *slotCache // nil: no caching
}

// txt formats an element's text, or returns "" when texts are not wanted
// (the apply path never needs them).
func (o compileOptions) txt(format string, args ...any) string {
	if !o.withText {
		return ""
	}
	return fmt.Sprintf(format, args...)
}

// compile turns a Config and a Health snapshot into the whole table. It is
// pure: the same inputs give the same ruleset, byte for byte.
//
// Each concern sorts its inputs (rules by ID, allocations by rule, instance
// IPs by address) and a set keeps the first element added under a key, so
// the order matters where two concerns write one set: LB rules, then NAT
// rules, then outbound allocations (frontends, self_pairs, fe_timeout,
// reset_*). LB rules also ask floatMark before NAT rules do.
func compile(cfg dataplane.Config, health dataplane.Health, o compileOptions) *ruleset {
	c := newCompiler(o)
	rules, nats, outs := sortedRules(cfg.Rules), sortedNATRules(cfg.NATRules), sortedOutbound(cfg.Outbound)
	c.addFrontends(rules, nats, outs)
	c.addLoadBalancing(rules, health)
	c.addInboundNAT(nats)
	c.addInstanceIPs(cfg.InstanceIPs)
	c.addOutboundSNAT(outs)
	c.addSelfPairs(rules, nats)
	c.addIdleTimeouts(rules, nats, outs)
	c.addTCPReset(rules, nats)
	c.addSecurity(cfg)
	return c.finish()
}

// compiler is one compile in progress: the ruleset, a handle on every
// declared set and map, and what the concerns collect for the chains built
// at the end. It is used once and is not safe for concurrent use.
type compiler struct {
	o  compileOptions
	rs *ruleset

	frontends, publicFEs        *setSpec // compile_frontends.go
	dispatch, bePort, ha        *setSpec // compile_lb.go
	nat, natMark                *setSpec // compile_nat.go (natMark: floating IP)
	ilpipIn, ilpipOut           *setSpec // compile_nat.go, instance public IPs
	snat, self                  *setSpec // compile_snat.go
	toFE, toHA, toOut           *setSpec // compile_idle.go
	resetFE, resetBE, resetIdle *setSpec // compile_reset.go
	// compile_security.go
	nsgGuarded, nsgSecure, nsgPorted               *setSpec
	nsgInSubnet, nsgInNIC, nsgOutNIC, nsgOutSubnet *setSpec
	nsgChains                                      []*chainSpec
	declared                                       map[string]struct{} // per-group chains and per-rule sets declared

	idle       map[uint32]bool // idle timeouts in use (seconds): a ct timeout object and chain each
	resetAfter map[uint32]bool // idle timeouts of flows with TCP reset: an rst chain each
	lb         lbChains        // rule chains and slot maps, shared by the rules of a pool
}

const (
	fppText       = "ipv4_addr . inet_proto . inet_service"
	tupleTypeText = "ipv4_addr . inet_service . ipv4_addr . inet_service"
)

// newCompiler declares every set and map, in the order the table lists
// them (the slot maps follow, in finish).
func newCompiler(o compileOptions) *compiler {
	c := &compiler{o: o, rs: &ruleset{table: o.table, counters: map[string]securityCounter{}}, idle: map[uint32]bool{}, resetAfter: map[uint32]bool{},
		lb: newLBChains(), declared: map[string]struct{}{}}
	c.frontends = c.newSet(setFrontends, "every frontend address; traffic no rule takes is dropped silently", "ipv4_addr", nftables.TypeIPAddr)
	c.publicFEs = c.newSet(setPublicFrontends, "public frontends: an instance reaching one is SNATed like outbound traffic", "ipv4_addr", nftables.TypeIPAddr)
	c.dispatch = c.newMap(mapDispatch, "load-balancing rules: frontend ip . protocol . port -> chain of the rule's pool and distribution", fppText, typeFPP, "verdict", nftables.TypeVerdict)
	c.bePort = c.newMap(mapBackendPort, "load-balancing rules: frontend ip . protocol . port -> backend port", fppText, typeFPP, "inet_service", nftables.TypeInetService)
	c.ha = c.newMap(mapHA, "HA-ports rules (protocol All, port 0): frontend ip -> rule chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	c.nat = c.newMap(mapNAT, "inbound NAT rules (v1, v2 and pools): frontend ip . protocol . port -> backend", fppText, typeFPP, "ipv4_addr . inet_service", typeIPPort)
	c.natMark = c.newMap(mapNATMark, "floating-IP inbound NAT rules: frontend ip . protocol . port -> route mark", fppText, typeFPP, "mark", nftables.TypeMark)
	c.ilpipIn = c.newMap(mapILPIPIn, "instance-level public IPs, inbound 1:1", "ipv4_addr", nftables.TypeIPAddr, "ipv4_addr", nftables.TypeIPAddr)
	c.ilpipOut = c.newMap(mapILPIPOut, "instance-level public IPs, outbound 1:1", "ipv4_addr", nftables.TypeIPAddr, "ipv4_addr", nftables.TypeIPAddr)
	c.snat = c.newMap(mapSNAT, "outbound SNAT: instance ip . protocol -> frontend ip . first port - frontend ip . last port", "ipv4_addr . inet_proto", typeIPProt, "ipv4_addr . inet_service . ipv4_addr . inet_service", typeRange)
	c.self = c.newSet(setSelf, "backend ip . the same ip: an instance whose flow came back to itself", "ipv4_addr . ipv4_addr", typeIPIP)
	c.toFE = c.newMap(mapTimeoutFE, "idle timeout of new TCP flows to a frontend port", fppText, typeFPP, "verdict", nftables.TypeVerdict)
	c.toHA = c.newMap(mapTimeoutHA, "idle timeout of new TCP flows to an HA-ports frontend", "ipv4_addr . inet_proto", typeIPProt, "verdict", nftables.TypeVerdict)
	c.toOut = c.newMap(mapTimeoutOut, "idle timeout of new outbound TCP flows", "ipv4_addr . inet_proto", typeIPProt, "verdict", nftables.TypeVerdict)
	c.resetFE = c.newSet(setResetFE, "TCP reset on idle: frontend ip . port", "ipv4_addr . inet_service", typeIPPort)
	c.resetBE = c.newSet(setResetBE, "TCP reset on idle: backend ip . port", "ipv4_addr . inet_service", typeIPPort)
	c.resetIdle = c.newMap(mapResetIdle, "TCP reset on idle: frontend ip . port -> chain that records the flow's acks", "ipv4_addr . inet_service", typeIPPort, "verdict", nftables.TypeVerdict)
	// Filled by the packet path (see resetChains), never by apply.
	c.newMap(mapRstC2S, "filled by packets (update, timeout = idle): the client's last ack per flow", tupleTypeText, typeRange, "integer", nftables.TypeInteger).dynamic = true
	c.newMap(mapRstS2C, "filled by packets: the backend's last ack . its address per flow", tupleTypeText, typeRange, "integer . ipv4_addr . inet_service", typeAckAddr).dynamic = true
	c.nsgGuarded = c.newSet(setNSGGuarded, "NICs a network security group guards", "ipv4_addr", nftables.TypeIPAddr)
	c.nsgSecure = c.newSet(setNSGSecure, "Standard public frontends and instance IPs: closed to NICs no group guards", "ipv4_addr", nftables.TypeIPAddr)
	c.nsgPorted = c.newSet(setNSGPorted, "protocols whose ports security rules match", "inet_proto", nftables.TypeInetProto)
	c.nsgInSubnet = c.newMap(mapNSGInSubnet, "inbound: NIC ip -> its subnet group's chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	c.nsgInNIC = c.newMap(mapNSGInNIC, "inbound: NIC ip -> its NIC group's chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	c.nsgOutNIC = c.newMap(mapNSGOutNIC, "outbound: NIC ip -> its NIC group's chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	c.nsgOutSubnet = c.newMap(mapNSGOutSubnet, "outbound: NIC ip -> its subnet group's chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	return c
}

func (c *compiler) newSet(name, comment, keyText string, key nftables.SetDatatype) *setSpec {
	s := &setSpec{name: name, comment: comment, keyText: keyText, key: key, elems: map[string]element{}}
	c.rs.sets = append(c.rs.sets, s)
	return s
}

func (c *compiler) newMap(name, comment, keyText string, key nftables.SetDatatype, dataText string, data nftables.SetDatatype) *setSpec {
	s := c.newSet(name, comment, keyText, key)
	s.isMap, s.dataText, s.data = true, dataText, data
	return s
}

// finish appends the slot maps, the ct timeout objects and the chains:
// the fixed ones, then the idle, reset and rule chains.
func (c *compiler) finish() *ruleset {
	rs := c.rs
	rs.sets = append(rs.sets, c.lb.sortedSlotMaps()...)
	idleSecs := sortedSeconds(c.idle)
	rs.objs = timeoutObjs(idleSecs)
	rs.chains = append(rs.chains, baseChains(c.o)...)
	rs.chains = append(rs.chains, idleChains(c.o, idleSecs)...)
	rs.chains = append(rs.chains, resetChains(sortedSeconds(c.resetAfter))...)
	rs.chains = append(rs.chains, c.lb.chains...)
	rs.chains = append(rs.chains, c.nsgChains...)
	return rs
}

// fppKey is the key frontend ip . protocol . port and its text.
func (c *compiler) fppKey(ip netip.Addr, p byte, port uint16) ([]byte, string) {
	return cat(ipBytes(ip), protoBytes(p), portBytes(port)), c.o.txt("%s . %s . %d", ip, protoName(p), port)
}

func sortedRules(in []dataplane.Rule) []dataplane.Rule {
	rules := append([]dataplane.Rule(nil), in...)
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	return rules
}

func sortedNATRules(in []dataplane.NATRule) []dataplane.NATRule {
	nats := append([]dataplane.NATRule(nil), in...)
	sort.Slice(nats, func(i, j int) bool { return nats[i].ID < nats[j].ID })
	return nats
}

// sortedOutbound sorts by rule, keeping the given order of a rule's
// allocations.
func sortedOutbound(in []dataplane.SNATAllocation) []dataplane.SNATAllocation {
	outs := append([]dataplane.SNATAllocation(nil), in...)
	sort.SliceStable(outs, func(i, j int) bool { return outs[i].RuleID < outs[j].RuleID })
	return outs
}

// sortedSeconds returns the keys of a set of timeouts in increasing order.
func sortedSeconds(set map[uint32]bool) []uint32 {
	secs := make([]uint32, 0, len(set))
	for sec := range set {
		secs = append(secs, sec)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	return secs
}

func dialIP(b dataplane.Backend) netip.Addr {
	if b.DialIP.IsValid() {
		return b.DialIP
	}
	return b.IP
}

func protos(p dataplane.Protocol) []byte {
	switch p {
	case dataplane.TCP:
		return []byte{unix.IPPROTO_TCP}
	case dataplane.UDP:
		return []byte{unix.IPPROTO_UDP}
	default:
		return []byte{unix.IPPROTO_TCP, unix.IPPROTO_UDP}
	}
}

// carriesTCP reports whether a rule of protocol p takes TCP flows (the
// only ones with idle timeouts and TCP reset).
func carriesTCP(p dataplane.Protocol) bool { return p != dataplane.UDP }
