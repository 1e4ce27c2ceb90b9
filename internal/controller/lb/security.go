package lb

import (
	"net/netip"
	"sort"
	"strings"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
)

// compileSecurity fills cfg.Security from the groups the snapshot's
// instances use (on their subnet and on their primary NIC configuration),
// marks Standard public frontends and Standard instance public IPs Secure,
// and lists the probe targets whose groups deny the AzureLoadBalancer
// source (Probe.Denied). It runs after the rest of Compile.
func compileSecurity(cfg *dataplane.Config, s Snapshot) {
	subnets := subnetFacts(s.VirtualNetworks)
	members := asgMembers(s.Instances)
	used := map[string]bool{}
	for _, in := range s.Instances {
		if in.Deleting {
			continue
		}
		b := instanceBackend(in)
		if !b.IP.IsValid() {
			continue
		}
		sn := subnets[norm(instanceSubnet(in))]
		nic := dataplane.InterfaceSecurity{ID: b.ID, IP: b.IP, VirtualNetwork: sn.vnet, SubnetGroup: sn.group}
		if b.DialIP != b.IP {
			nic.DialIP = b.DialIP
		}
		if n, _ := resource.PrimaryIPConfig(in.Model); n != nil && n.Properties.NetworkSecurityGroup != nil {
			nic.NICGroup = norm(n.Properties.NetworkSecurityGroup.ID)
		}
		for _, g := range []*string{&nic.SubnetGroup, &nic.NICGroup} {
			if *g != "" && s.SecurityGroups[*g] == nil {
				*g = "" // a dangling reference guards nothing
			}
		}
		if nic.SubnetGroup == "" && nic.NICGroup == "" {
			continue
		}
		used[nic.SubnetGroup], used[nic.NICGroup] = true, true
		cfg.Security.Interfaces = append(cfg.Security.Interfaces, nic)
	}
	sort.Slice(cfg.Security.Interfaces, func(i, j int) bool { return cfg.Security.Interfaces[i].ID < cfg.Security.Interfaces[j].ID })
	ids := make([]string, 0, len(used))
	for id := range used {
		if id != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		cfg.Security.Groups = append(cfg.Security.Groups, CompileGroup(s.SecurityGroups[id], members))
	}
	ix := dataplane.NewSecurityIndex(cfg.Security)
	for i := range cfg.Probes {
		p := &cfg.Probes[i]
		for _, b := range p.Backends {
			nic := ix.Interface(b.ID)
			f := dataplane.Flow{Protocol: dataplane.ProtoTCP, Dst: netip.AddrPortFrom(b.IP, p.Port), Probe: true}
			if !ix.Evaluate(nic, dataplane.Inbound, f).Allow {
				p.Denied = append(p.Denied, b.ID)
			}
		}
	}
}

// instanceSubnet is the subnet id of an instance's primary ipconfiguration
// (its record's, or its model's).
func instanceSubnet(in *resource.Instance) string {
	if in.Subnet != "" {
		return in.Subnet
	}
	if _, ipc := resource.PrimaryIPConfig(in.Model); ipc != nil && ipc.Properties.Subnet != nil {
		return ipc.Properties.Subnet.ID
	}
	return ""
}

// CompileGroup turns a stored group into its data-plane form: the user
// rules and the default rules, sorted as SecurityIndex.Evaluate tries them,
// with application security groups resolved through members (normalized
// ASG id → the customer addresses of its members, as /32 or /128).
func CompileGroup(g *resource.NetworkSecurityGroup, members map[string][]netip.Prefix) dataplane.SecurityGroup {
	out := dataplane.SecurityGroup{ID: norm(g.ID), FlushConnection: g.Properties.FlushConnection != nil && *g.Properties.FlushConnection}
	defaults := g.Properties.DefaultSecurityRules
	if len(defaults) == 0 {
		n := *g
		_ = resource.NormalizeNSG(&n) // fills the default rules of a group stored before they were
		defaults = n.Properties.DefaultSecurityRules
	}
	for _, list := range [][]resource.SecurityRule{g.Properties.SecurityRules, defaults} {
		for i := range list {
			out.Rules = append(out.Rules, compileRule(&list[i], members))
		}
	}
	dataplane.SortSecurityRules(out.Rules)
	return out
}

func compileRule(r *resource.SecurityRule, members map[string][]netip.Prefix) dataplane.SecurityRule {
	p := &r.Properties
	out := dataplane.SecurityRule{ID: norm(r.ID), Direction: dataplane.Inbound, Allow: strings.EqualFold(p.Access, "Allow"),
		Protocol: ruleProtocol(p.Protocol)}
	if p.Priority != nil {
		out.Priority = *p.Priority
	}
	if strings.EqualFold(p.Direction, "Outbound") {
		out.Direction = dataplane.Outbound
	}
	out.SourcePorts = portRanges(p.SourcePorts())
	out.DestinationPorts = portRanges(p.DestinationPorts())
	out.Source = addressSet(p.SourceAddresses(), p.SourceApplicationSecurityGroups, members)
	out.Destination = addressSet(p.DestinationAddresses(), p.DestinationApplicationSecurityGroups, members)
	return out
}

func ruleProtocol(p string) uint8 {
	switch strings.ToLower(p) {
	case "tcp":
		return dataplane.ProtoTCP
	case "udp":
		return dataplane.ProtoUDP
	case "icmp":
		return dataplane.ProtoICMP
	case "esp":
		return dataplane.ProtoESP
	case "ah":
		return dataplane.ProtoAH
	}
	return dataplane.ProtoAny
}

func portRanges(in []resource.PortRange) []dataplane.PortRange {
	if in == nil {
		return nil
	}
	out := make([]dataplane.PortRange, len(in))
	for i, r := range in {
		out[i] = dataplane.PortRange{First: r.First, Last: r.Last}
	}
	return out
}

// addressSet resolves a rule's addresses: a service tag, prefixes, or the
// members of application security groups.
func addressSet(addrs []resource.AddressMatch, asgs []resource.SubResource, members map[string][]netip.Prefix) dataplane.AddressSet {
	var out dataplane.AddressSet
	if len(asgs) > 0 {
		for _, g := range asgs {
			out.Prefixes = append(out.Prefixes, members[norm(g.ID)]...)
		}
		return out
	}
	for _, a := range addrs {
		switch a.Tag {
		case resource.TagAny:
			return dataplane.AddressSet{Tag: dataplane.TagAny}
		case resource.TagVirtualNetwork:
			return dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}
		case resource.TagInternet:
			return dataplane.AddressSet{Tag: dataplane.TagInternet}
		case resource.TagAzureLoadBalancer:
			return dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}
		case "":
			out.Prefixes = append(out.Prefixes, a.Prefix)
		}
		// resource.TagOther: an Azure service nimbus does not have; matches nothing.
	}
	return out
}

// subnetInfo is what security needs of a subnet: its group and its
// network's address space.
type subnetInfo struct {
	group string
	vnet  []netip.Prefix
}

func subnetFacts(vnets []*resource.VirtualNetwork) map[string]subnetInfo {
	out := map[string]subnetInfo{}
	for _, v := range vnets {
		var space []netip.Prefix
		for _, p := range v.Properties.AddressSpace.AddressPrefixes {
			if pp, err := netip.ParsePrefix(p); err == nil {
				space = append(space, pp.Masked())
			}
		}
		for _, sn := range v.Properties.Subnets {
			info := subnetInfo{vnet: space}
			if g := sn.Properties.NetworkSecurityGroup; g != nil {
				info.group = norm(g.ID)
			}
			id := sn.ID
			if id == "" {
				id = v.ID + "/subnets/" + sn.Name
			}
			out[norm(id)] = info
		}
	}
	return out
}

// asgMembers maps each application security group id (normalized) to the
// customer addresses of the instances whose primary ipconfiguration lists
// it, sorted.
func asgMembers(instances []*resource.Instance) map[string][]netip.Prefix {
	out := map[string][]netip.Prefix{}
	for _, in := range instances {
		if in.Deleting {
			continue
		}
		ip, err := netip.ParseAddr(in.PrivateIP)
		if err != nil {
			continue
		}
		_, ipc := resource.PrimaryIPConfig(in.Model)
		if ipc == nil {
			continue
		}
		for _, g := range ipc.Properties.ApplicationSecurityGroups {
			id := norm(g.ID)
			out[id] = append(out[id], netip.PrefixFrom(ip, ip.BitLen()))
		}
	}
	for id, ps := range out {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Addr().Less(ps[j].Addr()) })
		out[id] = ps
	}
	return out
}
