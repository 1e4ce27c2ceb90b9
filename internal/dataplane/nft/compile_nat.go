package nft

import (
	"fmt"
	"sort"

	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

// Inbound NAT rules (v1, v2 and pools) forward one frontend port to one
// backend (nat_dnat); instance public IPs map one address to one instance,
// both ways (ilpip_dnat, ilpip_snat).

// addInboundNAT adds the NAT rules to nat_dnat, and to nat_mark when they
// use floating IP.
func (c *compiler) addInboundNAT(nats []dataplane.NATRule) {
	for _, n := range nats {
		fe, ip := n.Frontend.IP, dialIP(n.Backend)
		for _, p := range protos(n.Protocol) {
			k, kt := c.fppKey(fe, p, n.FrontendPort)
			if n.FloatingIP && c.o.floatMark != nil {
				// Floating IP: the route mark steers the packet, the
				// destination stays the frontend.
				m := c.o.floatMark(ip)
				c.natMark.add(element{key: k, val: markBytes(m), text: c.o.txt("%s : 0x%08x", kt, m)})
				c.nat.add(element{key: k, val: cat(ipBytes(fe), portBytes(n.BackendPort)), text: c.o.txt("%s : %s . %d", kt, fe, n.BackendPort)})
				continue
			}
			c.nat.add(element{key: k, val: cat(ipBytes(ip), portBytes(n.BackendPort)), text: c.o.txt("%s : %s . %d", kt, ip, n.BackendPort)})
		}
	}
}

// addInstanceIPs adds the instance public IPs, by public address. Their
// outbound rule comes before LB outbound SNAT: an instance IP takes
// precedence, as on Azure.
func (c *compiler) addInstanceIPs(in []dataplane.InstancePublicIP) {
	ilpips := append([]dataplane.InstancePublicIP(nil), in...)
	sort.Slice(ilpips, func(i, j int) bool { return ilpips[i].PublicIP.Less(ilpips[j].PublicIP) })
	for _, il := range ilpips {
		ip := dialIP(il.Backend)
		c.ilpipIn.add(element{key: ipBytes(il.PublicIP), val: ipBytes(ip), text: c.o.txt("%s : %s", il.PublicIP, ip)})
		c.ilpipOut.add(element{key: ipBytes(ip), val: ipBytes(il.PublicIP), text: c.o.txt("%s : %s", ip, il.PublicIP)})
	}
}

// natRule DNATs the first packet of a NAT rule's flow (prerouting, output).
func natRule() ruleSpec {
	return ruleSpec{
		text: "dnat ip to ip daddr . meta l4proto . th dport map @" + mapNAT,
		exprs: func(s setRefs) []expr.Any {
			return append(fpp(daddr(reg0), l4proto(reg1), dport(reg2)), mapTo(s(mapNAT)),
				&expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0, RegProtoMin: reg1, Specified: true})
		},
	}
}

// instanceIPInRule DNATs an instance public IP to its instance
// (prerouting, output).
func instanceIPInRule() ruleSpec {
	return ruleSpec{
		text: "dnat ip to ip daddr map @" + mapILPIPIn,
		exprs: func(s setRefs) []expr.Any {
			return []expr.Any{daddr(reg0), mapTo(s(mapILPIPIn)), &expr.NAT{Type: expr.NATTypeDestNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0}}
		},
	}
}

// instanceIPOutRule SNATs an instance with a public IP leaving through the
// uplink (postrouting, before outbound SNAT).
func instanceIPOutRule(uplink string) ruleSpec {
	return ruleSpec{
		text: fmt.Sprintf("oifname %q snat ip to ip saddr map @%s", uplink, mapILPIPOut),
		exprs: func(s setRefs) []expr.Any {
			return append(oifname(uplink), saddr(reg0), mapTo(s(mapILPIPOut)), &expr.NAT{Type: expr.NATTypeSourceNAT, Family: unix.NFPROTO_IPV4, RegAddrMin: reg0})
		},
	}
}
