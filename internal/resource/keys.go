package resource

import "strings"

// Store key layout. Every key nimbus keeps in the store starts with one of
// these prefixes; controllers watch them.
//
//	/arm<lower-case resource ID>              one JSON value per top-level resource (subscriptions,
//	                                          resource groups, public IPs, virtual networks with their
//	                                          subnets inline, load balancers with their children inline,
//	                                          scale sets, ...). E.g. /arm/subscriptions/s/resourcegroups/rg/
//	                                          providers/microsoft.network/publicipaddresses/pip1
//	/ref<lower target ID>|<lower source ID>   reference index: source (a resource or a child) points at
//	                                          target; value is a JSON Ref. Written in the same transaction
//	                                          as the source.
//	/ipam/public/<addr>                       a public address allocated from the pool; value: owner ID.
//	/ipam/private/<lower subnet ID>/<addr>    a private address allocated in a subnet; value: owner ID.
//	/ipam/dns/<location>/<lower label>        a public IP DNS label in use; value: owner ID.
//	/ops/<operation ID>                       a long-running operation record (arm package).
//
// Because a group's contents live under GroupContentsPrefix, deleting a group
// is one prefix scan; because children are stored inside their top-level
// resource, a GET is one key read.
const (
	ResourcePrefix = "/arm"
	RefPrefix      = "/ref"
	IPAMPrefix     = "/ipam"
	OpsPrefix      = "/ops/"
)

// Key returns the store key of the top-level resource (or group or subscription) containing id.
func Key(id ID) string { return ResourcePrefix + strings.ToLower(id.Top().String()) }

// SubscriptionsPrefix is the prefix under which every subscription, and everything in it, is stored.
const SubscriptionsPrefix = ResourcePrefix + "/subscriptions/"

// GroupsPrefix returns the prefix of all resource groups (and their contents) of a subscription.
func GroupsPrefix(sub string) string {
	return SubscriptionsPrefix + strings.ToLower(sub) + "/resourcegroups/"
}

// GroupContentsPrefix returns the prefix of every resource inside a group.
func GroupContentsPrefix(sub, rg string) string {
	return GroupsPrefix(sub) + strings.ToLower(rg) + "/providers/"
}

// TypePrefix returns the prefix of every top-level resource of fullType in a group,
// e.g. TypePrefix(s, "rg", "Microsoft.Network/loadBalancers").
func TypePrefix(sub, rg, fullType string) string {
	return GroupContentsPrefix(sub, rg) + strings.ToLower(fullType) + "/"
}

// RefKey returns the reference-index key recording that source points at target.
func RefKey(target, source string) string {
	return RefPrefix + strings.ToLower(canonical(target)) + "|" + strings.ToLower(canonical(source))
}

// RefTargetPrefix returns the prefix of all reference keys whose target is id
// itself (children false) or id and anything under it (children true: the
// caller must filter keys through RefKeyTarget).
func RefTargetPrefix(id string, children bool) string {
	p := RefPrefix + strings.ToLower(canonical(id))
	if !children {
		p += "|"
	}
	return p
}

// canonical normalises an ID string (keywords' case, duplicate slashes); an
// unparsable string is returned unchanged.
func canonical(s string) string {
	id, err := ParseID(s)
	if err != nil {
		return s
	}
	return id.String()
}

// Ref is one entry of the reference index: Source (a resource or child ID, in
// its original case) references Target.
type Ref struct {
	Source string `json:"source"`
	Target string `json:"target"`
}

// ParseKey is the inverse of Key: the ID of the subscription, group or
// top-level resource stored at key, in the key's lower case. ok is false for
// a key outside ResourcePrefix or whose rest is not a resource ID.
func ParseKey(key string) (id ID, ok bool) {
	rest, found := strings.CutPrefix(key, ResourcePrefix)
	if !found || !strings.HasPrefix(rest, "/") {
		return ID{}, false
	}
	id, err := ParseID(rest)
	if err != nil {
		return ID{}, false
	}
	return id, true
}
