package nft

import (
	"fmt"
	"hash/fnv"
	"sort"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Load-balancing rules: the first packet of a flow to a rule's frontend
// port jumps (fe_dispatch, or fe_ha for HA ports) to the chain of the
// rule's pool, which hashes the flow into the pool's Maglev slot map
// (compile_slots.go) and DNATs to the backend, with the port from be_port.

// Kinds of LB chains.
const (
	chainAddr  = "addr"  // DNAT the address, keep the port (backend port 0, HA ports)
	chainPort  = "port"  // DNAT address and port (port from be_port)
	chainFloat = "float" // floating IP: route mark, port from be_port when it differs
)

// lbChains collects the rule chains and slot maps of the LB rules. Rules
// of one pool share a slot map, and a chain too when they also share the
// distribution and kind.
type lbChains struct {
	chains     []*chainSpec // in the order of their first rule (by ID)
	chainNames map[string]bool
	slotMaps   []*setSpec
	slotNames  map[string]bool
	groupNames map[string]string // slot group key -> map name
}

func newLBChains() lbChains {
	return lbChains{chainNames: map[string]bool{}, slotNames: map[string]bool{}, groupNames: map[string]string{}}
}

// sortedSlotMaps returns the slot maps by name.
func (l *lbChains) sortedSlotMaps() []*setSpec {
	sort.Slice(l.slotMaps, func(i, j int) bool { return l.slotMaps[i].name < l.slotMaps[j].name })
	return l.slotMaps
}

// addLoadBalancing adds every LB rule: its chain and slot map (shared with
// its pool), and its elements in fe_ha (HA ports) or fe_dispatch and be_port.
func (c *compiler) addLoadBalancing(rules []dataplane.Rule, health dataplane.Health) {
	for i := range rules {
		r := &rules[i]
		fe := r.Frontend.IP
		chain, kind := c.lbChain(r, health)
		verdict := &expr.Verdict{Kind: expr.VerdictGoto, Chain: chain}
		if isHAPorts(r) {
			c.ha.add(element{key: ipBytes(fe), verdict: verdict, text: c.o.txt("%s : goto %s", fe, chain)})
			continue
		}
		for _, p := range protos(r.Protocol) {
			k, kt := c.fppKey(fe, p, r.FrontendPort)
			c.dispatch.add(element{key: k, verdict: verdict, text: kt + " : goto " + chain})
			if needsBackendPort(r, kind) {
				c.bePort.add(element{key: k, val: portBytes(r.BackendPort)[:2], text: c.o.txt("%s : %d", kt, r.BackendPort)})
			}
		}
	}
}

// isHAPorts reports an HA-ports rule (protocol All, port 0): every port of
// the frontend, the port kept.
func isHAPorts(r *dataplane.Rule) bool { return r.FrontendPort == 0 }

// needsBackendPort reports whether the rule's chain reads its port from
// be_port: a port chain, or a floating-IP chain whose port changes.
func needsBackendPort(r *dataplane.Rule, kind string) bool {
	return r.BackendPort != 0 && (kind == chainPort || kind == chainFloat && r.BackendPort != r.FrontendPort)
}

// lbChain returns the name and kind of the rule's chain, adding the chain
// and its slot map the first time a rule of their group asks.
func (c *compiler) lbChain(r *dataplane.Rule, health dataplane.Health) (string, string) {
	size := SlotTableSize(len(r.Backends))
	if c.o.slotSize != nil {
		size = c.o.slotSize(r.ID, len(r.Backends))
	}
	floating := r.FloatingIP && c.o.floatMark != nil
	slots := c.poolSlots(r, health, size, floating)
	kind := chainAddr
	switch {
	case floating:
		kind = chainFloat
	case r.BackendPort != 0 && !isHAPorts(r):
		kind = chainPort
	}
	name := lbChainName(slots.name, r.Distribution, size, kind, isHAPorts(r))
	if !c.lb.chainNames[name] {
		c.lb.chainNames[name] = true
		c.lb.chains = append(c.lb.chains, ruleChain(name, r.Distribution, size, kind, isHAPorts(r), slots))
	}
	return name, kind
}

// poolSlots returns the slot map of the rule's group, named after the
// group's first rule; the first map built under a name is kept.
func (c *compiler) poolSlots(r *dataplane.Rule, health dataplane.Health, size uint64, floating bool) *setSpec {
	group := slotGroupKey(r, size, floating)
	if _, ok := c.lb.groupNames[group]; !ok {
		c.lb.groupNames[group] = "slots-" + ruleChainName(r.ID)[3:]
	}
	slots := slotMap(r, health, c.o, size, floating, group, c.lb.groupNames[group])
	if !c.lb.slotNames[slots.name] {
		c.lb.slotNames[slots.name] = true
		c.lb.slotMaps = append(c.lb.slotMaps, slots)
	}
	return slots
}

// lbChainName names the chain shared by all rules with the same slot map,
// distribution, table size and kind: adding or removing such a rule is an
// element update (fe_dispatch, be_port), not a new chain.
func lbChainName(slots string, d dataplane.Distribution, size uint64, kind string, ha bool) string {
	h := fnv.New32a()
	fmt.Fprintf(h, "%s|%s|%d|%s|%v", slots, distName(d), size, kind, ha)
	return fmt.Sprintf("lb-%08x", h.Sum32())
}

// ruleChainName is "lb-" and the hash of a rule ID (slot maps use the hash
// of their first rule).
func ruleChainName(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return fmt.Sprintf("lb-%08x", h.Sum32())
}

func distName(d dataplane.Distribution) string {
	if d == "" {
		return string(dataplane.Default)
	}
	return string(d)
}

// exprsFunc builds part of a rule's expressions from the batch's set
// handles.
type exprsFunc func(sets setRefs) []expr.Any

// ruleChain builds the chain of a group of rules.
func ruleChain(name string, dist dataplane.Distribution, size uint64, kind string, ha bool, slots *setSpec) *chainSpec {
	c := &chainSpec{name: name, comment: fmt.Sprintf("%s over @%s, %s", distName(dist), slots.name, kind)}
	if ha {
		c.rules = append(c.rules, haPortsGuard())
	}
	hashText, hashExprs := slotLookup(dist, size, slots.name)
	switch kind {
	case chainFloat:
		c.rules = append(c.rules, floatingChainRules(hashText, hashExprs)...)
	case chainAddr:
		c.rules = append(c.rules, ruleSpec{
			text: "dnat ip to " + hashText,
			exprs: func(sets setRefs) []expr.Any {
				return append(hashExprs(sets), &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
			},
		})
	default:
		c.rules = append(c.rules, ruleSpec{
			text: fmt.Sprintf("dnat ip to %s . %s", hashText, backendPortText),
			exprs: func(sets setRefs) []expr.Any {
				ex := append(hashExprs(sets), backendPortLookup(sets)...)
				return append(ex, &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: regPort, Specified: true})
			},
		})
	}
	return c
}

// haPortsGuard lets an HA-ports chain take TCP and UDP only (the hash reads
// transport ports).
func haPortsGuard() ruleSpec {
	return ruleSpec{
		text: "meta l4proto != tcp meta l4proto != udp return",
		exprs: func(setRefs) []expr.Any {
			return []expr.Any{
				l4proto(reg0),
				&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: []byte{unix.IPPROTO_TCP}},
				&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: []byte{unix.IPPROTO_UDP}},
				&expr.Verdict{Kind: expr.VerdictReturn},
			}
		},
	}
}

// slotLookup hashes the tuple of the distribution (as Azure's
// loadDistribution) into the slot map: the backend (or route mark) ends in
// reg0.
func slotLookup(dist dataplane.Distribution, size uint64, slots string) (string, exprsFunc) {
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
	text := fmt.Sprintf("jhash %s mod %d seed 0x%08x map @%s", tupleText, size, Seed, slots)
	return text, func(sets setRefs) []expr.Any {
		ex := append([]expr.Any(nil), load...)
		return append(ex,
			&expr.Hash{SourceRegister: reg1, DestRegister: reg0, Length: uint32(4 * len(load)), Modulus: uint32(size), Seed: Seed, Type: expr.HashTypeJenkins},
			mapTo(sets(slots)),
		)
	}
}

// regPort holds the backend port that backendPortLookup finds.
const regPort = reg1

const backendPortText = "ip daddr . meta l4proto . th dport map @" + mapBackendPort

// backendPortLookup puts the rule's backend port in regPort (looked up by
// the packet's frontend ip . protocol . port); the rule stops on a miss. It
// leaves reg0 (the backend address) alone.
func backendPortLookup(sets setRefs) []expr.Any {
	set := sets(mapBackendPort)
	return []expr.Any{daddr(reg1), l4proto(reg2), dport(reg3),
		&expr.Lookup{SourceRegister: reg1, DestRegister: regPort, IsDestRegSet: true, SetName: set.Name, SetID: set.ID}}
}

// dispatchRule sends the first packet of a flow to its LB rule's chain
// (prerouting and output).
func dispatchRule() ruleSpec {
	return ruleSpec{
		text: "ip daddr . meta l4proto . th dport vmap @" + mapDispatch,
		exprs: func(s setRefs) []expr.Any {
			return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), vmap(s(mapDispatch)))
		},
	}
}

// haDispatchRule does the same for HA-ports frontends, by address alone.
func haDispatchRule() ruleSpec {
	return ruleSpec{
		text:  "ip daddr vmap @" + mapHA,
		exprs: func(s setRefs) []expr.Any { return []expr.Any{daddr(reg0), vmap(s(mapHA))} },
	}
}

// fpp lists the three loads of a frontend ip . protocol . port key.
func fpp(first, second, third expr.Any) []expr.Any { return []expr.Any{first, second, third} }
