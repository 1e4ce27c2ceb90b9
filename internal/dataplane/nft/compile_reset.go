package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// TCP reset on idle (enableTcpReset), the table's side; the reaper that
// sends the resets is reset.go. For flows of rules with TCP reset, mangle
// jumps (reset_idle) to a chain that records each side's last ack in
// rst_c2s / rst_s2c, elements that expire after the idle timeout. Forward
// answers a late INVALID packet of such a flow (reset_fe, reset_be) with an
// RST, and drops other INVALID TCP packets.

// addTCPReset adds the LB rules (not HA ports) and NAT rules with TCP
// reset, in that order.
func (c *compiler) addTCPReset(rules []dataplane.Rule, nats []dataplane.NATRule) {
	for i := range rules {
		r := &rules[i]
		if !r.TCPReset || isHAPorts(r) || !carriesTCP(r.Protocol) {
			continue
		}
		c.resetFrontend(r.Frontend.IP, r.FrontendPort, r.IdleTimeout)
		port := r.BackendPort
		if port == 0 {
			port = r.FrontendPort
		}
		for _, b := range r.Backends {
			c.resetBackend(dialIP(b), port)
		}
	}
	for _, n := range nats {
		if !n.TCPReset || !carriesTCP(n.Protocol) {
			continue
		}
		c.resetFrontend(n.Frontend.IP, n.FrontendPort, n.IdleTimeout)
		c.resetBackend(dialIP(n.Backend), n.BackendPort)
	}
}

// resetFrontend adds a frontend port to reset_idle (with the rst chain of
// its idle timeout) and reset_fe.
func (c *compiler) resetFrontend(fe netip.Addr, port uint16, idle time.Duration) {
	sec := idleSeconds(idle)
	c.resetAfter[sec] = true
	c.resetIdle.add(element{key: cat(ipBytes(fe), portBytes(port)), verdict: &expr.Verdict{Kind: expr.VerdictJump, Chain: rstChain(sec)},
		text: c.o.txt("%s . %d : jump %s", fe, port, rstChain(sec))})
	c.resetFE.add(element{key: cat(ipBytes(fe), portBytes(port)), text: c.o.txt("%s . %d", fe, port)})
}

func (c *compiler) resetBackend(ip netip.Addr, port uint16) {
	c.resetBE.add(element{key: cat(ipBytes(ip), portBytes(port)), text: c.o.txt("%s . %d", ip, port)})
}

func rstChain(sec uint32) string { return "rst-" + strings.TrimPrefix(idleName(sec), "idle-") }

// resetChains record, for every packet of a flow with TCP reset, the last
// ack each side sent, in dynamic maps whose elements expire after the idle
// timeout secs (one chain each). The engine's reaper watches the expiry
// and resets both sides with those sequence numbers (see reset.go).
func resetChains(secs []uint32) []*chainSpec {
	var out []*chainSpec
	for _, sec := range secs {
		out = append(out, &chainSpec{
			name:  rstChain(sec),
			rules: []ruleSpec{recordClientAck(sec), recordBackendAck(sec)},
		})
	}
	return out
}

const ctTupleText = "ct original ip saddr . ct original proto-src . ct original ip daddr . ct original proto-dst"

// recordClientAck keeps the client's last ack of the flow in rst_c2s.
func recordClientAck(sec uint32) ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("ct direction original delete @%[1]s { %[2]s } add @%[1]s { %[2]s timeout %[3]ds : tcp ack_seq }", mapRstC2S, ctTupleText, sec),
		exprs: func(s setRefs) []expr.Any {
			ex := append(ctDirection(0), ctTuple()...)
			ex = append(ex, ackSeq(reg4))
			return append(ex, refresh(s(mapRstC2S), time.Duration(sec)*time.Second)...)
		},
	}
}

// recordBackendAck keeps the backend's last ack and address in rst_s2c.
func recordBackendAck(sec uint32) ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("ct direction reply delete @%[1]s { %[2]s } add @%[1]s { %[2]s timeout %[3]ds : tcp ack_seq . ip saddr . th sport }", mapRstS2C, ctTupleText, sec),
		exprs: func(s setRefs) []expr.Any {
			ex := append(ctDirection(1), ctTuple()...)
			ex = append(ex, ackSeq(reg4), saddr(reg4+1), sport(reg4+2))
			return append(ex, refresh(s(mapRstS2C), time.Duration(sec)*time.Second)...)
		},
	}
}

// ctDirection matches ct direction d (0 original, 1 reply).
func ctDirection(d byte) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: reg0},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: []byte{d}},
	}
}

// ctTuple loads the flow's original tuple into reg0..reg3.
func ctTuple() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySRC, Register: reg0, Direction: 0},
		&expr.Ct{Key: expr.CtKeyPROTOSRC, Register: reg1, Direction: 0},
		&expr.Ct{Key: expr.CtKeyDST, Register: reg2, Direction: 0},
		&expr.Ct{Key: expr.CtKeyPROTODST, Register: reg3, Direction: 0},
	}
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

// resetIdleRule sends the packets of established TCP flows with TCP reset
// to their rst chain (mangle).
func resetIdleRule() ruleSpec {
	return ruleSpec{
		text: "meta l4proto tcp ct state established ct original ip daddr . ct original proto-dst vmap @" + mapResetIdle,
		exprs: func(s setRefs) []expr.Any {
			ex := append(protoIs(unix.IPPROTO_TCP), ctStateIn(expr.CtStateBitESTABLISHED)...)
			return append(ex,
				&expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0},
				&expr.Ct{Key: expr.CtKeyPROTODST, Register: reg1, Direction: 0},
				vmap(s(mapResetIdle)))
		},
	}
}

// invalidTCPRules answer a late (INVALID) packet of a flow with TCP reset
// with an RST, from either side, and drop other INVALID TCP packets
// (forward).
func invalidTCPRules() []ruleSpec {
	return []ruleSpec{
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
}
