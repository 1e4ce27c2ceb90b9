package resource

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// This file parses and checks what a security rule matches: ports (a
// number, a range "first-last" or "*"; the plural fields are lists of
// numbers and ranges), addresses (a CIDR, an address, "*" or a service tag;
// the plural fields take CIDRs and addresses only) and application security
// groups, with Azure's error codes and messages.

// Service tags nimbus resolves (AddressMatch.Tag). "*" is TagAny.
const (
	TagAny               = "*"
	TagVirtualNetwork    = "VirtualNetwork"
	TagAzureLoadBalancer = "AzureLoadBalancer"
	TagInternet          = "Internet"
	// TagOther is any other Azure service tag (Storage, Sql.WestEurope...):
	// accepted, as Azure does, and matching no address, because no Azure
	// service lives in nimbus.
	TagOther = "other"
)

// legacyTags are the classic spellings Azure still accepts.
var legacyTags = map[string]string{
	"virtual_network": TagVirtualNetwork, "azure_loadbalancer": TagAzureLoadBalancer, "internet": TagInternet,
	"virtualnetwork": TagVirtualNetwork, "azureloadbalancer": TagAzureLoadBalancer,
}

// otherTags are Azure service tags nimbus accepts without resolving them
// (lower case); a tag may carry a region suffix (Storage.WestEurope).
var otherTags = map[string]bool{
	"azurecloud": true, "storage": true, "sql": true, "azuremonitor": true, "azureactivedirectory": true,
	"azurekeyvault": true, "azurecontainerregistry": true, "eventhub": true, "servicebus": true,
	"azurecosmosdb": true, "appservice": true, "appservicemanagement": true, "gatewaymanager": true,
	"azuretrafficmanager": true, "apimanagement": true, "azurebackup": true, "azurefrontdoor.backend": true,
	"azurefrontdoor.frontend": true, "azurefrontdoor.firstparty": true, "azuremachinelearning": true,
	"batchnodemanagement": true, "azureconnectors": true, "azuredatabricks": true, "datafactory": true,
	"azurebotservice": true, "azureupdatedelivery": true, "guestandhybridmanagement": true,
	"azureresourcemanager": true, "azureplatformdns": true, "azureplatformimds": true, "azureplatformlkm": true,
}

// PortRange is an inclusive range of ports (First <= Last).
type PortRange struct{ First, Last uint16 }

// AddressMatch is one parsed address field of a security rule: a service
// tag (Tag set, Prefix zero) or a prefix (Tag "", a single address is a /32
// or /128).
type AddressMatch struct {
	Tag    string
	Prefix netip.Prefix
}

// ParseRulePort parses one port value: "*" (every port), "80" or
// "1000-2000", 0–65535. anyPort is true for "*".
func ParseRulePort(s string) (r PortRange, anyPort bool, err error) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return PortRange{0, 65535}, true, nil
	}
	first, last, isRange := strings.Cut(s, "-")
	a, err1 := parsePort(first)
	b := a
	var err2 error
	if isRange {
		b, err2 = parsePort(last)
	}
	if err1 != nil || err2 != nil || a > b {
		return PortRange{}, false, invalidPortRange(s)
	}
	return PortRange{a, b}, false, nil
}

func parsePort(s string) (uint16, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("not a port: %q", s)
	}
	n, err := strconv.ParseUint(s, 10, 16)
	return uint16(n), err
}

func invalidPortRange(v string) *Error {
	return BadRequest("SecurityRuleInvalidPortRange",
		"Security rule has invalid Port range. Value provided: %s. Value should be an integer OR integer range with '-' delimiter. Valid range 0-65535.", v)
}

// ParseRuleAddress parses one address value of a rule's singular field: a
// CIDR, an address, "*" or a service tag (canonical spelling in Tag).
func ParseRuleAddress(s string) (AddressMatch, bool) {
	s = strings.TrimSpace(s)
	if s == "*" {
		return AddressMatch{Tag: TagAny}, true
	}
	if t, ok := legacyTags[strings.ToLower(s)]; ok {
		return AddressMatch{Tag: t}, true
	}
	if p, ok := parseRulePrefix(s); ok {
		return AddressMatch{Prefix: p}, true
	}
	base, _, _ := strings.Cut(strings.ToLower(s), ".")
	if otherTags[strings.ToLower(s)] || otherTags[base] {
		return AddressMatch{Tag: TagOther}, true
	}
	return AddressMatch{}, false
}

// parseRulePrefix parses a CIDR (host bits are masked off, as Azure's data
// path ignores them) or a single address.
func parseRulePrefix(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, false
		}
		return p.Masked(), true
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

// SourcePorts returns the rule's source port ranges; nil means every port.
// The rule must have passed NormalizeNSG.
func (p *SecurityRuleProps) SourcePorts() []PortRange {
	return rulePorts(p.SourcePortRange, p.SourcePortRanges)
}

// DestinationPorts returns the rule's destination port ranges; nil means
// every port. The rule must have passed NormalizeNSG.
func (p *SecurityRuleProps) DestinationPorts() []PortRange {
	return rulePorts(p.DestinationPortRange, p.DestinationPortRanges)
}

func rulePorts(one string, many []string) []PortRange {
	vals := many
	if one != "" {
		vals = []string{one}
	}
	var out []PortRange
	for _, v := range vals {
		r, anyPort, err := ParseRulePort(v)
		if anyPort {
			return nil
		}
		if err == nil {
			out = append(out, r)
		}
	}
	return out
}

// SourceAddresses returns the rule's source address matches (nil when it
// names application security groups instead). The rule must have passed
// NormalizeNSG.
func (p *SecurityRuleProps) SourceAddresses() []AddressMatch {
	return ruleAddresses(p.SourceAddressPrefix, p.SourceAddressPrefixes)
}

// DestinationAddresses is SourceAddresses for the destination.
func (p *SecurityRuleProps) DestinationAddresses() []AddressMatch {
	return ruleAddresses(p.DestinationAddressPrefix, p.DestinationAddressPrefixes)
}

func ruleAddresses(one string, many []string) []AddressMatch {
	vals := many
	if one != "" {
		vals = []string{one}
	}
	var out []AddressMatch
	for _, v := range vals {
		if m, ok := ParseRuleAddress(v); ok {
			out = append(out, m)
		}
	}
	return out
}

// checkRuleMatch checks a rule's ports, addresses and application security
// groups as Azure does: exactly one of the singular and plural field of each
// pair (Azure documents no code for a missing or doubled pair; nimbus
// answers InvalidParameter naming both), every port a number or range in
// 0–65535 (SecurityRuleInvalidPortRange), every address a CIDR, an address
// or a service tag (SecurityRuleInvalidAddressPrefix), no tag or "*" in
// the plural fields (SecurityRuleParameterContainsUnsupportedValue), and
// application security groups instead of, never beside, address prefixes.
func checkRuleMatch(r *SecurityRule, field string) error {
	p := &r.Properties
	pf := field + ".properties."
	for _, ports := range []struct {
		name, plural string
		one          string
		many         []string
	}{
		{"sourcePortRange", "sourcePortRanges", p.SourcePortRange, p.SourcePortRanges},
		{"destinationPortRange", "destinationPortRanges", p.DestinationPortRange, p.DestinationPortRanges},
	} {
		if err := checkPair(r, pf, ports.name, ports.plural, ports.one, ports.many, false); err != nil {
			return err
		}
		if ports.one != "" {
			if _, _, err := ParseRulePort(ports.one); err != nil {
				return atField(err, pf+ports.name)
			}
		}
		for i, v := range ports.many {
			if strings.TrimSpace(v) == "*" {
				return unsupportedValue(r, pf, ports.plural, upperFirst(ports.plural), v)
			}
			if _, _, err := ParseRulePort(v); err != nil {
				return atField(err, fmt.Sprintf("%s%s[%d]", pf, ports.plural, i))
			}
		}
	}
	for _, addrs := range []struct {
		name, plural, asgs string
		one                string
		many               []string
		groups             []SubResource
	}{
		{"sourceAddressPrefix", "sourceAddressPrefixes", "sourceApplicationSecurityGroups", p.SourceAddressPrefix, p.SourceAddressPrefixes, p.SourceApplicationSecurityGroups},
		{"destinationAddressPrefix", "destinationAddressPrefixes", "destinationApplicationSecurityGroups", p.DestinationAddressPrefix, p.DestinationAddressPrefixes, p.DestinationApplicationSecurityGroups},
	} {
		if len(addrs.groups) > 0 {
			if addrs.one != "" || len(addrs.many) > 0 {
				e := InvalidParameter(pf+addrs.asgs, "Security rule %s specifies both %s and %s: a rule names address prefixes or application security groups, not both.",
					r.ID, addrs.one+strings.Join(addrs.many, ","), addrs.asgs)
				return e
			}
			for i, g := range addrs.groups {
				if g.ID == "" {
					return InvalidParameter(fmt.Sprintf("%s%s[%d].id", pf, addrs.asgs, i), "Security rule %s has an application security group without an id.", r.ID)
				}
			}
			continue
		}
		if err := checkPair(r, pf, addrs.name, addrs.plural, addrs.one, addrs.many, true); err != nil {
			return err
		}
		if addrs.one != "" {
			if _, ok := ParseRuleAddress(addrs.one); !ok {
				return invalidAddressPrefix(r, pf+addrs.name, addrs.one)
			}
		}
		for i, v := range addrs.many {
			m, ok := ParseRuleAddress(v)
			if ok && m.Tag != "" {
				return unsupportedValue(r, pf, addrs.plural, upperFirst(addrs.name), v)
			}
			if !ok {
				return invalidAddressPrefix(r, fmt.Sprintf("%s%s[%d]", pf, addrs.plural, i), v)
			}
		}
	}
	return nil
}

// checkPair checks that exactly one of a singular field and its plural is
// set.
func checkPair(r *SecurityRule, pf, name, plural, one string, many []string, addr bool) error {
	if one != "" && len(many) > 0 {
		e := InvalidParameter(pf+plural, "Security rule %s specifies both %s and %s; specify one of them.", r.ID, name, plural)
		return e
	}
	if one == "" && len(many) == 0 {
		what := "a port or port range (* for any)"
		if addr {
			what = "an address prefix, a service tag or * (or application security groups)"
		}
		e := InvalidParameter(pf+name, "Security rule %s must specify %s or %s: %s.", r.ID, name, plural, what)
		return e
	}
	return nil
}

func invalidAddressPrefix(r *SecurityRule, target, v string) error {
	e := BadRequest("SecurityRuleInvalidAddressPrefix", "Security rule %s has invalid Address prefix. Value provided: %s.", r.ID, v)
	e.Target = target
	return e
}

func unsupportedValue(r *SecurityRule, pf, plural, param, v string) error {
	e := BadRequest("SecurityRuleParameterContainsUnsupportedValue",
		"Security rule parameter %s for rule with Id %s cannot specify existing VIRTUALNETWORK, INTERNET, AZURELOADBALANCER, '*' or system tags. Unsupported value used: %s.",
		param, r.ID, v)
	e.Target = pf + plural
	return e
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
