package ipam

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"nimbus/internal/store"
)

// Stage is a Txn over a store for writers outside the ARM server (the
// scale-set controller): reads see the store as it will be after the staged
// writes, and Commit applies them all in one store transaction, so address
// allocations commit atomically with the records that hold them.
// A Stage is not safe for concurrent use.
type Stage struct {
	st  store.Store
	ops []store.Op
}

var _ Txn = (*Stage)(nil)

// NewStage returns an empty Stage over st.
func NewStage(st store.Store) *Stage { return &Stage{st: st} }

// Get reads key as it will be after the staged writes.
func (t *Stage) Get(ctx context.Context, key string) (store.KV, error) {
	for i := len(t.ops) - 1; i >= 0; i-- {
		if op := t.ops[i]; op.Key == key {
			if op.Delete {
				return store.KV{}, fmt.Errorf("get %s: %w", key, store.ErrNotFound)
			}
			return store.KV{Key: key, Value: op.Value}, nil
		}
	}
	return t.st.Get(ctx, key)
}

// List lists prefix as it will be after the staged writes, in key order.
func (t *Stage) List(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, _, err := t.st.List(ctx, prefix)
	if err != nil || len(t.ops) == 0 {
		return kvs, err
	}
	byKey := make(map[string]store.KV, len(kvs))
	for _, kv := range kvs {
		byKey[kv.Key] = kv
	}
	for _, op := range t.ops {
		switch {
		case !strings.HasPrefix(op.Key, prefix):
		case op.Delete:
			delete(byKey, op.Key)
		default:
			byKey[op.Key] = store.KV{Key: op.Key, Value: op.Value}
		}
	}
	out := make([]store.KV, 0, len(byKey))
	for _, kv := range byKey {
		out = append(out, kv)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Put stages a write expecting the given revision.
func (t *Stage) Put(key string, value []byte, expected int64) {
	t.ops = append(t.ops, store.Op{Key: key, Value: value, Expected: expected})
}

// Delete stages a delete expecting the given revision.
func (t *Stage) Delete(key string, expected int64) {
	t.ops = append(t.ops, store.Op{Key: key, Delete: true, Expected: expected})
}

// Commit applies every staged write in one store transaction and returns
// its revision. A *store.ConflictError means another writer got there
// first: read again and retry.
func (t *Stage) Commit(ctx context.Context) (int64, error) {
	return t.st.Txn(ctx, t.ops)
}
