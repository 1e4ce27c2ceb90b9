package nft

import (
	"fmt"
	"net/netip"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Outbound SNAT and hairpin (postrouting): an instance leaving through the
// uplink is SNATed to its outbound frontend within its port block
// (snat_ports). An instance reaching a public frontend gets the same
// SNAT, and one whose flow came back to itself is SNATed to the frontend
// address (self_pairs), so replies cross nimbus again.

// addOutboundSNAT adds each allocation's port block, per protocol.
func (c *compiler) addOutboundSNAT(outs []dataplane.SNATAllocation) {
	for _, a := range outs {
		ip, fe := dialIP(a.Backend), a.Frontend.IP
		for _, p := range protos(a.Protocol) {
			k := cat(ipBytes(ip), protoBytes(p))
			kt := c.o.txt("%s . %s", ip, protoName(p))
			val := cat(ipBytes(fe), portBytes(a.PortStart), ipBytes(fe), portBytes(a.PortEnd))
			c.snat.add(element{key: k, val: val, text: c.o.txt("%s : %s . %d-%s . %d", kt, fe, a.PortStart, fe, a.PortEnd)})
		}
	}
}

// addSelfPairs adds every backend of the LB and NAT rules as "itself .
// itself".
func (c *compiler) addSelfPairs(rules []dataplane.Rule, nats []dataplane.NATRule) {
	for _, r := range rules {
		for _, b := range r.Backends {
			c.addSelfPair(dialIP(b))
		}
	}
	for _, n := range nats {
		c.addSelfPair(dialIP(n.Backend))
	}
}

func (c *compiler) addSelfPair(ip netip.Addr) {
	c.self.add(element{key: cat(ipBytes(ip), ipBytes(ip)), text: c.o.txt("%s . %s", ip, ip)})
}

// snatRange SNATs to the range in reg0..reg3: first address, first port,
// last address, last port.
func snatRange() expr.Any {
	return &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: reg1, RegAddrMax: reg2, RegProtoMax: reg3, Specified: true}
}

// outboundSNATRule SNATs an instance leaving through the uplink to its port
// block.
func outboundSNATRule(uplink string) ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("oifname %q snat ip to ip saddr . meta l4proto map @%s", uplink, mapSNAT),
		exprs: func(s setRefs) []expr.Any {
			return append(oifname(uplink), saddr(reg0), l4proto(reg1), mapTo(s(mapSNAT)), snatRange())
		},
	}
}

// hairpinRules SNAT DNATed flows: one to a public frontend with the source
// instance's port block (sources without one do not match), and one that
// came back to its own source to the frontend address.
func hairpinRules() []ruleSpec {
	return []ruleSpec{
		{
			text: "ct status dnat ct original ip daddr @" + setPublicFrontends + " snat ip to ip saddr . meta l4proto map @" + mapSNAT,
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStatusDNAT(), &expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0}, lookup(s(setPublicFrontends)))
				return append(ex, saddr(reg0), l4proto(reg1), mapTo(s(mapSNAT)), snatRange())
			},
		},
		{
			text: "ct status dnat ip saddr . ip daddr @" + setSelf + " snat ip to ct original ip daddr",
			exprs: func(s setRefs) []expr.Any {
				ex := append(ctStatusDNAT(), saddr(reg0), daddr(reg1), lookup(s(setSelf)))
				return append(ex, &expr.Ct{Key: expr.CtKeyDST, Register: reg0, Direction: 0}, &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
			},
		},
	}
}
