package resource

// ApplicationSecurityGroupType is the ARM type of an application security
// group.
const ApplicationSecurityGroupType = "Microsoft.Network/applicationSecurityGroups"

// ApplicationSecurityGroup is Microsoft.Network/applicationSecurityGroups: a
// named set of NIC ipconfigurations (scale-set ipConfigurations list it in
// applicationSecurityGroups) that security rules name as a source or
// destination instead of address prefixes. It has no properties of its own
// beyond its resourceGuid.
type ApplicationSecurityGroup struct {
	Envelope
	Properties ASGProperties `json:"properties"`
}

// ASGProperties is an application security group's properties bag.
type ASGProperties struct {
	ResourceGUID      string `json:"resourceGuid,omitempty"`
	ProvisioningState string `json:"provisioningState,omitempty"`
}

// SetProvisioningState sets properties.provisioningState.
func (a *ApplicationSecurityGroup) SetProvisioningState(s string) { a.Properties.ProvisioningState = s }
