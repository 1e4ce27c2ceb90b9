package store_test

import (
	"context"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// seenStore is a Store whose watches tell the test when they are open and
// record every event they hand to the watcher, so a test knows what
// Notify was shown without waiting for a wake-up that should not come.
type seenStore struct {
	store.Store
	watching chan struct{} // closed after the first Watch call returns

	once sync.Once
	mu   sync.Mutex
	keys []string // keys of the events handed on, in order
}

func (s *seenStore) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan store.Event, error) {
	in, err := s.Store.Watch(ctx, prefix, fromRev)
	if err != nil {
		return nil, err
	}
	out := make(chan store.Event) // unbuffered: an event is logged before Notify can take it
	go func() {
		defer close(out)
		for ev := range in {
			s.mu.Lock()
			s.keys = append(s.keys, ev.KV.Key)
			s.mu.Unlock()
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	s.once.Do(func() { close(s.watching) })
	return out, nil
}

func (s *seenStore) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.keys)
}

// TestNotifyWakesOnChangesUnderPrefix checks that a change under the prefix
// wakes the receiver and a change elsewhere does not. Nothing waits for a
// wake-up that should not come: the watch is known to be open before the
// first write, a later change under the prefix marks that the one outside
// it has gone by, and the watch's own log shows what Notify was handed.
func TestNotifyWakesOnChangesUnderPrefix(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// A first revision, so the watch starts from one and not from "now".
	if _, err := db.Put(ctx, "/c/seed", []byte("v"), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	st := &seenStore{Store: db, watching: make(chan struct{})}
	wake := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- store.Notify(ctx, st, "/a/", wake) }()
	// receive bounds a wake-up that must come, so a bug fails instead of
	// hanging; it never decides a pass.
	receive := func(what string) {
		t.Helper()
		select {
		case <-wake:
		case err := <-done:
			t.Fatalf("Notify returned %v before %s", err, what)
		case <-time.After(10 * time.Second):
			t.Fatalf("no wake-up for %s (the watch handed on %q)", what, st.seen())
		}
	}
	select {
	case <-st.watching:
	case err := <-done:
		t.Fatalf("Notify returned %v before watching", err)
	}

	put := func(key string) {
		t.Helper()
		if _, err := st.Put(ctx, key, []byte("v"), store.AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	put("/a/k")
	receive("a change under the prefix")
	put("/b/k")  // outside the prefix
	put("/a/k2") // after it in revision order: its wake-up means /b/k has gone by
	receive("a second change under the prefix")
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Notify after cancel: %v", err)
	}
	// Notify has returned, so every wake-up it sent is in the buffer: one
	// more than the two received would be a wake-up for nothing.
	select {
	case <-wake:
		t.Error("a wake-up beyond the two changes under the prefix")
	default:
	}
	// A change outside the prefix would show here, before /a/k2.
	if got, want := st.seen(), []string{"/a/k", "/a/k2"}; !slices.Equal(got, want) {
		t.Errorf("Notify's watch handed on %q; want only the changes under /a/: %q", got, want)
	}
}
