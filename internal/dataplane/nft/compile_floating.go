package nft

import (
	"fmt"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// Floating IP in the table (the routes are in floating.go): the first
// packet gets a route mark floatTag|routeID, from the slot map for LB rules
// or nat_mark for NAT rules, saved in the conntrack entry; mangle restores
// it on later packets, forward lets marked packets through, and the
// destination stays the frontend (only the port may change).

// floatingChainRules are the rules of a floating-IP LB chain: the slot map
// gives a route mark instead of an address, and the DNAT keeps the
// frontend address, changing the port only when be_port has one.
func floatingChainRules(hashText string, hashExprs exprsFunc) []ruleSpec {
	return []ruleSpec{
		{
			text: "meta mark set " + hashText + " ct mark set meta mark",
			exprs: func(sets setRefs) []expr.Any {
				return append(hashExprs(sets),
					&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
					&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg0},
				)
			},
		},
		{
			text: fmt.Sprintf("meta mark & 0x%08x == 0x%08x dnat ip to ip daddr . %s", floatMask, floatTag, backendPortText),
			exprs: func(sets setRefs) []expr.Any {
				ex := append(markIsFloating(false), daddr(reg0))
				ex = append(ex, backendPortLookup(sets)...)
				return append(ex,
					&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: regPort, Specified: true})
			},
		},
	}
}

// natMarkRule marks the first packet of a floating-IP NAT rule's flow
// (prerouting); the nat_dnat element then keeps the frontend address.
func natMarkRule() ruleSpec {
	return ruleSpec{
		text: "meta mark set ip daddr . meta l4proto . th dport map @" + mapNATMark + " ct mark set meta mark",
		exprs: func(s setRefs) []expr.Any {
			return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), mapTo(s(mapNATMark)),
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
				&expr.Ct{Key: expr.CtKeyMARK, SourceRegister: true, Register: reg0})
		},
	}
}

// restoreFloatMarkRule copies the saved route mark to later packets of the
// flow (mangle, original direction only: replies route normally).
func restoreFloatMarkRule() ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("ct direction original ct mark & 0x%08x == 0x%08x meta mark set ct mark", floatMask, floatTag),
		exprs: func(setRefs) []expr.Any {
			ex := append(ctOriginal(), markIsFloating(true)...)
			return append(ex,
				&expr.Ct{Key: expr.CtKeyMARK, Register: reg0},
				&expr.Meta{Key: expr.MetaKeyMARK, SourceRegister: true, Register: reg0},
			)
		},
	}
}

// acceptFloatingRule lets marked packets through forward: their
// destination is still a frontend, which the last rule would drop.
func acceptFloatingRule() ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("meta mark & 0x%08x == 0x%08x accept", floatMask, floatTag),
		exprs: func(setRefs) []expr.Any {
			return append(markIsFloating(false), accept())
		},
	}
}
