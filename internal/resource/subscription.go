package resource

// Subscription is a Microsoft.Resources subscription as GET /subscriptions returns it.
type Subscription struct {
	ID                   string               `json:"id"`
	SubscriptionID       string               `json:"subscriptionId"`
	TenantID             string               `json:"tenantId"`
	DisplayName          string               `json:"displayName"`
	State                string               `json:"state"`
	SubscriptionPolicies SubscriptionPolicies `json:"subscriptionPolicies"`
	AuthorizationSource  string               `json:"authorizationSource"`
	ManagedByTenants     []ManagedByTenant    `json:"managedByTenants"`
	Tags                 map[string]string    `json:"tags,omitempty"`
}

// SubscriptionPolicies are a subscription's policies (informational).
type SubscriptionPolicies struct {
	LocationPlacementID string `json:"locationPlacementId"`
	QuotaID             string `json:"quotaId"`
	SpendingLimit       string `json:"spendingLimit"`
}

// ManagedByTenant names a tenant managing a subscription.
type ManagedByTenant struct {
	TenantID string `json:"tenantId"`
}

// NewSubscription returns the enabled subscription sub of tenant tid.
func NewSubscription(sub, tid, name string) *Subscription {
	return &Subscription{
		ID:                  SubscriptionID(sub).String(),
		SubscriptionID:      sub,
		TenantID:            tid,
		DisplayName:         name,
		State:               "Enabled",
		AuthorizationSource: "RoleBased",
		SubscriptionPolicies: SubscriptionPolicies{
			LocationPlacementID: "Public_2014-09-01", QuotaID: "PayAsYouGo_2014-09-01", SpendingLimit: "Off",
		},
	}
}
