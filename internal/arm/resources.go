package arm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strings"

	"nimbus/internal/resource"
)

// genericResource is the shape of an entry of GET …/resources.
type genericResource struct {
	ID                string            `json:"id"`
	Name              string            `json:"name"`
	Type              string            `json:"type"`
	Location          string            `json:"location,omitempty"`
	Tags              map[string]string `json:"tags,omitempty"`
	Kind              string            `json:"kind,omitempty"`
	ManagedBy         string            `json:"managedBy,omitempty"`
	SKU               json.RawMessage   `json:"sku,omitempty"`
	Zones             []string          `json:"zones,omitempty"`
	Identity          json.RawMessage   `json:"identity,omitempty"`
	ProvisioningState string            `json:"provisioningState,omitempty"`
}

// storedGeneric decodes the generic fields of any stored resource.
type storedGeneric struct {
	genericResource
	Properties struct {
		ProvisioningState string `json:"provisioningState"`
	} `json:"properties"`
}

// filterClause is one "field eq 'value'" of a $filter.
type filterClause struct{ field, value string }

var clauseRE = regexp.MustCompile(`(?i)^\s*(resourceGroup|name|resourceType|location|tagName|tagValue)\s+eq\s+'((?:[^']|'')*)'\s*$`)

// parseFilter parses the $filter forms az and the SDKs send: clauses
// "field eq 'value'" joined by "and", for resourceGroup, name, resourceType,
// location, tagName and tagValue.
func parseFilter(f string) ([]filterClause, error) {
	if strings.TrimSpace(f) == "" {
		return nil, nil
	}
	var out []filterClause
	for _, part := range regexp.MustCompile(`(?i)\s+and\s+`).Split(f, -1) {
		m := clauseRE.FindStringSubmatch(part)
		if m == nil {
			return nil, resource.BadRequest("InvalidFilterInQueryString",
				"Invalid $filter '%s'. Supported: resourceGroup, name, resourceType, location, tagName, tagValue with 'eq', joined by 'and'.", f)
		}
		out = append(out, filterClause{strings.ToLower(m[1]), strings.ReplaceAll(m[2], "''", "'")})
	}
	return out, nil
}

func (g *genericResource) matches(rg string, cs []filterClause) bool {
	tag := ""
	for _, c := range cs {
		ok := true
		switch c.field {
		case "resourcegroup":
			ok = strings.EqualFold(rg, c.value)
		case "name":
			ok = strings.EqualFold(g.Name, c.value)
		case "resourcetype":
			ok = strings.EqualFold(g.Type, c.value)
		case "location":
			ok = strings.EqualFold(g.Location, NormalizeLocation(c.value))
		case "tagname":
			tag = c.value
			_, ok = g.Tags[c.value]
		case "tagvalue":
			ok = false
			for k, v := range g.Tags {
				if (tag == "" || k == tag) && v == c.value {
					ok = true
				}
			}
		}
		if !ok {
			return false
		}
	}
	return true
}

// listResources serves GET /subscriptions/{sub}/resources and
// …/resourceGroups/{rg}/resources: every top-level resource of a
// registered kind, filtered by $filter.
func (s *Server) listResources(ctx context.Context, r *Request) (*Response, error) {
	sub, rg := r.Param("sub"), r.Param("rg")
	clauses, err := parseFilter(r.Query("$filter"))
	if err != nil {
		return nil, err
	}
	rd := StoreReader{s.st}
	prefix := resource.GroupsPrefix(sub)
	if rg != "" {
		if err := s.RequireGroup(ctx, rd, sub, rg); err != nil {
			return nil, err
		}
		prefix = resource.GroupContentsPrefix(sub, rg)
	} else if _, err := s.st.Get(ctx, resource.Key(resource.SubscriptionID(sub))); IsNotFound(err) {
		return nil, resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
	}
	expandState := strings.Contains(strings.ToLower(r.Query("$expand")), "provisioningstate")
	kvs, err := rd.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var items []any
	for _, kv := range kvs {
		k := s.kindOfKey(kv.Key)
		if k == nil {
			continue
		}
		var g storedGeneric
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return nil, fmt.Errorf("arm: decode %s: %w", kv.Key, err)
		}
		id, err := resource.ParseID(g.ID)
		if err != nil {
			continue
		}
		if !g.matches(id.ResourceGroup, clauses) {
			continue
		}
		out := g.genericResource
		if expandState {
			out.ProvisioningState = g.Properties.ProvisioningState
		}
		items = append(items, &out)
	}
	// Stored resources of unserved types (unserved.go), top-level ones.
	unserved, err := s.listUnserved(ctx, sub, rg, func(id, _ string) bool {
		pid, ok := parseUnservedPath(splitSegments(id))
		return ok && strings.Count(pid.fullType, "/") == 1
	})
	if err != nil {
		return nil, err
	}
	for _, g := range unserved {
		id, err := resource.ParseID(g.ID)
		if err != nil || !g.matches(id.ResourceGroup, clauses) {
			continue
		}
		if !expandState {
			g.ProvisioningState = ""
		}
		items = append(items, g)
	}
	return r.Page(items)
}

// registerResources registers the routes of resources.go.
func (s *Server) registerResources() {
	s.Handle(http.MethodGet, "/subscriptions/{sub}/resources", ResourcesVersions, s.listResources)
	s.Handle(http.MethodGet, "/subscriptions/{sub}/resourceGroups/{rg}/resources", ResourcesVersions, s.listResources)
}
