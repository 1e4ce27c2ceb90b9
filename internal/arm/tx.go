package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Reader reads the store: a store itself (StoreReader) or a Tx, which also
// sees its own staged writes.
type Reader interface {
	// Get returns the value at key or an error wrapping store.ErrNotFound.
	Get(ctx context.Context, key string) (store.KV, error)
	// List returns every key under prefix in key order.
	List(ctx context.Context, prefix string) ([]store.KV, error)
}

// StoreReader adapts a store.Store to Reader.
type StoreReader struct{ Store store.Store }

// Get implements Reader.
func (r StoreReader) Get(ctx context.Context, key string) (store.KV, error) {
	return r.Store.Get(ctx, key)
}

// List implements Reader.
func (r StoreReader) List(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, _, err := r.Store.List(ctx, prefix)
	return kvs, err
}

// Tx is one write being built: handlers read through it, stage puts and
// deletes, and the framework commits everything (the resource, its reference
// index entries, address allocations, the operation record) atomically with
// store.Txn. Reads see staged writes. A Tx belongs to one request; it is not
// safe for concurrent use.
type Tx struct {
	rd     Reader
	staged []store.Op
	op     Op
	// deferred: the operation is finished later by someone calling Ops.Finish.
	deferred bool
	after    []func(ctx context.Context) (any, error)
}

func newTx(st store.Store, op Op) *Tx { return &Tx{rd: StoreReader{st}, op: op} }

// NewTx returns a standalone write over st for code outside the request
// path (controllers allocating addresses with ipam, tests). It has no
// operation: Defer and After have no effect. Commit applies it.
func NewTx(st store.Store) *Tx { return newTx(st, Op{}) }

// Commit applies the staged writes atomically and returns the store revision.
// A *store.ConflictError means something changed underneath: rebuild the
// write and try again.
func (t *Tx) Commit(ctx context.Context, st store.Store) (int64, error) { return t.commit(ctx, st) }

// Op returns the operation this write reports to. Store its ID if another
// component will finish it (see Defer).
func (t *Tx) Op() Op { return t.op }

// Defer marks the operation as finished later by another component calling
// Ops.Finish(ctx, tx.Op().ID, result, err); until then clients polling it
// see InProgress.
func (t *Tx) Defer() { t.deferred = true }

// After adds fn to run in the background once the write is committed; the
// operation finishes when every such fn has returned (Failed with the first
// error).
func (t *Tx) After(fn func(ctx context.Context) (any, error)) { t.after = append(t.after, fn) }

func (t *Tx) find(key string) int {
	for i := len(t.staged) - 1; i >= 0; i-- {
		if t.staged[i].Key == key {
			return i
		}
	}
	return -1
}

// Get implements Reader, seeing staged writes.
func (t *Tx) Get(ctx context.Context, key string) (store.KV, error) {
	if i := t.find(key); i >= 0 {
		if t.staged[i].Delete {
			return store.KV{}, fmt.Errorf("arm: %q: %w", key, store.ErrNotFound)
		}
		return store.KV{Key: key, Value: t.staged[i].Value}, nil
	}
	return t.rd.Get(ctx, key)
}

// List implements Reader, seeing staged writes.
func (t *Tx) List(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, err := t.rd.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	changed := false
	for _, op := range t.staged {
		if strings.HasPrefix(op.Key, prefix) {
			changed = true
			break
		}
	}
	if !changed {
		return kvs, nil
	}
	m := make(map[string]store.KV, len(kvs))
	for _, kv := range kvs {
		m[kv.Key] = kv
	}
	for _, op := range t.staged {
		if !strings.HasPrefix(op.Key, prefix) {
			continue
		}
		if op.Delete {
			delete(m, op.Key)
		} else {
			m[op.Key] = store.KV{Key: op.Key, Value: op.Value}
		}
	}
	out := make([]store.KV, 0, len(m))
	for _, kv := range m {
		out = append(out, kv)
	}
	slices.SortFunc(out, func(a, b store.KV) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// Put stages value at key with the expected revision (store.MustNotExist,
// store.AnyRevision or the revision read). Staging the same key again
// replaces the value but keeps the first expectation.
func (t *Tx) Put(key string, value []byte, expected int64) {
	if i := t.find(key); i >= 0 {
		exp := t.staged[i].Expected
		if t.staged[i].Delete {
			// Deleted then recreated in one write: the key ends up updated.
			t.staged[i] = store.Op{Key: key, Value: value, Expected: exp}
			return
		}
		t.staged[i].Value = value
		return
	}
	t.staged = append(t.staged, store.Op{Key: key, Value: value, Expected: expected})
}

// PutJSON stages v encoded as JSON; see Put.
func (t *Tx) PutJSON(key string, v any, expected int64) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("arm: encode %s: %w", key, err)
	}
	t.Put(key, b, expected)
	return nil
}

// Delete stages the deletion of key with the expected revision. Deleting a
// key staged for creation in this Tx just drops the staged put; with
// store.AnyRevision, deleting a key that does not exist is a no-op.
func (t *Tx) Delete(key string, expected int64) {
	if i := t.find(key); i >= 0 {
		if t.staged[i].Expected == store.MustNotExist {
			t.staged = slices.Delete(t.staged, i, i+1)
			return
		}
		t.staged[i] = store.Op{Key: key, Delete: true, Expected: t.staged[i].Expected}
		return
	}
	t.staged = append(t.staged, store.Op{Key: key, Delete: true, Expected: expected})
}

// commit applies the staged writes atomically. Deletes with
// store.AnyRevision of keys that are already gone are dropped (releasing
// something twice is harmless), so they cannot fail the write.
func (t *Tx) commit(ctx context.Context, st store.Store) (int64, error) {
	ops := t.staged[:0:0]
	for _, op := range t.staged {
		if op.Delete && op.Expected == store.AnyRevision {
			if _, err := st.Get(ctx, op.Key); IsNotFound(err) {
				continue
			} else if err != nil {
				return 0, err
			}
		}
		ops = append(ops, op)
	}
	if len(ops) == 0 {
		return st.Revision(ctx)
	}
	return st.Txn(ctx, ops)
}

// SetRefs stages the reference-index changes for a source whose references
// change from old to new (either may be nil).
func (t *Tx) SetRefs(ctx context.Context, old, new []resource.Ref) error {
	keep := map[string]bool{}
	for _, r := range new {
		keep[resource.RefKey(r.Target, r.Source)] = true
	}
	for _, r := range old {
		k := resource.RefKey(r.Target, r.Source)
		if !keep[k] {
			t.Delete(k, store.AnyRevision)
		}
	}
	seen := map[string]bool{}
	for _, r := range new {
		k := resource.RefKey(r.Target, r.Source)
		if seen[k] {
			continue
		}
		seen[k] = true
		if err := t.PutJSON(k, r, store.AnyRevision); err != nil {
			return err
		}
	}
	return nil
}

// Referrers returns the reference-index entries whose target is id (and,
// when children is true, anything under id, such as a load balancer's
// probes or a virtual network's subnets).
func Referrers(ctx context.Context, rd Reader, id string, children bool) ([]resource.Ref, error) {
	prefix := resource.RefTargetPrefix(id, children)
	kvs, err := rd.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("arm: referrers of %s: %w", id, err)
	}
	out := make([]resource.Ref, 0, len(kvs))
	for _, kv := range kvs {
		rest := kv.Key[len(prefix):]
		if children && rest != "" && rest[0] != '|' && rest[0] != '/' {
			continue // a sibling whose name extends id's ("lb1" vs "lb10")
		}
		var r resource.Ref
		if err := json.Unmarshal(kv.Value, &r); err != nil {
			return nil, fmt.Errorf("arm: referrers of %s: %w", id, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// IsNotFound reports whether err means a missing key.
func IsNotFound(err error) bool { return errors.Is(err, store.ErrNotFound) }

// GuardRead stages an unchanged rewrite of each key read at its revision, so
// the write commits only if none of them changed meanwhile (store.Txn has no
// read-only comparison).
func GuardRead(tx *Tx, kvs []store.KV) {
	for _, kv := range kvs {
		if kv.Revision > 0 && tx.find(kv.Key) < 0 {
			tx.Put(kv.Key, kv.Value, kv.Revision)
		}
	}
}

// NewOpTx returns a write over st that reports to op, for providers that
// stage an operation record themselves (OpRecord, OpKey) and commit with
// Commit.
func NewOpTx(st store.Store, op Op) *Tx { return newTx(st, op) }
