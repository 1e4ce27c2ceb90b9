package resource

import (
	"encoding/json"
	"strings"
)

// Resource types of the load balancer and its children, as ARM spells them.
const (
	LoadBalancerType             = "Microsoft.Network/loadBalancers"
	FrontendIPConfigurationType  = "Microsoft.Network/loadBalancers/frontendIPConfigurations"
	BackendAddressPoolType       = "Microsoft.Network/loadBalancers/backendAddressPools"
	LoadBalancingRuleType        = "Microsoft.Network/loadBalancers/loadBalancingRules"
	ProbeType                    = "Microsoft.Network/loadBalancers/probes"
	InboundNatRuleType           = "Microsoft.Network/loadBalancers/inboundNatRules"
	InboundNatPoolType           = "Microsoft.Network/loadBalancers/inboundNatPools"
	OutboundRuleType             = "Microsoft.Network/loadBalancers/outboundRules"
	LoadBalancerPublicIPType     = "Microsoft.Network/publicIPAddresses"
	LoadBalancerSubnetType       = "Microsoft.Network/virtualNetworks/subnets"
	LoadBalancerVirtualNetType   = "Microsoft.Network/virtualNetworks"
	LoadBalancerPublicIPPrefType = "Microsoft.Network/publicIPPrefixes"
)

// Child collection names: the path segment under .../loadBalancers/{lb}/ and
// the JSON property of the LB body that holds the children. LBChildren
// describes each collection.
const (
	CollFrontendIPConfigurations = "frontendIPConfigurations"
	CollBackendAddressPools      = "backendAddressPools"
	CollLoadBalancingRules       = "loadBalancingRules"
	CollProbes                   = "probes"
	CollInboundNatRules          = "inboundNatRules"
	CollInboundNatPools          = "inboundNatPools"
	CollOutboundRules            = "outboundRules"
)

// LoadBalancer SKU names and tiers.
const (
	LBSkuBasic    = "Basic"
	LBSkuStandard = "Standard"
	LBSkuGateway  = "Gateway"
	LBTierRegion  = "Regional"
	LBTierGlobal  = "Global"
)

// LoadBalancer is Microsoft.Network/loadBalancers with Azure's JSON shape.
// The stored form holds only what clients write plus the server-assigned
// identity fields (ids, etags, resourceGuid); read-only back-references are
// computed at read time by Render.
type LoadBalancer struct {
	Envelope
	SKU              *LoadBalancerSKU  `json:"sku,omitempty"`
	ExtendedLocation json.RawMessage   `json:"extendedLocation,omitempty"`
	Properties       LoadBalancerProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// LoadBalancerSKU is the LB's sku: name Basic|Standard|Gateway, tier
// Regional|Global.
type LoadBalancerSKU struct {
	Name string `json:"name,omitempty"`
	Tier string `json:"tier,omitempty"`
}

// LoadBalancerProps is the LB's properties bag. A nil collection in a decoded
// request means the property was absent (PUT treats an absent
// inboundNatRules as "keep the existing ones", as Azure does); on output every
// collection is [] when empty.
type LoadBalancerProps struct {
	FrontendIPConfigurations []FrontendIPConfiguration `json:"frontendIPConfigurations"`
	BackendAddressPools      []BackendAddressPool      `json:"backendAddressPools"`
	LoadBalancingRules       []LoadBalancingRule       `json:"loadBalancingRules"`
	Probes                   []Probe                   `json:"probes"`
	InboundNatRules          []InboundNatRule          `json:"inboundNatRules"`
	InboundNatPools          []InboundNatPool          `json:"inboundNatPools"`
	OutboundRules            []OutboundRule            `json:"outboundRules"`
	Scope                    string                    `json:"scope,omitempty"`
	ResourceGUID             string                    `json:"resourceGuid,omitempty"`
	ProvisioningState        string                    `json:"provisioningState,omitempty"`
}

// FrontendIPConfiguration is one frontend: public (publicIPAddress or
// publicIPPrefix) or internal (subnet with a private address).
type FrontendIPConfiguration struct {
	ID         string            `json:"id,omitempty"`
	Name       string            `json:"name"`
	Type       string            `json:"type,omitempty"`
	Etag       string            `json:"etag,omitempty"`
	Zones      []string          `json:"zones,omitempty"`
	Properties FrontendIPConfigP `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// FrontendIPConfigP holds a frontend's properties. The four reference lists
// are read-only back-references.
type FrontendIPConfigP struct {
	PrivateIPAddress          string       `json:"privateIPAddress,omitempty"`
	PrivateIPAllocationMethod string       `json:"privateIPAllocationMethod,omitempty"`
	PrivateIPAddressVersion   string       `json:"privateIPAddressVersion,omitempty"`
	Subnet                    *SubResource `json:"subnet,omitempty"`
	PublicIPAddress           *SubResource `json:"publicIPAddress,omitempty"`
	PublicIPPrefix            *SubResource `json:"publicIPPrefix,omitempty"`
	GatewayLoadBalancer       *SubResource `json:"gatewayLoadBalancer,omitempty"`

	LoadBalancingRules []SubResource `json:"loadBalancingRules"`
	InboundNatRules    []SubResource `json:"inboundNatRules"`
	InboundNatPools    []SubResource `json:"inboundNatPools"`
	OutboundRules      []SubResource `json:"outboundRules"`
	ProvisioningState  string        `json:"provisioningState,omitempty"`

	// NimbusDataplaneErrors is nimbus's own read-only property (Azure has
	// no such state): the rules on this frontend the data plane could not
	// put in force (port held by another program, address gone), rendered
	// at read time by the network provider and never stored. Nil (absent)
	// while every rule is in force.
	NimbusDataplaneErrors []DataplaneError `json:"nimbusDataplaneErrors,omitempty"`
}

// DataplaneError is one rule the data plane could not put in force: an ARM
// error code (FrontendPortInUse, FrontendAddressUnavailable, ...), a message
// naming the port and, where known, the program holding it, and the rule's
// id as target.
type DataplaneError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Target  string `json:"target,omitempty"`
}

// Internal reports whether the frontend is internal (subnet-based).
func (f *FrontendIPConfiguration) Internal() bool { return f.Properties.Subnet != nil }

// BackendAddressPool is a pool: NIC-based (membership on the NIC/VMSS side,
// shown read-only in backendIPConfigurations) or IP-based
// (loadBalancerBackendAddresses, Standard only).
type BackendAddressPool struct {
	ID         string      `json:"id,omitempty"`
	Name       string      `json:"name"`
	Type       string      `json:"type,omitempty"`
	Etag       string      `json:"etag,omitempty"`
	Properties BackendPool `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// BackendPool holds a pool's properties; backendIPConfigurations,
// loadBalancingRules, outboundRule(s) and inboundNatRules are read-only.
type BackendPool struct {
	Location                     string                       `json:"location,omitempty"`
	LoadBalancerBackendAddresses []LoadBalancerBackendAddress `json:"loadBalancerBackendAddresses"`
	VirtualNetwork               *SubResource                 `json:"virtualNetwork,omitempty"`
	SyncMode                     string                       `json:"syncMode,omitempty"`
	DrainPeriodInSeconds         *int32                       `json:"drainPeriodInSeconds,omitempty"`
	TunnelInterfaces             []TunnelInterface            `json:"tunnelInterfaces,omitempty"`

	BackendIPConfigurations []SubResource `json:"backendIPConfigurations"`
	LoadBalancingRules      []SubResource `json:"loadBalancingRules"`
	OutboundRule            *SubResource  `json:"outboundRule,omitempty"`
	OutboundRules           []SubResource `json:"outboundRules"`
	InboundNatRules         []SubResource `json:"inboundNatRules"`
	ProvisioningState       string        `json:"provisioningState,omitempty"`
}

// TunnelInterface is a Gateway LB pool's tunnel interface.
type TunnelInterface struct {
	Port       *int32 `json:"port,omitempty"`
	Identifier *int32 `json:"identifier,omitempty"`
	Protocol   string `json:"protocol,omitempty"`
	Type       string `json:"type,omitempty"`
}

// LoadBalancerBackendAddress is one member of an IP-based pool.
type LoadBalancerBackendAddress struct {
	Name       string             `json:"name,omitempty"`
	Properties BackendAddressProp `json:"properties"`
}

// BackendAddressProp holds an IP-based pool member's properties.
// networkInterfaceIPConfiguration and inboundNatRulesPortMapping are read-only.
type BackendAddressProp struct {
	IPAddress                           string               `json:"ipAddress,omitempty"`
	VirtualNetwork                      *SubResource         `json:"virtualNetwork,omitempty"`
	Subnet                              *SubResource         `json:"subnet,omitempty"`
	LoadBalancerFrontendIPConfiguration *SubResource         `json:"loadBalancerFrontendIPConfiguration,omitempty"`
	AdminState                          string               `json:"adminState,omitempty"`
	NetworkInterfaceIPConfiguration     *SubResource         `json:"networkInterfaceIPConfiguration,omitempty"`
	InboundNatRulesPortMapping          []NatRulePortMapping `json:"inboundNatRulesPortMapping,omitempty"`
}

// NatRulePortMapping is one inbound NAT rule's port mapping for a backend.
type NatRulePortMapping struct {
	InboundNatRuleName string `json:"inboundNatRuleName"`
	Protocol           string `json:"protocol,omitempty"`
	FrontendPort       int32  `json:"frontendPort"`
	BackendPort        int32  `json:"backendPort"`
}

// LoadBalancingRule is one load-balancing rule.
type LoadBalancingRule struct {
	ID         string    `json:"id,omitempty"`
	Name       string    `json:"name"`
	Type       string    `json:"type,omitempty"`
	Etag       string    `json:"etag,omitempty"`
	Properties RuleProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// RuleProps holds a load-balancing rule's properties. Optional scalars are
// pointers so that defaults can be told from explicit values; Normalize fills
// every default, so a normalized rule has none nil except the references.
type RuleProps struct {
	FrontendIPConfiguration  *SubResource  `json:"frontendIPConfiguration,omitempty"`
	BackendAddressPool       *SubResource  `json:"backendAddressPool,omitempty"`
	BackendAddressPools      []SubResource `json:"backendAddressPools"`
	Probe                    *SubResource  `json:"probe,omitempty"`
	Protocol                 string        `json:"protocol,omitempty"`
	LoadDistribution         string        `json:"loadDistribution,omitempty"`
	FrontendPort             *int32        `json:"frontendPort,omitempty"`
	BackendPort              *int32        `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes     *int32        `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP         *bool         `json:"enableFloatingIP,omitempty"`
	EnableTCPReset           *bool         `json:"enableTcpReset,omitempty"`
	DisableOutboundSnat      *bool         `json:"disableOutboundSnat,omitempty"`
	EnableConnectionTracking *bool         `json:"enableConnectionTracking,omitempty"`
	ProvisioningState        string        `json:"provisioningState,omitempty"`
}

// Probe is one health probe.
type Probe struct {
	ID         string     `json:"id,omitempty"`
	Name       string     `json:"name"`
	Type       string     `json:"type,omitempty"`
	Etag       string     `json:"etag,omitempty"`
	Properties ProbeProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// ProbeProps holds a probe's properties; loadBalancingRules is read-only.
type ProbeProps struct {
	Protocol                  string        `json:"protocol,omitempty"`
	Port                      *int32        `json:"port,omitempty"`
	IntervalInSeconds         *int32        `json:"intervalInSeconds,omitempty"`
	NumberOfProbes            *int32        `json:"numberOfProbes,omitempty"`
	ProbeThreshold            *int32        `json:"probeThreshold,omitempty"`
	RequestPath               string        `json:"requestPath,omitempty"`
	NoHealthyBackendsBehavior string        `json:"noHealthyBackendsBehavior,omitempty"`
	LoadBalancingRules        []SubResource `json:"loadBalancingRules"`
	ProvisioningState         string        `json:"provisioningState,omitempty"`
}

// InboundNatRule is an inbound NAT rule: V1 (frontendPort, one target set on
// the NIC side) or V2 (frontendPortRangeStart/End + backendAddressPool).
type InboundNatRule struct {
	ID         string       `json:"id,omitempty"`
	Name       string       `json:"name"`
	Type       string       `json:"type,omitempty"`
	Etag       string       `json:"etag,omitempty"`
	Properties NatRuleProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// NatRuleProps holds a NAT rule's properties; backendIPConfiguration is
// read-only.
type NatRuleProps struct {
	FrontendIPConfiguration *SubResource `json:"frontendIPConfiguration,omitempty"`
	BackendIPConfiguration  *SubResource `json:"backendIPConfiguration,omitempty"`
	Protocol                string       `json:"protocol,omitempty"`
	FrontendPort            *int32       `json:"frontendPort,omitempty"`
	BackendPort             *int32       `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes    *int32       `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP        *bool        `json:"enableFloatingIP,omitempty"`
	EnableTCPReset          *bool        `json:"enableTcpReset,omitempty"`
	FrontendPortRangeStart  *int32       `json:"frontendPortRangeStart,omitempty"`
	FrontendPortRangeEnd    *int32       `json:"frontendPortRangeEnd,omitempty"`
	BackendAddressPool      *SubResource `json:"backendAddressPool,omitempty"`
	ProvisioningState       string       `json:"provisioningState,omitempty"`
}

// IsV2 reports whether the NAT rule is pool-wide (V2).
func (r *InboundNatRule) IsV2() bool {
	return r.Properties.BackendAddressPool != nil || r.Properties.FrontendPortRangeStart != nil
}

// InboundNatPool is a legacy NAT pool referenced from a VMSS ipconfig.
type InboundNatPool struct {
	ID         string       `json:"id,omitempty"`
	Name       string       `json:"name"`
	Type       string       `json:"type,omitempty"`
	Etag       string       `json:"etag,omitempty"`
	Properties NatPoolProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// NatPoolProps holds a NAT pool's properties.
type NatPoolProps struct {
	FrontendIPConfiguration *SubResource `json:"frontendIPConfiguration,omitempty"`
	Protocol                string       `json:"protocol,omitempty"`
	FrontendPortRangeStart  *int32       `json:"frontendPortRangeStart,omitempty"`
	FrontendPortRangeEnd    *int32       `json:"frontendPortRangeEnd,omitempty"`
	BackendPort             *int32       `json:"backendPort,omitempty"`
	IdleTimeoutInMinutes    *int32       `json:"idleTimeoutInMinutes,omitempty"`
	EnableFloatingIP        *bool        `json:"enableFloatingIP,omitempty"`
	EnableTCPReset          *bool        `json:"enableTcpReset,omitempty"`
	ProvisioningState       string       `json:"provisioningState,omitempty"`
}

// OutboundRule is an outbound (SNAT) rule.
type OutboundRule struct {
	ID         string        `json:"id,omitempty"`
	Name       string        `json:"name"`
	Type       string        `json:"type,omitempty"`
	Etag       string        `json:"etag,omitempty"`
	Properties OutboundProps `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// OutboundProps holds an outbound rule's properties.
type OutboundProps struct {
	AllocatedOutboundPorts   *int32        `json:"allocatedOutboundPorts,omitempty"`
	FrontendIPConfigurations []SubResource `json:"frontendIPConfigurations"`
	BackendAddressPool       *SubResource  `json:"backendAddressPool,omitempty"`
	Protocol                 string        `json:"protocol,omitempty"`
	EnableTCPReset           *bool         `json:"enableTcpReset,omitempty"`
	IdleTimeoutInMinutes     *int32        `json:"idleTimeoutInMinutes,omitempty"`
	ProvisioningState        string        `json:"provisioningState,omitempty"`
}

// ChildID returns the id of the child named name in collection coll of the
// load balancer lbID.
func ChildID(lbID, coll, name string) string { return lbID + "/" + coll + "/" + name }

// NormalizeRefID returns the canonical comparison form of a resource id:
// lowercase, without a trailing slash and with duplicate slashes collapsed.
// All reference matching (rule→probe, VMSS→pool, ...) compares normalized ids;
// the data-plane model uses this form as its keys.
func NormalizeRefID(id string) string {
	id = strings.ToLower(strings.TrimSpace(id))
	for strings.Contains(id, "//") {
		id = strings.ReplaceAll(id, "//", "/")
	}
	return strings.TrimSuffix(id, "/")
}

// SameID reports whether two resource ids name the same resource.
func SameID(a, b string) bool {
	if plainID(a) && plainID(b) {
		return strings.EqualFold(a, b) // no allocation in the common case
	}
	return NormalizeRefID(a) == NormalizeRefID(b)
}

// plainID reports whether id needs no normalization beyond case folding.
func plainID(id string) bool {
	return !strings.Contains(id, "//") && !strings.HasSuffix(id, "/") && strings.TrimSpace(id) == id
}

// ParseLBChildID splits a load balancer child id
// (.../providers/Microsoft.Network/loadBalancers/{lb}/{coll}/{name}) into the
// LB id, the collection (canonical spelling, e.g. "probes") and the child
// name. ok is false when id is not an LB child id.
func ParseLBChildID(id string) (lbID, coll, name string, ok bool) {
	id = strings.TrimSuffix(strings.TrimSpace(id), "/")
	parts := strings.Split(id, "/")
	// "", subscriptions, sub, resourceGroups, rg, providers, Microsoft.Network, loadBalancers, lb, coll, name
	if len(parts) != 11 || parts[0] != "" ||
		!strings.EqualFold(parts[1], "subscriptions") || !strings.EqualFold(parts[3], "resourceGroups") ||
		!strings.EqualFold(parts[5], "providers") || !strings.EqualFold(parts[6], "Microsoft.Network") ||
		!strings.EqualFold(parts[7], "loadBalancers") || parts[8] == "" || parts[10] == "" ||
		parts[2] == "" || parts[4] == "" {
		return "", "", "", false
	}
	c, err := LBChild(parts[9])
	if err != nil {
		return "", "", "", false
	}
	return strings.Join(parts[:9], "/"), c.Name(), parts[10], true
}

// DecodeLoadBalancer decodes a stored or requested LB body.
func DecodeLoadBalancer(b []byte) (*LoadBalancer, error) {
	var lb LoadBalancer
	if err := json.Unmarshal(b, &lb); err != nil {
		return nil, err
	}
	return &lb, nil
}

// Frontend returns the frontend whose id matches ref, or nil.
func (lb *LoadBalancer) Frontend(ref string) *FrontendIPConfiguration {
	for i := range lb.Properties.FrontendIPConfigurations {
		if SameID(lb.Properties.FrontendIPConfigurations[i].ID, ref) {
			return &lb.Properties.FrontendIPConfigurations[i]
		}
	}
	return nil
}

// Pool returns the backend pool whose id matches ref, or nil.
func (lb *LoadBalancer) Pool(ref string) *BackendAddressPool {
	for i := range lb.Properties.BackendAddressPools {
		if SameID(lb.Properties.BackendAddressPools[i].ID, ref) {
			return &lb.Properties.BackendAddressPools[i]
		}
	}
	return nil
}

// ProbeByID returns the probe whose id matches ref, or nil.
func (lb *LoadBalancer) ProbeByID(ref string) *Probe {
	for i := range lb.Properties.Probes {
		if SameID(lb.Properties.Probes[i].ID, ref) {
			return &lb.Properties.Probes[i]
		}
	}
	return nil
}

// SkuName returns the LB's sku name (Standard when unset).
func (lb *LoadBalancer) SkuName() string {
	if lb.SKU == nil || lb.SKU.Name == "" {
		return LBSkuStandard
	}
	return lb.SKU.Name
}

// RulePools returns the pool ids a load-balancing rule sends to
// (backendAddressPool and backendAddressPools, deduplicated).
func (r *LoadBalancingRule) RulePools() []string {
	var out []string
	add := func(id string) {
		if id == "" {
			return
		}
		for _, x := range out {
			if SameID(x, id) {
				return
			}
		}
		out = append(out, id)
	}
	if r.Properties.BackendAddressPool != nil {
		add(r.Properties.BackendAddressPool.ID)
	}
	for _, p := range r.Properties.BackendAddressPools {
		add(p.ID)
	}
	return out
}

// SetProvisioningState sets properties.provisioningState.
func (lb *LoadBalancer) SetProvisioningState(state string) { lb.Properties.ProvisioningState = state }
