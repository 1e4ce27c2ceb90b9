package nft

import (
	"fmt"
	"hash/fnv"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
	"nimbus/internal/maglev"
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

// slotSizes are the Maglev table sizes (primes) chosen by pool size: at
// least 100 slots per backend, at most 65537.
var slotSizes = []uint64{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537}

// SlotTableSize returns the slot-table size used for a pool of n backends
// when no size is configured.
func SlotTableSize(n int) uint64 {
	for _, s := range slotSizes {
		if s >= uint64(n)*100 {
			return s
		}
	}
	return slotSizes[len(slotSizes)-1]
}

// compileOptions are the engine settings compile needs.
type compileOptions struct {
	table     string
	uplink    string
	slotSize  func(ruleID string, backends int) uint64 // nil = SlotTableSize
	floatMark func(ip netip.Addr) uint32
	withText  bool       // render element texts (golden files, Ruleset)
	slots     *slotCache // nil: no caching
}

func ruleChainName(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("lb-%08x", h.Sum32())
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

// idleSeconds is the conntrack timeout of an idle timeout (zero means
// Azure's 4 minutes), rounded up to whole seconds.
func idleSeconds(d time.Duration) uint32 {
	if d <= 0 {
		d = dataplane.DefaultIdleTimeout
	}
	return uint32((d + time.Second - 1) / time.Second)
}

// idleName names the ct timeout object and chain of an idle timeout.
func idleName(sec uint32) string {
	if sec%60 == 0 {
		return fmt.Sprintf("idle-%dm", sec/60)
	}
	return fmt.Sprintf("idle-%ds", sec)
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
func compile(cfg dataplane.Config, health dataplane.Health, o compileOptions) *ruleset {
	rs := &ruleset{table: o.table}
	newSet := func(name, comment, keyText string, key nftables.SetDatatype) *setSpec {
		s := &setSpec{name: name, comment: comment, keyText: keyText, key: key, elems: map[string]element{}}
		rs.sets = append(rs.sets, s)
		return s
	}
	newMap := func(name, comment, keyText string, key nftables.SetDatatype, dataText string, data nftables.SetDatatype) *setSpec {
		s := newSet(name, comment, keyText, key)
		s.isMap, s.dataText, s.data = true, dataText, data
		return s
	}
	const fppText = "ipv4_addr . inet_proto . inet_service"
	frontends := newSet(setFrontends, "every frontend address; traffic no rule takes is dropped silently", "ipv4_addr", nftables.TypeIPAddr)
	publicFEs := newSet(setPublicFrontends, "public frontends: an instance reaching one is SNATed like outbound traffic", "ipv4_addr", nftables.TypeIPAddr)
	dispatch := newMap(mapDispatch, "load-balancing rules: frontend ip . protocol . port -> chain of the rule's pool and distribution", fppText, typeFPP, "verdict", nftables.TypeVerdict)
	bePort := newMap(mapBackendPort, "load-balancing rules: frontend ip . protocol . port -> backend port", fppText, typeFPP, "inet_service", nftables.TypeInetService)
	ha := newMap(mapHA, "HA-ports rules (protocol All, port 0): frontend ip -> rule chain", "ipv4_addr", nftables.TypeIPAddr, "verdict", nftables.TypeVerdict)
	natMap := newMap(mapNAT, "inbound NAT rules (v1, v2 and pools): frontend ip . protocol . port -> backend", fppText, typeFPP, "ipv4_addr . inet_service", typeIPPort)
	natMark := newMap(mapNATMark, "floating-IP inbound NAT rules: frontend ip . protocol . port -> route mark", fppText, typeFPP, "mark", nftables.TypeMark)
	ilIn := newMap(mapILPIPIn, "instance-level public IPs, inbound 1:1", "ipv4_addr", nftables.TypeIPAddr, "ipv4_addr", nftables.TypeIPAddr)
	ilOut := newMap(mapILPIPOut, "instance-level public IPs, outbound 1:1", "ipv4_addr", nftables.TypeIPAddr, "ipv4_addr", nftables.TypeIPAddr)
	snat := newMap(mapSNAT, "outbound SNAT: instance ip . protocol -> frontend ip . first port - frontend ip . last port", "ipv4_addr . inet_proto", typeIPProt, "ipv4_addr . inet_service . ipv4_addr . inet_service", typeRange)
	self := newSet(setSelf, "backend ip . the same ip: an instance whose flow came back to itself", "ipv4_addr . ipv4_addr", typeIPIP)
	toFE := newMap(mapTimeoutFE, "idle timeout of new TCP flows to a frontend port", fppText, typeFPP, "verdict", nftables.TypeVerdict)
	toHA := newMap(mapTimeoutHA, "idle timeout of new TCP flows to an HA-ports frontend", "ipv4_addr . inet_proto", typeIPProt, "verdict", nftables.TypeVerdict)
	toOut := newMap(mapTimeoutOut, "idle timeout of new outbound TCP flows", "ipv4_addr . inet_proto", typeIPProt, "verdict", nftables.TypeVerdict)
	resetFE := newSet(setResetFE, "TCP reset on idle: frontend ip . port", "ipv4_addr . inet_service", typeIPPort)
	resetBE := newSet(setResetBE, "TCP reset on idle: backend ip . port", "ipv4_addr . inet_service", typeIPPort)
	resetIdle := newMap(mapResetIdle, "TCP reset on idle: frontend ip . port -> chain that records the flow's acks", "ipv4_addr . inet_service", typeIPPort, "verdict", nftables.TypeVerdict)
	const tupleText = "ipv4_addr . inet_service . ipv4_addr . inet_service"
	c2s := newMap(mapRstC2S, "filled by packets (update, timeout = idle): the client's last ack per flow", tupleText, typeRange, "integer", nftables.TypeInteger)
	c2s.dynamic = true
	s2c := newMap(mapRstS2C, "filled by packets: the backend's last ack . its address per flow", tupleText, typeRange, "integer . ipv4_addr . inet_service", typeAckAddr)
	s2c.dynamic = true
	resetTimeouts := map[uint32]bool{}
	recordReset := func(fe netip.Addr, port uint16, idle uint32) {
		resetTimeouts[idle] = true
		resetIdle.add(element{key: cat(ipBytes(fe), portBytes(port)), verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: rstChain(idle)},
			text: o.txt("%s . %d : jump %s", fe, port, rstChain(idle))})
	}

	timeouts := map[uint32]bool{}
	jumpIdle := func(sec uint32) (*expr.Verdict, string) {
		timeouts[sec] = true
		return &expr.Verdict{Kind: expr.VerdictJump, Chain: idleName(sec)}, "jump " + idleName(sec)
	}
	fppKey := func(ip netip.Addr, p byte, port uint16) ([]byte, string) {
		return cat(ipBytes(ip), protoBytes(p), portBytes(port)), o.txt("%s . %s . %d", ip, protoName(p), port)
	}

	var ruleChains []*chainSpec
	var slotSets []*setSpec
	slotNames := map[string]bool{}
	chainNames := map[string]bool{}
	groupNames := map[string]string{} // slot group key -> map name
	rules := append([]dataplane.Rule(nil), cfg.Rules...)
	sort.Slice(rules, func(i, j int) bool { return rules[i].ID < rules[j].ID })
	for i := range rules {
		r := &rules[i]
		fe := r.Frontend.IP
		haPorts := r.FrontendPort == 0
		size := SlotTableSize(len(r.Backends))
		if o.slotSize != nil {
			size = o.slotSize(r.ID, len(r.Backends))
		}
		floating := r.FloatingIP && o.floatMark != nil
		group := slotGroupKey(r, size, floating)
		if _, ok := groupNames[group]; !ok {
			groupNames[group] = "slots-" + ruleChainName(r.ID)[3:]
		}
		slots := slotMap(r, health, o, size, floating, group, groupNames[group])
		if !slotNames[slots.name] {
			slotNames[slots.name] = true
			slotSets = append(slotSets, slots)
		}
		kind := chainAddr
		switch {
		case floating:
			kind = chainFloat
		case r.BackendPort != 0 && !haPorts:
			kind = chainPort
		}
		name := lbChainName(slots.name, r.Distribution, size, kind, haPorts)
		if !chainNames[name] {
			chainNames[name] = true
			ruleChains = append(ruleChains, ruleChain(name, r.Distribution, size, kind, haPorts, slots))
		}
		frontends.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		if !r.Frontend.Internal {
			publicFEs.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		}
		verdict := &expr.Verdict{Kind: expr.VerdictGoto, Chain: name}
		if haPorts {
			ha.add(element{key: ipBytes(fe), verdict: verdict, text: o.txt("%s : goto %s", fe, name)})
		}
		for _, p := range protos(r.Protocol) {
			if !haPorts {
				k, kt := fppKey(fe, p, r.FrontendPort)
				dispatch.add(element{key: k, verdict: verdict, text: kt + " : goto " + name})
				if r.BackendPort != 0 && (kind == chainPort || kind == chainFloat && r.BackendPort != r.FrontendPort) {
					bePort.add(element{key: k, val: portBytes(r.BackendPort)[:2], text: o.txt("%s : %d", kt, r.BackendPort)})
				}
			}
			if p != unix.IPPROTO_TCP {
				continue
			}
			v, vt := jumpIdle(idleSeconds(r.IdleTimeout))
			if haPorts {
				toHA.add(element{key: cat(ipBytes(fe), protoBytes(p)), verdict: v, text: o.txt("%s . tcp : %s", fe, vt)})
			} else {
				k, kt := fppKey(fe, p, r.FrontendPort)
				toFE.add(element{key: k, verdict: v, text: kt + " : " + vt})
			}
			if r.TCPReset && !haPorts {
				recordReset(fe, r.FrontendPort, idleSeconds(r.IdleTimeout))
				resetFE.add(element{key: cat(ipBytes(fe), portBytes(r.FrontendPort)), text: o.txt("%s . %d", fe, r.FrontendPort)})
				port := r.BackendPort
				if port == 0 {
					port = r.FrontendPort
				}
				for _, b := range r.Backends {
					resetBE.add(element{key: cat(ipBytes(dialIP(b)), portBytes(port)), text: o.txt("%s . %d", dialIP(b), port)})
				}
			}
		}
		for _, b := range r.Backends {
			ip := dialIP(b)
			self.add(element{key: cat(ipBytes(ip), ipBytes(ip)), text: o.txt("%s . %s", ip, ip)})
		}
	}

	nats := append([]dataplane.NATRule(nil), cfg.NATRules...)
	sort.Slice(nats, func(i, j int) bool { return nats[i].ID < nats[j].ID })
	for _, n := range nats {
		fe := n.Frontend.IP
		frontends.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		if !n.Frontend.Internal {
			publicFEs.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		}
		ip := dialIP(n.Backend)
		self.add(element{key: cat(ipBytes(ip), ipBytes(ip)), text: o.txt("%s . %s", ip, ip)})
		for _, p := range protos(n.Protocol) {
			k, kt := fppKey(fe, p, n.FrontendPort)
			if n.FloatingIP && o.floatMark != nil {
				m := o.floatMark(ip)
				natMark.add(element{key: k, val: markBytes(m), text: o.txt("%s : 0x%08x", kt, m)})
				natMap.add(element{key: k, val: cat(ipBytes(fe), portBytes(n.BackendPort)), text: o.txt("%s : %s . %d", kt, fe, n.BackendPort)})
			} else {
				natMap.add(element{key: k, val: cat(ipBytes(ip), portBytes(n.BackendPort)), text: o.txt("%s : %s . %d", kt, ip, n.BackendPort)})
			}
			if p == unix.IPPROTO_TCP {
				v, vt := jumpIdle(idleSeconds(n.IdleTimeout))
				toFE.add(element{key: k, verdict: v, text: kt + " : " + vt})
				if n.TCPReset {
					recordReset(fe, n.FrontendPort, idleSeconds(n.IdleTimeout))
					resetFE.add(element{key: cat(ipBytes(fe), portBytes(n.FrontendPort)), text: o.txt("%s . %d", fe, n.FrontendPort)})
					resetBE.add(element{key: cat(ipBytes(ip), portBytes(n.BackendPort)), text: o.txt("%s . %d", ip, n.BackendPort)})
				}
			}
		}
	}

	// Instance-level public IPs take precedence over LB outbound SNAT, as on Azure.
	ilpips := append([]dataplane.InstancePublicIP(nil), cfg.InstanceIPs...)
	sort.Slice(ilpips, func(i, j int) bool { return ilpips[i].PublicIP.Less(ilpips[j].PublicIP) })
	ilpipOwners := map[netip.Addr]bool{}
	for _, il := range ilpips {
		ip := dialIP(il.Backend)
		ilIn.add(element{key: ipBytes(il.PublicIP), val: ipBytes(ip), text: o.txt("%s : %s", il.PublicIP, ip)})
		ilOut.add(element{key: ipBytes(ip), val: ipBytes(il.PublicIP), text: o.txt("%s : %s", ip, il.PublicIP)})
		ilpipOwners[ip] = true
	}

	outs := append([]dataplane.SNATAllocation(nil), cfg.Outbound...)
	sort.SliceStable(outs, func(i, j int) bool { return outs[i].RuleID < outs[j].RuleID })
	for _, a := range outs {
		ip := dialIP(a.Backend)
		fe := a.Frontend.IP
		frontends.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		if !a.Frontend.Internal {
			publicFEs.add(element{key: ipBytes(fe), text: o.txt("%s", fe)})
		}
		for _, p := range protos(a.Protocol) {
			k := cat(ipBytes(ip), protoBytes(p))
			kt := o.txt("%s . %s", ip, protoName(p))
			val := cat(ipBytes(fe), portBytes(a.PortStart), ipBytes(fe), portBytes(a.PortEnd))
			snat.add(element{key: k, val: val, text: o.txt("%s : %s . %d-%s . %d", kt, fe, a.PortStart, fe, a.PortEnd)})
			if p == unix.IPPROTO_TCP {
				v, vt := jumpIdle(idleSeconds(a.IdleTimeout))
				toOut.add(element{key: k, verdict: v, text: kt + " : " + vt})
			}
		}
	}

	// ct timeout objects and their chains, one per distinct idle timeout.
	mins := make([]uint32, 0, len(timeouts))
	for m := range timeouts {
		mins = append(mins, m)
	}
	sort.Slice(mins, func(i, j int) bool { return mins[i] < mins[j] })
	var idleChains []*chainSpec
	for _, sec := range mins {
		obj := timeoutObj{name: idleName(sec), idle: sec}
		rs.objs = append(rs.objs, obj)
		idleChains = append(idleChains, &chainSpec{
			name: idleName(sec),
			rules: []ruleSpec{{
				text: o.txt("ct timeout set %q", obj.name),
				exprs: func(setRefs) []expr.Any {
					return []expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_CT_TIMEOUT, Name: obj.name}}
				},
			}},
		})
	}

	sort.Slice(slotSets, func(i, j int) bool { return slotSets[i].name < slotSets[j].name })
	rs.sets = append(rs.sets, slotSets...)
	rs.chains = append(rs.chains, baseChains(o, rs)...)
	rs.chains = append(rs.chains, idleChains...)
	rs.chains = append(rs.chains, resetChains(resetTimeouts)...)
	rs.chains = append(rs.chains, ruleChains...)
	return rs
}

// slotGroupKey identifies the rules that can share one slot map: same table
// size, same value kind, same probe view and the same backends (with their
// admin states). Such rules have the same eligible backends under every
// health snapshot, so sharing never turns a health change into a structure
// change.
func slotGroupKey(r *dataplane.Rule, size uint64, floating bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%v|%s|%s", size, floating, r.ProbeID, r.NoHealthyBackends)
	for _, be := range r.Backends {
		fmt.Fprintf(&b, "|%s=%s/%s", be.ID, dialIP(be), be.AdminState)
	}
	return b.String()
}

// slotCache keeps built slot maps by content, so a health change rebuilds
// only the maps whose eligible backends changed, and flipping back is free.
// Not safe for concurrent use (the engine's mutex guards it).
type slotCache struct {
	m     map[string]*setSpec
	elems int // elements held, bounded by maxCachedSlots
}

// maxCachedSlots bounds the cache's memory (about 16 tables of 65,537).
const maxCachedSlots = 1 << 20

func (c *slotCache) get(k string) *setSpec {
	if c == nil {
		return nil
	}
	return c.m[k]
}

func (c *slotCache) put(k string, s *setSpec) {
	if c == nil {
		return
	}
	if c.elems+s.count() > maxCachedSlots {
		clear(c.m)
		c.elems = 0
	}
	c.m[k] = s
	c.elems += s.count()
}

// slotMap builds (or reuses) the slot map of a rule: slot -> backend
// address, or slot -> route mark for floating IP.
// The map is named after the first rule (by ID) of its group, so a pool
// membership change that moves all of a group's rules together keeps the
// name and is an element update.
func slotMap(r *dataplane.Rule, health dataplane.Health, o compileOptions, size uint64, floating bool, group, name string) *setSpec {
	eligible, _ := dataplane.Eligible(r, health)
	var ck strings.Builder
	ck.WriteString(group)
	ck.WriteString("#")
	for _, b := range eligible {
		ck.WriteString(b.ID)
		ck.WriteString(",")
	}
	if floating {
		for _, b := range eligible {
			fmt.Fprintf(&ck, "%x,", o.floatMark(dialIP(b)))
		}
	}
	ck.WriteString("#" + name)
	if o.withText {
		ck.WriteString("#text")
	}
	if s := o.slots.get(ck.String()); s != nil {
		return s
	}
	slots := &setSpec{
		name:    name,
		comment: fmt.Sprintf("Maglev slots (%d) of %s and the rules sharing its pool", size, r.ID),
		keyText: "mark",
		key:     nftables.TypeMark,
		isMap:   true,
		native:  true,
		elems:   map[string]element{},
	}
	if floating {
		slots.dataText, slots.data = "mark", nftables.TypeMark
	} else {
		slots.dataText, slots.data = "ipv4_addr", nftables.TypeIPAddr
	}
	if len(eligible) > 0 {
		vals := make([][]byte, len(eligible))
		texts := make([]string, len(eligible))
		for i, b := range eligible {
			ip := dialIP(b)
			if floating {
				m := o.floatMark(ip)
				vals[i], texts[i] = markBytes(m), fmt.Sprintf("0x%08x", m)
			} else {
				vals[i], texts[i] = ipBytes(ip), ip.String()
			}
		}
		table := maglev.New(dataplane.BackendIDs(eligible), size).Slots()
		slots.dense = make([]element, len(table))
		for i, bi := range table {
			e := element{key: slotKey(i), val: vals[bi]}
			if o.withText {
				e.text = fmt.Sprintf("%d : %s", i, texts[bi])
			}
			slots.dense[i] = e
		}
	}
	o.slots.put(ck.String(), slots)
	return slots
}

// refresh replaces the flow's element (key in reg0.., value in reg4..):
// "update" would only refresh the timeout and keep the first packet's
// value, so the element is deleted and added again.
func refresh(set *nftables.Set, timeout time.Duration) []expr.Any {
	return []expr.Any{
		&expr.Dynset{SrcRegKey: reg0, SrcRegData: reg4, SetName: set.Name, SetID: set.ID, Operation: dynsetOpDelete},
		&expr.Dynset{SrcRegKey: reg0, SrcRegData: reg4, SetName: set.Name, SetID: set.ID, Operation: unix.NFT_DYNSET_OP_ADD, Timeout: timeout},
	}
}

func rstChain(sec uint32) string { return "rst-" + strings.TrimPrefix(idleName(sec), "idle-") }

// resetChains record, for every packet of a flow with TCP reset, the last
// ack each side sent, in dynamic maps whose elements expire after the idle
// timeout. The engine's reaper watches the expiry and resets both sides
// with those sequence numbers (see reset.go).
func resetChains(timeouts map[uint32]bool) []*chainSpec {
	secs := make([]uint32, 0, len(timeouts))
	for sec := range timeouts {
		secs = append(secs, sec)
	}
	sort.Slice(secs, func(i, j int) bool { return secs[i] < secs[j] })
	tuple := func() []expr.Any {
		return []expr.Any{
			&expr.Ct{Key: expr.CtKeySRC, Register: reg0, Direction: 0},
			&expr.Ct{Key: expr.CtKeyPROTOSRC, Register: reg1, Direction: 0},
			&expr.Ct{Key: expr.CtKeyDST, Register: reg2, Direction: 0},
			&expr.Ct{Key: expr.CtKeyPROTODST, Register: reg3, Direction: 0},
		}
	}
	const tupleText = "ct original ip saddr . ct original proto-src . ct original ip daddr . ct original proto-dst"
	var out []*chainSpec
	for _, sec := range secs {
		timeout := time.Duration(sec) * time.Second
		dir := func(d byte) []expr.Any {
			return []expr.Any{
				&expr.Ct{Key: expr.CtKeyDIRECTION, Register: reg0},
				&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: []byte{d}},
			}
		}
		out = append(out, &chainSpec{
			name: rstChain(sec),
			rules: []ruleSpec{
				{
					text: fmt.Sprintf("ct direction original delete @%[1]s { %[2]s } add @%[1]s { %[2]s timeout %[3]ds : tcp ack_seq }", mapRstC2S, tupleText, sec),
					exprs: func(s setRefs) []expr.Any {
						ex := append(dir(0), tuple()...)
						ex = append(ex, ackSeq(reg4))
						set := s(mapRstC2S)
						return append(ex, refresh(set, timeout)...)
					},
				},
				{
					text: fmt.Sprintf("ct direction reply delete @%[1]s { %[2]s } add @%[1]s { %[2]s timeout %[3]ds : tcp ack_seq . ip saddr . th sport }", mapRstS2C, tupleText, sec),
					exprs: func(s setRefs) []expr.Any {
						ex := append(dir(1), tuple()...)
						ex = append(ex, ackSeq(reg4), saddr(reg4+1), sport(reg4+2))
						set := s(mapRstS2C)
						return append(ex, refresh(set, timeout)...)
					},
				},
			},
		})
	}
	return out
}

// Kinds of LB chains.
const (
	chainAddr  = "addr"  // DNAT the address, keep the port (backend port 0, HA ports)
	chainPort  = "port"  // DNAT address and port (port from be_port)
	chainFloat = "float" // floating IP: route mark, port from be_port when it differs
)

// lbChainName names the chain shared by all rules with the same slot map,
// distribution, table size and kind: adding or removing such a rule is an
// element update (fe_dispatch, be_port), not a new chain.
func lbChainName(slots string, d dataplane.Distribution, size uint64, kind string, ha bool) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%d|%s|%v", slots, distName(d), size, kind, ha)
	return fmt.Sprintf("lb-%08x", h.Sum32())
}

// ruleChain builds the chain of a group of rules.
func ruleChain(name string, dist dataplane.Distribution, size uint64, kind string, ha bool, slots *setSpec) *chainSpec {
	// The hashed tuple, as Azure's loadDistribution.
	var tupleText string
	var load []expr.Any
	switch dist {
	case dataplane.SourceIP:
		tupleText = "ip saddr . ip daddr"
		load = []expr.Any{saddr(reg1), daddr(reg2)}
	case dataplane.SourceIPProtocol:
		tupleText = "ip saddr . ip daddr . meta l4proto"
		load = []expr.Any{saddr(reg1), daddr(reg2), l4proto(reg3)}
	default:
		tupleText = "ip saddr . th sport . ip daddr . th dport . meta l4proto"
		load = []expr.Any{saddr(reg1), sport(reg2), daddr(reg3), dport(reg4), l4proto(reg4 + 1)}
	}
	hashText := fmt.Sprintf("jhash %s mod %d seed 0x%08x map @%s", tupleText, size, Seed, slots.name)
	hashExprs := func(sets setRefs) []expr.Any {
		ex := append([]expr.Any(nil), load...)
		return append(ex,
			&expr.Hash{SourceRegister: reg1, DestRegister: reg0, Length: uint32(4 * len(load)), Modulus: uint32(size), Seed: Seed, Type: expr.HashTypeJenkins},
			mapTo(sets(slots.name)),
		)
	}
	// portLookup puts the rule's backend port in regPort (looked up by the
	// packet's frontend ip . protocol . port); the rule stops on a miss. It
	// leaves reg0 (the backend address) alone.
	const regPort = reg1
	portText := "ip daddr . meta l4proto . th dport map @" + mapBackendPort
	portLookup := func(sets setRefs) []expr.Any {
		set := sets(mapBackendPort)
		return []expr.Any{daddr(reg1), l4proto(reg2), dport(reg3),
			&expr.Lookup{SourceRegister: reg1, DestRegister: regPort, IsDestRegSet: true, SetName: set.Name, SetID: set.ID}}
	}

	c := &chainSpec{name: name, comment: fmt.Sprintf("%s over @%s, %s", distName(dist), slots.name, kind)}
	if ha {
		// HA ports: TCP and UDP only (the hash reads transport ports).
		c.rules = append(c.rules, ruleSpec{
			text: "meta l4proto != tcp meta l4proto != udp return",
			exprs: func(setRefs) []expr.Any {
				return []expr.Any{
					l4proto(reg0),
					&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: []byte{unix.IPPROTO_TCP}},
					&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: []byte{unix.IPPROTO_UDP}},
					&expr.Verdict{Kind: expr.VerdictReturn},
				}
			},
		})
	}
	switch kind {
	case chainFloat:
		c.rules = append(c.rules,
			ruleSpec{
				text: "meta mark set " + hashText + " ct mark set meta mark",
				exprs: func(sets setRefs) []expr.Any {
					return append(hashExprs(sets),
						&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
						&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg0},
					)
				},
			},
			ruleSpec{
				text: fmt.Sprintf("meta mark & 0x%08x == 0x%08x dnat ip to ip daddr . %s", floatMask, floatTag, portText),
				exprs: func(sets setRefs) []expr.Any {
					ex := append(markIsFloating(false), daddr(reg0))
					ex = append(ex, portLookup(sets)...)
					return append(ex,
						&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: regPort, Specified: true})
				},
			})
	case chainAddr:
		c.rules = append(c.rules, ruleSpec{
			text: "dnat ip to " + hashText,
			exprs: func(sets setRefs) []expr.Any {
				return append(hashExprs(sets), &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
			},
		})
	default:
		c.rules = append(c.rules, ruleSpec{
			text: fmt.Sprintf("dnat ip to %s . %s", hashText, portText),
			exprs: func(sets setRefs) []expr.Any {
				ex := append(hashExprs(sets), portLookup(sets)...)
				return append(ex, &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: regPort, Specified: true})
			},
		})
	}
	return c
}

func distName(d dataplane.Distribution) string {
	if d == "" {
		return string(dataplane.Default)
	}
	return string(d)
}

// baseChains are the fixed chains: every per-item value lives in the maps.
func baseChains(o compileOptions, rs *ruleset) []*chainSpec {
	fpp := func(first, second, third expr.Any) []expr.Any { return []expr.Any{first, second, third} }
	mangle := &chainSpec{
		name: chainMangle, comment: "after conntrack, before NAT: ct timeouts must be set here (priority raw is too early)",
		hook: nftables.ChainHookPrerouting, hookText: "prerouting", prio: nftables.ChainPriorityMangle, prioText: "mangle", typ: nftables.ChainTypeFilter,
		rules: []ruleSpec{
			{
				text: "ct state new ip daddr . meta l4proto . th dport vmap @" + mapTimeoutFE,
				exprs: func(s setRefs) []expr.Any {
					return append(append(ctStateIn(expr.CtStateBitNEW), fpp(daddr(reg0), l4proto(reg1), dport(reg2))...), vmap(s(mapTimeoutFE)))
				},
			},
			{
				text: "ct state new ip daddr . meta l4proto vmap @" + mapTimeoutHA,
				exprs: func(s setRefs) []expr.Any {
					return append(ctStateIn(expr.CtStateBitNEW), daddr(reg0), l4proto(reg1), vmap(s(mapTimeoutHA)))
				},
			},
			{
				text: "ct state new ip saddr . meta l4proto vmap @" + mapTimeoutOut,
				exprs: func(s setRefs) []expr.Any {
					return append(ctStateIn(expr.CtStateBitNEW), saddr(reg0), l4proto(reg1), vmap(s(mapTimeoutOut)))
				},
			},
			{
				text: "meta l4proto tcp ct state established ct original ip daddr . ct original proto-dst vmap @" + mapResetIdle,
				exprs: func(s setRefs) []expr.Any {
					ex := append(protoIs(unix.IPPROTO_TCP), ctStateIn(expr.CtStateBitESTABLISHED)...)
					return append(ex,
						&expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0},
						&expr.Ct{Key: expr.CtKeyPROTODST, Register: reg1, Direction: 0},
						vmap(s(mapResetIdle)))
				},
			},
			{
				text: fmt.Sprintf("ct direction original ct mark & 0x%08x == 0x%08x meta mark set ct mark", floatMask, floatTag),
				exprs: func(setRefs) []expr.Any {
					ex := append(ctOriginal(), markIsFloating(true)...)
					return append(ex,
						&expr.Ct{Key: expr.CtKeyMARK, Register: reg0},
						&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
					)
				},
			},
		},
	}
	pre := &chainSpec{
		name: chainPrerouting, comment: "nat sees only the first packet of a flow: conntrack pins the rest",
		hook: nftables.ChainHookPrerouting, hookText: "prerouting", prio: nftables.ChainPriorityNATDest, prioText: "dstnat", typ: nftables.ChainTypeNAT,
		rules: []ruleSpec{
			{
				text: "ip daddr . meta l4proto . th dport vmap @" + mapDispatch,
				exprs: func(s setRefs) []expr.Any {
					return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), vmap(s(mapDispatch)))
				},
			},
			{
				text:  "ip daddr vmap @" + mapHA,
				exprs: func(s setRefs) []expr.Any { return []expr.Any{daddr(reg0), vmap(s(mapHA))} },
			},
			{
				text: "meta mark set ip daddr . meta l4proto . th dport map @" + mapNATMark + " ct mark set meta mark",
				exprs: func(s setRefs) []expr.Any {
					return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), mapTo(s(mapNATMark)),
						&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
						&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg0})
				},
			},
			{
				text: "dnat ip to ip daddr . meta l4proto . th dport map @" + mapNAT,
				exprs: func(s setRefs) []expr.Any {
					return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), mapTo(s(mapNAT)),
						&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: reg1, Specified: true})
				},
			},
			{
				text: "dnat ip to ip daddr map @" + mapILPIPIn,
				exprs: func(s setRefs) []expr.Any {
					return []expr.Any{daddr(reg0), mapTo(s(mapILPIPIn)), &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0}}
				},
			},
		},
	}
	snatRange := func() expr.Any {
		return &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: reg1, RegAddrMax: reg2, RegProtoMax: reg3, Specified: true}
	}
	post := &chainSpec{
		name: chainPostrouting, comment: "outbound SNAT and hairpin",
		hook: nftables.ChainHookPostrouting, hookText: "postrouting", prio: nftables.ChainPriorityNATSource, prioText: "srcnat", typ: nftables.ChainTypeNAT,
	}
	if o.uplink != "" {
		post.rules = append(post.rules,
			ruleSpec{
				text: fmt.Sprintf("oifname %q snat ip to ip saddr map @%s", o.uplink, mapILPIPOut),
				exprs: func(s setRefs) []expr.Any {
					return append(oifname(o.uplink), saddr(reg0), mapTo(s(mapILPIPOut)), &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
				},
			},
			ruleSpec{
				text: fmt.Sprintf("oifname %q snat ip to ip saddr . meta l4proto map @%s", o.uplink, mapSNAT),
				exprs: func(s setRefs) []expr.Any {
					return append(oifname(o.uplink), saddr(reg0), l4proto(reg1), mapTo(s(mapSNAT)), snatRange())
				},
			},
		)
	}
	post.rules = append(post.rules,
		ruleSpec{
			text: "ct status dnat ct original ip daddr @" + setPublicFrontends + " snat ip to ip saddr . meta l4proto map @" + mapSNAT,
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStatusDNAT(), &expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0}, lookup(s(setPublicFrontends)))
				return append(ex, saddr(reg0), l4proto(reg1), mapTo(s(mapSNAT)), snatRange())
			},
		},
		ruleSpec{
			text: "ct status dnat ip saddr . ip daddr @" + setSelf + " snat ip to ct original ip daddr",
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStatusDNAT(), saddr(reg0), daddr(reg1), lookup(s(setSelf)))
				return append(ex, &expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0}, &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
			},
		},
	)
	resetRules := []ruleSpec{
		{
			text: "ct state invalid meta l4proto tcp ip daddr . th dport @" + setResetFE + " reject with tcp reset",
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStateIn(expr.CtStateBitINVALID), protoIs(unix.IPPROTO_TCP)...)
				return append(ex, daddr(reg0), dport(reg1), lookup(s(setResetFE)), tcpReset())
			},
		},
		{
			text: "ct state invalid meta l4proto tcp ip saddr . th sport @" + setResetBE + " reject with tcp reset",
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStateIn(expr.CtStateBitINVALID), protoIs(unix.IPPROTO_TCP)...)
				return append(ex, saddr(reg0), sport(reg1), lookup(s(setResetBE)), tcpReset())
			},
		},
		{
			text: "ct state invalid meta l4proto tcp drop",
			exprs: func(setRefs) []expr.Any {
				return append(append(ctStateIn(expr.CtStateBitINVALID), protoIs(unix.IPPROTO_TCP)...), drop())
			},
		},
	}
	fwd := &chainSpec{
		name: chainForward, comment: "unused frontend ports are dropped silently, as Azure does",
		hook: nftables.ChainHookForward, hookText: "forward", prio: nftables.ChainPriorityFilter, prioText: "filter", typ: nftables.ChainTypeFilter,
		rules: append(resetRules,
			ruleSpec{
				text: fmt.Sprintf("meta mark & 0x%08x == 0x%08x accept", floatMask, floatTag),
				exprs: func(setRefs) []expr.Any {
					return append(markIsFloating(false), accept())
				},
			},
			ruleSpec{
				text:  "ip daddr @" + setFrontends + " drop",
				exprs: func(s setRefs) []expr.Any { return []expr.Any{daddr(reg0), lookup(s(setFrontends)), drop()} },
			},
		),
	}
	in := &chainSpec{
		name: chainInput,
		hook: nftables.ChainHookInput, hookText: "input", prio: nftables.ChainPriorityFilter, prioText: "filter", typ: nftables.ChainTypeFilter,
		rules: []ruleSpec{{
			text:  "ip daddr @" + setFrontends + " drop",
			exprs: func(s setRefs) []expr.Any { return []expr.Any{daddr(reg0), lookup(s(setFrontends)), drop()} },
		}},
	}
	// Connections nimbus itself opens from its namespace (hostnet.Net's
	// dialer) reach frontends the same way.
	out := &chainSpec{
		name: chainOutput, comment: "frontends reached from nimbus's own namespace",
		hook: nftables.ChainHookOutput, hookText: "output", prio: nftables.ChainPriorityNATDest, prioText: "dstnat", typ: nftables.ChainTypeNAT,
		rules: []ruleSpec{pre.rules[0], pre.rules[1], pre.rules[3], pre.rules[4]},
	}
	return []*chainSpec{mangle, pre, out, post, fwd, in}
}
