package resource

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
)

// VirtualNetworkType is the ARM type of virtual networks.
const VirtualNetworkType = "Microsoft.Network/virtualNetworks"

// VirtualNetwork is a Microsoft.Network/virtualNetworks resource with its subnets inline.
type VirtualNetwork struct {
	Envelope
	Properties VirtualNetworkProperties `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// VirtualNetworkProperties are a virtual network's properties.
type VirtualNetworkProperties struct {
	ProvisioningState      string            `json:"provisioningState,omitempty"`
	ResourceGUID           string            `json:"resourceGuid,omitempty"`
	AddressSpace           AddressSpace      `json:"addressSpace"`
	DhcpOptions            *DhcpOptions      `json:"dhcpOptions,omitempty"`
	Subnets                []Subnet          `json:"subnets"`
	VirtualNetworkPeerings []json.RawMessage `json:"virtualNetworkPeerings"`
	EnableDdosProtection   bool              `json:"enableDdosProtection"`
	// EnableVMProtection is a legacy flag older clients still read (az's vnet table).
	EnableVMProtection bool `json:"enableVmProtection"`
}

// AddressSpace is a list of CIDR prefixes.
type AddressSpace struct {
	AddressPrefixes []string `json:"addressPrefixes"`
}

// DhcpOptions are a virtual network's DNS servers.
type DhcpOptions struct {
	DNSServers []string `json:"dnsServers"`
}

// Subnet is a virtual network's subnet (also the body of the subnet child endpoint).
type Subnet struct {
	ID         string           `json:"id,omitempty"`
	Name       string           `json:"name,omitempty"`
	Type       string           `json:"type,omitempty"`
	Etag       string           `json:"etag,omitempty"`
	Properties SubnetProperties `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// SubnetProperties are a subnet's properties. IPConfigurations is
// read-only, computed at read time from the reference index.
type SubnetProperties struct {
	ProvisioningState                 string            `json:"provisioningState,omitempty"`
	AddressPrefix                     string            `json:"addressPrefix,omitempty"`
	AddressPrefixes                   []string          `json:"addressPrefixes,omitempty"`
	IPConfigurations                  []SubResource     `json:"ipConfigurations"`
	NetworkSecurityGroup              *SubResource      `json:"networkSecurityGroup,omitempty"`
	RouteTable                        *SubResource      `json:"routeTable,omitempty"`
	NatGateway                        *SubResource      `json:"natGateway,omitempty"`
	ServiceEndpoints                  []json.RawMessage `json:"serviceEndpoints"`
	Delegations                       []json.RawMessage `json:"delegations"`
	PrivateEndpointNetworkPolicies    string            `json:"privateEndpointNetworkPolicies,omitempty"`
	PrivateLinkServiceNetworkPolicies string            `json:"privateLinkServiceNetworkPolicies,omitempty"`
	DefaultOutboundAccess             *bool             `json:"defaultOutboundAccess,omitempty"`
}

// SetProvisioningState implements arm.Object; subnets follow their network.
func (v *VirtualNetwork) SetProvisioningState(s string) {
	v.Properties.ProvisioningState = s
	for i := range v.Properties.Subnets {
		v.Properties.Subnets[i].Properties.ProvisioningState = s
	}
}

// Prefixes returns the subnet's prefixes (addressPrefix and addressPrefixes).
func (s *Subnet) Prefixes() []string {
	var out []string
	if s.Properties.AddressPrefix != "" {
		out = append(out, s.Properties.AddressPrefix)
	}
	return append(out, s.Properties.AddressPrefixes...)
}

// ParsedPrefixes returns the subnet's prefixes parsed (invalid ones skipped).
func (s *Subnet) ParsedPrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range s.Prefixes() {
		if pp, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pp)
		}
	}
	return out
}

// Subnet returns the subnet named name (case-insensitive), or nil.
func (v *VirtualNetwork) Subnet(name string) *Subnet {
	for i := range v.Properties.Subnets {
		if strings.EqualFold(v.Properties.Subnets[i].Name, name) {
			return &v.Properties.Subnets[i]
		}
	}
	return nil
}

// parseCIDR parses a prefix that must be in canonical (masked) form.
func parseCIDR(s, target, owner string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(strings.TrimSpace(s))
	if err != nil {
		e := BadRequest("InvalidAddressPrefixFormat", "Address prefix %s of resource %s is not formatted correctly. It should follow CIDR notation, for example 10.0.0.0/24.", s, owner)
		e.Target = target
		return netip.Prefix{}, e
	}
	if p.Masked() != p {
		e := BadRequest("InvalidCIDRNotation", "The address prefix %s in resource %s has an invalid CIDR notation. For the given prefix length, the address prefix should be %s.", s, owner, p.Masked())
		e.Target = target
		return netip.Prefix{}, e
	}
	return p, nil
}

// Normalize validates a virtual network for PUT and sets its subnets' ids,
// types and defaults: address prefixes in CIDR form, the network's spaces
// not overlapping, every subnet named uniquely, with a prefix (at most /29
// for IPv4) inside one of the spaces and overlapping no other subnet.
// Read-only subnet fields from the client are cleared.
func (v *VirtualNetwork) Normalize() error {
	var spaces []netip.Prefix
	if len(v.Properties.AddressSpace.AddressPrefixes) == 0 {
		return InvalidParameter("properties.addressSpace.addressPrefixes", "Virtual network %s must have at least one address prefix in properties.addressSpace.addressPrefixes.", v.ID)
	}
	for _, s := range v.Properties.AddressSpace.AddressPrefixes {
		p, err := parseCIDR(s, "properties.addressSpace.addressPrefixes", v.ID)
		if err != nil {
			return err
		}
		for _, q := range spaces {
			if q.Overlaps(p) {
				return BadRequest("VnetAddressSpacesOverlap", "Cannot create or update virtual network %s since it has address spaces %s and %s which overlap.", v.ID, q, p)
			}
		}
		spaces = append(spaces, p)
	}
	type placed struct {
		name string
		p    netip.Prefix
	}
	var all []placed
	seen := map[string]bool{}
	for i := range v.Properties.Subnets {
		s := &v.Properties.Subnets[i]
		if s.Name == "" {
			return InvalidParameter("properties.subnets", "Subnet at index %d of virtual network %s has no name.", i, v.ID)
		}
		if err := CheckNetworkName(s.Name, 1, MaxNetworkNameLen); err != nil {
			return atField(err, fmt.Sprintf("properties.subnets[%d].name", i))
		}
		if seen[strings.ToLower(s.Name)] {
			return BadRequest("DuplicateResourceName", "Virtual network %s has two subnets named %s.", v.ID, s.Name)
		}
		seen[strings.ToLower(s.Name)] = true
		if err := v.normalizeSubnet(s); err != nil {
			return err
		}
		for _, raw := range s.Prefixes() {
			p, err := parseCIDR(raw, "properties.subnets.properties.addressPrefix", s.ID)
			if err != nil {
				return err
			}
			if p.Addr().Is4() && p.Bits() > 29 {
				return BadRequest("InvalidSubnetPrefixLength", "Subnet %s has prefix %s; the smallest supported IPv4 subnet is /29.", s.ID, p)
			}
			inside := false
			for _, sp := range spaces {
				if sp.Bits() <= p.Bits() && sp.Contains(p.Addr()) {
					inside = true
				}
			}
			if !inside {
				return BadRequest("NetcfgSubnetRangeOutsideVnet", "Subnet '%s' is not valid because its IP address range is outside the IP address range of virtual network '%s'.", s.Name, v.Name)
			}
			for _, o := range all {
				if o.p.Overlaps(p) {
					return BadRequest("NetcfgSubnetRangesOverlap", "Subnet '%s' is not valid because its IP address range overlaps with that of an existing subnet '%s' in virtual network '%s'.", s.Name, o.name, v.Name)
				}
			}
			all = append(all, placed{s.Name, p})
		}
	}
	return nil
}

// normalizeSubnet sets a subnet's id, type, etag and defaults.
func (v *VirtualNetwork) normalizeSubnet(s *Subnet) error {
	if len(s.Prefixes()) == 0 {
		return InvalidParameter("properties.subnets.properties.addressPrefix", "Subnet %s of virtual network %s must have properties.addressPrefix or properties.addressPrefixes.", s.Name, v.Name)
	}
	id, err := ParseID(v.ID)
	if err == nil {
		s.ID = id.Child("subnets", s.Name).String()
	}
	s.Type = VirtualNetworkType + "/subnets"
	s.Etag = v.Etag
	s.Properties.IPConfigurations = nil
	if s.Properties.PrivateEndpointNetworkPolicies == "" {
		s.Properties.PrivateEndpointNetworkPolicies = "Disabled"
	}
	if s.Properties.PrivateLinkServiceNetworkPolicies == "" {
		s.Properties.PrivateLinkServiceNetworkPolicies = "Enabled"
	}
	return nil
}

// InUseSubnetError is the error for deleting a subnet still used by user.
func InUseSubnetError(subnet, user string) *Error {
	return BadRequest("InUseSubnetCannotBeDeleted",
		"Subnet %s is in use by %s and cannot be deleted. In order to delete the subnet, delete all the resources within the subnet.", subnet, user)
}
