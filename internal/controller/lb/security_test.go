package lb

import (
	"net/netip"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
)

const (
	vnetID = sub + "/providers/Microsoft.Network/virtualNetworks/vn"
	nsgSub = sub + "/providers/Microsoft.Network/networkSecurityGroups/subnet-nsg"
	nsgNIC = sub + "/providers/Microsoft.Network/networkSecurityGroups/nic-nsg"
	asgWeb = sub + "/providers/Microsoft.Network/applicationSecurityGroups/web"
)

func testNSG(id string, rules ...resource.SecurityRule) *resource.NetworkSecurityGroup {
	g := &resource.NetworkSecurityGroup{Envelope: resource.Envelope{ID: id}, Properties: resource.NSGProperties{SecurityRules: rules}}
	if err := resource.NormalizeNSG(g); err != nil {
		panic(err)
	}
	return g
}

func nsgRule(name string, prio int32, access, proto, src, dport string) resource.SecurityRule {
	return resource.SecurityRule{Name: name, Properties: resource.SecurityRuleProps{Protocol: proto, Access: access, Direction: "Inbound",
		Priority: &prio, SourceAddressPrefix: src, SourcePortRange: "*", DestinationAddressPrefix: "*", DestinationPortRange: dport}}
}

func securitySnapshot() Snapshot {
	vm0 := testInstance("0", "10.0.0.4", "127.100.0.4", 50000)
	vm1 := testInstance("1", "10.0.0.5", "127.100.0.5", 50001)
	// vm1's NIC has its own group and is a member of the web ASG.
	vm1.Model.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.NetworkSecurityGroup = &resource.SubResource{ID: nsgNIC}
	vm1.Model.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties.ApplicationSecurityGroups =
		[]resource.SubResource{{ID: asgWeb}}
	toASG := nsgRule("to-web", 300, "Allow", "Tcp", "*", "8080")
	toASG.Properties.DestinationAddressPrefix = ""
	toASG.Properties.DestinationApplicationSecurityGroups = []resource.SubResource{{ID: asgWeb}}
	return Snapshot{
		LoadBalancers: []*resource.LoadBalancer{testLB()},
		PublicIPs:     map[string]netip.Addr{resource.NormalizeRefID(pip): netip.MustParseAddr("198.18.10.1")},
		Instances:     []*resource.Instance{vm0, vm1},
		SecurityGroups: map[string]*resource.NetworkSecurityGroup{
			norm(nsgSub): testNSG(nsgSub, nsgRule("http", 100, "Allow", "Tcp", "Internet", "80"), toASG),
			// The NIC's group denies the probe (source AzureLoadBalancer) on 80.
			norm(nsgNIC): testNSG(nsgNIC, nsgRule("noprobe", 100, "Deny", "*", "AzureLoadBalancer", "80"),
				nsgRule("http", 200, "Allow", "Tcp", "*", "80")),
		},
		VirtualNetworks: []*resource.VirtualNetwork{{Envelope: resource.Envelope{ID: vnetID},
			Properties: resource.VirtualNetworkProperties{AddressSpace: resource.AddressSpace{AddressPrefixes: []string{"10.0.0.0/16"}},
				Subnets: []resource.Subnet{{ID: snet, Name: "default", Properties: resource.SubnetProperties{AddressPrefix: "10.0.0.0/24",
					NetworkSecurityGroup: &resource.SubResource{ID: nsgSub}}}}}}},
		NetworkSecurity: true,
	}
}

func TestCompileSecurity(t *testing.T) {
	snap := securitySnapshot()
	got := Compile(snap)
	checkGolden(t, "compile_security.json", got.Security)

	ix := dataplane.NewSecurityIndex(got.Security)
	vm0, vm1 := ix.InterfaceByIP(netip.MustParseAddr("10.0.0.4")), ix.Interface(got.Probes[0].Backends[1].ID)
	if vm0 == nil || vm1 == nil || vm0.SubnetGroup != norm(nsgSub) || vm0.NICGroup != "" || vm1.NICGroup != norm(nsgNIC) ||
		vm0.DialIP != netip.MustParseAddr("127.100.0.4") {
		t.Fatalf("interfaces: %+v", got.Security.Interfaces)
	}
	client := netip.MustParseAddrPort("198.19.0.1:40000")
	for _, tc := range []struct {
		name  string
		nic   *dataplane.InterfaceSecurity
		dst   string
		allow bool
	}{
		{"http from the internet", vm0, "10.0.0.4:80", true},
		{"ssh denied by default", vm0, "10.0.0.4:22", false},
		{"the ASG rule reaches its member", vm1, "10.0.0.5:8080", false}, // the NIC's group has no rule for 8080
		{"the ASG rule does not reach others", vm0, "10.0.0.4:8080", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v := ix.Evaluate(tc.nic, dataplane.Inbound, dataplane.Flow{Protocol: dataplane.ProtoTCP, Src: client, Dst: netip.MustParseAddrPort(tc.dst), Secure: true})
			if v.Allow != tc.allow {
				t.Fatalf("%+v", v)
			}
		})
	}
	// The ASG rule resolves to vm1's address and is the subnet group's
	// verdict for it.
	v := ix.Evaluate(vm1, dataplane.Inbound, dataplane.Flow{Protocol: dataplane.ProtoTCP, Src: client, Dst: netip.MustParseAddrPort("10.0.0.5:8080")})
	if v.GroupID != norm(nsgNIC) {
		t.Fatalf("vm1:8080 should pass the subnet's ASG rule and stop at the NIC's group: %+v", v)
	}
	if !got.Rules[0].Frontend.Secure || !got.NATRules[0].Frontend.Secure {
		t.Fatal("a Standard public frontend should be Secure")
	}
	if p := got.Probes[0]; len(p.Denied) != 1 || p.Denied[0] != vm1.ID {
		t.Fatalf("probe denied for %v, want only vm1 (its NIC group denies AzureLoadBalancer)", p.Denied)
	}

	// Off: nothing guarded, nothing Secure, no probe denied.
	snap.NetworkSecurity = false
	off := Compile(snap)
	if len(off.Security.Groups) != 0 || len(off.Security.Interfaces) != 0 || off.Rules[0].Frontend.Secure || off.Probes[0].Denied != nil {
		t.Fatalf("NetworkSecurity off still guards: %+v", off.Security)
	}

	// A Basic load balancer's frontend is open.
	snap = securitySnapshot()
	snap.LoadBalancers[0].SKU.Name = "Basic"
	if Compile(snap).Rules[0].Frontend.Secure {
		t.Fatal("a Basic frontend is not Secure")
	}
}
