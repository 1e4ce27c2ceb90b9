package nft

import (
	"net/netip"

	"github.com/google/nftables/expr"

	"nimbus/internal/dataplane"
)

// Frontends: every address nimbus answers for is in @frontends, so what no
// rule takes is dropped silently (forward and input), as Azure does. Public
// ones are also in @public_frontends: an instance reaching one hairpins and
// is SNATed (compile_snat.go).

// addFrontends adds the frontends of LB rules, NAT rules and outbound
// allocations, in that order.
func (c *compiler) addFrontends(rules []dataplane.Rule, nats []dataplane.NATRule, outs []dataplane.SNATAllocation) {
	for _, r := range rules {
		c.addFrontend(r.Frontend)
	}
	for _, n := range nats {
		c.addFrontend(n.Frontend)
	}
	for _, a := range outs {
		c.addFrontend(a.Frontend)
	}
}

func (c *compiler) addFrontend(fe dataplane.Frontend) {
	c.frontends.add(c.addrElem(fe.IP))
	if !fe.Internal {
		c.publicFEs.add(c.addrElem(fe.IP))
	}
}

func (c *compiler) addrElem(ip netip.Addr) element {
	return element{key: ipBytes(ip), text: c.o.txt("%s", ip)}
}

// dropFrontendsRule drops what reaches a frontend and no rule took (the
// last rule of forward and input).
func dropFrontendsRule() ruleSpec {
	return ruleSpec{
		text:  "ip daddr @" + setFrontends + " drop",
		exprs: func(s setRefs) []expr.Any { return []expr.Any{daddr(reg0), lookup(s(setFrontends)), drop()} },
	}
}
