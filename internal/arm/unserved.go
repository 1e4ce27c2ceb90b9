package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Unserved resource types: by default a request for a type nimbus does not
// serve is refused (404 InvalidResourceType, or a deployment's preflight
// InvalidTemplateDeployment). With the opt-in — Config.UnservedTypes
// UnservedStore (`nimbus serve --unserved-types store`) or, per resource
// group, the group tag UnservedGroupTag with the value UnservedStore — such
// a resource inside a resource group is stored as a generic ARM resource
// and round-tripped: PUT (200/201, synchronous), GET, PATCH (tags and a
// shallow merge of properties), DELETE, and the list of its collection.
// It has provisioningState Succeeded and no behaviour at all; nimbus marks
// it with the tag UnservedMarkTag (value UnservedMarkValue) and lists it at
// GET /nimbus/info and in GET …/resources. Subscription-scope and
// extension resources of unserved types are still refused.
//
// Such resources are kept under UnservedPrefix + the lower-case resource
// ID, outside resource.ResourcePrefix, so controllers never see them; a
// resource group's delete removes them with it. A stored child of a served
// resource (a scale set's extensions resource) stays until its group goes.
const (
	// UnservedRefuse refuses unserved types (the default, also "").
	UnservedRefuse = "refuse"
	// UnservedStore stores unserved types as generic resources.
	UnservedStore = "store"
	// UnservedGroupTag is the resource-group tag that opts a group in
	// (value UnservedStore) or out (UnservedRefuse), whatever the server's
	// default.
	UnservedGroupTag = "nimbus-unserved-types"
	// UnservedMarkTag is the tag nimbus adds to every stored unserved
	// resource, so its GET (and `az resource list --tag`) shows that it
	// has no behaviour.
	UnservedMarkTag = "nimbus-unserved"
	// UnservedMarkValue is UnservedMarkTag's value.
	UnservedMarkValue = "stored-without-behaviour"
	// UnservedPrefix is the store prefix of stored unserved resources.
	UnservedPrefix = "/unserved"
)

// ValidUnservedMode reports whether m is a value of Config.UnservedTypes.
func ValidUnservedMode(m string) bool {
	return m == "" || m == UnservedRefuse || m == UnservedStore
}

// unservedKey is the store key of a stored unserved resource.
func unservedKey(id string) string { return UnservedPrefix + strings.ToLower(id) }

// unservedGroupPrefix is the prefix of every stored unserved resource of a group.
func unservedGroupPrefix(sub, rg string) string {
	return UnservedPrefix + strings.ToLower(resource.GroupID(sub, rg).String()) + "/"
}

// StoresUnserved reports whether resources of unserved types in resource
// group rg of sub are stored (see UnservedStore): the group's
// UnservedGroupTag if set, else the server's Config.UnservedTypes. A
// missing group follows the server's default.
func (s *Server) StoresUnserved(ctx context.Context, sub, rg string) bool {
	mode := s.cfg.UnservedTypes
	if kv, err := s.st.Get(ctx, resource.Key(resource.GroupID(sub, rg))); err == nil {
		var g resource.ResourceGroup
		if json.Unmarshal(kv.Value, &g) == nil {
			for k, v := range g.Tags {
				if strings.EqualFold(k, UnservedGroupTag) {
					mode = strings.ToLower(v)
				}
			}
		}
	}
	return mode == UnservedStore
}

// Serves reports whether nimbus has a route for method on the resource
// path id (a served type, top-level or child), whatever the api-version.
func (s *Server) Serves(method, id string) bool {
	rt, _, _ := s.match(method, splitSegments(id))
	return rt != nil
}

// unservedPath is a request path of a resource (or collection) of some
// type inside a resource group: …/providers/{ns}/{type}[/{name}/{type}]*[/{name}].
type unservedPath struct {
	sub, rg    string
	fullType   string // "Microsoft.Storage/storageAccounts/blobServices"
	id         string // the resource's id; for a collection, its parent's "…/providers/ns" path plus types
	collection bool
}

// parseUnservedPath recognises a resource-group-scoped provider path. ok
// is false for anything else (subscription scope, extension resources).
func parseUnservedPath(segs []string) (unservedPath, bool) {
	if len(segs) < 7 || !strings.EqualFold(segs[0], "subscriptions") || !strings.EqualFold(segs[2], "resourceGroups") ||
		!strings.EqualFold(segs[4], "providers") {
		return unservedPath{}, false
	}
	rest := segs[5:] // ns, type, name, type, name, ...
	for _, p := range rest[1:] {
		if strings.EqualFold(p, "providers") {
			return unservedPath{}, false
		}
	}
	types := []string{rest[0]}
	for i := 1; i < len(rest); i += 2 {
		types = append(types, rest[i])
	}
	p := unservedPath{sub: segs[1], rg: segs[3], fullType: strings.Join(types, "/"),
		id: "/" + strings.Join(segs, "/"), collection: len(rest)%2 == 0}
	return p, true
}

// serveUnserved serves a request for an unserved type when the opt-in
// applies; handled is false when it does not (the caller refuses).
func (s *Server) serveUnserved(ctx context.Context, hr *http.Request, segs []string, body []byte) (resp *Response, handled bool, err error) {
	p, ok := parseUnservedPath(segs)
	if !ok || !s.StoresUnserved(ctx, p.sub, p.rg) {
		return nil, false, nil
	}
	if hr.URL.Query().Get("api-version") == "" {
		return nil, true, resource.BadRequest("MissingApiVersionParameter",
			"The api-version query parameter (?api-version=) is required for all requests.")
	}
	if err := s.RequireGroup(ctx, StoreReader{s.st}, p.sub, p.rg); err != nil {
		return nil, true, err
	}
	if p.collection {
		if hr.Method != http.MethodGet {
			return nil, true, resource.Errorf(http.StatusMethodNotAllowed, "HttpMethodNotAllowed",
				"The HTTP method '%s' is not supported at '%s'.", hr.Method, hr.URL.Path)
		}
		items, err := s.listUnserved(ctx, p.sub, p.rg, func(id, typ string) bool {
			return strings.EqualFold(typ, p.fullType) && strings.HasPrefix(strings.ToLower(id), strings.ToLower(p.id)+"/")
		})
		if err != nil {
			return nil, true, err
		}
		list := make([]any, len(items))
		for i, it := range items {
			list[i] = it
		}
		resp, err := (&Request{HTTP: hr, Segments: segs, server: s}).Page(list)
		return resp, true, err
	}
	switch hr.Method {
	case http.MethodGet:
		kv, err := s.st.Get(ctx, unservedKey(p.id))
		if IsNotFound(err) {
			return nil, true, unservedNotFound(p)
		} else if err != nil {
			return nil, true, err
		}
		var obj map[string]any
		if err := json.Unmarshal(kv.Value, &obj); err != nil {
			return nil, true, fmt.Errorf("arm: decode %s: %w", p.id, err)
		}
		return JSON(http.StatusOK, obj), true, nil
	case http.MethodPut, http.MethodPatch:
		resp, err := s.writeUnserved(ctx, p, hr.Method == http.MethodPatch, body)
		return resp, true, err
	case http.MethodDelete:
		s.writeMu.Lock()
		defer s.writeMu.Unlock()
		_, err := s.st.Delete(ctx, unservedKey(p.id), store.AnyRevision)
		if IsNotFound(err) {
			return NoContent(http.StatusNoContent), true, nil
		}
		if err != nil {
			return nil, true, err
		}
		return NoContent(http.StatusOK), true, nil
	}
	return nil, true, resource.Errorf(http.StatusMethodNotAllowed, "HttpMethodNotAllowed",
		"The HTTP method '%s' is not supported at '%s'.", hr.Method, hr.URL.Path)
}

func unservedNotFound(p unservedPath) error {
	return resource.NotFound("ResourceNotFound", "The Resource '%s' under resource group '%s' was not found.",
		strings.TrimPrefix(p.id[strings.Index(strings.ToLower(p.id), "/providers/")+len("/providers/"):], "/"), p.rg)
}

// writeUnserved stores a PUT body (or merges a PATCH body into the stored
// resource) and answers with the stored resource.
func (s *Server) writeUnserved(ctx context.Context, p unservedPath, patch bool, body []byte) (*Response, error) {
	var in map[string]any
	if len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.UseNumber()
		if err := dec.Decode(&in); err != nil {
			return nil, resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: %v.", err)
		}
	}
	if in == nil {
		in = map[string]any{}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	key := unservedKey(p.id)
	old, err := s.st.Get(ctx, key)
	exists := err == nil
	if err != nil && !IsNotFound(err) {
		return nil, err
	}
	if patch && !exists {
		return nil, unservedNotFound(p)
	}
	obj := in
	id := p.id
	if exists {
		var prev map[string]any
		if err := json.Unmarshal(old.Value, &prev); err != nil {
			return nil, fmt.Errorf("arm: decode %s: %w", p.id, err)
		}
		if s, ok := prev["id"].(string); ok {
			id = s // keep the case the resource was created with
		}
		if patch {
			obj = mergeUnserved(prev, in)
		}
	}
	segs := strings.Split(strings.Trim(id, "/"), "/")
	obj["id"], obj["name"], obj["type"] = id, segs[len(segs)-1], p.fullType
	if loc, ok := obj["location"].(string); ok {
		obj["location"] = NormalizeLocation(loc)
	}
	props, _ := obj["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	props["provisioningState"] = resource.Succeeded
	obj["properties"] = props
	tags, _ := obj["tags"].(map[string]any)
	if tags == nil {
		tags = map[string]any{}
	}
	tags[UnservedMarkTag] = UnservedMarkValue
	obj["tags"] = tags
	b, err := json.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("arm: encode %s: %w", p.id, err)
	}
	expected := store.MustNotExist
	if exists {
		expected = old.Revision
	}
	if _, err := s.st.Put(ctx, key, b, expected); err != nil {
		return nil, err
	}
	var out map[string]any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("arm: decode %s: %w", p.id, err)
	}
	status := http.StatusCreated
	if exists {
		status = http.StatusOK
	}
	return JSON(status, out), nil
}

// mergeUnserved applies a PATCH body: top-level fields replace, properties
// are merged one level deep.
func mergeUnserved(prev, in map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range prev {
		out[k] = v
	}
	for k, v := range in {
		if k == "properties" {
			pp, _ := prev["properties"].(map[string]any)
			np, ok := v.(map[string]any)
			if ok && pp != nil {
				m := map[string]any{}
				for pk, pv := range pp {
					m[pk] = pv
				}
				for pk, pv := range np {
					m[pk] = pv
				}
				out[k] = m
				continue
			}
		}
		out[k] = v
	}
	return out
}

// listUnserved returns the stored unserved resources of a group (every
// group of sub when rg is ""), those keep(id, type) accepts, by id.
func (s *Server) listUnserved(ctx context.Context, sub, rg string, keep func(id, typ string) bool) ([]*genericResource, error) {
	prefix := UnservedPrefix + strings.ToLower("/subscriptions/"+sub+"/")
	if rg != "" {
		prefix = unservedGroupPrefix(sub, rg)
	}
	kvs, _, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var out []*genericResource
	for _, kv := range kvs {
		var g storedGeneric
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return nil, fmt.Errorf("arm: decode %s: %w", kv.Key, err)
		}
		if keep != nil && !keep(g.ID, g.Type) {
			continue
		}
		r := g.genericResource
		r.ProvisioningState = g.Properties.ProvisioningState
		out = append(out, &r)
	}
	sort.Slice(out, func(i, j int) bool { return strings.ToLower(out[i].ID) < strings.ToLower(out[j].ID) })
	return out, nil
}

// unservedInfo is the unservedTypes section of GET /nimbus/info.
func (s *Server) unservedInfo(ctx context.Context) (any, error) {
	mode := s.cfg.UnservedTypes
	if mode == "" {
		mode = UnservedRefuse
	}
	items, err := s.listUnserved(ctx, s.cfg.Identity.SubscriptionID, "", nil)
	if err != nil {
		return nil, err
	}
	res := make([]map[string]string, 0, len(items))
	for _, it := range items {
		res = append(res, map[string]string{"id": it.ID, "type": it.Type})
	}
	return map[string]any{"default": mode, "groupTag": UnservedGroupTag, "markTag": UnservedMarkTag, "resources": res}, nil
}

// deleteUnservedOf stages the deletion of a group's stored unserved
// resources in tx.
func (s *Server) deleteUnservedOf(ctx context.Context, tx *Tx, sub, rg string) error {
	kvs, _, err := s.st.List(ctx, unservedGroupPrefix(sub, rg))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	for _, kv := range kvs {
		tx.Delete(kv.Key, kv.Revision)
	}
	return nil
}
