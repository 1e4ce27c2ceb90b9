package nft_test

import (
	"context"
	"net/netip"
	"testing"

	"nimbus/internal/dataplane"
)

// nsgAny and friends build the groups of the kernel path's NSG tests.
var nsgAny = dataplane.AddressSet{Tag: dataplane.TagAny}

func nsgPorts(p uint16) []dataplane.PortRange { return []dataplane.PortRange{{First: p, Last: p}} }

// nsgGroup is group id with rules and Azure's six default rules.
func nsgGroup(id string, rules ...dataplane.SecurityRule) dataplane.SecurityGroup {
	vn := dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}
	all := append(rules,
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/allowvnetinbound", Priority: 65000, Direction: dataplane.Inbound, Allow: true, Source: vn, Destination: vn},
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/allowazureloadbalancerinbound", Priority: 65001, Direction: dataplane.Inbound, Allow: true,
			Source: dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}, Destination: nsgAny},
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/denyallinbound", Priority: 65500, Direction: dataplane.Inbound, Source: nsgAny, Destination: nsgAny},
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/allowvnetoutbound", Priority: 65000, Direction: dataplane.Outbound, Allow: true, Source: vn, Destination: vn},
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/allowinternetoutbound", Priority: 65001, Direction: dataplane.Outbound, Allow: true,
			Source: nsgAny, Destination: dataplane.AddressSet{Tag: dataplane.TagInternet}},
		dataplane.SecurityRule{ID: id + "/defaultsecurityrules/denyalloutbound", Priority: 65500, Direction: dataplane.Outbound, Source: nsgAny, Destination: nsgAny},
	)
	dataplane.SortSecurityRules(all)
	return dataplane.SecurityGroup{ID: id, Rules: all}
}

// TestSecurityKernelPaths: what only the kernel path carries, under one
// subnet group: instance-to-instance traffic inside the virtual network
// (allowed by AllowVnetInBound, a user rule denying :22 from the network),
// inbound NAT ports and Standard instance public IPs (closed to the
// Internet by DenyAllInBound unless a rule allows), and outbound flows (a
// user rule denying one Internet destination; the rest by
// AllowInternetOutBound). The per-rule counters count what they decided.
func TestSecurityKernelPaths(t *testing.T) {
	e := newEnv(t, 2)
	srv := e.internet(t, 7000)
	denied := e.internet(t, 7001)
	pip := netip.MustParseAddr("198.18.100.50")
	bs := e.backends()
	const g = "nsg/subnet"
	host := netip.PrefixFrom(e.Net.HostAddr(), 32)
	group := nsgGroup(g,
		dataplane.SecurityRule{ID: g + "/securityrules/no-ssh-in-vnet", Priority: 100, Direction: dataplane.Inbound, Protocol: dataplane.ProtoTCP,
			Source: dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}, Destination: nsgAny, DestinationPorts: nsgPorts(22)},
		dataplane.SecurityRule{ID: g + "/securityrules/web", Priority: 200, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
			Source: dataplane.AddressSet{Tag: dataplane.TagInternet}, Destination: nsgAny, DestinationPorts: nsgPorts(8080)},
		dataplane.SecurityRule{ID: g + "/securityrules/no-7001", Priority: 100, Direction: dataplane.Outbound, Protocol: dataplane.ProtoTCP,
			Source: nsgAny, Destination: dataplane.AddressSet{Prefixes: []netip.Prefix{host}}, DestinationPorts: nsgPorts(7001)},
	)
	var sec dataplane.Security
	sec.Groups = []dataplane.SecurityGroup{group}
	for _, b := range bs {
		sec.Interfaces = append(sec.Interfaces, dataplane.InterfaceSecurity{ID: b.ID, IP: b.IP, VirtualNetwork: []netip.Prefix{subnet}, SubnetGroup: g})
	}
	fe := publicFE(feIP)
	fe.Secure = true
	e.apply(t, dataplane.Config{
		NATRules: []dataplane.NATRule{
			{ID: "nat/ssh", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 50000, BackendPort: 22, Backend: bs[0]},
			{ID: "nat/web", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 50001, BackendPort: 8080, Backend: bs[0]},
		},
		InstanceIPs: []dataplane.InstancePublicIP{{PublicIP: pip, Backend: bs[1], Secure: true}},
		Security:    sec,
	})
	vm0, vm1 := e.vms[0], e.vms[1]
	reach := func(from, addr string) bool {
		ns := e.Host
		switch from {
		case "vm0":
			ns = vm0.ns
		case "vm1":
			ns = vm1.ns
		}
		_, err := get(context.Background(), ns, addr)
		return err == nil
	}
	for _, tc := range []struct {
		name, from, to string
		want           bool
	}{
		{"vm to vm inside the network", "vm0", hp(vm1.ip, 8080), true},
		{"vm to vm :22 denied by a user rule", "vm0", hp(vm1.ip, 22), false},
		{"NAT port to an allowed backend port", "host", hp(feIP, 50001), true},
		{"NAT port to a port only DenyAllInBound decides", "host", hp(feIP, 50000), false},
		{"instance public IP, allowed port", "host", hp(pip, 8080), true},
		{"instance public IP, other port", "host", hp(pip, 22), false},
		{"outbound to the Internet", "vm1", srv, true},
		{"outbound to a denied destination", "vm1", denied, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := reach(tc.from, tc.to); got != tc.want {
				t.Fatalf("%s -> %s: reached %v, want %v", tc.from, tc.to, got, tc.want)
			}
		})
	}
	hits, err := e.eng.SecurityHits()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]uint64{}
	for _, h := range hits {
		got[h.RuleID] += h.Flows
	}
	for _, want := range []string{g + "/securityrules/no-ssh-in-vnet", g + "/securityrules/web", g + "/securityrules/no-7001",
		g + "/defaultsecurityrules/allowvnetinbound", g + "/defaultsecurityrules/denyallinbound", g + "/defaultsecurityrules/allowinternetoutbound"} {
		if got[want] == 0 {
			t.Errorf("counter of %s is 0; all: %v", want, got)
		}
	}
}
