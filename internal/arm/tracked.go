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

// Object is a stored top-level resource: a Go struct with Azure's JSON shape
// that embeds resource.Envelope (which provides Meta).
type Object interface {
	// Meta returns the shared envelope (id, name, type, location, tags, etag).
	Meta() *resource.Envelope
	// SetProvisioningState sets properties.provisioningState.
	SetProvisioningState(state string)
}

// Model is the type-specific part of a Kind. The framework calls it with
// the node's write lock held; it must not write to the store itself, only
// stage writes on the Tx.
type Model interface {
	// New returns a new zero value (a pointer) to decode a body or a stored value into.
	New() Object
	// Prepare validates obj (the new state; envelope fields already set,
	// provisioningState Succeeded) against old (the stored state, nil on
	// create), fills defaults and read-only fields, and stages extra writes
	// (address allocations, ...) on tx. Return *resource.Error for invalid input.
	Prepare(ctx context.Context, tx *Tx, obj, old Object) error
	// References lists the resources obj (or its children) point at; the
	// framework keeps the reference index (Referrers) in step.
	References(obj Object) []resource.Ref
	// Release is called when obj is deleted: refuse with a *resource.Error if
	// it is still in use (Referrers on tx ignores referrers deleted in the same
	// write), and stage the release of what it holds (addresses).
	Release(ctx context.Context, tx *Tx, obj Object) error
	// Render fills read-time fields (back-references computed from the
	// reference index) before obj is sent to a client.
	Render(ctx context.Context, rd Reader, obj Object) error
}

// Merger is an optional Model power: PATCH merges the body into the stored
// object and goes through Prepare like a PUT, answered as an LRO (scale
// sets). Without it, PATCH changes tags only and answers synchronously.
type Merger interface {
	// Merge applies a PATCH body to obj.
	Merge(obj Object, body []byte) error
}

// Kind is a registered top-level resource type.
type Kind struct {
	// Type is the canonical full type, e.g. "Microsoft.Network/publicIPAddresses".
	Type string
	// Versions are the accepted api-versions.
	Versions Versions
	// Model implements the type.
	Model Model
	// Children names child resource types, e.g. "subnets", for provider metadata.
	Children []string
	// CheckName, if set, enforces the type's naming rule on every PUT
	// (Azure's code for a bad name, e.g. InvalidResourceName); nil accepts
	// any name the URL can carry.
	CheckName func(name string) error
}

// RegisterKind registers k and serves, for it, PUT/GET/PATCH/DELETE of
// {group}/providers/{Type}/{name}, list per group and list per subscription.
// Child endpoints and actions are added with Handle, using Apply, Remove and
// Load.
func (s *Server) RegisterKind(k *Kind) {
	s.kinds = append(s.kinds, k)
	one := "/subscriptions/{sub}/resourceGroups/{rg}/providers/" + k.Type + "/{name}"
	s.Handle(http.MethodPut, one, k.Versions, func(ctx context.Context, r *Request) (*Response, error) { return s.putKind(ctx, r, k) })
	s.Handle(http.MethodGet, one, k.Versions, func(ctx context.Context, r *Request) (*Response, error) { return s.getKind(ctx, r, k) })
	s.Handle(http.MethodPatch, one, k.Versions, func(ctx context.Context, r *Request) (*Response, error) { return s.patchKind(ctx, r, k) })
	s.Handle(http.MethodDelete, one, k.Versions, func(ctx context.Context, r *Request) (*Response, error) { return s.deleteKind(ctx, r, k) })
	s.Handle(http.MethodGet, "/subscriptions/{sub}/resourceGroups/{rg}/providers/"+k.Type, k.Versions,
		func(ctx context.Context, r *Request) (*Response, error) { return s.listKind(ctx, r, k, r.Param("rg")) })
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/"+k.Type, k.Versions,
		func(ctx context.Context, r *Request) (*Response, error) { return s.listKind(ctx, r, k, "") })
}

// Kind returns the registered kind of fullType (case-insensitive), or nil.
func (s *Server) Kind(fullType string) *Kind {
	for _, k := range s.kinds {
		if strings.EqualFold(k.Type, fullType) {
			return k
		}
	}
	return nil
}

// ID returns the ID the request's {sub}, {rg} and {name} parameters name for k.
func (k *Kind) ID(r *Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), k.Type, r.Param("name"))
}

// Write describes one change to a top-level resource for Apply.
type Write struct {
	Kind *Kind
	ID   resource.ID
	// IfMatch and IfNoneMatch are the request's precondition headers
	// (checked against the stored top-level etag); empty means none.
	IfMatch, IfNoneMatch string
	// Build returns the new state given old, a fresh copy of the stored
	// state (nil when absent) that Build may modify and return. It may read
	// through tx but tx.Op is not set yet.
	Build func(ctx context.Context, tx *Tx, old Object) (Object, error)
	// Sync skips the operation record (synchronous answers such as a tags
	// PATCH); the Model's tx.After and tx.Defer then have no effect.
	Sync bool
}

// Result is what Apply did.
type Result struct {
	// Object is the committed state (not yet rendered).
	Object Object
	// Created is true when the resource did not exist before.
	Created bool
	// Op is the operation to report (zero when Write.Sync).
	Op Op
}

// Apply runs the write pipeline: checks the group exists and the
// preconditions, builds the new state, sets the envelope (id, name, type,
// normalised location, fresh etag), validates tags, calls Model.Prepare,
// updates the reference index and commits everything with the stored
// revision as expectation. A concurrent change is retried (last writer wins)
// unless IfMatch was given, which gets 412 PreconditionFailed.
func (s *Server) Apply(ctx context.Context, w Write) (*Result, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	if err := s.RequireGroup(ctx, StoreReader{s.st}, w.ID.Subscription, w.ID.ResourceGroup); err != nil {
		return nil, err
	}
	if w.Kind.CheckName != nil {
		if err := w.Kind.CheckName(w.ID.Name()); err != nil {
			return nil, err
		}
	}
	for attempt := 0; ; attempt++ {
		res, err := s.applyOnce(ctx, w)
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			if w.IfMatch != "" || w.IfNoneMatch != "" {
				return nil, preconditionFailed(w.IfMatch, w.IfNoneMatch)
			}
			if attempt < 5 {
				continue
			}
		}
		return res, err
	}
}

func (s *Server) applyOnce(ctx context.Context, w Write) (*Result, error) {
	k, key := w.Kind, resource.Key(w.ID)
	kv, err := s.st.Get(ctx, key)
	exists := err == nil
	if err != nil && !IsNotFound(err) {
		return nil, err
	}
	var old, prev Object
	etag := ""
	if exists {
		if old, err = DecodeObject(k, kv.Value); err != nil {
			return nil, err
		}
		if prev, err = DecodeObject(k, kv.Value); err != nil {
			return nil, err
		}
		etag = old.Meta().Etag
	}
	if err := CheckPreconditions(w.IfMatch, w.IfNoneMatch, exists, etag); err != nil {
		return nil, err
	}
	tx := newTx(s.st, Op{})
	obj, err := w.Build(ctx, tx, old)
	if err != nil {
		return nil, err
	}
	m := obj.Meta()
	id := s.storedCase(ctx, w.ID, prev)
	m.ID, m.Name, m.Type = id.String(), id.Name(), k.Type
	m.Location = NormalizeLocation(m.Location)
	if err := resource.ValidateLocation(m.Location); err != nil {
		return nil, err
	}
	if !slices.Contains(Locations, m.Location) {
		return nil, resource.BadRequest("LocationNotAvailableForResourceType",
			"The provided location '%s' is not available for resource type '%s'. List of available regions for the resource type is '%s'.",
			m.Location, k.Type, strings.Join(Locations, ","))
	}
	if prev != nil && prev.Meta().Location != m.Location {
		return nil, resource.Conflict("InvalidResourceLocation",
			"The resource '%s' already exists in location '%s' in resource group '%s'. A resource with the same name cannot be created in location '%s'. Please select a new resource name.",
			w.ID.Name(), prev.Meta().Location, w.ID.ResourceGroup, m.Location)
	}
	if err := resource.ValidateTags(m.Tags); err != nil {
		return nil, err
	}
	m.Etag = resource.NewEtag()
	obj.SetProvisioningState(resource.Succeeded)
	tx.op = NewOp(w.ID, m.Location)
	if err := k.Model.Prepare(ctx, tx, obj, prev); err != nil {
		return nil, err
	}
	var oldRefs []resource.Ref
	if prev != nil {
		oldRefs = k.Model.References(prev)
	}
	if err := tx.SetRefs(ctx, oldRefs, k.Model.References(obj)); err != nil {
		return nil, err
	}
	expected := store.MustNotExist
	if exists {
		expected = kv.Revision
	}
	if err := tx.PutJSON(key, obj, expected); err != nil {
		return nil, err
	}
	if !w.Sync {
		if err := s.stageOp(tx, w.ID); err != nil {
			return nil, err
		}
	}
	if _, err := tx.commit(ctx, s.st); err != nil {
		return nil, err
	}
	if w.Sync {
		// No operation to finish: After and Defer have no effect.
		return &Result{Object: obj, Created: !exists, Op: tx.op}, nil
	}
	s.startAfter(ctx, tx)
	if len(tx.after) > 0 || tx.deferred {
		// The operation runs on (a scale set's instances are starting):
		// answer with the state Azure shows while it provisions. A terminal
		// state in the PUT body makes the SDKs' pollers stop at once
		// instead of polling the operation. The stored value is unchanged.
		if exists {
			obj.SetProvisioningState(resource.Updating)
		} else {
			obj.SetProvisioningState(resource.Creating)
		}
	}
	return &Result{Object: obj, Created: !exists, Op: tx.op}, nil
}

// stageOp stages tx's operation record: finished now unless the write
// deferred it or registered After functions.
func (s *Server) stageOp(tx *Tx, target resource.ID) error {
	now := s.now().UTC()
	rec := OpRecord{Op: tx.op, ResourceID: target.String(), Status: StatusInProgress, StartTime: now, InProcess: len(tx.after) > 0}
	if !tx.deferred && len(tx.after) == 0 {
		FinishRecord(&rec, now, nil, nil)
	}
	return tx.PutJSON(OpKey(tx.op.ID), rec, store.MustNotExist)
}

// startAfter runs tx's After functions in the background, finishing its operation when all return.
func (s *Server) startAfter(ctx context.Context, tx *Tx) {
	if len(tx.after) == 0 {
		return
	}
	fns := tx.after
	s.Ops.Go(ctx, tx.op, func(ctx context.Context) (any, error) {
		var result any
		for _, fn := range fns {
			r, err := fn(ctx)
			if err != nil {
				return nil, err
			}
			if r != nil {
				result = r
			}
		}
		return result, nil
	})
}

// Remove deletes the top-level resource id of kind k: checks ifMatch, calls
// Model.Release, drops its reference-index entries and stages an operation.
// existed is false (and op zero) when there was nothing to delete.
func (s *Server) Remove(ctx context.Context, k *Kind, id resource.ID, ifMatch string) (op Op, existed bool, err error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	for attempt := 0; ; attempt++ {
		op, existed, err = s.removeOnce(ctx, k, id, ifMatch)
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			if ifMatch != "" {
				return Op{}, false, preconditionFailed(ifMatch, "")
			}
			if attempt < 5 {
				continue
			}
		}
		return op, existed, err
	}
}

func (s *Server) removeOnce(ctx context.Context, k *Kind, id resource.ID, ifMatch string) (Op, bool, error) {
	key := resource.Key(id)
	kv, err := s.st.Get(ctx, key)
	if IsNotFound(err) {
		if ifMatch != "" {
			return Op{}, false, preconditionFailed(ifMatch, "")
		}
		return Op{}, false, nil
	}
	if err != nil {
		return Op{}, false, err
	}
	old, err := DecodeObject(k, kv.Value)
	if err != nil {
		return Op{}, false, err
	}
	if err := CheckPreconditions(ifMatch, "", true, old.Meta().Etag); err != nil {
		return Op{}, false, err
	}
	tx := newTx(s.st, NewOp(id, old.Meta().Location))
	if err := tx.SetRefs(ctx, k.Model.References(old), nil); err != nil {
		return Op{}, false, err
	}
	tx.Delete(key, kv.Revision)
	if err := k.Model.Release(ctx, tx, old); err != nil {
		return Op{}, false, err
	}
	if err := s.stageOp(tx, id); err != nil {
		return Op{}, false, err
	}
	if _, err := tx.commit(ctx, s.st); err != nil {
		return Op{}, false, err
	}
	s.startAfter(ctx, tx)
	return tx.op, true, nil
}

// Load reads the top-level resource id of kind k through rd. A missing
// resource is a 404 (ResourceGroupNotFound when its group is missing too).
func (s *Server) Load(ctx context.Context, rd Reader, k *Kind, id resource.ID) (Object, store.KV, error) {
	kv, err := rd.Get(ctx, resource.Key(id))
	if IsNotFound(err) {
		if gerr := s.RequireGroup(ctx, rd, id.Subscription, id.ResourceGroup); gerr != nil {
			return nil, kv, gerr
		}
		return nil, kv, resource.ResourceNotFoundError(id.Top())
	}
	if err != nil {
		return nil, kv, err
	}
	obj, err := DecodeObject(k, kv.Value)
	return obj, kv, err
}

// Render returns obj with its kind's read-time fields filled.
func (s *Server) Render(ctx context.Context, k *Kind, obj Object) (Object, error) {
	if err := k.Model.Render(ctx, StoreReader{s.st}, obj); err != nil {
		return nil, err
	}
	return obj, nil
}

func DecodeObject(k *Kind, b []byte) (Object, error) {
	obj := k.Model.New()
	if err := json.Unmarshal(b, obj); err != nil {
		return nil, fmt.Errorf("arm: decode stored %s: %w", k.Type, err)
	}
	return obj, nil
}

// storedCase returns id with the names spelled as first created: the
// resource's own ID when it exists, else id with the group's stored name.
// (ARM names are case-insensitive but keep the case they were created with.)
func (s *Server) storedCase(ctx context.Context, id resource.ID, prev Object) resource.ID {
	if prev != nil {
		if pid, err := resource.ParseID(prev.Meta().ID); err == nil && pid.Equal(id) {
			return pid
		}
		return id
	}
	kv, err := s.st.Get(ctx, resource.Key(resource.GroupID(id.Subscription, id.ResourceGroup)))
	if err != nil {
		return id
	}
	var g struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(kv.Value, &g) != nil {
		return id
	}
	if gid, err := resource.ParseID(g.ID); err == nil && gid.Equal(resource.GroupID(id.Subscription, id.ResourceGroup)) {
		id.Subscription, id.ResourceGroup = gid.Subscription, gid.ResourceGroup
	}
	return id
}

// RequireGroup returns 404 ResourceGroupNotFound unless the group exists.
func (s *Server) RequireGroup(ctx context.Context, rd Reader, sub, rg string) error {
	_, err := rd.Get(ctx, resource.Key(resource.GroupID(sub, rg)))
	if IsNotFound(err) {
		if _, serr := rd.Get(ctx, resource.Key(resource.SubscriptionID(sub))); IsNotFound(serr) {
			return resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
		}
		return resource.NotFound("ResourceGroupNotFound", "Resource group '%s' could not be found.", rg)
	}
	return err
}

// NormalizeLocation returns Azure's canonical form of a location ("East US" → "eastus").
func NormalizeLocation(loc string) string {
	return strings.ToLower(strings.ReplaceAll(strings.TrimSpace(loc), " ", ""))
}

func (s *Server) putKind(ctx context.Context, r *Request, k *Kind) (*Response, error) {
	id := k.ID(r)
	obj := k.Model.New()
	if err := r.Decode(obj); err != nil {
		return nil, err
	}
	res, err := s.Apply(ctx, Write{Kind: k, ID: id, IfMatch: r.HTTP.Header.Get("If-Match"), IfNoneMatch: r.HTTP.Header.Get("If-None-Match"),
		Build: func(context.Context, *Tx, Object) (Object, error) { return obj, nil }})
	if err != nil {
		return nil, err
	}
	out, err := s.Render(ctx, k, res.Object)
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if res.Created {
		status = http.StatusCreated
	}
	return r.Async(status, out, res.Op), nil
}

func (s *Server) getKind(ctx context.Context, r *Request, k *Kind) (*Response, error) {
	obj, _, err := s.Load(ctx, StoreReader{s.st}, k, k.ID(r))
	if err != nil {
		return nil, err
	}
	if obj, err = s.Render(ctx, k, obj); err != nil {
		return nil, err
	}
	return JSON(http.StatusOK, obj), nil
}

// tagsPatch is the body of a tags-only PATCH.
type tagsPatch struct {
	Tags *map[string]string `json:"tags"`
}

func (s *Server) patchKind(ctx context.Context, r *Request, k *Kind) (*Response, error) {
	id := k.ID(r)
	merger, isMerger := k.Model.(Merger)
	var tp tagsPatch
	if !isMerger {
		if err := r.Decode(&tp); err != nil {
			return nil, err
		}
	}
	res, err := s.Apply(ctx, Write{Kind: k, ID: id, IfMatch: r.HTTP.Header.Get("If-Match"), IfNoneMatch: r.HTTP.Header.Get("If-None-Match"),
		Sync: !isMerger,
		Build: func(_ context.Context, _ *Tx, old Object) (Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(id)
			}
			if isMerger {
				return old, merger.Merge(old, r.Body)
			}
			if tp.Tags != nil {
				old.Meta().Tags = *tp.Tags
			}
			return old, nil
		}})
	if err != nil {
		return nil, err
	}
	out, err := s.Render(ctx, k, res.Object)
	if err != nil {
		return nil, err
	}
	if isMerger {
		return r.Async(http.StatusOK, out, res.Op), nil
	}
	return JSON(http.StatusOK, out), nil
}

func (s *Server) deleteKind(ctx context.Context, r *Request, k *Kind) (*Response, error) {
	op, existed, err := s.Remove(ctx, k, k.ID(r), r.HTTP.Header.Get("If-Match"))
	if err != nil {
		return nil, err
	}
	if !existed {
		return NoContent(http.StatusNoContent), nil
	}
	return r.Accepted(op), nil
}

// listKind lists k's resources in group rg, or in the whole subscription when rg is "".
func (s *Server) listKind(ctx context.Context, r *Request, k *Kind, rg string) (*Response, error) {
	sub := r.Param("sub")
	rd := StoreReader{s.st}
	objs, err := s.ListObjects(ctx, rd, k, sub, rg)
	if err != nil {
		return nil, err
	}
	items := make([]any, 0, len(objs))
	for _, obj := range objs {
		if err := k.Model.Render(ctx, rd, obj); err != nil {
			return nil, err
		}
		items = append(items, obj)
	}
	return r.Page(items)
}

// ListObjects returns k's stored resources (not rendered) in group rg, or in
// the whole subscription when rg is "", in key order. A missing group is 404.
func (s *Server) ListObjects(ctx context.Context, rd Reader, k *Kind, sub, rg string) ([]Object, error) {
	var prefix string
	if rg != "" {
		if err := s.RequireGroup(ctx, rd, sub, rg); err != nil {
			return nil, err
		}
		prefix = resource.TypePrefix(sub, rg, k.Type)
	} else {
		prefix = resource.GroupsPrefix(sub)
	}
	kvs, err := rd.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	want := "/providers/" + strings.ToLower(k.Type) + "/"
	var out []Object
	for _, kv := range kvs {
		rest := kv.Key[len(prefix):]
		if rg == "" {
			grp, tail, ok := strings.Cut(rest, "/")
			if !ok || grp == "" || !strings.HasPrefix("/"+tail, want) {
				continue
			}
			rest = ("/" + tail)[len(want):]
		}
		if rest == "" || strings.Contains(rest, "/") {
			continue
		}
		obj, err := DecodeObject(k, kv.Value)
		if err != nil {
			return nil, err
		}
		out = append(out, obj)
	}
	return out, nil
}

// CheckPreconditions applies If-Match / If-None-Match to the stored state.
func CheckPreconditions(ifMatch, ifNoneMatch string, exists bool, etag string) error {
	if ifNoneMatch != "" {
		if exists && (strings.TrimSpace(ifNoneMatch) == "*" || etagListHas(ifNoneMatch, etag)) {
			return preconditionFailed("", ifNoneMatch)
		}
	}
	if ifMatch != "" {
		if !exists || (strings.TrimSpace(ifMatch) != "*" && !etagListHas(ifMatch, etag)) {
			return preconditionFailed(ifMatch, "")
		}
	}
	return nil
}

func etagListHas(list, etag string) bool {
	want := bareEtag(etag)
	for _, e := range strings.Split(list, ",") {
		if want != "" && bareEtag(e) == want {
			return true
		}
	}
	return false
}

func bareEtag(e string) string {
	e = strings.TrimSpace(e)
	e = strings.TrimPrefix(e, "W/")
	return strings.Trim(e, `"`)
}

func preconditionFailed(ifMatch, ifNoneMatch string) error {
	if ifMatch != "" {
		return resource.Errorf(http.StatusPreconditionFailed, "PreconditionFailed",
			"The condition specified using HTTP conditional header(s) is not met: If-Match '%s' does not match the current entity tag.", ifMatch)
	}
	return resource.Errorf(http.StatusPreconditionFailed, "PreconditionFailed",
		"The condition specified using HTTP conditional header(s) is not met: If-None-Match '%s'; the resource already exists.", ifNoneMatch)
}

// ReadTop reads the stored top-level resource of id; ok is false when id is
// malformed or absent.
func ReadTop(ctx context.Context, rd Reader, id string) (store.KV, bool, error) {
	pid, err := resource.ParseID(id)
	if err != nil || pid.Namespace == "" {
		return store.KV{}, false, nil
	}
	kv, err := rd.Get(ctx, resource.Key(pid))
	if IsNotFound(err) {
		return store.KV{}, false, nil
	}
	return kv, err == nil, err
}
