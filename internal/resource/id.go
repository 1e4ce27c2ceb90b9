package resource

import (
	"strings"
)

// ID is a parsed Azure resource ID:
//
//	/subscriptions/{sub}[/resourceGroups/{rg}][/providers/{ns}/{type}/{name}[/{childType}/{childName}]...]
//
// Keywords (subscriptions, resourceGroups, providers) match case-insensitively;
// every other segment keeps the case it was given. Types and Names have the
// same length; Types[0] is the top-level type without the namespace (for
// example "loadBalancers") and Types[i>0] are child collection names (for
// example "probes"). The zero ID is invalid.
type ID struct {
	Subscription  string
	ResourceGroup string
	Namespace     string
	Types         []string
	Names         []string
}

// ParseID parses an absolute resource ID. Empty segments (from "//") are
// ignored. It returns a *Error with code LinkedInvalidPropertyId when s is not
// a resource ID.
func ParseID(s string) (ID, error) {
	var id ID
	segs := splitPath(s)
	bad := func() (ID, error) {
		return ID{}, BadRequest("LinkedInvalidPropertyId",
			"Property id '%s' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.", s)
	}
	if !strings.HasPrefix(s, "/") || len(segs) < 2 || !strings.EqualFold(segs[0], "subscriptions") || segs[1] == "" {
		return bad()
	}
	id.Subscription = segs[1]
	rest := segs[2:]
	if len(rest) >= 2 && strings.EqualFold(rest[0], "resourceGroups") {
		id.ResourceGroup = rest[1]
		rest = rest[2:]
	} else if len(rest) == 1 && strings.EqualFold(rest[0], "resourceGroups") {
		return bad()
	}
	if len(rest) == 0 {
		return id, nil
	}
	if !strings.EqualFold(rest[0], "providers") || len(rest) < 4 || len(rest)%2 != 0 {
		return bad()
	}
	id.Namespace = rest[1]
	for i := 2; i < len(rest); i += 2 {
		id.Types = append(id.Types, rest[i])
		id.Names = append(id.Names, rest[i+1])
	}
	return id, nil
}

// splitPath splits an URL path into its non-empty segments.
func splitPath(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// SubscriptionID returns the ID of a subscription.
func SubscriptionID(sub string) ID { return ID{Subscription: sub} }

// GroupID returns the ID of a resource group.
func GroupID(sub, rg string) ID { return ID{Subscription: sub, ResourceGroup: rg} }

// NewID returns the ID of the top-level resource of fullType ("Microsoft.Network/loadBalancers")
// named name in group rg.
func NewID(sub, rg, fullType, name string) ID {
	ns, typ, _ := strings.Cut(fullType, "/")
	return ID{Subscription: sub, ResourceGroup: rg, Namespace: ns, Types: []string{typ}, Names: []string{name}}
}

// IsZero reports whether id is the zero ID.
func (id ID) IsZero() bool { return id.Subscription == "" }

// IsGroup reports whether id names a resource group.
func (id ID) IsGroup() bool { return id.ResourceGroup != "" && id.Namespace == "" }

// String returns the canonical form: keywords in Azure's casing, other segments as given.
func (id ID) String() string {
	if id.IsZero() {
		return ""
	}
	var b strings.Builder
	b.WriteString("/subscriptions/")
	b.WriteString(id.Subscription)
	if id.ResourceGroup != "" {
		b.WriteString("/resourceGroups/")
		b.WriteString(id.ResourceGroup)
	}
	if id.Namespace != "" {
		b.WriteString("/providers/")
		b.WriteString(id.Namespace)
		for i := range id.Types {
			b.WriteByte('/')
			b.WriteString(id.Types[i])
			b.WriteByte('/')
			b.WriteString(id.Names[i])
		}
	}
	return b.String()
}

// Type returns the full resource type, e.g. "Microsoft.Network/virtualNetworks/subnets".
// A group's type is "Microsoft.Resources/resourceGroups", a subscription's
// "Microsoft.Resources/subscriptions".
func (id ID) Type() string {
	switch {
	case id.Namespace != "":
		return id.Namespace + "/" + strings.Join(id.Types, "/")
	case id.ResourceGroup != "":
		return "Microsoft.Resources/resourceGroups"
	case id.Subscription != "":
		return "Microsoft.Resources/subscriptions"
	}
	return ""
}

// Name returns the last name in the ID (the group name for a group, the
// subscription ID for a subscription).
func (id ID) Name() string {
	switch {
	case len(id.Names) > 0:
		return id.Names[len(id.Names)-1]
	case id.ResourceGroup != "":
		return id.ResourceGroup
	}
	return id.Subscription
}

// Top returns the top-level resource of id (id itself if it is top-level or not a provider resource).
func (id ID) Top() ID {
	if len(id.Types) <= 1 {
		return id
	}
	return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup, Namespace: id.Namespace,
		Types: id.Types[:1:1], Names: id.Names[:1:1]}
}

// Parent returns the ID one level up: the parent resource of a child, the
// group of a top-level resource, the subscription of a group.
func (id ID) Parent() ID {
	switch {
	case len(id.Types) > 1:
		n := len(id.Types) - 1
		return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup, Namespace: id.Namespace,
			Types: id.Types[:n:n], Names: id.Names[:n:n]}
	case len(id.Types) == 1:
		return ID{Subscription: id.Subscription, ResourceGroup: id.ResourceGroup}
	}
	return ID{Subscription: id.Subscription}
}

// Child returns the ID of the child named name in collection childType of id.
func (id ID) Child(childType, name string) ID {
	c := id
	c.Types = append(id.Types[:len(id.Types):len(id.Types)], childType)
	c.Names = append(id.Names[:len(id.Names):len(id.Names)], name)
	return c
}

// Equal reports whether id and o name the same resource (ARM IDs compare case-insensitively).
func (id ID) Equal(o ID) bool { return strings.EqualFold(id.String(), o.String()) }

// Within reports whether id is anc or lies under it.
func (id ID) Within(anc ID) bool {
	a, s := strings.ToLower(anc.String()), strings.ToLower(id.String())
	if a == s {
		return true
	}
	if id.Namespace != "" && anc.Namespace == "" && anc.ResourceGroup != "" {
		return strings.HasPrefix(s, a+"/providers/")
	}
	return strings.HasPrefix(s, a+"/")
}
