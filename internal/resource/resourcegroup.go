package resource

// ResourceGroup is a Microsoft.Resources/resourceGroups resource.
type ResourceGroup struct {
	Envelope
	ManagedBy  string                  `json:"managedBy,omitempty"`
	Properties ResourceGroupProperties `json:"properties"`
}

// ResourceGroupProperties holds a group's provisioning state.
type ResourceGroupProperties struct {
	ProvisioningState string `json:"provisioningState,omitempty"`
}

// ValidateGroupName checks a resource group name (CheckResourceGroupName).
func ValidateGroupName(name string) error { return CheckResourceGroupName(name) }

// Validate checks a resource group body for PUT.
func (g *ResourceGroup) Validate() error {
	if err := ValidateGroupName(g.Name); err != nil {
		return err
	}
	if err := ValidateLocation(g.Location); err != nil {
		return err
	}
	return ValidateTags(g.Tags)
}
