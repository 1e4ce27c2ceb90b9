package template

import "strings"

// Scope is where a deployment runs: a resource group of a subscription, or
// the subscription itself when ResourceGroup is "" (then resourceGroup() is
// an error and resourceId() without a group gives subscription-level ids).
type Scope struct {
	TenantID                string
	SubscriptionID          string
	SubscriptionDisplayName string
	ResourceGroup           string
	// Location is the resource group's location (resourceGroup().location),
	// or the deployment's location at subscription scope (deployment().location).
	Location string
	// ResourceGroupTags are the resource group's tags (resourceGroup().tags).
	ResourceGroupTags map[string]string
	// DeploymentName is the deployment's name (deployment().name).
	DeploymentName string
	// ResourceManagerEndpoint is the ARM endpoint URL (environment().resourceManager).
	ResourceManagerEndpoint string
}

// ResourceGroupID is the ARM id of the scope's resource group.
func (s Scope) ResourceGroupID() string {
	return "/subscriptions/" + s.SubscriptionID + "/resourceGroups/" + s.ResourceGroup
}

// ResourceID builds an ARM id for a fully qualified type
// ("Microsoft.Network/virtualNetworks/subnets") and one name per type
// segment after the namespace (["vnet1", "default"]): resource-group scoped,
// or subscription scoped when resourceGroup is "". A resource group itself
// (type Microsoft.Resources/resourceGroups) is /subscriptions/{s}/resourceGroups/{name}.
func ResourceID(subscriptionID, resourceGroup, fullType string, names []string) string {
	if resourceGroup == "" {
		if strings.EqualFold(fullType, ResourceGroupType) && len(names) == 1 {
			return "/subscriptions/" + subscriptionID + "/resourceGroups/" + names[0]
		}
		return "/subscriptions/" + subscriptionID + "/providers/" + typeNamePath(fullType, names)
	}
	return "/subscriptions/" + subscriptionID + "/resourceGroups/" + resourceGroup + "/providers/" + typeNamePath(fullType, names)
}

// ResourceGroupType is the type of resource groups, which subscription-scope
// templates create.
const ResourceGroupType = "Microsoft.Resources/resourceGroups"

// typeNamePath interleaves a type's segments with the names:
// "Microsoft.Network/virtualNetworks/subnets", [vn, s] →
// "Microsoft.Network/virtualNetworks/vn/subnets/s".
func typeNamePath(fullType string, names []string) string {
	segs := strings.Split(fullType, "/")
	var b strings.Builder
	b.WriteString(segs[0])
	for i, s := range segs[1:] {
		b.WriteByte('/')
		b.WriteString(s)
		if i < len(names) {
			b.WriteByte('/')
			b.WriteString(names[i])
		}
	}
	return b.String()
}

// parseResourceID splits a resource-group-scoped id into its parts. ok is
// false when id is not of that form.
func parseResourceID(id string) (sub, rg, fullType string, names []string, ok bool) {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) < 7 || !strings.EqualFold(parts[0], "subscriptions") || !strings.EqualFold(parts[2], "resourceGroups") || !strings.EqualFold(parts[4], "providers") {
		return "", "", "", nil, false
	}
	rest := parts[5:]
	if len(rest)%2 != 1 || len(rest) < 3 {
		return "", "", "", nil, false
	}
	typ := []string{rest[0]}
	for i := 1; i < len(rest); i += 2 {
		typ = append(typ, rest[i])
		names = append(names, rest[i+1])
	}
	return parts[1], parts[3], strings.Join(typ, "/"), names, true
}
