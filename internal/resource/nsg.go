package resource

import (
	"fmt"
	"strings"
)

// NetworkSecurityGroupType is the ARM type of a network security group.
const NetworkSecurityGroupType = "Microsoft.Network/networkSecurityGroups"

// NetworkSecurityGroup is Microsoft.Network/networkSecurityGroups: rules
// that subnets and scale-set NIC configurations attach. Validation is
// Azure's (NormalizeNSG); the controller compiles the rules of every group
// in use into the data plane (controller/lb, docs/guide.md).
type NetworkSecurityGroup struct {
	Envelope
	Properties NSGProperties `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// NSGProperties is a network security group's properties bag. Subnets and
// NetworkInterfaces are read-only back-references; DefaultSecurityRules are
// Azure's six built-in rules.
type NSGProperties struct {
	SecurityRules        []SecurityRule `json:"securityRules"`
	DefaultSecurityRules []SecurityRule `json:"defaultSecurityRules"`
	Subnets              []SubResource  `json:"subnets"`
	NetworkInterfaces    []SubResource  `json:"networkInterfaces"`
	FlushConnection      *bool          `json:"flushConnection,omitempty"`
	ResourceGUID         string         `json:"resourceGuid,omitempty"`
	ProvisioningState    string         `json:"provisioningState,omitempty"`
}

// SecurityRule is one rule of a network security group.
type SecurityRule struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name"`
	Type       string            `json:"type,omitempty"`
	Etag       string            `json:"etag,omitempty"`
	Properties SecurityRuleProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// SecurityRuleProps holds a security rule's properties.
type SecurityRuleProps struct {
	Description                string   `json:"description,omitempty"`
	Protocol                   string   `json:"protocol"`
	SourcePortRange            string   `json:"sourcePortRange,omitempty"`
	DestinationPortRange       string   `json:"destinationPortRange,omitempty"`
	SourcePortRanges           []string `json:"sourcePortRanges,omitempty"`
	DestinationPortRanges      []string `json:"destinationPortRanges,omitempty"`
	SourceAddressPrefix        string   `json:"sourceAddressPrefix,omitempty"`
	DestinationAddressPrefix   string   `json:"destinationAddressPrefix,omitempty"`
	SourceAddressPrefixes      []string `json:"sourceAddressPrefixes,omitempty"`
	DestinationAddressPrefixes []string `json:"destinationAddressPrefixes,omitempty"`
	// SourceApplicationSecurityGroups and DestinationApplicationSecurityGroups
	// name application security groups instead of address prefixes: the
	// rule matches the addresses of the NICs that are members.
	SourceApplicationSecurityGroups      []SubResource `json:"sourceApplicationSecurityGroups,omitempty"`
	DestinationApplicationSecurityGroups []SubResource `json:"destinationApplicationSecurityGroups,omitempty"`
	Access                               string        `json:"access"`
	Priority                             *int32        `json:"priority,omitempty"`
	Direction                            string        `json:"direction"`
	ProvisioningState                    string        `json:"provisioningState,omitempty"`
}

// SetProvisioningState sets properties.provisioningState.
func (n *NetworkSecurityGroup) SetProvisioningState(s string) { n.Properties.ProvisioningState = s }

// NormalizeNSG validates a network security group's rules (protocol,
// access, direction in Azure's canonical case; priority 100–4096, unique per
// direction; unique names; ports, address prefixes, service tags and
// application security groups as checkRuleMatch says) and fills ids,
// Azure's default rules and flushConnection (false).
func NormalizeNSG(n *NetworkSecurityGroup) error {
	if n.Properties.FlushConnection == nil {
		n.Properties.FlushConnection = bptr(false)
	}
	seenName := map[string]bool{}
	seenPrio := map[string]string{}
	for i := range n.Properties.SecurityRules {
		r := &n.Properties.SecurityRules[i]
		field := fmt.Sprintf("properties.securityRules[%d]", i)
		if r.Name == "" {
			return InvalidParameter(field+".name", "Security rule at index %d has no name.", i)
		}
		if err := CheckNetworkName(r.Name, 1, MaxNetworkNameLen); err != nil {
			return atField(err, field+".name")
		}
		if seenName[strings.ToLower(r.Name)] {
			return InvalidParameter(field+".name", "Security rule name %s is used more than once.", r.Name)
		}
		seenName[strings.ToLower(r.Name)] = true
		p := &r.Properties
		var err error
		if p.Protocol, err = canonEnum(field+".properties.protocol", p.Protocol, "", "Tcp", "Udp", "Icmp", "Esp", "Ah", "*"); err != nil || p.Protocol == "" {
			return InvalidParameter(field+".properties.protocol", "Security rule %s has invalid protocol %q: use Tcp, Udp, Icmp, Esp, Ah or *.", r.Name, r.Properties.Protocol)
		}
		if p.Access, err = canonEnum(field+".properties.access", p.Access, "", "Allow", "Deny"); err != nil || p.Access == "" {
			return InvalidParameter(field+".properties.access", "Security rule %s has invalid access %q: use Allow or Deny.", r.Name, r.Properties.Access)
		}
		if p.Direction, err = canonEnum(field+".properties.direction", p.Direction, "", "Inbound", "Outbound"); err != nil || p.Direction == "" {
			return InvalidParameter(field+".properties.direction", "Security rule %s has invalid direction %q: use Inbound or Outbound.", r.Name, r.Properties.Direction)
		}
		if p.Priority == nil || *p.Priority < 100 || *p.Priority > 4096 {
			e := InvalidParameter(field+".properties.priority", "Security rule %s has invalid Priority. Value provided: %v. Allowed range 100-4096.", r.Name, derefInt32(p.Priority))
			e.Code = "SecurityRuleInvalidPriority"
			return e
		}
		key := fmt.Sprintf("%s/%d", p.Direction, *p.Priority)
		if other, dup := seenPrio[key]; dup {
			e := InvalidParameter(field+".properties.priority", "Security rule %s conflicts with rule %s. Rules cannot have the same Priority and Direction.", r.Name, other)
			e.Code = "SecurityRuleConflict"
			return e
		}
		seenPrio[key] = r.Name
		r.ID = n.ID + "/securityRules/" + r.Name
		if err := checkRuleMatch(r, field); err != nil {
			return err
		}
		r.Type = NetworkSecurityGroupType + "/securityRules"
		if r.Etag == "" {
			r.Etag = NewEtag()
		}
		p.ProvisioningState = Succeeded
	}
	n.Properties.DefaultSecurityRules = defaultSecurityRules(n.ID)
	return nil
}

func derefInt32(p *int32) any {
	if p == nil {
		return "null"
	}
	return *p
}

// defaultSecurityRules are Azure's six built-in rules of every group.
func defaultSecurityRules(nsgID string) []SecurityRule {
	rule := func(name, desc, src, dst, access, dir string, prio int32) SecurityRule {
		return SecurityRule{ID: nsgID + "/defaultSecurityRules/" + name, Name: name,
			Type: NetworkSecurityGroupType + "/defaultSecurityRules",
			Properties: SecurityRuleProps{Description: desc, Protocol: "*", SourcePortRange: "*", DestinationPortRange: "*",
				SourceAddressPrefix: src, DestinationAddressPrefix: dst, Access: access, Priority: &prio, Direction: dir,
				ProvisioningState: Succeeded}}
	}
	return []SecurityRule{
		rule("AllowVnetInBound", "Allow inbound traffic from all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", "Inbound", 65000),
		rule("AllowAzureLoadBalancerInBound", "Allow inbound traffic from azure load balancer", "AzureLoadBalancer", "*", "Allow", "Inbound", 65001),
		rule("DenyAllInBound", "Deny all inbound traffic", "*", "*", "Deny", "Inbound", 65500),
		rule("AllowVnetOutBound", "Allow outbound traffic from all VMs to all VMs in VNET", "VirtualNetwork", "VirtualNetwork", "Allow", "Outbound", 65000),
		rule("AllowInternetOutBound", "Allow outbound traffic from all VMs to Internet", "*", "Internet", "Allow", "Outbound", 65001),
		rule("DenyAllOutBound", "Deny all outbound traffic", "*", "*", "Deny", "Outbound", 65500),
	}
}
