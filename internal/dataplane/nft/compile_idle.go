package nft

import (
	"fmt"
	"time"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Idle timeouts: one ct timeout object (and a chain that sets it) per
// distinct idle timeout; mangle jumps there for the first packet of a new
// TCP flow, by frontend port (fe_timeout), HA-ports frontend
// (fe_ha_timeout) or outbound instance (out_timeout). UDP keeps the
// kernel's timeouts.

// addIdleTimeouts adds the TCP timeouts of LB rules, NAT rules and
// outbound allocations, in that order.
func (c *compiler) addIdleTimeouts(rules []dataplane.Rule, nats []dataplane.NATRule, outs []dataplane.SNATAllocation) {
	const tcp = unix.IPPROTO_TCP
	for i := range rules {
		r := &rules[i]
		if !carriesTCP(r.Protocol) {
			continue
		}
		v, vt := c.idleJump(r.IdleTimeout)
		fe := r.Frontend.IP
		if isHAPorts(r) {
			c.toHA.add(element{key: cat(ipBytes(fe), protoBytes(tcp)), verdict: v, text: c.o.txt("%s . tcp : %s", fe, vt)})
			continue
		}
		k, kt := c.fppKey(fe, tcp, r.FrontendPort)
		c.toFE.add(element{key: k, verdict: v, text: kt + " : " + vt})
	}
	for _, n := range nats {
		if !carriesTCP(n.Protocol) {
			continue
		}
		v, vt := c.idleJump(n.IdleTimeout)
		k, kt := c.fppKey(n.Frontend.IP, tcp, n.FrontendPort)
		c.toFE.add(element{key: k, verdict: v, text: kt + " : " + vt})
	}
	for _, a := range outs {
		if !carriesTCP(a.Protocol) {
			continue
		}
		v, vt := c.idleJump(a.IdleTimeout)
		ip := dialIP(a.Backend)
		k, kt := cat(ipBytes(ip), protoBytes(tcp)), c.o.txt("%s . %s", ip, protoName(tcp))
		c.toOut.add(element{key: k, verdict: v, text: kt + " : " + vt})
	}
}

// idleJump records an idle timeout as in use and returns the verdict that
// jumps to its chain, and the verdict's text.
func (c *compiler) idleJump(d time.Duration) (*expr.Verdict, string) {
	sec := idleSeconds(d)
	c.idle[sec] = true
	return &expr.Verdict{Kind: expr.VerdictJump, Chain: idleName(sec)}, "jump " + idleName(sec)
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

// timeoutObjs are the ct timeout objects of the idle timeouts secs.
func timeoutObjs(secs []uint32) []timeoutObj {
	var objs []timeoutObj
	for _, sec := range secs {
		objs = append(objs, timeoutObj{name: idleName(sec), idle: sec})
	}
	return objs
}

// idleChains are the chains that set the ct timeout objects of secs.
func idleChains(o compileOptions, secs []uint32) []*chainSpec {
	var out []*chainSpec
	for _, sec := range secs {
		name := idleName(sec)
		out = append(out, &chainSpec{
			name: name,
			rules: []ruleSpec{{
				text: o.txt("ct timeout set %q", name),
				exprs: func(setRefs) []expr.Any {
					return []expr.Any{&expr.Objref{Type: unix.NFT_OBJECT_CT_TIMEOUT, Name: name}}
				},
			}},
		})
	}
	return out
}

// idleTimeoutRules jump to the idle chain of a new flow (mangle: after
// conntrack, before NAT), by frontend port, HA-ports frontend, or source
// instance for outbound flows.
func idleTimeoutRules() []ruleSpec {
	return []ruleSpec{
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
	}
}
