package resource

import (
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// MaxScaleSetCapacity is the largest sku.capacity nimbus accepts (Azure's
// limit for a Uniform scale set spanning placement groups).
const MaxScaleSetCapacity = 1000

// NormalizeScaleSet prepares a requested scale-set model for validation and
// storage: sets id, name and type, puts enums in canonical case (accepting
// any case), fills Azure's defaults and clears read-only fields. uniqueId and
// timeCreated are carried over from old (nil on create; the caller assigns
// them). It fails with a *RuleError naming the field for a bad enum value.
func NormalizeScaleSet(v, old *VirtualMachineScaleSet, id, name string) error {
	v.ID, v.Name, v.Type = id, name, VirtualMachineScaleSetType
	p := &v.Properties
	p.ProvisioningState = ""
	if old != nil {
		p.UniqueID, p.TimeCreated = old.Properties.UniqueID, old.Properties.TimeCreated
		keepOmitted(v, old)
	} else {
		p.UniqueID, p.TimeCreated = "", ""
	}
	var err error
	if p.OrchestrationMode, err = canonEnum("properties.orchestrationMode", p.OrchestrationMode, OrchestrationUniform, OrchestrationUniform, OrchestrationFlexible); err != nil {
		return err
	}
	if p.UpgradePolicy == nil {
		p.UpgradePolicy = &UpgradePolicy{}
	}
	if p.UpgradePolicy.Mode, err = canonEnum("properties.upgradePolicy.mode", p.UpgradePolicy.Mode, UpgradeManual, UpgradeAutomatic, UpgradeManual, UpgradeRolling); err != nil {
		return err
	}
	if p.UpgradePolicy.Mode == UpgradeRolling {
		if p.UpgradePolicy.RollingUpgradePolicy == nil {
			p.UpgradePolicy.RollingUpgradePolicy = &RollingPolicy{}
		}
		rp := p.UpgradePolicy.RollingUpgradePolicy
		for _, f := range []**int32{&rp.MaxBatchInstancePercent, &rp.MaxUnhealthyInstancePercent, &rp.MaxUnhealthyUpgradedInstancePercent} {
			if *f == nil {
				*f = i32(20)
			}
		}
		if rp.PauseTimeBetweenBatches == "" {
			rp.PauseTimeBetweenBatches = "PT0S"
		}
	}
	if ar := p.AutomaticRepairsPolicy; ar != nil {
		if ar.Enabled == nil {
			ar.Enabled = bptr(false)
		}
		if ar.RepairAction, err = canonEnum("properties.automaticRepairsPolicy.repairAction", ar.RepairAction, "Replace", "Replace", "Restart", "Reimage"); err != nil {
			return err
		}
		if ar.GracePeriod == "" {
			ar.GracePeriod = "PT10M"
		}
	}
	if sp := p.ScaleInPolicy; sp != nil {
		for i := range sp.Rules {
			if sp.Rules[i], err = canonEnum(fmt.Sprintf("properties.scaleInPolicy.rules[%d]", i), sp.Rules[i], "Default", "Default", "NewestVM", "OldestVM"); err != nil {
				return err
			}
		}
	}
	if p.Overprovision == nil && p.OrchestrationMode == OrchestrationUniform {
		p.Overprovision = bptr(true)
	}
	if p.SinglePlacementGroup == nil {
		p.SinglePlacementGroup = bptr(p.OrchestrationMode == OrchestrationUniform)
	}
	vp := p.VirtualMachineProfile
	if vp == nil {
		return nil
	}
	if vp.OSProfile != nil && vp.OSProfile.Secrets == nil {
		vp.OSProfile.Secrets = json.RawMessage("[]")
	}
	np := vp.NetworkProfile
	if np == nil {
		return nil
	}
	if np.NetworkInterfaceConfigurations == nil {
		np.NetworkInterfaceConfigurations = []NICConfig{}
	}
	for i := range np.NetworkInterfaceConfigurations {
		nic := &np.NetworkInterfaceConfigurations[i].Properties
		if nic.EnableAcceleratedNetworking == nil {
			nic.EnableAcceleratedNetworking = bptr(false)
		}
		if nic.DNSSettings == nil {
			nic.DNSSettings = json.RawMessage(`{"dnsServers":[]}`)
		}
		if nic.IPConfigurations == nil {
			nic.IPConfigurations = []IPConfig{}
		}
		for j := range nic.IPConfigurations {
			ipc := &nic.IPConfigurations[j].Properties
			f := fmt.Sprintf("properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations[%d].properties.ipConfigurations[%d].properties.", i, j)
			if ipc.PrivateIPAddressVersion, err = canonEnum(f+"privateIPAddressVersion", ipc.PrivateIPAddressVersion, "IPv4", "IPv4", "IPv6"); err != nil {
				return err
			}
			if pc := ipc.PublicIPAddressConfiguration; pc != nil && pc.SKU != nil {
				if pc.SKU.Name, err = canonEnum(f+"publicIPAddressConfiguration.sku.name", pc.SKU.Name, "", LBSkuBasic, LBSkuStandard); err != nil {
					return err
				}
				if pc.SKU.Tier, err = canonEnum(f+"publicIPAddressConfiguration.sku.tier", pc.SKU.Tier, "", LBTierRegion, LBTierGlobal); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// VMSSContext is the read-only view of other resources that scale-set
// validation reads, keyed by NormalizeRefID; a missing key means "does not
// exist".
type VMSSContext struct {
	// LoadBalancers are the stored LBs the model references.
	LoadBalancers map[string]*LoadBalancer
	// Subnets are the subnets the model references.
	Subnets map[string]SubnetFacts
}

// RollingNeedsHealthMessage is Azure's message for Rolling mode without a
// health signal.
const RollingNeedsHealthMessage = "Rolling Upgrade mode is not supported for this Virtual Machine Scale Set because a health probe or health extension was not provided."

var isoMinutes = regexp.MustCompile(`^PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?$`)

func parseISODuration(s string) (time.Duration, bool) {
	m := isoMinutes.FindStringSubmatch(strings.ToUpper(s))
	if m == nil || (m[1] == "" && m[2] == "" && m[3] == "") {
		return 0, false
	}
	var d time.Duration
	for i, unit := range []time.Duration{time.Hour, time.Minute, time.Second} {
		if m[i+1] != "" {
			n, err := strconv.Atoi(m[i+1])
			if err != nil {
				return 0, false
			}
			d += time.Duration(n) * unit
		}
	}
	return d, true
}

// HasHealthExtension reports whether the model carries the Application
// Health extension (an alternative health signal to an LB probe).
func (v *VirtualMachineScaleSet) HasHealthExtension() bool {
	vp := v.Properties.VirtualMachineProfile
	return vp != nil && strings.Contains(strings.ToLower(string(vp.ExtensionProfile)), "applicationhealth")
}

// ValidateScaleSet checks a normalized scale-set model against Azure's rules,
// with old the stored model (nil on create) and c the LBs and subnets it
// references. It returns the first broken rule as a *RuleError.
func ValidateScaleSet(v, old *VirtualMachineScaleSet, c *VMSSContext) error {
	if c == nil {
		c = &VMSSContext{}
	}
	if v.SKU != nil && v.SKU.Capacity != nil && (*v.SKU.Capacity < 0 || *v.SKU.Capacity > MaxScaleSetCapacity) {
		return ruleErr(CodeInvalidParameter, "sku.capacity",
			"Value %d of sku.capacity is out of range: it must be between 0 and %d.", *v.SKU.Capacity, MaxScaleSetCapacity)
	}
	p := &v.Properties
	if vp := p.VirtualMachineProfile; vp != nil && vp.OSProfile != nil && vp.OSProfile.ComputerNamePrefix != "" {
		os := vp.OSProfile
		if err := CheckComputerNamePrefix("properties.virtualMachineProfile.osProfile.computerNamePrefix",
			os.ComputerNamePrefix, len(os.WindowsConfiguration) > 0); err != nil {
			return err
		}
	}
	if old != nil {
		op := &old.Properties
		if op.OrchestrationMode != p.OrchestrationMode {
			return propertyChange("orchestrationMode")
		}
		if !int32Eq(op.PlatformFaultDomainCount, p.PlatformFaultDomainCount) {
			return propertyChange("platformFaultDomainCount")
		}
		if op.SinglePlacementGroup != nil && !*op.SinglePlacementGroup && p.SinglePlacementGroup != nil && *p.SinglePlacementGroup {
			return propertyChange("singlePlacementGroup")
		}
	}
	if p.PlatformFaultDomainCount != nil && (*p.PlatformFaultDomainCount < 1 || *p.PlatformFaultDomainCount > 5) {
		return ruleErr(CodeInvalidParameter, "properties.platformFaultDomainCount",
			"Value %d of properties.platformFaultDomainCount is out of range: it must be between 1 and 5.", *p.PlatformFaultDomainCount)
	}
	if p.OrchestrationMode == OrchestrationFlexible && p.SinglePlacementGroup != nil && *p.SinglePlacementGroup {
		return ruleErr(CodeInvalidParameter, "properties.singlePlacementGroup",
			"Scale set %s uses orchestration mode Flexible, which requires singlePlacementGroup false.", v.ID)
	}
	np := v.NetworkProfile()
	hasProbe := np != nil && np.HealthProbe != nil && np.HealthProbe.ID != ""
	if p.UpgradePolicy.Mode == UpgradeRolling && !hasProbe && !v.HasHealthExtension() {
		return ruleErr(CodeBadRequest, "properties.upgradePolicy.mode", RollingNeedsHealthMessage)
	}
	if autoOSUpgrade(p.UpgradePolicy) && !hasProbe && !v.HasHealthExtension() {
		return ruleErr(CodeBadRequest, "properties.upgradePolicy.automaticOSUpgradePolicy.enableAutomaticOSUpgrade",
			"Automatic OS Upgrade is not supported for this Virtual Machine Scale Set because a health probe or health extension was not provided.")
	}
	if p.OrchestrationMode == OrchestrationFlexible && p.PlatformFaultDomainCount == nil {
		return ruleErr(CodeInvalidParameter, "properties.platformFaultDomainCount",
			"Property properties.platformFaultDomainCount is required for scale sets with orchestration mode Flexible.")
	}
	if rp := p.UpgradePolicy.RollingUpgradePolicy; rp != nil {
		for name, f := range map[string]*int32{"maxBatchInstancePercent": rp.MaxBatchInstancePercent,
			"maxUnhealthyInstancePercent": rp.MaxUnhealthyInstancePercent, "maxUnhealthyUpgradedInstancePercent": rp.MaxUnhealthyUpgradedInstancePercent} {
			lo := int32(5)
			if name == "maxUnhealthyUpgradedInstancePercent" {
				lo = 0
			}
			if err := portRange("properties.upgradePolicy.rollingUpgradePolicy."+name, f, lo, 100, false); err != nil {
				return err
			}
		}
		if rp.PauseTimeBetweenBatches != "" {
			if _, ok := parseISODuration(rp.PauseTimeBetweenBatches); !ok {
				return ruleErr(CodeInvalidParameter, "properties.upgradePolicy.rollingUpgradePolicy.pauseTimeBetweenBatches",
					"Value '%s' of pauseTimeBetweenBatches is not an ISO 8601 duration such as PT0S.", rp.PauseTimeBetweenBatches)
			}
		}
	}
	if ar := p.AutomaticRepairsPolicy; ar != nil {
		d, ok := parseISODuration(ar.GracePeriod)
		if !ok || d < 10*time.Minute || d > 90*time.Minute {
			return ruleErr(CodeInvalidParameter, "properties.automaticRepairsPolicy.gracePeriod",
				"Value '%s' of properties.automaticRepairsPolicy.gracePeriod must be an ISO 8601 duration between PT10M and PT90M.", ar.GracePeriod)
		}
		if *ar.Enabled && !hasProbe && !v.HasHealthExtension() {
			return ruleErr(CodeBadRequest, "properties.automaticRepairsPolicy.enabled",
				"Automatic repairs are not supported for this Virtual Machine Scale Set because a health probe or health extension was not provided.")
		}
	}
	if np == nil {
		return nil
	}
	if hasProbe {
		if err := validateHealthProbe(np.HealthProbe.ID, c); err != nil {
			return err
		}
	}
	return validateNICs(v, np, c)
}

// autoOSUpgrade reports whether automatic OS image upgrades are enabled.
func autoOSUpgrade(u *UpgradePolicy) bool {
	if u == nil || len(u.AutomaticOSUpgradePolicy) == 0 {
		return false
	}
	var a struct {
		EnableAutomaticOSUpgrade *bool `json:"enableAutomaticOSUpgrade"`
	}
	return json.Unmarshal(u.AutomaticOSUpgradePolicy, &a) == nil && a.EnableAutomaticOSUpgrade != nil && *a.EnableAutomaticOSUpgrade
}

func int32Eq(a, b *int32) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return *a == *b
}

func propertyChange(prop string) error {
	return ruleErr(CodePropertyChangeNotAllowed, "properties."+prop, "Changing property '%s' is not allowed.", prop)
}

func validateHealthProbe(id string, c *VMSSContext) error {
	const field = "properties.virtualMachineProfile.networkProfile.healthProbe.id"
	lbID, coll, _, ok := ParseLBChildID(id)
	if !ok || coll != CollProbes {
		return ruleErr(CodeInvalidJSONReferenceWrongType, field,
			"Reference Id %s is using wrong resource type. Expected resource type: %s.", id, ProbeType)
	}
	lb := c.LoadBalancers[NormalizeRefID(lbID)]
	if lb == nil || lb.ProbeByID(id) == nil {
		return danglingRef(field, id)
	}
	for _, r := range lb.Properties.LoadBalancingRules {
		if r.Properties.Probe != nil && SameID(r.Properties.Probe.ID, id) {
			return nil
		}
	}
	return ruleErr(CodeCannotUseInactiveHealthProbe, field,
		"Health probe %s cannot be used by virtual machine scale set because it is not referenced by any load balancing rule. Add a load balancing rule that uses the probe first.", id)
}

func validateNICs(v *VirtualMachineScaleSet, np *NetworkProfile, c *VMSSContext) error {
	publicLB, internalLB := "", ""
	lbSku := ""
	for i, nic := range np.NetworkInterfaceConfigurations {
		nf := fmt.Sprintf("properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations[%d]", i)
		if err := checkChildName(nf+".name", nic.Name); err != nil {
			return err
		}
		for j, ipc := range nic.Properties.IPConfigurations {
			f := fmt.Sprintf("%s.properties.ipConfigurations[%d].properties.", nf, j)
			if err := checkChildName(fmt.Sprintf("%s.properties.ipConfigurations[%d].name", nf, j), ipc.Name); err != nil {
				return err
			}
			ip := &ipc.Properties
			if ip.Subnet == nil || ip.Subnet.ID == "" {
				return ruleErr(CodeInvalidParameter, f+"subnet", "Property %ssubnet is required.", f)
			}
			if err := checkRefType(f+"subnet.id", ip.Subnet.ID, LoadBalancerSubnetType); err != nil {
				return err
			}
			if _, ok := c.Subnets[NormalizeRefID(ip.Subnet.ID)]; !ok {
				return danglingRef(f+"subnet.id", ip.Subnet.ID)
			}
			refs := func(list []SubResource, coll, name string) error {
				for k, r := range list {
					rf := fmt.Sprintf("%s%s[%d].id", f, name, k)
					lbID, cl, _, ok := ParseLBChildID(r.ID)
					if !ok || cl != coll {
						return ruleErr(CodeInvalidResourceReference, rf,
							"Resource id '%s' in %s is not a valid load balancer %s id.", r.ID, rf, coll)
					}
					lb := c.LoadBalancers[NormalizeRefID(lbID)]
					if lb == nil {
						return danglingRef(rf, r.ID)
					}
					found := false
					if coll == CollBackendAddressPools {
						found = lb.Pool(r.ID) != nil
					} else {
						for _, np := range lb.Properties.InboundNatPools {
							found = found || SameID(np.ID, r.ID)
						}
					}
					if !found {
						return danglingRef(rf, r.ID)
					}
					if lbSku != "" && lbSku != lb.SkuName() {
						return ruleErr(CodeDifferentSkuInVMSS, rf,
							"Different basic sku and standard sku load balancer or public Ip resources in VMSS is not allowed")
					}
					lbSku = lb.SkuName()
					internal := len(lb.Properties.FrontendIPConfigurations) > 0 && lb.Properties.FrontendIPConfigurations[0].Internal()
					slot := &publicLB
					if internal {
						slot = &internalLB
					}
					if *slot != "" && !SameID(*slot, lb.ID) {
						kind := "public"
						if internal {
							kind = "internal"
						}
						return ruleErr(CodeMultipleLBsOfSameType, rf,
							"Virtual machine scale set %s cannot reference more than one %s load balancer: %s and %s.", v.ID, kind, *slot, lb.ID)
					}
					*slot = lb.ID
				}
				return nil
			}
			if err := refs(ip.LoadBalancerBackendAddressPools, CollBackendAddressPools, "loadBalancerBackendAddressPools"); err != nil {
				return err
			}
			if len(ip.LoadBalancerInboundNatPools) > 0 && v.Properties.OrchestrationMode == OrchestrationFlexible {
				return ruleErr(CodeNatPoolNotForFlexible, f+"loadBalancerInboundNatPools",
					"Inbound NAT pools are not supported for scale sets with orchestration mode Flexible; use inbound NAT rules with a backend pool instead.")
			}
			if err := refs(ip.LoadBalancerInboundNatPools, CollInboundNatPools, "loadBalancerInboundNatPools"); err != nil {
				return err
			}
			if pc := ip.PublicIPAddressConfiguration; pc != nil && pc.SKU != nil && pc.SKU.Name != "" && lbSku != "" && pc.SKU.Name != lbSku {
				return ruleErr(CodeDifferentSkuInVMSS, f+"publicIPAddressConfiguration.sku.name",
					"Different basic sku and standard sku load balancer or public Ip resources in VMSS is not allowed")
			}
			if pc := ip.PublicIPAddressConfiguration; pc != nil && pc.Properties.IdleTimeoutInMinutes != nil {
				if err := portRange(f+"publicIPAddressConfiguration.properties.idleTimeoutInMinutes", pc.Properties.IdleTimeoutInMinutes, 4, 30, false); err != nil {
					return err
				}
			}
		}
	}
	return validateOutboundCapacity(v, c)
}

// validateOutboundCapacity checks that the scale set's capacity fits the
// SNAT ports of every outbound rule on a pool it joins.
func validateOutboundCapacity(v *VirtualMachineScaleSet, c *VMSSContext) error {
	u := v.Uses()
	if u.Capacity == 0 {
		return nil
	}
	for _, lbID := range u.LoadBalancerIDs() {
		lb := c.LoadBalancers[lbID]
		if lb == nil {
			continue
		}
		for _, o := range lb.Properties.OutboundRules {
			op := o.Properties
			if op.BackendAddressPool == nil || op.AllocatedOutboundPorts == nil || *op.AllocatedOutboundPorts == 0 || !hasRef(u.Pools, op.BackendAddressPool.ID) {
				continue
			}
			total := int64(len(op.FrontendIPConfigurations)) * SNATPortsPerFrontend
			if int64(*op.AllocatedOutboundPorts)*u.Capacity > total {
				return ruleErr(CodeAllocatedPortsExceedAvailable, "sku.capacity",
					"Specified Allocated Outbound Ports %d for Outbound Rule %s exceeds total number of available ports %d. Reduce allocated ports or increase number of IP addresses for outbound rule.",
					*op.AllocatedOutboundPorts, o.ID, total/u.Capacity/8*8)
			}
		}
	}
	return nil
}

// keepOmitted gives an update the stored values of what its body leaves
// out, as Azure's compute provider keeps them: the top-level properties
// (az 2.45's `vmss scale` PUTs only {location, sku}); in the profile the
// image (`az vmss update` leaves out storageProfile.imageReference on
// purpose), the OS disk and the OS profile's settings (adminPassword and
// customData are write-only: a GET-change-PUT lacks them); and every
// property nimbus's types do not declare, at any depth (clients on older
// api-versions, az 2.45 among them, send objects and arrays without the
// newer properties, which Azure keeps; an array element keeps them from the
// stored element of the same name). Other properties present in the body
// replace the stored ones whole: a GET-change-PUT without the health probe
// removes it.
func keepOmitted(v, old *VirtualMachineScaleSet) {
	p, o := &v.Properties, &old.Properties
	if v.SKU == nil {
		v.SKU = old.SKU
	} else {
		if v.SKU.Name == "" {
			v.SKU.Name = old.SKU.nameOrEmpty()
		}
		if v.SKU.Capacity == nil && old.SKU != nil {
			v.SKU.Capacity = old.SKU.Capacity
		}
	}
	if len(v.Zones) == 0 {
		v.Zones = old.Zones
	}
	if p.VirtualMachineProfile == nil {
		p.VirtualMachineProfile = o.VirtualMachineProfile
	}
	if p.UpgradePolicy == nil {
		p.UpgradePolicy = o.UpgradePolicy
	}
	if p.AutomaticRepairsPolicy == nil {
		p.AutomaticRepairsPolicy = o.AutomaticRepairsPolicy
	}
	if p.ScaleInPolicy == nil {
		p.ScaleInPolicy = o.ScaleInPolicy
	}
	if p.Overprovision == nil {
		p.Overprovision = o.Overprovision
	}
	if p.SinglePlacementGroup == nil {
		p.SinglePlacementGroup = o.SinglePlacementGroup
	}
	if p.PlatformFaultDomainCount == nil {
		p.PlatformFaultDomainCount = o.PlatformFaultDomainCount
	}
	if p.OrchestrationMode == "" {
		p.OrchestrationMode = o.OrchestrationMode
	}
	keepProfile(p.VirtualMachineProfile, o.VirtualMachineProfile)
	keepUnknown(v, old)
}

// keepProfile gives profile vp what it leaves out of the stored profile op:
// each of its parts (storage, OS, network, extension, diagnostics, security
// profiles, ...) left out as a whole, and inside the storage and OS
// profiles the image, the OS disk and the OS settings. A part that is
// present replaces the stored one (a GET-change-PUT without the health
// probe removes it).
func keepProfile(vp, op *VMProfile) {
	if vp == nil || op == nil || vp == op {
		return
	}
	if vp.NetworkProfile == nil {
		vp.NetworkProfile = op.NetworkProfile
	}
	for _, f := range []struct{ dst, src *json.RawMessage }{
		{&vp.ExtensionProfile, &op.ExtensionProfile}, {&vp.DiagnosticsProfile, &op.DiagnosticsProfile},
		{&vp.SecurityProfile, &op.SecurityProfile}, {&vp.ScheduledEventsProfile, &op.ScheduledEventsProfile},
		{&vp.BillingProfile, &op.BillingProfile},
	} {
		if len(*f.dst) == 0 {
			*f.dst = *f.src
		}
	}
	for _, f := range []struct{ dst, src *string }{
		{&vp.LicenseType, &op.LicenseType}, {&vp.Priority, &op.Priority}, {&vp.EvictionPolicy, &op.EvictionPolicy}, {&vp.UserData, &op.UserData},
	} {
		if *f.dst == "" {
			*f.dst = *f.src
		}
	}
	if vp.StorageProfile == nil {
		vp.StorageProfile = op.StorageProfile
	} else if os := op.StorageProfile; os != nil {
		sp := vp.StorageProfile
		if sp.ImageReference == nil && sp.OSDiskFacts().Image == nil {
			sp.ImageReference = os.ImageReference
		}
		if len(sp.OSDisk) == 0 {
			sp.OSDisk = os.OSDisk
		}
	}
	if vp.OSProfile == nil {
		vp.OSProfile = op.OSProfile
	} else if oo := op.OSProfile; oo != nil {
		o := vp.OSProfile
		for _, f := range []struct{ dst, src *string }{
			{&o.ComputerNamePrefix, &oo.ComputerNamePrefix}, {&o.AdminUsername, &oo.AdminUsername}, {&o.AdminPassword, &oo.AdminPassword},
		} {
			if *f.dst == "" {
				*f.dst = *f.src
			}
		}
		for _, f := range []struct{ dst, src *json.RawMessage }{
			{&o.LinuxConfiguration, &oo.LinuxConfiguration}, {&o.WindowsConfiguration, &oo.WindowsConfiguration}, {&o.Secrets, &oo.Secrets},
		} {
			if len(*f.dst) == 0 {
				*f.dst = *f.src
			}
		}
	}
}

// keepUnknown gives v the properties old has that nimbus's types do not
// declare and v leaves out (see keepOmitted).
func keepUnknown(v, old *VirtualMachineScaleSet) {
	ob, err1 := json.Marshal(old)
	nb, err2 := json.Marshal(v)
	var od, nd map[string]any
	if err1 != nil || err2 != nil || json.Unmarshal(ob, &od) != nil || json.Unmarshal(nb, &nd) != nil {
		return
	}
	merged, err := json.Marshal(mergeOmitted(od, nd, reflect.TypeFor[VirtualMachineScaleSet](), true))
	if err != nil {
		return
	}
	var out VirtualMachineScaleSet
	if json.Unmarshal(merged, &out) == nil {
		*v = out
	}
}

// mergeOmitted returns doc (decoded as type t) with the properties of base
// it lacks, objects merged recursively; with unknownOnly, only properties
// t does not declare. The elements of arrays of named objects are merged
// with the base element of the same name, unknown properties only.
func mergeOmitted(base, doc map[string]any, t reflect.Type, unknownOnly bool) map[string]any {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	var fields map[string]reflect.Type
	if t != nil && t.Kind() == reflect.Struct {
		fields = JSONFields(t)
	}
	for k, bv := range base {
		ft, declared := fields[strings.ToLower(k)]
		if t != nil && t.Kind() == reflect.Map {
			ft, declared = t.Elem(), true
		}
		dv, ok := doc[k]
		if !ok {
			if !unknownOnly || !declared {
				doc[k] = bv
			}
			continue
		}
		if !declared {
			ft = nil
		}
		switch b := bv.(type) {
		case map[string]any:
			if d, ok := dv.(map[string]any); ok {
				doc[k] = mergeOmitted(b, d, ft, unknownOnly)
			}
		case []any:
			d, ok := dv.([]any)
			if !ok {
				continue
			}
			var et reflect.Type
			if ft != nil && (ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array) {
				et = ft.Elem()
			}
			for _, del := range d {
				dm, ok := del.(map[string]any)
				name, _ := dm["name"].(string)
				if !ok || name == "" {
					continue
				}
				for _, bel := range b {
					if bm, ok := bel.(map[string]any); ok && strings.EqualFold(fmt.Sprint(bm["name"]), name) {
						mergeOmitted(bm, dm, et, true)
						break
					}
				}
			}
		}
	}
	return doc
}

func (s *VMSSSku) nameOrEmpty() string {
	if s == nil {
		return ""
	}
	return s.Name
}
