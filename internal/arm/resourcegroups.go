package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Resource groups are not a Kind: PUT and PATCH answer synchronously, and
// DELETE removes everything inside the group in one transaction, reported as
// an LRO.

func groupID(r *Request) resource.ID { return resource.GroupID(r.Param("sub"), r.Param("rg")) }

func (s *Server) LoadGroup(ctx context.Context, id resource.ID) (*resource.ResourceGroup, store.KV, error) {
	kv, err := s.st.Get(ctx, resource.Key(id))
	if IsNotFound(err) {
		return nil, kv, s.RequireGroup(ctx, StoreReader{s.st}, id.Subscription, id.ResourceGroup)
	}
	if err != nil {
		return nil, kv, err
	}
	var g resource.ResourceGroup
	if err := json.Unmarshal(kv.Value, &g); err != nil {
		return nil, kv, fmt.Errorf("arm: decode group: %w", err)
	}
	return &g, kv, nil
}

func (s *Server) putGroup(ctx context.Context, r *Request) (*Response, error) {
	id := groupID(r)
	var g resource.ResourceGroup
	if err := r.Decode(&g); err != nil {
		return nil, err
	}
	g.ID, g.Name, g.Type = id.String(), id.ResourceGroup, "Microsoft.Resources/resourceGroups"
	g.Location = NormalizeLocation(g.Location)
	g.Etag = ""
	g.Properties.ProvisioningState = resource.Succeeded
	if err := g.Validate(); err != nil {
		return nil, err
	}
	if !slices.Contains(Locations, g.Location) {
		return nil, resource.BadRequest("LocationNotAvailableForResourceGroup",
			"The provided location '%s' is not available for resource group. List of available regions is '%s'.",
			g.Location, strings.Join(Locations, ","))
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	skv, err := s.st.Get(ctx, resource.Key(resource.SubscriptionID(id.Subscription)))
	if IsNotFound(err) {
		return nil, resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", id.Subscription)
	} else if err != nil {
		return nil, err
	}
	var sub resource.Subscription
	if json.Unmarshal(skv.Value, &sub) == nil && strings.EqualFold(sub.SubscriptionID, id.Subscription) {
		id.Subscription = sub.SubscriptionID
		g.ID = id.String()
	}
	for attempt := 0; ; attempt++ {
		old, kv, err := s.LoadGroup(ctx, id)
		exists := err == nil
		var re *resource.Error
		if err != nil && !(errors.As(err, &re) && re.Code == "ResourceGroupNotFound") {
			return nil, err
		}
		expected := store.MustNotExist
		if exists {
			expected = kv.Revision
			if old.Location != g.Location {
				return nil, resource.Conflict("InvalidResourceGroupLocation",
					"Invalid resource group location '%s'. The Resource group already exists in location '%s'.", g.Location, old.Location)
			}
			g.Name = old.Name
			g.ID = resource.GroupID(id.Subscription, old.Name).String()
		}
		b, err := json.Marshal(&g)
		if err != nil {
			return nil, fmt.Errorf("arm: encode group: %w", err)
		}
		_, err = s.st.Put(ctx, resource.Key(id), b, expected)
		var ce *store.ConflictError
		if errors.As(err, &ce) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		status := http.StatusOK
		if !exists {
			status = http.StatusCreated
		}
		return JSON(status, &g), nil
	}
}

func (s *Server) getGroup(ctx context.Context, r *Request) (*Response, error) {
	g, _, err := s.LoadGroup(ctx, groupID(r))
	if err != nil {
		return nil, err
	}
	return JSON(http.StatusOK, g), nil
}

func (s *Server) headGroup(ctx context.Context, r *Request) (*Response, error) {
	_, _, err := s.LoadGroup(ctx, groupID(r))
	var re *resource.Error
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return NoContent(http.StatusNotFound), nil
	}
	if err != nil {
		return nil, err
	}
	return NoContent(http.StatusNoContent), nil
}

type groupPatch struct {
	Tags      *map[string]string `json:"tags"`
	ManagedBy *string            `json:"managedBy"`
}

func (s *Server) patchGroup(ctx context.Context, r *Request) (*Response, error) {
	var p groupPatch
	if err := r.Decode(&p); err != nil {
		return nil, err
	}
	if p.Tags != nil {
		if err := resource.ValidateTags(*p.Tags); err != nil {
			return nil, err
		}
	}
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		g, kv, err := s.LoadGroup(ctx, groupID(r))
		if err != nil {
			return nil, err
		}
		if p.Tags != nil {
			g.Tags = *p.Tags
		}
		if p.ManagedBy != nil {
			g.ManagedBy = *p.ManagedBy
		}
		b, err := json.Marshal(g)
		if err != nil {
			return nil, fmt.Errorf("arm: encode group: %w", err)
		}
		_, err = s.st.Put(ctx, kv.Key, b, kv.Revision)
		var ce *store.ConflictError
		if errors.As(err, &ce) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		return JSON(http.StatusOK, g), nil
	}
}

func (s *Server) deleteGroup(ctx context.Context, r *Request) (*Response, error) {
	id := groupID(r)
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		op, existed, err := s.deleteGroupOnce(ctx, id)
		var ce *store.ConflictError
		if errors.As(err, &ce) && attempt < 5 {
			continue
		}
		if err != nil {
			return nil, err
		}
		if !existed {
			return nil, resource.NotFound("ResourceGroupNotFound", "Resource group '%s' could not be found.", id.ResourceGroup)
		}
		return r.Accepted(op), nil
	}
}

// deleteGroupOnce deletes a group and everything in it in one transaction.
// Resources of registered kinds are released (addresses, reference index);
// a reference into the group from outside it fails the delete.
func (s *Server) deleteGroupOnce(ctx context.Context, id resource.ID) (Op, bool, error) {
	g, kv, err := s.LoadGroup(ctx, id)
	var re *resource.Error
	if errors.As(err, &re) && re.Code == "ResourceGroupNotFound" {
		return Op{}, false, nil
	}
	if err != nil {
		return Op{}, false, err
	}
	contents, _, err := s.st.List(ctx, resource.GroupContentsPrefix(id.Subscription, id.ResourceGroup))
	if err != nil {
		return Op{}, false, err
	}
	tx := newTx(s.st, NewOp(id, g.Location))
	type owned struct {
		k   *Kind
		obj Object
	}
	var objs []owned
	for _, c := range contents {
		tx.Delete(c.Key, c.Revision)
		k := s.kindOfKey(c.Key)
		if k == nil {
			continue
		}
		obj, err := DecodeObject(k, c.Value)
		if err != nil {
			return Op{}, false, err
		}
		if err := tx.SetRefs(ctx, k.Model.References(obj), nil); err != nil {
			return Op{}, false, err
		}
		objs = append(objs, owned{k, obj})
	}
	for _, o := range objs {
		if err := o.k.Model.Release(ctx, tx, o.obj); err != nil {
			return Op{}, false, err
		}
	}
	if err := s.deleteUnservedOf(ctx, tx, id.Subscription, id.ResourceGroup); err != nil {
		return Op{}, false, err
	}
	tx.Delete(kv.Key, kv.Revision)
	if err := s.stageOp(tx, id); err != nil {
		return Op{}, false, err
	}
	if _, err := tx.commit(ctx, s.st); err != nil {
		return Op{}, false, err
	}
	// Released resources may finish later (a scale set's instances stop):
	// the group's operation finishes when they do.
	s.startAfter(ctx, tx)
	return tx.op, true, nil
}

// kindOfKey returns the kind of a top-level resource key, or nil.
func (s *Server) kindOfKey(key string) *Kind {
	i := strings.Index(key, "/providers/")
	if i < 0 {
		return nil
	}
	parts := strings.Split(key[i+len("/providers/"):], "/")
	if len(parts) != 3 {
		return nil
	}
	return s.Kind(parts[0] + "/" + parts[1])
}

func (s *Server) listGroups(ctx context.Context, r *Request) (*Response, error) {
	sub := r.Param("sub")
	if _, err := s.st.Get(ctx, resource.Key(resource.SubscriptionID(sub))); IsNotFound(err) {
		return nil, resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
	}
	prefix := resource.GroupsPrefix(sub)
	kvs, _, err := s.st.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	var items []any
	for _, kv := range kvs {
		if strings.Contains(kv.Key[len(prefix):], "/") {
			continue
		}
		var g resource.ResourceGroup
		if err := json.Unmarshal(kv.Value, &g); err != nil {
			return nil, fmt.Errorf("arm: decode group: %w", err)
		}
		items = append(items, &g)
	}
	return r.Page(items)
}

// registerResourcegroups registers the routes of resourcegroups.go.
func (s *Server) registerResourcegroups() {
	one := "/subscriptions/{sub}/resourceGroups/{rg}"
	s.Handle(http.MethodPut, one, ResourcesVersions, s.putGroup)
	s.Handle(http.MethodGet, one, ResourcesVersions, s.getGroup)
	s.Handle(http.MethodHead, one, ResourcesVersions, s.headGroup)
	s.Handle(http.MethodPatch, one, ResourcesVersions, s.patchGroup)
	s.Handle(http.MethodDelete, one, ResourcesVersions, s.deleteGroup)
	s.Handle(http.MethodGet, "/subscriptions/{sub}/resourceGroups", ResourcesVersions, s.listGroups)
}
