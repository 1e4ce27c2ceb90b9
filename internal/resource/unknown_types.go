package resource

// The types that keep the properties their Go fields do not declare (see
// Unknown): top-level resources, the children a child PUT replaces, and
// the scale-set profile instances copy.

// UnmarshalJSON decodes VirtualMachineScaleSet, keeping undeclared properties.
func (v *VirtualMachineScaleSet) UnmarshalJSON(b []byte) error {
	type plain VirtualMachineScaleSet
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes VirtualMachineScaleSet with the undeclared properties it was decoded with.
func (v VirtualMachineScaleSet) MarshalJSON() ([]byte, error) {
	type plain VirtualMachineScaleSet
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes VMProfile, keeping undeclared properties.
func (v *VMProfile) UnmarshalJSON(b []byte) error {
	type plain VMProfile
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes VMProfile with the undeclared properties it was decoded with.
func (v VMProfile) MarshalJSON() ([]byte, error) {
	type plain VMProfile
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes LoadBalancer, keeping undeclared properties.
func (v *LoadBalancer) UnmarshalJSON(b []byte) error {
	type plain LoadBalancer
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes LoadBalancer with the undeclared properties it was decoded with.
func (v LoadBalancer) MarshalJSON() ([]byte, error) {
	type plain LoadBalancer
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes FrontendIPConfiguration, keeping undeclared properties.
func (v *FrontendIPConfiguration) UnmarshalJSON(b []byte) error {
	type plain FrontendIPConfiguration
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes FrontendIPConfiguration with the undeclared properties it was decoded with.
func (v FrontendIPConfiguration) MarshalJSON() ([]byte, error) {
	type plain FrontendIPConfiguration
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes BackendAddressPool, keeping undeclared properties.
func (v *BackendAddressPool) UnmarshalJSON(b []byte) error {
	type plain BackendAddressPool
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes BackendAddressPool with the undeclared properties it was decoded with.
func (v BackendAddressPool) MarshalJSON() ([]byte, error) {
	type plain BackendAddressPool
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes LoadBalancingRule, keeping undeclared properties.
func (v *LoadBalancingRule) UnmarshalJSON(b []byte) error {
	type plain LoadBalancingRule
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes LoadBalancingRule with the undeclared properties it was decoded with.
func (v LoadBalancingRule) MarshalJSON() ([]byte, error) {
	type plain LoadBalancingRule
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes Probe, keeping undeclared properties.
func (v *Probe) UnmarshalJSON(b []byte) error {
	type plain Probe
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes Probe with the undeclared properties it was decoded with.
func (v Probe) MarshalJSON() ([]byte, error) {
	type plain Probe
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes InboundNatRule, keeping undeclared properties.
func (v *InboundNatRule) UnmarshalJSON(b []byte) error {
	type plain InboundNatRule
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes InboundNatRule with the undeclared properties it was decoded with.
func (v InboundNatRule) MarshalJSON() ([]byte, error) {
	type plain InboundNatRule
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes InboundNatPool, keeping undeclared properties.
func (v *InboundNatPool) UnmarshalJSON(b []byte) error {
	type plain InboundNatPool
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes InboundNatPool with the undeclared properties it was decoded with.
func (v InboundNatPool) MarshalJSON() ([]byte, error) {
	type plain InboundNatPool
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes OutboundRule, keeping undeclared properties.
func (v *OutboundRule) UnmarshalJSON(b []byte) error {
	type plain OutboundRule
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes OutboundRule with the undeclared properties it was decoded with.
func (v OutboundRule) MarshalJSON() ([]byte, error) {
	type plain OutboundRule
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes PublicIPAddress, keeping undeclared properties.
func (v *PublicIPAddress) UnmarshalJSON(b []byte) error {
	type plain PublicIPAddress
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes PublicIPAddress with the undeclared properties it was decoded with.
func (v PublicIPAddress) MarshalJSON() ([]byte, error) {
	type plain PublicIPAddress
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes VirtualNetwork, keeping undeclared properties.
func (v *VirtualNetwork) UnmarshalJSON(b []byte) error {
	type plain VirtualNetwork
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes VirtualNetwork with the undeclared properties it was decoded with.
func (v VirtualNetwork) MarshalJSON() ([]byte, error) {
	type plain VirtualNetwork
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes Subnet, keeping undeclared properties.
func (v *Subnet) UnmarshalJSON(b []byte) error {
	type plain Subnet
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes Subnet with the undeclared properties it was decoded with.
func (v Subnet) MarshalJSON() ([]byte, error) {
	type plain Subnet
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes NetworkSecurityGroup, keeping undeclared properties.
func (v *NetworkSecurityGroup) UnmarshalJSON(b []byte) error {
	type plain NetworkSecurityGroup
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes NetworkSecurityGroup with the undeclared properties it was decoded with.
func (v NetworkSecurityGroup) MarshalJSON() ([]byte, error) {
	type plain NetworkSecurityGroup
	return EncodeMerging(plain(v), v.unknown)
}

// UnmarshalJSON decodes SecurityRule, keeping undeclared properties.
func (v *SecurityRule) UnmarshalJSON(b []byte) error {
	type plain SecurityRule
	u, err := DecodeKeeping(b, (*plain)(v))
	v.unknown = u
	return err
}

// MarshalJSON encodes SecurityRule with the undeclared properties it was decoded with.
func (v SecurityRule) MarshalJSON() ([]byte, error) {
	type plain SecurityRule
	return EncodeMerging(plain(v), v.unknown)
}
