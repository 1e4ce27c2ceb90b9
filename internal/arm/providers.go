package arm

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/resource"
)

// ProviderType is one entry of a Provider's resourceTypes.
type ProviderType struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
	APIVersions  []string `json:"apiVersions"`
	Capabilities string   `json:"capabilities,omitempty"`
}

// Provider is the body of GET /subscriptions/{sub}/providers/{ns}.
type Provider struct {
	ID                 string         `json:"id"`
	Namespace          string         `json:"namespace"`
	RegistrationState  string         `json:"registrationState"`
	RegistrationPolicy string         `json:"registrationPolicy"`
	ResourceTypes      []ProviderType `json:"resourceTypes"`
}

// namespace is a resource provider namespace and its api-versions.
type namespace struct {
	name     string
	versions Versions
}

// RegisterNamespace makes s list the resource provider namespace name (e.g.
// "Microsoft.Network") at /subscriptions/{sub}/providers, with the
// api-versions vs for its types' provider metadata. Call it before the
// server serves requests.
func (s *Server) RegisterNamespace(name string, vs Versions) {
	s.namespaces = append(s.namespaces, namespace{name: name, versions: vs})
	s.allVersions = NewVersions(slices.Concat(s.allVersions, vs)...)
}

// Provider builds the metadata of namespace ns from the registered kinds, or nil if unknown.
func (s *Server) Provider(sub, ns string) *Provider {
	i := slices.IndexFunc(s.namespaces, func(n namespace) bool { return strings.EqualFold(n.name, ns) })
	if i < 0 {
		return nil
	}
	n := s.namespaces[i]
	p := &Provider{ID: "/subscriptions/" + sub + "/providers/" + n.name, Namespace: n.name,
		RegistrationState: "Registered", RegistrationPolicy: "RegistrationRequired"}
	add := func(t string, vs Versions) {
		p.ResourceTypes = append(p.ResourceTypes, ProviderType{ResourceType: t, Locations: slices.Clone(Locations), APIVersions: vs, Capabilities: "None"})
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
	p := s.Provider(r.Param("sub"), r.Param("ns"))
	if p == nil {
		return nil, NamespaceNotFound(r.Param("ns"))
	}
	return JSON(http.StatusOK, p), nil
}

// NamespaceNotFound is the error for a resource provider namespace nimbus does not serve.
func NamespaceNotFound(ns string) error {
	return resource.NotFound("InvalidResourceNamespace", "The resource namespace '%s' is invalid.", ns)
}

func (s *Server) listProviders(_ context.Context, r *Request) (*Response, error) {
	var items []any
	ns := slices.Clone(s.namespaces)
	slices.SortFunc(ns, func(a, b namespace) int { return strings.Compare(a.name, b.name) })
	for _, n := range ns {
		items = append(items, s.Provider(r.Param("sub"), n.name))
	}
	return r.Page(items)
}

// registerProviders registers the routes of providers.go.
func (s *Server) registerProviders() {
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers", ResourcesVersions, s.listProviders)
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/{ns}", ResourcesVersions, s.getProvider)
	// Registration is a no-op: every namespace is always registered.
	s.Handle(http.MethodPost, "/subscriptions/{sub}/providers/{ns}/register", ResourcesVersions, s.getProvider)
}
