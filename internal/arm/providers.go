package arm

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/resource"
)

// providerType is one entry of a provider's resourceTypes.
type providerType struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
	APIVersions  []string `json:"apiVersions"`
	Capabilities string   `json:"capabilities,omitempty"`
}

// provider is the body of GET /subscriptions/{sub}/providers/{ns}.
type provider struct {
	ID                 string         `json:"id"`
	Namespace          string         `json:"namespace"`
	RegistrationState  string         `json:"registrationState"`
	RegistrationPolicy string         `json:"registrationPolicy"`
	ResourceTypes      []providerType `json:"resourceTypes"`
}

// namespaces lists the namespaces nimbus serves and their api-versions.
var namespaces = []struct {
	name     string
	versions Versions
}{
	{"Microsoft.Compute", ComputeVersions},
	{"Microsoft.Network", NetworkVersions},
	{"Microsoft.Resources", ResourcesVersions},
}

// provider builds the metadata of namespace ns from the registered kinds, or nil if unknown.
func (s *Server) provider(sub, ns string) *provider {
	i := slices.IndexFunc(namespaces, func(n struct {
		name     string
		versions Versions
	}) bool {
		return strings.EqualFold(n.name, ns)
	})
	if i < 0 {
		return nil
	}
	n := namespaces[i]
	p := &provider{ID: "/subscriptions/" + sub + "/providers/" + n.name, Namespace: n.name,
		RegistrationState: "Registered", RegistrationPolicy: "RegistrationRequired"}
	add := func(t string, vs Versions) {
		p.ResourceTypes = append(p.ResourceTypes, providerType{ResourceType: t, Locations: slices.Clone(Locations), APIVersions: vs, Capabilities: "None"})
	}
	for _, k := range s.kinds {
		kns, typ, _ := strings.Cut(k.Type, "/")
		if !strings.EqualFold(kns, n.name) {
			continue
		}
		add(typ, k.Versions)
		for _, c := range k.Children {
			add(typ+"/"+c, k.Versions)
		}
	}
	if n.name == "Microsoft.Resources" {
		add("resourceGroups", ResourcesVersions)
		add("resources", ResourcesVersions)
		add("subscriptions", SubscriptionVersions)
	}
	add("locations", n.versions)
	add("locations/operations", n.versions)
	add("locations/operationResults", n.versions)
	add("operations", n.versions)
	return p
}

func (s *Server) getProvider(_ context.Context, r *Request) (*Response, error) {
	p := s.provider(r.Param("sub"), r.Param("ns"))
	if p == nil {
		return nil, notFoundNamespace(r.Param("ns"))
	}
	return JSON(http.StatusOK, p), nil
}

func notFoundNamespace(ns string) error {
	return resource.NotFound("InvalidResourceNamespace", "The resource namespace '%s' is invalid.", ns)
}

func (s *Server) listProviders(_ context.Context, r *Request) (*Response, error) {
	var items []any
	for _, n := range namespaces {
		items = append(items, s.provider(r.Param("sub"), n.name))
	}
	return r.Page(items)
}

func init() {
	registrations = append(registrations, func(s *Server) {
		s.Handle(http.MethodGet, "/subscriptions/{sub}/providers", ResourcesVersions, s.listProviders)
		s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/{ns}", ResourcesVersions, s.getProvider)
		// Registration is a no-op: every namespace is always registered.
		s.Handle(http.MethodPost, "/subscriptions/{sub}/providers/{ns}/register", ResourcesVersions, s.getProvider)
	})
}
