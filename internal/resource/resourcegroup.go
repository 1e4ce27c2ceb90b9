package resource

import (
	"regexp"
)

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

// groupName is Azure's resource group name rule: 1-90 characters, letters,
// digits, underscores, hyphens, periods and parentheses, not ending in a period.
var groupName = regexp.MustCompile(`^[-\w\._\(\)]{1,90}$`)

// ValidateGroupName checks a resource group name.
func ValidateGroupName(name string) error {
	if !groupName.MatchString(name) || name[len(name)-1] == '.' {
		return BadRequest("InvalidResourceGroup", "The provided resource group name '%s' has these invalid characters: '%s'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'.", name, name)
	}
	return nil
}

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
