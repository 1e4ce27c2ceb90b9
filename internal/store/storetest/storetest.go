// Package storetest is the conformance suite that every store.Store backend
// must pass: call Run from the backend's tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"nimbus/internal/store"
)

// Compacter is the optional power to drop watch history up to a revision.
// Backends that have it get the compaction checks of the Watch contract.
type Compacter interface {
	// Compact discards history at revisions <= rev; a later Watch from an
	// older revision must end with store.ErrCompacted.
	Compact(ctx context.Context, rev int64) error
}

// timeout bounds every wait on a watch channel or on writers.
const timeout = 20 * time.Second

// Run runs the conformance suite. open must return a new, empty store each
// time it is called; Run closes every store it opens (a cleanup that open
// registers itself must tolerate store.ErrClosed).
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"GetPutListDelete", testCRUD},
		{"ListPrefixes", testListPrefixes},
		{"ListPrefixesOneRevision", testListPrefixesConsistent},
		{"Revisions", testRevisions},
		{"ValuesAreCopies", testCopies},
		{"ExpectedRevision", testExpected},
		{"Txn", testTxn},
		{"WatchOrderAndPrefix", testWatchOrder},
		{"WatchReplayFromRevision", testWatchReplay},
		{"WatchFromListRevision", testWatchFromList},
		{"WatchCancelClosesChannel", testWatchCancel},
		{"WatchCompacted", testWatchCompacted},
		{"WatchSlowReaderNeverBlocksWriters", testWatchSlowReader},
		{"ConcurrentWritersNoLostUpdate", testConcurrent},
		{"Close", testClose},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			t.Cleanup(func() {
				if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			})
			tc.fn(t, s)
		})
	}
}

func put(t *testing.T, s store.Store, key, value string, expected int64) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value), expected)
	if err != nil {
		t.Fatalf("Put(%q, %q, %d): %v", key, value, expected, err)
	}
	return rev
}

func del(t *testing.T, s store.Store, key string, expected int64) int64 {
	t.Helper()
	rev, err := s.Delete(t.Context(), key, expected)
	if err != nil {
		t.Fatalf("Delete(%q, %d): %v", key, expected, err)
	}
	return rev
}

func txn(t *testing.T, s store.Store, ops ...store.Op) int64 {
	t.Helper()
	rev, err := s.Txn(t.Context(), ops)
	if err != nil {
		t.Fatalf("Txn(%v): %v", ops, err)
	}
	return rev
}

func revision(t *testing.T, s store.Store) int64 {
	t.Helper()
	rev, err := s.Revision(t.Context())
	if err != nil {
		t.Fatalf("Revision: %v", err)
	}
	return rev
}

// absent fails unless key is missing.
func absent(t *testing.T, s store.Store, key string) {
	t.Helper()
	if kv, err := s.Get(t.Context(), key); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Get(%q) = %+v, %v; want ErrNotFound", key, kv, err)
	}
}

// has fails unless key holds value at revision rev (rev 0: any revision).
func has(t *testing.T, s store.Store, key, value string, rev int64) store.KV {
	t.Helper()
	kv, err := s.Get(t.Context(), key)
	if err != nil {
		t.Errorf("Get(%q): %v", key, err)
		return kv
	}
	if kv.Key != key || string(kv.Value) != value || (rev != 0 && kv.Revision != rev) {
		t.Errorf("Get(%q) = {%q %q rev %d}; want {%q %q rev %d}", key, kv.Key, kv.Value, kv.Revision, key, value, rev)
	}
	return kv
}

func keys(kvs []store.KV) []string {
	out := make([]string, len(kvs))
	for i, kv := range kvs {
		out[i] = kv.Key
	}
	return out
}

func testCRUD(t *testing.T, s store.Store) {
	ctx := t.Context()
	data := []struct{ key, value string }{
		{"a/1", "one"}, {"a/2", "two"}, {"a/10", "ten"}, {"b/1", "bee"},
		{"ab", "x"}, {"bin", "\x00\xff\x01"}, {"empty", ""},
	}
	var last int64
	for _, d := range data {
		last = put(t, s, d.key, d.value, store.AnyRevision)
	}
	for _, d := range data {
		has(t, s, d.key, d.value, 0)
	}
	absent(t, s, "a/3")
	absent(t, s, "a")

	lists := []struct {
		prefix string
		want   []string
	}{
		{"a/", []string{"a/1", "a/10", "a/2"}},
		{"a", []string{"a/1", "a/10", "a/2", "ab"}},
		{"a/1", []string{"a/1", "a/10"}},
		{"", []string{"a/1", "a/10", "a/2", "ab", "b/1", "bin", "empty"}},
		{"zz", nil},
	}
	for _, tc := range lists {
		kvs, rev, err := s.List(ctx, tc.prefix)
		if err != nil {
			t.Fatalf("List(%q): %v", tc.prefix, err)
		}
		if got := keys(kvs); !slices.Equal(got, tc.want) && !(len(got) == 0 && len(tc.want) == 0) {
			t.Errorf("List(%q) keys = %q; want %q", tc.prefix, got, tc.want)
		}
		if rev != last {
			t.Errorf("List(%q) revision = %d; want %d", tc.prefix, rev, last)
		}
		for _, kv := range kvs {
			if kv.Revision == 0 || kv.CreateRevision == 0 {
				t.Errorf("List(%q): %q has zero revisions %+v", tc.prefix, kv.Key, kv)
			}
		}
	}

	rev := del(t, s, "a/10", store.AnyRevision)
	if rev <= last {
		t.Errorf("Delete revision %d not after %d", rev, last)
	}
	absent(t, s, "a/10")
	kvs, listRev, err := s.List(ctx, "a/")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	if got, want := keys(kvs), []string{"a/1", "a/2"}; !slices.Equal(got, want) {
		t.Errorf("after delete List(a/) = %q; want %q", got, want)
	}
	if cur := revision(t, s); listRev != rev || cur != rev {
		t.Errorf("List revision %d, Revision %d; want %d", listRev, cur, rev)
	}

	if _, err := s.Put(ctx, "", []byte("x"), store.AnyRevision); err == nil {
		t.Errorf("Put with an empty key succeeded")
	}
}

func testListPrefixes(t *testing.T, s store.Store) {
	ctx := t.Context()
	var last int64
	for _, k := range []string{"a/1", "a/2", "ab", "b/1", "b/2", "c"} {
		last = put(t, s, k, "v-"+k, store.AnyRevision)
	}
	tests := []struct {
		name     string
		prefixes []string
		want     [][]string
	}{
		{"none", nil, [][]string{}},
		{"two disjoint", []string{"b/", "a/"}, [][]string{{"b/1", "b/2"}, {"a/1", "a/2"}}},
		{"overlapping keep both", []string{"a", "a/"}, [][]string{{"a/1", "a/2", "ab"}, {"a/1", "a/2"}}},
		{"same twice", []string{"c", "c"}, [][]string{{"c"}, {"c"}}},
		{"empty listing", []string{"zz", ""}, [][]string{nil, {"a/1", "a/2", "ab", "b/1", "b/2", "c"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, rev, err := s.ListPrefixes(ctx, tc.prefixes)
			if err != nil {
				t.Fatalf("ListPrefixes(%q): %v", tc.prefixes, err)
			}
			if rev != last {
				t.Errorf("ListPrefixes(%q) revision = %d; want %d", tc.prefixes, rev, last)
			}
			if len(out) != len(tc.want) {
				t.Fatalf("ListPrefixes(%q) = %d listings; want %d", tc.prefixes, len(out), len(tc.want))
			}
			for i := range out {
				if got := keys(out[i]); !slices.Equal(got, tc.want[i]) && !(len(got) == 0 && len(tc.want[i]) == 0) {
					t.Errorf("listing %d (%q) = %q; want %q", i, tc.prefixes[i], got, tc.want[i])
				}
				single, _, err := s.List(ctx, tc.prefixes[i])
				if err != nil {
					t.Fatal(err)
				}
				for j, kv := range out[i] {
					if j >= len(single) || kv.Revision != single[j].Revision || string(kv.Value) != string(single[j].Value) {
						t.Errorf("listing %d entry %+v differs from List's", i, kv)
					}
				}
			}
		})
	}
}

// testListPrefixesConsistent: writers update a key under each of two
// prefixes in one Txn; every ListPrefixes of both prefixes sees the two
// values equal (one revision), never one old and one new.
func testListPrefixesConsistent(t *testing.T, s store.Store) {
	const writes = 200
	ctx := t.Context()
	txn(t, s, store.Op{Key: "x/k", Value: []byte("0"), Expected: store.AnyRevision},
		store.Op{Key: "y/k", Value: []byte("0"), Expected: store.AnyRevision})
	done := make(chan struct{})
	var g errgroup.Group
	g.Go(func() error {
		defer close(done)
		for i := 1; i <= writes; i++ {
			v := []byte(strconv.Itoa(i))
			if _, err := s.Txn(ctx, []store.Op{{Key: "x/k", Value: v, Expected: store.AnyRevision},
				{Key: "y/k", Value: v, Expected: store.AnyRevision}}); err != nil {
				return err
			}
		}
		return nil
	})
	prevRev := int64(0)
	for stop := false; !stop; {
		select {
		case <-done:
			stop = true // one last read after the writer's end
		default:
		}
		out, rev, err := s.ListPrefixes(ctx, []string{"x/", "y/"})
		if err != nil {
			t.Fatalf("ListPrefixes: %v", err)
		}
		if len(out) != 2 || len(out[0]) != 1 || len(out[1]) != 1 {
			t.Fatalf("ListPrefixes = %+v", out)
		}
		x, y := out[0][0], out[1][0]
		if string(x.Value) != string(y.Value) || x.Revision != y.Revision {
			t.Fatalf("torn listing at revision %d: x/k=%s@%d, y/k=%s@%d", rev, x.Value, x.Revision, y.Value, y.Revision)
		}
		if x.Revision > rev || rev < prevRev {
			t.Fatalf("listing revision %d (previous %d) older than its key's %d", rev, prevRev, x.Revision)
		}
		prevRev = rev
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("writer: %v", err)
	}
	if out, _, _ := s.ListPrefixes(ctx, []string{"x/"}); string(out[0][0].Value) != strconv.Itoa(writes) {
		t.Errorf("last listing x/k = %s; want %d", out[0][0].Value, writes)
	}
}

func testRevisions(t *testing.T, s store.Store) {
	ctx := t.Context()
	r1 := put(t, s, "k1", "a", store.MustNotExist)
	r2 := put(t, s, "k2", "b", store.MustNotExist)
	r3 := put(t, s, "k1", "c", r1)
	if !(0 < r1 && r1 < r2 && r2 < r3) {
		t.Fatalf("revisions %d, %d, %d not strictly increasing from > 0", r1, r2, r3)
	}
	kv := has(t, s, "k1", "c", r3)
	if kv.CreateRevision != r1 {
		t.Errorf("k1 CreateRevision = %d after update; want %d", kv.CreateRevision, r1)
	}
	if kv := has(t, s, "k2", "b", r2); kv.CreateRevision != r2 {
		t.Errorf("k2 CreateRevision = %d; want %d", kv.CreateRevision, r2)
	}
	if got := revision(t, s); got != r3 {
		t.Errorf("Revision = %d; want %d", got, r3)
	}

	// A failed write changes nothing, not even the revision.
	if _, err := s.Put(ctx, "k1", []byte("x"), r1); err == nil {
		t.Fatalf("stale Put succeeded")
	}
	if got := revision(t, s); got != r3 {
		t.Errorf("Revision = %d after a failed Put; want %d", got, r3)
	}

	r4 := del(t, s, "k1", r3)
	r5 := put(t, s, "k1", "d", store.MustNotExist)
	if !(r3 < r4 && r4 < r5) {
		t.Errorf("revisions %d, %d, %d not strictly increasing", r3, r4, r5)
	}
	if kv := has(t, s, "k1", "d", r5); kv.CreateRevision != r5 {
		t.Errorf("recreated k1 CreateRevision = %d; want %d", kv.CreateRevision, r5)
	}
	r6 := txn(t, s, store.Op{Key: "k1", Value: []byte("e"), Expected: r5}, store.Op{Key: "k3", Value: []byte("f"), Expected: store.MustNotExist})
	if r6 <= r5 {
		t.Errorf("Txn revision %d not after %d", r6, r5)
	}
}

func testCopies(t *testing.T, s store.Store) {
	ctx := t.Context()
	in := []byte("original")
	put(t, s, "c", string(in), store.AnyRevision)
	if _, err := s.Put(ctx, "c2", in, store.AnyRevision); err != nil {
		t.Fatalf("Put: %v", err)
	}
	copy(in, "XXXXXXXX")
	has(t, s, "c2", "original", 0)

	kv, err := s.Get(ctx, "c")
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	copy(kv.Value, "YYYYYYYY")
	has(t, s, "c", "original", 0)
	kvs, _, err := s.List(ctx, "c")
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	for _, kv := range kvs {
		copy(kv.Value, "ZZZZZZZZ")
	}
	has(t, s, "c", "original", 0)
	has(t, s, "c2", "original", 0)
}

// wantErr is the class of error a write must return.
type wantErr int

const (
	wantOK wantErr = iota
	wantConflict
	wantNotFound
)

func (w wantErr) String() string {
	return [...]string{"success", "*ConflictError", "ErrNotFound"}[w]
}

func testExpected(t *testing.T, s store.Store) {
	const missingRev = 1 << 40
	tests := []struct {
		name   string
		exists bool // the key exists (written twice: revisions first, current)
		delete bool
		// expected picks the expected revision from the key's first and
		// current revisions.
		expected func(first, current int64) int64
		want     wantErr
	}{
		{"put MustNotExist on missing key", false, false, func(_, _ int64) int64 { return store.MustNotExist }, wantOK},
		{"put MustNotExist on existing key", true, false, func(_, _ int64) int64 { return store.MustNotExist }, wantConflict},
		{"put current revision", true, false, func(_, c int64) int64 { return c }, wantOK},
		{"put stale revision", true, false, func(f, _ int64) int64 { return f }, wantConflict},
		{"put future revision", true, false, func(_, c int64) int64 { return c + 1000 }, wantConflict},
		{"put AnyRevision on existing key", true, false, func(_, _ int64) int64 { return store.AnyRevision }, wantOK},
		{"put AnyRevision on missing key", false, false, func(_, _ int64) int64 { return store.AnyRevision }, wantOK},
		{"put revision on missing key", false, false, func(_, _ int64) int64 { return missingRev }, wantNotFound},
		{"delete AnyRevision on existing key", true, true, func(_, _ int64) int64 { return store.AnyRevision }, wantOK},
		{"delete AnyRevision on missing key", false, true, func(_, _ int64) int64 { return store.AnyRevision }, wantNotFound},
		{"delete current revision", true, true, func(_, c int64) int64 { return c }, wantOK},
		{"delete stale revision", true, true, func(f, _ int64) int64 { return f }, wantConflict},
		{"delete revision on missing key", false, true, func(_, _ int64) int64 { return missingRev }, wantNotFound},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			key := fmt.Sprintf("exp/%02d", i)
			var first, current int64
			if tc.exists {
				first = put(t, s, key, "v1", store.MustNotExist)
				current = put(t, s, key, "v2", first)
			}
			before := revision(t, s)
			exp := tc.expected(first, current)
			var (
				rev int64
				err error
			)
			if tc.delete {
				rev, err = s.Delete(ctx, key, exp)
			} else {
				rev, err = s.Put(ctx, key, []byte("new"), exp)
			}
			var conflict *store.ConflictError
			isConflict := errors.As(err, &conflict)
			switch tc.want {
			case wantOK:
				if err != nil {
					t.Fatalf("write with expected %d: %v; want success", exp, err)
				}
				if rev <= before {
					t.Errorf("revision %d not after %d", rev, before)
				}
				if tc.delete {
					absent(t, s, key)
				} else {
					has(t, s, key, "new", rev)
				}
				return
			case wantConflict:
				if !isConflict {
					t.Fatalf("write with expected %d: %v; want *store.ConflictError", exp, err)
				}
				if conflict.Key != key || conflict.Expected != exp || conflict.Current != current {
					t.Errorf("conflict = %+v; want {Key:%s Expected:%d Current:%d}", *conflict, key, exp, current)
				}
			case wantNotFound:
				if !errors.Is(err, store.ErrNotFound) {
					t.Fatalf("write with expected %d: %v; want ErrNotFound", exp, err)
				}
				if isConflict && conflict.Current != 0 {
					t.Errorf("conflict on a missing key has Current %d; want 0", conflict.Current)
				}
			}
			// A failed write leaves the key and the store revision alone.
			if tc.exists {
				has(t, s, key, "v2", current)
			} else {
				absent(t, s, key)
			}
			if got := revision(t, s); got != before {
				t.Errorf("Revision = %d after a failed write; want %d", got, before)
			}
		})
	}
}

func testTxn(t *testing.T, s store.Store) {
	ctx := t.Context()
	rx := put(t, s, "t/x", "x1", store.AnyRevision)
	put(t, s, "t/del", "d", store.AnyRevision)

	t.Run("applies every op at one revision", func(t *testing.T) {
		rev := txn(t, s,
			store.Op{Key: "t/new", Value: []byte("n"), Expected: store.MustNotExist},
			store.Op{Key: "t/x", Value: []byte("x2"), Expected: rx},
			store.Op{Key: "t/del", Delete: true, Expected: store.AnyRevision},
		)
		has(t, s, "t/new", "n", rev)
		has(t, s, "t/x", "x2", rev)
		absent(t, s, "t/del")
		if got := revision(t, s); got != rev {
			t.Errorf("Revision = %d; want %d", got, rev)
		}
		rx = rev
	})

	failures := []struct {
		name  string
		ops   []store.Op
		check func(t *testing.T, err error)
	}{
		{
			name: "conflict on the last op",
			ops: []store.Op{
				{Key: "t/a", Value: []byte("a"), Expected: store.AnyRevision},
				{Key: "t/b", Value: []byte("b"), Expected: store.MustNotExist},
				{Key: "t/x", Value: []byte("x3"), Expected: rx - 1},
			},
			check: conflictOn("t/x"),
		},
		{
			name: "first conflict is returned",
			ops: []store.Op{
				{Key: "t/a", Value: []byte("a"), Expected: store.AnyRevision},
				{Key: "t/new", Value: []byte("n2"), Expected: store.MustNotExist},
				{Key: "t/x", Value: []byte("x3"), Expected: store.MustNotExist},
			},
			check: conflictOn("t/new"),
		},
		{
			name: "delete of a missing key",
			ops: []store.Op{
				{Key: "t/a", Value: []byte("a"), Expected: store.AnyRevision},
				{Key: "t/missing", Delete: true, Expected: store.AnyRevision},
			},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("Txn error %v; want ErrNotFound", err)
				}
			},
		},
		{
			name: "the same key twice",
			ops: []store.Op{
				{Key: "t/a", Value: []byte("a"), Expected: store.AnyRevision},
				{Key: "t/a", Value: []byte("b"), Expected: store.AnyRevision},
			},
			check: func(t *testing.T, err error) {},
		},
	}
	for _, tc := range failures {
		t.Run(tc.name+" applies nothing", func(t *testing.T) {
			before := revision(t, s)
			_, err := s.Txn(ctx, tc.ops)
			if err == nil {
				t.Fatalf("Txn succeeded; want an error")
			}
			tc.check(t, err)
			absent(t, s, "t/a")
			absent(t, s, "t/b")
			has(t, s, "t/x", "x2", rx)
			has(t, s, "t/new", "n", rx)
			if got := revision(t, s); got != before {
				t.Errorf("Revision = %d after a failed Txn; want %d", got, before)
			}
		})
	}

	t.Run("empty", func(t *testing.T) {
		rev, err := s.Txn(ctx, nil)
		if err != nil {
			t.Fatalf("empty Txn: %v", err)
		}
		if cur := revision(t, s); rev != cur {
			t.Errorf("empty Txn revision %d; want current %d", rev, cur)
		}
	})
}

func conflictOn(key string) func(t *testing.T, err error) {
	return func(t *testing.T, err error) {
		var c *store.ConflictError
		if !errors.As(err, &c) || c.Key != key {
			t.Errorf("Txn error %v; want *store.ConflictError on %q", err, key)
		}
	}
}

// watch opens a watch that ends with the test.
func watch(t *testing.T, s store.Store, prefix string, from int64) <-chan store.Event {
	t.Helper()
	ch, err := s.Watch(t.Context(), prefix, from)
	if err != nil {
		t.Fatalf("Watch(%q, %d): %v", prefix, from, err)
	}
	return ch
}

// recv returns the next event, failing the test on a closed channel or after
// the timeout.
func recv(t *testing.T, ch <-chan store.Event) store.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch channel closed; want an event")
		}
		return ev
	case <-timer.C:
		t.Fatalf("no watch event within %v", timeout)
	}
	return store.Event{}
}

// expectClosed drains ch until it is closed and returns the events seen.
func expectClosed(t *testing.T, ch <-chan store.Event) []store.Event {
	t.Helper()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	var seen []store.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return seen
			}
			seen = append(seen, ev)
		case <-timer.C:
			t.Fatalf("watch channel not closed within %v (%d events seen)", timeout, len(seen))
		}
	}
}

func ev(typ store.EventType, key, value string, rev, create int64) store.Event {
	return store.Event{Type: typ, KV: store.KV{Key: key, Value: []byte(value), Revision: rev, CreateRevision: create}}
}

func fmtEvent(e store.Event) string {
	if e.Err != nil {
		return "err " + e.Err.Error()
	}
	typ := map[store.EventType]string{store.EventPut: "put", store.EventDelete: "delete"}[e.Type]
	return fmt.Sprintf("%s %s=%q rev %d create %d", typ, e.KV.Key, e.KV.Value, e.KV.Revision, e.KV.CreateRevision)
}

// expectEvents receives len(want) events and compares them with want. Events
// of one revision may come in any order among themselves.
func expectEvents(t *testing.T, ch <-chan store.Event, want ...store.Event) {
	t.Helper()
	got := make([]string, 0, len(want))
	var prev int64
	for range want {
		e := recv(t, ch)
		if e.Err != nil {
			t.Fatalf("watch ended with %v after %q", e.Err, got)
		}
		if e.KV.Revision < prev {
			t.Errorf("event revision %d after %d", e.KV.Revision, prev)
		}
		prev = e.KV.Revision
		got = append(got, fmtEvent(e))
	}
	wantS := make([]string, len(want))
	for i, e := range want {
		wantS[i] = fmtEvent(e)
	}
	sortWithinRevision(got, want)
	sortWithinRevision(wantS, want)
	if !slices.Equal(got, wantS) {
		t.Errorf("events:\n got %s\nwant %s", strings.Join(got, "\n     "), strings.Join(wantS, "\n     "))
	}
}

// sortWithinRevision sorts runs of s that share a revision in want.
func sortWithinRevision(s []string, want []store.Event) {
	for i := 0; i < len(want); {
		j := i + 1
		for j < len(want) && want[j].KV.Revision == want[i].KV.Revision {
			j++
		}
		slices.Sort(s[i:j])
		i = j
	}
}

func testWatchOrder(t *testing.T, s store.Store) {
	ch := watch(t, s, "w/", 0)
	ra := put(t, s, "w/a", "1", store.AnyRevision)
	put(t, s, "x/a", "outside", store.AnyRevision)
	rb := put(t, s, "w/b", "2", store.AnyRevision)
	ra2 := put(t, s, "w/a", "3", ra)
	rdel := del(t, s, "w/b", rb)
	put(t, s, "w", "not under w/", store.AnyRevision)
	rt := txn(t, s,
		store.Op{Key: "w/c", Value: []byte("4"), Expected: store.MustNotExist},
		store.Op{Key: "x/b", Value: []byte("outside"), Expected: store.AnyRevision},
		store.Op{Key: "w/a", Delete: true, Expected: ra2},
	)
	rend := put(t, s, "w/end", "5", store.AnyRevision)
	expectEvents(t, ch,
		ev(store.EventPut, "w/a", "1", ra, ra),
		ev(store.EventPut, "w/b", "2", rb, rb),
		ev(store.EventPut, "w/a", "3", ra2, ra),
		ev(store.EventDelete, "w/b", "2", rdel, rb),
		ev(store.EventPut, "w/c", "4", rt, rt),
		ev(store.EventDelete, "w/a", "3", rt, ra),
		ev(store.EventPut, "w/end", "5", rend, rend),
	)
}

func testWatchReplay(t *testing.T, s store.Store) {
	put(t, s, "before", "x", store.AnyRevision) // so that r1-1 is not 0 ("from now")
	r1 := put(t, s, "r/1", "a", store.AnyRevision)
	r2 := put(t, s, "r/2", "b", store.AnyRevision)
	put(t, s, "other", "c", store.AnyRevision)
	r3 := del(t, s, "r/1", store.AnyRevision)

	all := watch(t, s, "r/", r1-1)
	fromR1 := watch(t, s, "r/", r1)
	fromNow := watch(t, s, "r/", 0)
	r4 := put(t, s, "r/4", "d", store.AnyRevision)

	expectEvents(t, all,
		ev(store.EventPut, "r/1", "a", r1, r1),
		ev(store.EventPut, "r/2", "b", r2, r2),
		ev(store.EventDelete, "r/1", "a", r3, r1),
		ev(store.EventPut, "r/4", "d", r4, r4),
	)
	expectEvents(t, fromR1,
		ev(store.EventPut, "r/2", "b", r2, r2),
		ev(store.EventDelete, "r/1", "a", r3, r1),
		ev(store.EventPut, "r/4", "d", r4, r4),
	)
	expectEvents(t, fromNow, ev(store.EventPut, "r/4", "d", r4, r4))
}

func testWatchFromList(t *testing.T, s store.Store) {
	put(t, s, "l/1", "a", store.AnyRevision)
	kvs, rev, err := s.List(t.Context(), "l/")
	if err != nil || len(kvs) != 1 {
		t.Fatalf("List = %v, %v; want one key", kvs, err)
	}
	r2 := put(t, s, "l/2", "b", store.AnyRevision)
	ch := watch(t, s, "l/", rev)
	r3 := put(t, s, "l/3", "c", store.AnyRevision)
	expectEvents(t, ch,
		ev(store.EventPut, "l/2", "b", r2, r2),
		ev(store.EventPut, "l/3", "c", r3, r3),
	)
}

func testWatchCancel(t *testing.T, s store.Store) {
	tests := []struct {
		name string
		from int64
	}{
		{"from now", 0},
		{"replaying", 1},
	}
	for i := range 5 {
		put(t, s, "cancel/"+strconv.Itoa(i), "v", store.AnyRevision)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			ch, err := s.Watch(ctx, "cancel/", tc.from)
			if err != nil {
				t.Fatalf("Watch: %v", err)
			}
			put(t, s, "cancel/x", "v", store.AnyRevision)
			cancel()
			for _, e := range expectClosed(t, ch) {
				if e.Err != nil {
					t.Errorf("cancelled watch delivered error %v", e.Err)
				}
			}
			// The store still works and other watches are unaffected.
			put(t, s, "cancel/y", "v", store.AnyRevision)
		})
	}
}

func testWatchCompacted(t *testing.T, s store.Store) {
	c, ok := s.(Compacter)
	if !ok {
		t.Skip("backend has no Compact method")
	}
	ctx := t.Context()
	put(t, s, "before", "x", store.AnyRevision) // so that r1-1 is not 0 ("from now")
	r1 := put(t, s, "cp/1", "a", store.AnyRevision)
	r2 := put(t, s, "cp/2", "b", store.AnyRevision)
	r3 := put(t, s, "cp/3", "c", store.AnyRevision)
	if err := c.Compact(ctx, r2); err != nil {
		t.Fatalf("Compact(%d): %v", r2, err)
	}
	for _, from := range []int64{r1 - 1, r1} {
		ch := watch(t, s, "cp/", from)
		seen := expectClosed(t, ch)
		if len(seen) != 1 || !errors.Is(seen[0].Err, store.ErrCompacted) {
			t.Errorf("Watch from %d after Compact(%d): events %v; want one ErrCompacted", from, r2, seen)
		}
	}
	ch := watch(t, s, "cp/", r2)
	r4 := put(t, s, "cp/4", "d", store.AnyRevision)
	expectEvents(t, ch, ev(store.EventPut, "cp/3", "c", r3, r3), ev(store.EventPut, "cp/4", "d", r4, r4))
}

func testWatchSlowReader(t *testing.T, s store.Store) {
	const txns, opsPerTxn = 100, 100
	ch := watch(t, s, "slow/", 0)

	// Write everything without reading the watch; writers must not block.
	type written struct {
		key string
		rev int64
	}
	var want []written
	done := make(chan error, 1)
	go func() {
		for i := range txns {
			ops := make([]store.Op, opsPerTxn)
			for j := range ops {
				ops[j] = store.Op{Key: fmt.Sprintf("slow/%03d/%03d", i, j), Value: []byte("v"), Expected: store.AnyRevision}
			}
			rev, err := s.Txn(context.Background(), ops)
			if err != nil {
				done <- err
				return
			}
			for _, op := range ops {
				want = append(want, written{op.Key, rev})
			}
		}
		done <- nil
	}()
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Txn: %v", err)
		}
	case <-timer.C:
		t.Fatalf("writers blocked for %v behind an unread watch", timeout)
	}

	// The reader gets a gapless, ordered prefix of the writes (in any order
	// within one revision), then either everything or ErrCompacted.
	revOf := make(map[string]int64, len(want))
	for _, w := range want {
		revOf[w.key] = w.rev
	}
	seen := make(map[string]bool, len(want))
	for i := range want {
		e := recv(t, ch)
		if e.Err != nil {
			if !errors.Is(e.Err, store.ErrCompacted) {
				t.Fatalf("slow watch ended with %v; want ErrCompacted", e.Err)
			}
			expectClosed(t, ch)
			t.Logf("slow watch overflowed after %d of %d events", i, len(want))
			return
		}
		if e.KV.Revision != want[i].rev || revOf[e.KV.Key] != e.KV.Revision || seen[e.KV.Key] {
			t.Fatalf("event %d: %s; want one of revision %d", i, fmtEvent(e), want[i].rev)
		}
		seen[e.KV.Key] = true
	}
}

func testConcurrent(t *testing.T, s store.Store) {
	const workers, increments, maxTries = 4, 10, 10000
	ctx := t.Context()
	start := put(t, s, "counter", "0", store.MustNotExist)
	ch := watch(t, s, "counter", start)

	var g errgroup.Group
	for range workers {
		g.Go(func() error {
			for range increments {
				for try := 0; ; try++ {
					if try == maxTries {
						return fmt.Errorf("no successful increment in %d tries", maxTries)
					}
					kv, err := s.Get(ctx, "counter")
					if err != nil {
						return err
					}
					n, err := strconv.Atoi(string(kv.Value))
					if err != nil {
						return err
					}
					_, err = s.Put(ctx, "counter", []byte(strconv.Itoa(n+1)), kv.Revision)
					var conflict *store.ConflictError
					if errors.As(err, &conflict) {
						continue
					}
					if err != nil {
						return err
					}
					break
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("increment: %v", err)
	}
	has(t, s, "counter", strconv.Itoa(workers*increments), 0)

	prev := start
	for want := 1; want <= workers*increments; want++ {
		e := recv(t, ch)
		if e.Err != nil || string(e.KV.Value) != strconv.Itoa(want) || e.KV.Revision <= prev {
			t.Fatalf("watch event %s after revision %d; want counter=%d", fmtEvent(e), prev, want)
		}
		prev = e.KV.Revision
	}
}

func testClose(t *testing.T, s store.Store) {
	ctx := t.Context()
	first := put(t, s, "k", "v", store.AnyRevision)
	put(t, s, "k2", "v", store.AnyRevision)
	live := watch(t, s, "", 0)
	replaying := watch(t, s, "", first)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, ch := range []<-chan store.Event{live, replaying} {
		expectClosed(t, ch)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := s.Get(ctx, "k"); return err }},
		{"List", func() error { _, _, err := s.List(ctx, ""); return err }},
		{"ListPrefixes", func() error { _, _, err := s.ListPrefixes(ctx, []string{""}); return err }},
		{"Put", func() error { _, err := s.Put(ctx, "k", nil, store.AnyRevision); return err }},
		{"Delete", func() error { _, err := s.Delete(ctx, "k", store.AnyRevision); return err }},
		{"Txn", func() error {
			_, err := s.Txn(ctx, []store.Op{{Key: "k", Expected: store.AnyRevision}})
			return err
		}},
		{"Watch", func() error { _, err := s.Watch(ctx, "", 0); return err }},
		{"Revision", func() error { _, err := s.Revision(ctx); return err }},
		{"Close", s.Close},
	}
	for _, c := range calls {
		if err := c.call(); !errors.Is(err, store.ErrClosed) {
			t.Errorf("%s after Close: %v; want ErrClosed", c.name, err)
		}
	}
}
