package resource

import (
	"encoding/json"
	"regexp"
	"strings"
)

// PublicIPType is the ARM type of public IP addresses.
const PublicIPType = "Microsoft.Network/publicIPAddresses"

// PublicIPAddress is a Microsoft.Network/publicIPAddresses resource.
//
// nimbus allocates an address from its public pool for Dynamic addresses
// too (it has no stopped-VM state that would release them); the address is
// kept across updates and released on delete.
type PublicIPAddress struct {
	Envelope
	SKU        *PublicIPSKU       `json:"sku,omitempty"`
	Zones      []string           `json:"zones,omitempty"`
	Properties PublicIPProperties `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// PublicIPSKU is a public IP's SKU: name Basic|Standard, tier Regional|Global.
type PublicIPSKU struct {
	Name string `json:"name,omitempty"`
	Tier string `json:"tier,omitempty"`
}

// PublicIPProperties are a public IP's properties. IPConfiguration is
// read-only, computed at read time from whatever references the address.
type PublicIPProperties struct {
	ProvisioningState        string               `json:"provisioningState,omitempty"`
	ResourceGUID             string               `json:"resourceGuid,omitempty"`
	PublicIPAllocationMethod string               `json:"publicIPAllocationMethod,omitempty"`
	PublicIPAddressVersion   string               `json:"publicIPAddressVersion,omitempty"`
	IPAddress                string               `json:"ipAddress,omitempty"`
	IdleTimeoutInMinutes     *int32               `json:"idleTimeoutInMinutes,omitempty"`
	DNSSettings              *PublicIPDNSSettings `json:"dnsSettings,omitempty"`
	IPTags                   []IPTag              `json:"ipTags"`
	IPConfiguration          *SubResource         `json:"ipConfiguration,omitempty"`
	PublicIPPrefix           *SubResource         `json:"publicIPPrefix,omitempty"`
	DDoSSettings             json.RawMessage      `json:"ddosSettings,omitempty"`
	DeleteOption             string               `json:"deleteOption,omitempty"`
}

// PublicIPDNSSettings is a public IP's DNS name.
type PublicIPDNSSettings struct {
	DomainNameLabel      string `json:"domainNameLabel,omitempty"`
	DomainNameLabelScope string `json:"domainNameLabelScope,omitempty"`
	Fqdn                 string `json:"fqdn,omitempty"`
	ReverseFqdn          string `json:"reverseFqdn,omitempty"`
}

// IPTag is a public IP tag.
type IPTag struct {
	IPTagType string `json:"ipTagType,omitempty"`
	Tag       string `json:"tag,omitempty"`
}

// SetProvisioningState implements arm.Object.
func (p *PublicIPAddress) SetProvisioningState(s string) { p.Properties.ProvisioningState = s }

// SkuName returns the SKU name, Basic when unset.
func (p *PublicIPAddress) SkuName() string {
	if p.SKU == nil || p.SKU.Name == "" {
		return "Basic"
	}
	return p.SKU.Name
}

// IsIPv6 reports whether the address version is IPv6.
func (p *PublicIPAddress) IsIPv6() bool {
	return strings.EqualFold(p.Properties.PublicIPAddressVersion, "IPv6")
}

// DNS label rule from Azure's error message.
var domainNameLabel = regexp.MustCompile(`^[a-z][a-z0-9-]{1,61}[a-z0-9]$`)

// canon returns the element of allowed equal to v ignoring case, or "".
func canon(v string, allowed ...string) string {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return a
		}
	}
	return ""
}

// Normalize validates a public IP for PUT and fills Azure's defaults: SKU
// Basic (tier Regional), allocation Dynamic for Basic and Static for
// Standard, IPv4, idle timeout 4 minutes, the DNS fqdn, DDoS protection
// inherited from the virtual network. Read-only input
// (ipAddress, ipConfiguration, fqdn) is ignored.
func (p *PublicIPAddress) Normalize() error {
	if p.SKU == nil {
		p.SKU = &PublicIPSKU{}
	}
	if p.SKU.Name == "" {
		p.SKU.Name = "Basic"
	}
	name := canon(p.SKU.Name, "Basic", "Standard")
	if name == "" {
		return InvalidParameter("sku.name", "The value '%s' of sku.name is invalid. Allowed values are 'Basic' and 'Standard'.", p.SKU.Name)
	}
	p.SKU.Name = name
	if p.SKU.Tier == "" {
		p.SKU.Tier = "Regional"
	}
	tier := canon(p.SKU.Tier, "Regional", "Global")
	if tier == "" {
		return InvalidParameter("sku.tier", "The value '%s' of sku.tier is invalid. Allowed values are 'Regional' and 'Global'.", p.SKU.Tier)
	}
	p.SKU.Tier = tier
	if tier == "Global" && name != "Standard" {
		return BadRequest("GlobalTierPublicIPAddressMustBeStandardSku", "Public IP address %s with Global tier must have Standard sku.", p.ID)
	}
	pr := &p.Properties
	if pr.PublicIPAllocationMethod == "" {
		pr.PublicIPAllocationMethod = "Dynamic"
		if name == "Standard" {
			pr.PublicIPAllocationMethod = "Static"
		}
	}
	m := canon(pr.PublicIPAllocationMethod, "Static", "Dynamic")
	if m == "" {
		return InvalidParameter("properties.publicIPAllocationMethod", "The value '%s' of properties.publicIPAllocationMethod is invalid. Allowed values are 'Static' and 'Dynamic'.", pr.PublicIPAllocationMethod)
	}
	pr.PublicIPAllocationMethod = m
	if name == "Standard" && m != "Static" {
		return BadRequest("StandardSkuPublicIPAddressesMustBeStatic", "Standard sku publicIp %s must have AllocationMethod set to Static.", p.ID)
	}
	if pr.PublicIPAddressVersion == "" {
		pr.PublicIPAddressVersion = "IPv4"
	}
	v := canon(pr.PublicIPAddressVersion, "IPv4", "IPv6")
	if v == "" {
		return InvalidParameter("properties.publicIPAddressVersion", "The value '%s' of properties.publicIPAddressVersion is invalid. Allowed values are 'IPv4' and 'IPv6'.", pr.PublicIPAddressVersion)
	}
	pr.PublicIPAddressVersion = v
	if pr.IdleTimeoutInMinutes == nil {
		four := int32(4)
		pr.IdleTimeoutInMinutes = &four
	}
	if t := *pr.IdleTimeoutInMinutes; t < 4 || t > 30 {
		e := BadRequest("PublicIPIdleTimeoutIsOutOfRange", "The specified idle timeout of %d minutes for public IP %s is not valid. Idle timeout must be between 4 and 30 minutes.", t, p.ID)
		e.Target = "properties.idleTimeoutInMinutes"
		return e
	}
	for _, z := range p.Zones {
		if z != "1" && z != "2" && z != "3" {
			return InvalidParameter("zones", "The zone '%s' is invalid. Allowed zones are '1', '2' and '3'.", z)
		}
	}
	if d := pr.DNSSettings; d != nil {
		if d.DomainNameLabel == "" {
			d.Fqdn = ""
		} else {
			if !domainNameLabel.MatchString(d.DomainNameLabel) {
				e := BadRequest("InvalidDomainNameLabel", "The domain name label %s is invalid. It must conform to the following regular expression: ^[a-z][a-z0-9-]{1,61}[a-z0-9]$.", d.DomainNameLabel)
				e.Target = "properties.dnsSettings.domainNameLabel"
				return e
			}
			d.Fqdn = d.DomainNameLabel + "." + p.Location + ".cloudapp.azure.com"
		}
	}
	if len(pr.DDoSSettings) == 0 || string(pr.DDoSSettings) == "null" {
		pr.DDoSSettings = json.RawMessage(`{"protectionMode":"VirtualNetworkInherited"}`)
	}
	pr.IPAddress = ""
	pr.IPConfiguration = nil
	return nil
}

// InUsePublicIPError is the error for deleting a public IP still referenced by user.
func InUsePublicIPError(pip, user string) *Error {
	return BadRequest("InUsePublicIpAddressCannotBeDeleted",
		"Public IP address %s can not be deleted since it is still allocated to resource %s. In order to delete the public IP, disassociate/detach the Public IP address from the resource.", pip, user)
}
