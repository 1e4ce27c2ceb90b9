package dataplane_test

import (
	"net/netip"
	"testing"

	"nimbus/internal/dataplane"
)

// Address plan: the virtual network is 198.18.0.0/16 (instances in
// 198.18.1.0/24); clients outside it are 198.19.0.0/16.

var vnet = []netip.Prefix{netip.MustParsePrefix("198.18.0.0/16")}

// defaults are Azure's six default rules.
func defaults(group string) []dataplane.SecurityRule {
	any := dataplane.AddressSet{Tag: dataplane.TagAny}
	vn := dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}
	r := func(name string, prio int32, dir dataplane.Direction, allow bool, src, dst dataplane.AddressSet) dataplane.SecurityRule {
		return dataplane.SecurityRule{ID: group + "/defaultsecurityrules/" + name, Priority: prio, Direction: dir, Allow: allow, Source: src, Destination: dst}
	}
	return []dataplane.SecurityRule{
		r("allowvnetinbound", 65000, dataplane.Inbound, true, vn, vn),
		r("allowazureloadbalancerinbound", 65001, dataplane.Inbound, true, dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}, any),
		r("denyallinbound", 65500, dataplane.Inbound, false, any, any),
		r("allowvnetoutbound", 65000, dataplane.Outbound, true, vn, vn),
		r("allowinternetoutbound", 65001, dataplane.Outbound, true, any, dataplane.AddressSet{Tag: dataplane.TagInternet}),
		r("denyalloutbound", 65500, dataplane.Outbound, false, any, any),
	}
}

func group(id string, rules ...dataplane.SecurityRule) dataplane.SecurityGroup {
	for i := range rules {
		rules[i].ID = id + "/securityrules/" + rules[i].ID
	}
	all := append(rules, defaults(id)...)
	dataplane.SortSecurityRules(all)
	return dataplane.SecurityGroup{ID: id, Rules: all}
}

func pfx(s ...string) dataplane.AddressSet {
	var out dataplane.AddressSet
	for _, p := range s {
		out.Prefixes = append(out.Prefixes, netip.MustParsePrefix(p))
	}
	return out
}

func ports(a, b uint16) []dataplane.PortRange { return []dataplane.PortRange{{First: a, Last: b}} }

func tcp(src, dst string) dataplane.Flow {
	return dataplane.Flow{Protocol: dataplane.ProtoTCP, Src: netip.MustParseAddrPort(src), Dst: netip.MustParseAddrPort(dst)}
}

func TestEvaluate(t *testing.T) {
	anyAddr := dataplane.AddressSet{Tag: dataplane.TagAny}
	sec := dataplane.Security{
		Groups: []dataplane.SecurityGroup{
			// The subnet's group allows HTTP from anywhere and 8080 from
			// 198.19.1.0/24 only, denies 8081 above a later allow.
			group("subnet",
				dataplane.SecurityRule{ID: "http", Priority: 100, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
					Source: anyAddr, Destination: anyAddr, DestinationPorts: ports(80, 80)},
				dataplane.SecurityRule{ID: "alt", Priority: 110, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
					Source: pfx("198.19.1.0/24"), Destination: anyAddr, DestinationPorts: ports(8080, 8080)},
				dataplane.SecurityRule{ID: "deny8081", Priority: 120, Direction: dataplane.Inbound, Allow: false, Protocol: dataplane.ProtoAny,
					Source: anyAddr, Destination: anyAddr, DestinationPorts: ports(8081, 8081)},
				dataplane.SecurityRule{ID: "allow8081", Priority: 130, Direction: dataplane.Inbound, Allow: true,
					Source: anyAddr, Destination: anyAddr, DestinationPorts: ports(8081, 8081)},
				dataplane.SecurityRule{ID: "udp", Priority: 140, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoUDP,
					Source: dataplane.AddressSet{Tag: dataplane.TagInternet}, Destination: anyAddr, DestinationPorts: ports(5000, 5010)},
				dataplane.SecurityRule{ID: "noprobe", Priority: 150, Direction: dataplane.Inbound, Allow: false,
					Source: dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}, Destination: anyAddr, DestinationPorts: ports(9000, 9000)},
				dataplane.SecurityRule{ID: "noout", Priority: 100, Direction: dataplane.Outbound, Allow: false, Protocol: dataplane.ProtoTCP,
					Source: anyAddr, Destination: pfx("198.19.9.9/32"), DestinationPorts: ports(443, 443)},
			),
			// The NIC's group of vm1 denies HTTP from 198.19.2.0/24.
			group("nic",
				dataplane.SecurityRule{ID: "nohttp", Priority: 100, Direction: dataplane.Inbound, Allow: false,
					Source: pfx("198.19.2.0/24"), Destination: anyAddr},
				dataplane.SecurityRule{ID: "http", Priority: 200, Direction: dataplane.Inbound, Allow: true,
					Source: anyAddr, Destination: anyAddr, DestinationPorts: ports(80, 80)},
				dataplane.SecurityRule{ID: "out", Priority: 100, Direction: dataplane.Outbound, Allow: true,
					Source: anyAddr, Destination: pfx("198.19.9.9/32")},
			),
		},
		Interfaces: []dataplane.InterfaceSecurity{
			{ID: "vm0", IP: netip.MustParseAddr("198.18.1.4"), VirtualNetwork: vnet, SubnetGroup: "subnet"},
			{ID: "vm1", IP: netip.MustParseAddr("198.18.1.5"), VirtualNetwork: vnet, SubnetGroup: "subnet", NICGroup: "nic"},
			{ID: "vm2", IP: netip.MustParseAddr("198.18.1.6"), VirtualNetwork: vnet, NICGroup: "nic"},
		},
	}
	ix := dataplane.NewSecurityIndex(sec)
	probe := func(port uint16) dataplane.Flow {
		return dataplane.Flow{Protocol: dataplane.ProtoTCP, Dst: netip.AddrPortFrom(netip.MustParseAddr("198.18.1.4"), port), Probe: true}
	}
	secure := func(f dataplane.Flow) dataplane.Flow { f.Secure = true; return f }
	udp := func(f dataplane.Flow) dataplane.Flow { f.Protocol = dataplane.ProtoUDP; return f }
	icmp := func(f dataplane.Flow) dataplane.Flow { f.Protocol = dataplane.ProtoICMP; return f }
	for _, tc := range []struct {
		name  string
		nic   string
		dir   dataplane.Direction
		flow  dataplane.Flow
		allow bool
		rule  string
	}{
		{"allowed port", "vm0", dataplane.Inbound, tcp("198.19.0.1:40000", "198.18.1.4:80"), true, "subnet/securityrules/http"},
		{"default deny from outside", "vm0", dataplane.Inbound, tcp("198.19.0.1:40000", "198.18.1.4:22"), false, "subnet/defaultsecurityrules/denyallinbound"},
		{"prefix match", "vm0", dataplane.Inbound, tcp("198.19.1.7:40000", "198.18.1.4:8080"), true, "subnet/securityrules/alt"},
		{"prefix miss", "vm0", dataplane.Inbound, tcp("198.19.3.7:40000", "198.18.1.4:8080"), false, "subnet/defaultsecurityrules/denyallinbound"},
		{"priority: deny before allow", "vm0", dataplane.Inbound, tcp("198.19.0.1:1", "198.18.1.4:8081"), false, "subnet/securityrules/deny8081"},
		{"protocol mismatch", "vm0", dataplane.Inbound, udp(tcp("198.19.0.1:1", "198.18.1.4:80")), false, "subnet/defaultsecurityrules/denyallinbound"},
		{"udp range, internet tag", "vm0", dataplane.Inbound, udp(tcp("198.19.0.1:1", "198.18.1.4:5005")), true, "subnet/securityrules/udp"},
		{"internet tag excludes the vnet, vnet default allows", "vm0", dataplane.Inbound, udp(tcp("198.18.2.1:1", "198.18.1.4:5005")), true, "subnet/defaultsecurityrules/allowvnetinbound"},
		{"icmp never matches a ported rule", "vm0", dataplane.Inbound, icmp(tcp("198.19.0.1:0", "198.18.1.4:0")), false, "subnet/defaultsecurityrules/denyallinbound"},
		{"vnet to vnet by default", "vm0", dataplane.Inbound, tcp("198.18.1.5:40000", "198.18.1.4:22"), true, "subnet/defaultsecurityrules/allowvnetinbound"},
		{"probe allowed by default", "vm0", dataplane.Inbound, probe(22), true, "subnet/defaultsecurityrules/allowazureloadbalancerinbound"},
		{"probe denied by a user rule", "vm0", dataplane.Inbound, probe(9000), false, "subnet/securityrules/noprobe"},
		{"subnet allows, nic denies", "vm1", dataplane.Inbound, tcp("198.19.2.1:1", "198.18.1.5:80"), false, "nic/securityrules/nohttp"},
		{"subnet then nic allow", "vm1", dataplane.Inbound, tcp("198.19.0.1:1", "198.18.1.5:80"), true, "nic/securityrules/http"},
		{"subnet denies first", "vm1", dataplane.Inbound, tcp("198.19.0.1:1", "198.18.1.5:22"), false, "subnet/defaultsecurityrules/denyallinbound"},
		{"nic group only", "vm2", dataplane.Inbound, tcp("198.19.0.1:1", "198.18.1.6:80"), true, "nic/securityrules/http"},
		{"outbound: nic allows, subnet denies", "vm1", dataplane.Outbound, tcp("198.18.1.5:1", "198.19.9.9:443"), false, "subnet/securityrules/noout"},
		{"outbound: nic allows, subnet's default allows", "vm1", dataplane.Outbound, tcp("198.18.1.5:1", "198.19.9.9:80"), true, "subnet/defaultsecurityrules/allowinternetoutbound"},
		{"outbound internet by default", "vm0", dataplane.Outbound, tcp("198.18.1.4:1", "198.19.0.1:80"), true, "subnet/defaultsecurityrules/allowinternetoutbound"},
		{"no group: open", "vm9", dataplane.Inbound, tcp("198.19.0.1:1", "198.18.1.9:22"), true, ""},
		{"no group, standard frontend: closed", "vm9", dataplane.Inbound, secure(tcp("198.19.0.1:1", "198.18.1.9:80")), false, dataplane.NoGroupRuleID},
		{"no group, standard, outbound: open", "vm9", dataplane.Outbound, secure(tcp("198.18.1.9:1", "198.19.0.1:80")), true, ""},
		{"standard with an allowing group", "vm0", dataplane.Inbound, secure(tcp("198.19.0.1:1", "198.18.1.4:80")), true, "subnet/securityrules/http"},
		{"v4-mapped source", "vm0", dataplane.Inbound, tcp("[::ffff:198.19.1.7]:1", "198.18.1.4:8080"), true, "subnet/securityrules/alt"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ix.Evaluate(ix.Interface(tc.nic), tc.dir, tc.flow)
			if v.Allow != tc.allow || v.RuleID != tc.rule {
				t.Fatalf("Evaluate = %+v, want allow %v by %q", v, tc.allow, tc.rule)
			}
		})
	}
	if ix.InterfaceByIP(netip.MustParseAddr("::ffff:198.18.1.5")).ID != "vm1" {
		t.Fatal("InterfaceByIP does not unmap")
	}
}

// FuzzEvaluate checks invariants of Evaluate over arbitrary flows: a NIC
// without groups allows every flow but Secure inbound ones; a flow a
// group's first matching rule denies is denied whatever the other group
// says; the deciding rule, when named, matches the flow.
func FuzzEvaluate(f *testing.F) {
	f.Add(uint8(6), []byte{198, 19, 0, 1}, uint16(1000), []byte{198, 18, 1, 4}, uint16(80), false, false, true)
	f.Add(uint8(17), []byte{198, 18, 2, 2}, uint16(53), []byte{198, 18, 1, 4}, uint16(5005), true, false, false)
	f.Add(uint8(1), []byte{10, 0, 0, 1}, uint16(0), []byte{198, 18, 1, 4}, uint16(0), false, true, false)
	anyAddr := dataplane.AddressSet{Tag: dataplane.TagAny}
	sub := group("subnet",
		dataplane.SecurityRule{ID: "a", Priority: 100, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
			Source: pfx("198.19.0.0/16"), Destination: anyAddr, DestinationPorts: ports(1, 1000)},
		dataplane.SecurityRule{ID: "b", Priority: 200, Direction: dataplane.Inbound, Allow: false, Source: anyAddr, Destination: anyAddr, SourcePorts: ports(53, 53)},
		dataplane.SecurityRule{ID: "c", Priority: 300, Direction: dataplane.Outbound, Allow: false, Source: anyAddr, Destination: dataplane.AddressSet{Tag: dataplane.TagInternet}})
	nic := group("nic", dataplane.SecurityRule{ID: "d", Priority: 100, Direction: dataplane.Inbound, Allow: false, Protocol: dataplane.ProtoUDP,
		Source: dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}, Destination: anyAddr})
	sec := dataplane.Security{Groups: []dataplane.SecurityGroup{nic, sub},
		Interfaces: []dataplane.InterfaceSecurity{{ID: "vm", IP: netip.MustParseAddr("198.18.1.4"), VirtualNetwork: vnet, SubnetGroup: "subnet", NICGroup: "nic"}}}
	ix := dataplane.NewSecurityIndex(sec)
	f.Fuzz(func(t *testing.T, proto uint8, src []byte, sport uint16, dst []byte, dport uint16, probe, secure, out bool) {
		if len(src) != 4 || len(dst) != 4 {
			return
		}
		fl := dataplane.Flow{Protocol: proto, Src: netip.AddrPortFrom(netip.AddrFrom4([4]byte(src)), sport),
			Dst: netip.AddrPortFrom(netip.AddrFrom4([4]byte(dst)), dport), Probe: probe, Secure: secure}
		dir := dataplane.Inbound
		if out {
			dir = dataplane.Outbound
		}
		if v := ix.Evaluate(nil, dir, fl); v.Allow == (secure && !out) {
			t.Fatalf("no group: %+v for %+v", v, fl)
		}
		v := ix.Evaluate(ix.Interface("vm"), dir, fl)
		if v.RuleID == "" || v.GroupID == "" {
			t.Fatalf("a guarded NIC's verdict names no rule: %+v", v)
		}
		g := ix.Group(v.GroupID)
		var decider *dataplane.SecurityRule
		for i := range g.Rules {
			if g.Rules[i].ID == v.RuleID {
				decider = &g.Rules[i]
			}
		}
		if decider == nil || !decider.Matches(ix.Interface("vm"), fl) || decider.Allow != v.Allow || decider.Direction != dir {
			t.Fatalf("deciding rule %+v does not match %+v (verdict %+v)", decider, fl, v)
		}
		for _, gid := range []string{"subnet", "nic"} {
			for _, r := range ix.Group(gid).Rules {
				if r.Direction == dir && r.Matches(ix.Interface("vm"), fl) {
					if !r.Allow && v.Allow {
						t.Fatalf("group %s's first match %s denies but the verdict allows", gid, r.ID)
					}
					break
				}
			}
		}
	})
}
