package compute

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// Network views of scale-set instances (Microsoft.Network shapes served
// under Microsoft.Compute/virtualMachineScaleSets): one NIC per NIC
// configuration of an instance's applied model, with ipconfigs carrying the
// instance's address, its pools and its generated NAT rules, and one public
// IP per ipconfig that has a publicIPAddressConfiguration (Instance.PublicIP
// on the primary one). They are derived on read; they have no store keys.

// nicView is a NetworkInterface.
type nicView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Location   string   `json:"location"`
	Etag       string   `json:"etag"`
	Properties nicProps `json:"properties"`
}

type nicProps struct {
	ProvisioningState           string                `json:"provisioningState"`
	ResourceGUID                string                `json:"resourceGuid"`
	Primary                     bool                  `json:"primary"`
	MacAddress                  string                `json:"macAddress,omitempty"`
	EnableAcceleratedNetworking bool                  `json:"enableAcceleratedNetworking"`
	EnableIPForwarding          bool                  `json:"enableIPForwarding"`
	NetworkSecurityGroup        *resource.SubResource `json:"networkSecurityGroup,omitempty"`
	VirtualMachine              resource.SubResource  `json:"virtualMachine"`
	IPConfigurations            []ipcView             `json:"ipConfigurations"`
}

// ipcView is a NetworkInterfaceIPConfiguration.
type ipcView struct {
	ID         string   `json:"id"`
	Name       string   `json:"name"`
	Type       string   `json:"type"`
	Etag       string   `json:"etag"`
	Properties ipcProps `json:"properties"`
}

type ipcProps struct {
	ProvisioningState               string                 `json:"provisioningState"`
	Primary                         bool                   `json:"primary"`
	PrivateIPAddress                string                 `json:"privateIPAddress,omitempty"`
	PrivateIPAllocationMethod       string                 `json:"privateIPAllocationMethod"`
	PrivateIPAddressVersion         string                 `json:"privateIPAddressVersion"`
	Subnet                          *resource.SubResource  `json:"subnet,omitempty"`
	PublicIPAddress                 *resource.SubResource  `json:"publicIPAddress,omitempty"`
	LoadBalancerBackendAddressPools []resource.SubResource `json:"loadBalancerBackendAddressPools"`
	LoadBalancerInboundNatRules     []resource.SubResource `json:"loadBalancerInboundNatRules"`
}

// instPIPView is a PublicIPAddress of an instance.
type instPIPView struct {
	ID         string                `json:"id"`
	Name       string                `json:"name"`
	Type       string                `json:"type"`
	Location   string                `json:"location"`
	Etag       string                `json:"etag"`
	SKU        resource.PIPConfigSku `json:"sku"`
	Zones      []string              `json:"zones,omitempty"`
	Properties instPIPProps          `json:"properties"`
}

type instPIPProps struct {
	ProvisioningState        string               `json:"provisioningState"`
	IPAddress                string               `json:"ipAddress,omitempty"`
	PublicIPAddressVersion   string               `json:"publicIPAddressVersion"`
	PublicIPAllocationMethod string               `json:"publicIPAllocationMethod"`
	IdleTimeoutInMinutes     int32                `json:"idleTimeoutInMinutes"`
	IPConfiguration          resource.SubResource `json:"ipConfiguration"`
	DNSSettings              *pipDNS              `json:"dnsSettings,omitempty"`
}

type pipDNS struct {
	DomainNameLabel string `json:"domainNameLabel"`
	Fqdn            string `json:"fqdn"`
}

// derivedGUID returns a stable GUID-shaped value for seed.
func derivedGUID(seed string) string {
	h := sha256.Sum256([]byte(strings.ToLower(seed)))
	return fmt.Sprintf("%x-%x-%x-%x-%x", h[0:4], h[4:6], h[6:8], h[8:10], h[10:16])
}

// derivedMAC returns a stable MAC address (Azure's 00-0D-3A prefix) for seed.
func derivedMAC(seed string) string {
	h := sha256.Sum256([]byte("mac:" + strings.ToLower(seed)))
	return fmt.Sprintf("00-0D-3A-%02X-%02X-%02X", h[0], h[1], h[2])
}

// instanceNICs renders the NICs of an instance record of scale set v.
func instanceNICs(v *resource.VirtualMachineScaleSet, rec instRecord) []*nicView {
	in := rec.in
	m := in.Model
	if m == nil || m.NetworkProfile == nil {
		return nil
	}
	vmID := v.ID + "/virtualMachines/" + in.InstanceID
	loc := in.Location
	if loc == "" {
		loc = v.Location
	}
	etag := `W/"` + derivedGUID(fmt.Sprint(vmID, rec.rev)) + `"`
	pnic, pipc := resource.PrimaryIPConfig(m)
	var out []*nicView
	for i := range m.NetworkProfile.NetworkInterfaceConfigurations {
		nc := &m.NetworkProfile.NetworkInterfaceConfigurations[i]
		id := vmID + "/networkInterfaces/" + nc.Name
		n := &nicView{ID: id, Name: nc.Name, Type: "Microsoft.Network/networkInterfaces", Location: loc, Etag: etag}
		p := &n.Properties
		p.ProvisioningState = resource.Succeeded
		p.ResourceGUID = derivedGUID(in.VMID + "/" + nc.Name)
		p.Primary = nc == pnic
		p.MacAddress = derivedMAC(in.VMID + "/" + nc.Name)
		p.EnableAcceleratedNetworking = nc.Properties.EnableAcceleratedNetworking != nil && *nc.Properties.EnableAcceleratedNetworking
		p.EnableIPForwarding = nc.Properties.EnableIPForwarding != nil && *nc.Properties.EnableIPForwarding
		p.NetworkSecurityGroup = nc.Properties.NetworkSecurityGroup
		p.VirtualMachine = resource.SubResource{ID: vmID}
		p.IPConfigurations = []ipcView{}
		for j := range nc.Properties.IPConfigurations {
			c := &nc.Properties.IPConfigurations[j]
			iv := ipcView{ID: id + "/ipConfigurations/" + c.Name, Name: c.Name,
				Type: "Microsoft.Network/networkInterfaces/ipConfigurations", Etag: etag}
			ip := &iv.Properties
			ip.ProvisioningState = resource.Succeeded
			ip.Primary = c == pipc
			ip.PrivateIPAllocationMethod = "Dynamic"
			ip.PrivateIPAddressVersion = c.Properties.PrivateIPAddressVersion
			if ip.PrivateIPAddressVersion == "" {
				ip.PrivateIPAddressVersion = "IPv4"
			}
			ip.Subnet = c.Properties.Subnet
			ip.LoadBalancerBackendAddressPools = append([]resource.SubResource{}, c.Properties.LoadBalancerBackendAddressPools...)
			ip.LoadBalancerInboundNatRules = []resource.SubResource{}
			if ip.Primary {
				ip.PrivateIPAddress = in.PrivateIP
				ip.LoadBalancerInboundNatRules = natRuleRefs(in, c)
			}
			if pc := c.Properties.PublicIPAddressConfiguration; pc != nil && ip.Primary && in.PublicIP != "" {
				ip.PublicIPAddress = &resource.SubResource{ID: iv.ID + "/publicIPAddresses/" + pc.Name}
			}
			p.IPConfigurations = append(p.IPConfigurations, iv)
		}
		out = append(out, n)
	}
	return out
}

// natRuleRefs lists the inbound NAT rules targeting an instance's primary
// ipconfig c: the rules generated from its NAT pools ({pool}.{n}) and the
// NAT rules v2 it holds a port of.
func natRuleRefs(in *resource.Instance, c *resource.IPConfig) []resource.SubResource {
	out := []resource.SubResource{}
	seen := map[string]bool{}
	for _, p := range c.Properties.LoadBalancerInboundNatPools {
		lbID, _, name, ok := resource.ParseLBChildID(p.ID)
		if !ok || in.NATPorts[resource.NormalizeRefID(p.ID)] == 0 {
			continue
		}
		seen[resource.NormalizeRefID(p.ID)] = true
		out = append(out, resource.SubResource{ID: resource.ChildID(lbID, resource.CollInboundNatRules, name+"."+in.InstanceID)})
	}
	var v2 []string
	for key := range in.NATPorts {
		if _, coll, _, ok := resource.ParseLBChildID(key); ok && coll == resource.CollInboundNatRules && !seen[key] {
			v2 = append(v2, key)
		}
	}
	sort.Strings(v2)
	for _, key := range v2 {
		out = append(out, resource.SubResource{ID: key})
	}
	return out
}

// instancePIPs renders the public IPs of an instance record (only those of
// the NIC nic and ipconfig ipc when they are not "").
func instancePIPs(v *resource.VirtualMachineScaleSet, rec instRecord, nic, ipc string) []*instPIPView {
	in := rec.in
	m := in.Model
	if m == nil || m.NetworkProfile == nil {
		return nil
	}
	_, pipc := resource.PrimaryIPConfig(m)
	vmID := v.ID + "/virtualMachines/" + in.InstanceID
	loc := in.Location
	if loc == "" {
		loc = v.Location
	}
	var out []*instPIPView
	for i := range m.NetworkProfile.NetworkInterfaceConfigurations {
		nc := &m.NetworkProfile.NetworkInterfaceConfigurations[i]
		if nic != "" && !strings.EqualFold(nc.Name, nic) {
			continue
		}
		for j := range nc.Properties.IPConfigurations {
			c := &nc.Properties.IPConfigurations[j]
			pc := c.Properties.PublicIPAddressConfiguration
			if pc == nil || (ipc != "" && !strings.EqualFold(c.Name, ipc)) {
				continue
			}
			if c != pipc || in.PublicIP == "" {
				continue // only the primary ipconfig gets one, once allocated
			}
			ipcID := vmID + "/networkInterfaces/" + nc.Name + "/ipConfigurations/" + c.Name
			pv := &instPIPView{ID: ipcID + "/publicIPAddresses/" + pc.Name, Name: pc.Name, Type: resource.LoadBalancerPublicIPType,
				Location: loc, Etag: `W/"` + derivedGUID(fmt.Sprint(ipcID, rec.rev)) + `"`}
			pv.SKU = resource.PIPConfigSku{Name: "Basic", Tier: "Regional"}
			if pc.SKU != nil {
				if pc.SKU.Name != "" {
					pv.SKU.Name = pc.SKU.Name
				}
				if pc.SKU.Tier != "" {
					pv.SKU.Tier = pc.SKU.Tier
				}
			}
			if in.Zone != "" {
				pv.Zones = []string{in.Zone}
			}
			p := &pv.Properties
			p.ProvisioningState = resource.Succeeded
			p.IPAddress = in.PublicIP
			p.PublicIPAddressVersion = pc.Properties.PublicIPAddressVersion
			if p.PublicIPAddressVersion == "" {
				p.PublicIPAddressVersion = "IPv4"
			}
			p.PublicIPAllocationMethod = "Dynamic"
			if strings.EqualFold(pv.SKU.Name, "Standard") {
				p.PublicIPAllocationMethod = "Static"
			}
			p.IdleTimeoutInMinutes = 4
			if pc.Properties.IdleTimeoutInMinutes != nil {
				p.IdleTimeoutInMinutes = *pc.Properties.IdleTimeoutInMinutes
			}
			p.IPConfiguration = resource.SubResource{ID: ipcID}
			if label := dnsLabel(pc); label != "" {
				// Azure names instance DNS records <vmname><vmindex>.<label>.
				host := strings.ToLower(v.Name + in.InstanceID + "." + label)
				p.DNSSettings = &pipDNS{DomainNameLabel: label, Fqdn: host + "." + loc + ".cloudapp.azure.com"}
			}
			out = append(out, pv)
		}
	}
	return out
}

// dnsLabel returns publicIPAddressConfiguration.dnsSettings.domainNameLabel.
func dnsLabel(pc *resource.PIPConfig) string {
	var d struct {
		DomainNameLabel string `json:"domainNameLabel"`
	}
	if len(pc.Properties.DNSSettings) == 0 || arm.DecodeBody(pc.Properties.DNSSettings, &d) != nil {
		return ""
	}
	return d.DomainNameLabel
}

// loadAllInstances reads the scale set the request names and its records.
func (s *server) loadAllInstances(ctx context.Context, r *arm.Request) (*resource.VirtualMachineScaleSet, []instRecord, error) {
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, instScaleSetID(r))
	if err != nil {
		return nil, nil, err
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	return v, recs, err
}

// listScaleSetNICs serves GET {vmss}/networkInterfaces.
func (s *server) listScaleSetNICs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, recs, err := s.loadAllInstances(ctx, r)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, rec := range recs {
		for _, n := range instanceNICs(v, rec) {
			items = append(items, n)
		}
	}
	return r.Page(items)
}

// listInstanceNICs serves GET {vmss}/virtualMachines/{n}/networkInterfaces.
func (s *server) listInstanceNICs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, rec, err := s.loadInstance(ctx, r)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, n := range instanceNICs(v, rec) {
		items = append(items, n)
	}
	return r.Page(items)
}

// findNIC returns the NIC the request names.
func (s *server) findNIC(ctx context.Context, r *arm.Request) (*resource.VirtualMachineScaleSet, instRecord, *nicView, error) {
	v, rec, err := s.loadInstance(ctx, r)
	if err != nil {
		return nil, rec, nil, err
	}
	for _, n := range instanceNICs(v, rec) {
		if strings.EqualFold(n.Name, r.Param("nic")) {
			return v, rec, n, nil
		}
	}
	return nil, rec, nil, resource.NotFound("NotFound",
		"Resource %s/virtualMachines/%s/networkInterfaces/%s not found.", v.ID, rec.in.InstanceID, r.Param("nic"))
}

// getInstanceNIC serves GET {vmss}/virtualMachines/{n}/networkInterfaces/{nic}.
func (s *server) getInstanceNIC(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, _, n, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	return arm.JSON(http.StatusOK, n), nil
}

// listInstanceIPConfigs serves GET …/networkInterfaces/{nic}/ipConfigurations.
func (s *server) listInstanceIPConfigs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, _, n, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	items := make([]any, 0, len(n.Properties.IPConfigurations))
	for i := range n.Properties.IPConfigurations {
		items = append(items, &n.Properties.IPConfigurations[i])
	}
	return r.Page(items)
}

// getInstanceIPConfig serves GET …/networkInterfaces/{nic}/ipConfigurations/{ipc}.
func (s *server) getInstanceIPConfig(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, _, n, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	for i := range n.Properties.IPConfigurations {
		if strings.EqualFold(n.Properties.IPConfigurations[i].Name, r.Param("ipc")) {
			return arm.JSON(http.StatusOK, &n.Properties.IPConfigurations[i]), nil
		}
	}
	return nil, resource.NotFound("NotFound", "Resource %s/ipConfigurations/%s not found.", n.ID, r.Param("ipc"))
}

// listScaleSetPublicIPs serves GET {vmss}/publicipaddresses.
func (s *server) listScaleSetPublicIPs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, recs, err := s.loadAllInstances(ctx, r)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, rec := range recs {
		if rec.in.Deleting {
			continue
		}
		for _, p := range instancePIPs(v, rec, "", "") {
			items = append(items, p)
		}
	}
	return r.Page(items)
}

// listInstancePublicIPs serves GET …/ipconfigurations/{ipc}/publicipaddresses.
func (s *server) listInstancePublicIPs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, rec, _, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, p := range instancePIPs(v, rec, r.Param("nic"), r.Param("ipc")) {
		items = append(items, p)
	}
	return r.Page(items)
}

// getInstancePublicIP serves GET …/ipconfigurations/{ipc}/publicipaddresses/{pip}.
func (s *server) getInstancePublicIP(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, rec, _, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	for _, p := range instancePIPs(v, rec, r.Param("nic"), r.Param("ipc")) {
		if strings.EqualFold(p.Name, r.Param("pip")) {
			return arm.JSON(http.StatusOK, p), nil
		}
	}
	return nil, resource.NotFound("ResourceNotFound",
		"The Resource 'Microsoft.Network/publicIPAddresses/%s' under resource group '%s' was not found.", r.Param("pip"), r.Param("rg"))
}

// effectiveNSGView is one entry of effectiveNetworkSecurityGroups: a group
// that applies to the NIC, how it is associated, and its rules (user and
// default) as Azure expands them.
type effectiveNSGView struct {
	NetworkSecurityGroup resource.SubResource `json:"networkSecurityGroup"`
	Association          struct {
		Subnet           *resource.SubResource `json:"subnet,omitempty"`
		NetworkInterface *resource.SubResource `json:"networkInterface,omitempty"`
	} `json:"association"`
	EffectiveSecurityRules []effectiveRuleView `json:"effectiveSecurityRules"`
	TagMap                 map[string][]string `json:"tagMap"`
}

// effectiveRuleView is one effective security rule: ports as ranges
// ("0-65535", "80-80"), protocol "All" for "*", service tags expanded in
// the expanded… lists (VirtualNetwork to the network's address space).
type effectiveRuleView struct {
	Name                             string   `json:"name"`
	Protocol                         string   `json:"protocol"`
	SourcePortRange                  string   `json:"sourcePortRange,omitempty"`
	DestinationPortRange             string   `json:"destinationPortRange,omitempty"`
	SourcePortRanges                 []string `json:"sourcePortRanges"`
	DestinationPortRanges            []string `json:"destinationPortRanges"`
	SourceAddressPrefix              string   `json:"sourceAddressPrefix,omitempty"`
	DestinationAddressPrefix         string   `json:"destinationAddressPrefix,omitempty"`
	SourceAddressPrefixes            []string `json:"sourceAddressPrefixes"`
	DestinationAddressPrefixes       []string `json:"destinationAddressPrefixes"`
	ExpandedSourceAddressPrefix      []string `json:"expandedSourceAddressPrefix"`
	ExpandedDestinationAddressPrefix []string `json:"expandedDestinationAddressPrefix"`
	Access                           string   `json:"access"`
	Priority                         int32    `json:"priority"`
	Direction                        string   `json:"direction"`
}

// effectiveNSGs serves POST …/networkInterfaces/{nic}/effectiveNetworkSecurityGroups
// (Azure's shape: {"value": [...]}): the group of the NIC's subnet, then the
// NIC's own, each with its rules in priority order.
func (s *server) effectiveNSGs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, _, n, err := s.findNIC(ctx, r)
	if err != nil {
		return nil, err
	}
	rd := arm.StoreReader{Store: s.Store()}
	var subnetID string
	for _, c := range n.Properties.IPConfigurations {
		if c.Properties.Primary && c.Properties.Subnet != nil {
			subnetID = c.Properties.Subnet.ID
		}
	}
	out := []effectiveNSGView{}
	var vnetSpace []string
	var subnetGroup string
	if sid, err := resource.ParseID(subnetID); err == nil && len(sid.Types) == 2 {
		if kv, ok, err := arm.ReadTop(ctx, rd, subnetID); err != nil {
			return nil, err
		} else if ok {
			var v resource.VirtualNetwork
			if err := json.Unmarshal(kv.Value, &v); err != nil {
				return nil, fmt.Errorf("effective nsgs: decode %s: %w", kv.Key, err)
			}
			vnetSpace = v.Properties.AddressSpace.AddressPrefixes
			if sn := v.Subnet(sid.Names[1]); sn != nil && sn.Properties.NetworkSecurityGroup != nil {
				subnetGroup = sn.Properties.NetworkSecurityGroup.ID
			}
		}
	}
	add := func(groupID string, subnet bool) error {
		if groupID == "" {
			return nil
		}
		kv, ok, err := arm.ReadTop(ctx, rd, groupID)
		if err != nil || !ok {
			return err
		}
		var g resource.NetworkSecurityGroup
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return fmt.Errorf("effective nsgs: decode %s: %w", kv.Key, err)
		}
		view := effectiveNSGView{NetworkSecurityGroup: resource.SubResource{ID: groupID},
			TagMap: map[string][]string{resource.TagVirtualNetwork: append([]string{}, vnetSpace...), resource.TagAzureLoadBalancer: {"168.63.129.16/32"}}}
		if subnet {
			view.Association.Subnet = &resource.SubResource{ID: subnetID}
		} else {
			view.Association.NetworkInterface = &resource.SubResource{ID: n.ID}
		}
		if len(g.Properties.DefaultSecurityRules) == 0 {
			_ = resource.NormalizeNSG(&g)
		}
		for _, list := range []struct {
			coll  string
			rules []resource.SecurityRule
		}{{"securityRules", g.Properties.SecurityRules}, {"defaultSecurityRules", g.Properties.DefaultSecurityRules}} {
			for i := range list.rules {
				view.EffectiveSecurityRules = append(view.EffectiveSecurityRules, effectiveRule(list.coll, &list.rules[i], vnetSpace))
			}
		}
		sort.SliceStable(view.EffectiveSecurityRules, func(i, j int) bool {
			a, b := view.EffectiveSecurityRules[i], view.EffectiveSecurityRules[j]
			if a.Direction != b.Direction {
				return a.Direction == "Inbound"
			}
			return a.Priority < b.Priority
		})
		out = append(out, view)
		return nil
	}
	if err := add(subnetGroup, true); err != nil {
		return nil, err
	}
	if n.Properties.NetworkSecurityGroup != nil {
		if err := add(n.Properties.NetworkSecurityGroup.ID, false); err != nil {
			return nil, err
		}
	}
	return arm.JSON(http.StatusOK, map[string]any{"value": out}), nil
}

// effectiveRule renders one rule as Azure's effective rule.
func effectiveRule(coll string, rule *resource.SecurityRule, vnet []string) effectiveRuleView {
	p := &rule.Properties
	v := effectiveRuleView{Name: coll + "/" + rule.Name, Protocol: p.Protocol, Access: p.Access, Direction: p.Direction,
		SourcePortRanges: []string{}, DestinationPortRanges: []string{}, SourceAddressPrefixes: []string{}, DestinationAddressPrefixes: []string{}}
	if v.Protocol == "*" {
		v.Protocol = "All"
	}
	if p.Priority != nil {
		v.Priority = *p.Priority
	}
	ranges := func(rs []resource.PortRange) []string {
		if rs == nil {
			return []string{"0-65535"}
		}
		out := make([]string, len(rs))
		for i, r := range rs {
			out[i] = fmt.Sprintf("%d-%d", r.First, r.Last)
		}
		return out
	}
	sp, dp := ranges(p.SourcePorts()), ranges(p.DestinationPorts())
	if p.SourcePortRange != "" {
		v.SourcePortRange = sp[0]
	} else {
		v.SourcePortRanges = sp
	}
	if p.DestinationPortRange != "" {
		v.DestinationPortRange = dp[0]
	} else {
		v.DestinationPortRanges = dp
	}
	expand := func(one string, many []string, asgs []resource.SubResource) (string, []string, []string) {
		if len(asgs) > 0 {
			var ids []string
			for _, g := range asgs {
				ids = append(ids, g.ID)
			}
			return "", ids, []string{}
		}
		if one == "" {
			return "", append([]string{}, many...), append([]string{}, many...)
		}
		m, _ := resource.ParseRuleAddress(one)
		switch m.Tag {
		case resource.TagAny:
			return "0.0.0.0/0", []string{}, []string{}
		case resource.TagVirtualNetwork:
			return one, []string{}, append([]string{}, vnet...)
		case resource.TagAzureLoadBalancer:
			return one, []string{}, []string{"168.63.129.16/32"}
		case "":
			return m.Prefix.String(), []string{}, []string{}
		}
		return one, []string{}, []string{}
	}
	v.SourceAddressPrefix, v.SourceAddressPrefixes, v.ExpandedSourceAddressPrefix = expand(p.SourceAddressPrefix, p.SourceAddressPrefixes, p.SourceApplicationSecurityGroups)
	v.DestinationAddressPrefix, v.DestinationAddressPrefixes, v.ExpandedDestinationAddressPrefix = expand(p.DestinationAddressPrefix, p.DestinationAddressPrefixes, p.DestinationApplicationSecurityGroups)
	return v
}
