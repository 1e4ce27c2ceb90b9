package resource

import (
	"encoding/json"
)

// VirtualMachineScaleSetType is the ARM type of a scale set.
const VirtualMachineScaleSetType = "Microsoft.Compute/virtualMachineScaleSets"

// Orchestration and upgrade modes (canonical case).
const (
	OrchestrationUniform  = "Uniform"
	OrchestrationFlexible = "Flexible"
	UpgradeAutomatic      = "Automatic"
	UpgradeManual         = "Manual"
	UpgradeRolling        = "Rolling"
)

// VirtualMachineScaleSet is the scale-set MODEL
// (Microsoft.Compute/virtualMachineScaleSets) with Azure's JSON shape.
// Running instances are a separate resource. Properties nimbus does not
// interpret but clients round-trip are kept as raw JSON.
type VirtualMachineScaleSet struct {
	Envelope
	SKU              *VMSSSku        `json:"sku,omitempty"`
	Zones            []string        `json:"zones,omitempty"`
	Identity         json.RawMessage `json:"identity,omitempty"`
	Plan             json.RawMessage `json:"plan,omitempty"`
	ExtendedLocation json.RawMessage `json:"extendedLocation,omitempty"`
	Properties       VMSSProps       `json:"properties"`

	unknown Unknown // properties the fields above do not declare
}

// VMSSSku is the scale set's sku; Capacity is the desired instance count.
type VMSSSku struct {
	Name     string `json:"name,omitempty"`
	Tier     string `json:"tier,omitempty"`
	Capacity *int64 `json:"capacity,omitempty"`
}

// VMSSProps is the scale set's properties bag.
type VMSSProps struct {
	UpgradePolicy                          *UpgradePolicy          `json:"upgradePolicy,omitempty"`
	AutomaticRepairsPolicy                 *AutomaticRepairsPolicy `json:"automaticRepairsPolicy,omitempty"`
	ScaleInPolicy                          *ScaleInPolicy          `json:"scaleInPolicy,omitempty"`
	VirtualMachineProfile                  *VMProfile              `json:"virtualMachineProfile,omitempty"`
	Overprovision                          *bool                   `json:"overprovision,omitempty"`
	DoNotRunExtensionsOnOverprovisionedVMs *bool                   `json:"doNotRunExtensionsOnOverprovisionedVMs,omitempty"`
	SinglePlacementGroup                   *bool                   `json:"singlePlacementGroup,omitempty"`
	ZoneBalance                            *bool                   `json:"zoneBalance,omitempty"`
	PlatformFaultDomainCount               *int32                  `json:"platformFaultDomainCount,omitempty"`
	OrchestrationMode                      string                  `json:"orchestrationMode,omitempty"`
	ProximityPlacementGroup                *SubResource            `json:"proximityPlacementGroup,omitempty"`
	AdditionalCapabilities                 json.RawMessage         `json:"additionalCapabilities,omitempty"`
	SpotRestorePolicy                      json.RawMessage         `json:"spotRestorePolicy,omitempty"`
	PriorityMixPolicy                      json.RawMessage         `json:"priorityMixPolicy,omitempty"`
	ProvisioningState                      string                  `json:"provisioningState,omitempty"`
	UniqueID                               string                  `json:"uniqueId,omitempty"`
	TimeCreated                            string                  `json:"timeCreated,omitempty"`
}

// UpgradePolicy says how model changes reach instances.
type UpgradePolicy struct {
	Mode                     string          `json:"mode,omitempty"`
	RollingUpgradePolicy     *RollingPolicy  `json:"rollingUpgradePolicy,omitempty"`
	AutomaticOSUpgradePolicy json.RawMessage `json:"automaticOSUpgradePolicy,omitempty"`
}

// RollingPolicy is upgradePolicy.rollingUpgradePolicy.
type RollingPolicy struct {
	MaxBatchInstancePercent               *int32 `json:"maxBatchInstancePercent,omitempty"`
	MaxUnhealthyInstancePercent           *int32 `json:"maxUnhealthyInstancePercent,omitempty"`
	MaxUnhealthyUpgradedInstancePercent   *int32 `json:"maxUnhealthyUpgradedInstancePercent,omitempty"`
	PauseTimeBetweenBatches               string `json:"pauseTimeBetweenBatches,omitempty"`
	EnableCrossZoneUpgrade                *bool  `json:"enableCrossZoneUpgrade,omitempty"`
	PrioritizeUnhealthyInstances          *bool  `json:"prioritizeUnhealthyInstances,omitempty"`
	RollbackFailedInstancesOnPolicyBreach *bool  `json:"rollbackFailedInstancesOnPolicyBreach,omitempty"`
	MaxSurge                              *bool  `json:"maxSurge,omitempty"`
}

// AutomaticRepairsPolicy is properties.automaticRepairsPolicy.
type AutomaticRepairsPolicy struct {
	Enabled      *bool  `json:"enabled,omitempty"`
	GracePeriod  string `json:"gracePeriod,omitempty"`
	RepairAction string `json:"repairAction,omitempty"`
}

// ScaleInPolicy is properties.scaleInPolicy.
type ScaleInPolicy struct {
	Rules         []string `json:"rules,omitempty"`
	ForceDeletion *bool    `json:"forceDeletion,omitempty"`
}

// VMProfile is properties.virtualMachineProfile.
type VMProfile struct {
	OSProfile              *OSProfile      `json:"osProfile,omitempty"`
	StorageProfile         *StorageProfile `json:"storageProfile,omitempty"`
	NetworkProfile         *NetworkProfile `json:"networkProfile,omitempty"`
	ExtensionProfile       json.RawMessage `json:"extensionProfile,omitempty"`
	DiagnosticsProfile     json.RawMessage `json:"diagnosticsProfile,omitempty"`
	SecurityProfile        json.RawMessage `json:"securityProfile,omitempty"`
	ScheduledEventsProfile json.RawMessage `json:"scheduledEventsProfile,omitempty"`
	LicenseType            string          `json:"licenseType,omitempty"`
	Priority               string          `json:"priority,omitempty"`
	EvictionPolicy         string          `json:"evictionPolicy,omitempty"`
	BillingProfile         json.RawMessage `json:"billingProfile,omitempty"`
	UserData               string          `json:"userData,omitempty"`

	unknown Unknown // properties the fields above do not declare
}

// OSProfile is the instances' OS settings. AdminPassword is write-only:
// stored, never returned (ScrubSecrets removes it).
type OSProfile struct {
	ComputerNamePrefix   string          `json:"computerNamePrefix,omitempty"`
	AdminUsername        string          `json:"adminUsername,omitempty"`
	AdminPassword        string          `json:"adminPassword,omitempty"`
	CustomData           string          `json:"customData,omitempty"`
	LinuxConfiguration   json.RawMessage `json:"linuxConfiguration,omitempty"`
	WindowsConfiguration json.RawMessage `json:"windowsConfiguration,omitempty"`
	Secrets              json.RawMessage `json:"secrets,omitempty"`
}

// StorageProfile is the instances' image and disks.
type StorageProfile struct {
	ImageReference *ImageReference `json:"imageReference,omitempty"`
	OSDisk         json.RawMessage `json:"osDisk,omitempty"`
	DataDisks      json.RawMessage `json:"dataDisks,omitempty"`
}

// ImageReference names the image instances run: a platform image
// (publisher, offer, sku, version), a custom or gallery image (id), or a
// shared or community gallery image. ExactVersion is read-only: the version
// "latest" resolved to.
type ImageReference struct {
	Publisher               string `json:"publisher,omitempty"`
	Offer                   string `json:"offer,omitempty"`
	SKU                     string `json:"sku,omitempty"`
	Version                 string `json:"version,omitempty"`
	ID                      string `json:"id,omitempty"`
	SharedGalleryImageID    string `json:"sharedGalleryImageId,omitempty"`
	CommunityGalleryImageID string `json:"communityGalleryImageId,omitempty"`
	ExactVersion            string `json:"exactVersion,omitempty"`
}

// OSDiskFacts are the parts of storageProfile.osDisk that say which image
// an instance runs: osType, and image.uri for an unmanaged (VHD) image.
type OSDiskFacts struct {
	OSType string `json:"osType,omitempty"`
	Image  *struct {
		URI string `json:"uri,omitempty"`
	} `json:"image,omitempty"`
}

// OSDiskFacts decodes the osDisk's osType and image URI (zero when absent
// or malformed).
func (sp *StorageProfile) OSDiskFacts() OSDiskFacts {
	var f OSDiskFacts
	if sp != nil && len(sp.OSDisk) > 0 {
		_ = json.Unmarshal(sp.OSDisk, &f) // malformed osDisks were refused at PUT
	}
	return f
}

// NetworkProfile is virtualMachineProfile.networkProfile.
type NetworkProfile struct {
	HealthProbe                    *SubResource `json:"healthProbe,omitempty"`
	NetworkAPIVersion              string       `json:"networkApiVersion,omitempty"`
	NetworkInterfaceConfigurations []NICConfig  `json:"networkInterfaceConfigurations"`
}

// NICConfig is one networkInterfaceConfigurations entry.
type NICConfig struct {
	Name       string         `json:"name"`
	Properties NICConfigProps `json:"properties"`
}

// NICConfigProps holds a NIC configuration's properties.
type NICConfigProps struct {
	Primary                     *bool           `json:"primary,omitempty"`
	EnableAcceleratedNetworking *bool           `json:"enableAcceleratedNetworking,omitempty"`
	EnableIPForwarding          *bool           `json:"enableIPForwarding,omitempty"`
	NetworkSecurityGroup        *SubResource    `json:"networkSecurityGroup,omitempty"`
	DNSSettings                 json.RawMessage `json:"dnsSettings,omitempty"`
	DeleteOption                string          `json:"deleteOption,omitempty"`
	IPConfigurations            []IPConfig      `json:"ipConfigurations"`
}

// IPConfig is one ipConfigurations entry of a NIC configuration.
type IPConfig struct {
	Name       string        `json:"name"`
	Properties IPConfigProps `json:"properties"`
}

// IPConfigProps holds an ipconfig's properties: its subnet and the LB pools
// and NAT pools its instances join.
type IPConfigProps struct {
	Subnet                                *SubResource  `json:"subnet,omitempty"`
	Primary                               *bool         `json:"primary,omitempty"`
	PrivateIPAddressVersion               string        `json:"privateIPAddressVersion,omitempty"`
	PublicIPAddressConfiguration          *PIPConfig    `json:"publicIPAddressConfiguration,omitempty"`
	LoadBalancerBackendAddressPools       []SubResource `json:"loadBalancerBackendAddressPools,omitempty"`
	LoadBalancerInboundNatPools           []SubResource `json:"loadBalancerInboundNatPools,omitempty"`
	ApplicationGatewayBackendAddressPools []SubResource `json:"applicationGatewayBackendAddressPools,omitempty"`
	ApplicationSecurityGroups             []SubResource `json:"applicationSecurityGroups,omitempty"`
}

// PIPConfig is an ipconfig's publicIPAddressConfiguration (instance-level
// public IPs).
type PIPConfig struct {
	Name       string         `json:"name"`
	SKU        *PIPConfigSku  `json:"sku,omitempty"`
	Properties PIPConfigProps `json:"properties"`
}

// PIPConfigSku is the sku of instance public IPs.
type PIPConfigSku struct {
	Name string `json:"name,omitempty"`
	Tier string `json:"tier,omitempty"`
}

// PIPConfigProps holds the instance public IP settings.
type PIPConfigProps struct {
	IdleTimeoutInMinutes   *int32          `json:"idleTimeoutInMinutes,omitempty"`
	DNSSettings            json.RawMessage `json:"dnsSettings,omitempty"`
	IPTags                 json.RawMessage `json:"ipTags,omitempty"`
	PublicIPPrefix         *SubResource    `json:"publicIPPrefix,omitempty"`
	PublicIPAddressVersion string          `json:"publicIPAddressVersion,omitempty"`
	DeleteOption           string          `json:"deleteOption,omitempty"`
}

// DecodeScaleSet decodes a stored or requested VMSS body.
func DecodeScaleSet(b []byte) (*VirtualMachineScaleSet, error) {
	var v VirtualMachineScaleSet
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return &v, nil
}

// Capacity returns sku.capacity (0 when unset).
func (v *VirtualMachineScaleSet) Capacity() int64 {
	if v.SKU == nil || v.SKU.Capacity == nil {
		return 0
	}
	return *v.SKU.Capacity
}

// NetworkProfile returns the model's network profile, or nil.
func (v *VirtualMachineScaleSet) NetworkProfile() *NetworkProfile {
	if v.Properties.VirtualMachineProfile == nil {
		return nil
	}
	return v.Properties.VirtualMachineProfile.NetworkProfile
}

// ScrubSecrets removes write-only values (adminPassword) before a VMSS is
// returned to a client.
func (v *VirtualMachineScaleSet) ScrubSecrets() {
	if vp := v.Properties.VirtualMachineProfile; vp != nil && vp.OSProfile != nil {
		vp.OSProfile.AdminPassword = ""
	}
}

// LBUser is one user of load balancer parts: a scale-set model today; the
// scale-set controller adds one per instance whose applied model differs.
// Ids are as written by the client (compare with SameID).
type LBUser struct {
	// ScaleSetID is the VMSS id (used in error messages).
	ScaleSetID string
	// Capacity is how many backend ipconfigs this user puts in each pool.
	Capacity int64
	// HealthProbe is networkProfile.healthProbe.id, "" when none.
	HealthProbe string
	// Pools and NatPools are the backend pools and NAT pools referenced.
	Pools    []string
	NatPools []string
}

// Uses returns the scale set's use of load balancers.
func (v *VirtualMachineScaleSet) Uses() LBUser {
	u := LBUser{ScaleSetID: v.ID, Capacity: v.Capacity()}
	np := v.NetworkProfile()
	if np == nil {
		return u
	}
	if np.HealthProbe != nil {
		u.HealthProbe = np.HealthProbe.ID
	}
	for _, nic := range np.NetworkInterfaceConfigurations {
		for _, ipc := range nic.Properties.IPConfigurations {
			for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
				u.Pools = append(u.Pools, p.ID)
			}
			for _, p := range ipc.Properties.LoadBalancerInboundNatPools {
				u.NatPools = append(u.NatPools, p.ID)
			}
		}
	}
	return u
}

// UsesLB reports whether u references anything of the load balancer lbID.
func (u LBUser) UsesLB(lbID string) bool {
	for _, id := range u.all() {
		if l, _, _, ok := ParseLBChildID(id); ok && SameID(l, lbID) {
			return true
		}
	}
	return false
}

// LoadBalancerIDs returns the distinct LB ids u references, normalized.
func (u LBUser) LoadBalancerIDs() []string {
	seen := map[string]bool{}
	var out []string
	for _, id := range u.all() {
		if l, _, _, ok := ParseLBChildID(id); ok && !seen[NormalizeRefID(l)] {
			seen[NormalizeRefID(l)] = true
			out = append(out, NormalizeRefID(l))
		}
	}
	return out
}

func (u LBUser) all() []string {
	out := append([]string(nil), u.Pools...)
	out = append(out, u.NatPools...)
	if u.HealthProbe != "" {
		out = append(out, u.HealthProbe)
	}
	return out
}

func hasRef(list []string, id string) bool {
	for _, x := range list {
		if SameID(x, id) {
			return true
		}
	}
	return false
}

// SetProvisioningState sets properties.provisioningState.
func (v *VirtualMachineScaleSet) SetProvisioningState(state string) {
	v.Properties.ProvisioningState = state
}
