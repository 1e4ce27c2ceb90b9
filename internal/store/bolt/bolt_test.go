package bolt_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
	"nimbus/internal/store/storetest"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

func openAt(t testing.TB, path string, opts ...bolt.Option) *bolt.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := bolt.Open(ctx, path, append([]bolt.Option{bolt.WithLogger(testLogger(t))}, opts...)...)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openAt(t, filepath.Join(t.TempDir(), "nimbus.db"))
	})
}

func TestOpenRejectsBadOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  bolt.Option
	}{
		{"zero history", bolt.WithHistory(0)},
		{"negative history", bolt.WithHistory(-5)},
		{"zero watch buffer", bolt.WithWatchBuffer(0)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := bolt.Open(t.Context(), filepath.Join(t.TempDir(), "nimbus.db"), tc.opt)
			if err == nil {
				s.Close()
				t.Fatalf("Open succeeded; want an error")
			}
		})
	}
}

func TestOpenWaitsForLockThenFails(t *testing.T) {
	path := filepath.Join(t.TempDir(), "nimbus.db")
	openAt(t, path)
	tests := []struct {
		name string
		ctx  func() (context.Context, context.CancelFunc)
		opts []bolt.Option
	}{
		{"lock timeout", func() (context.Context, context.CancelFunc) { return context.WithCancel(t.Context()) },
			[]bolt.Option{bolt.WithLockTimeout(50 * time.Millisecond)}},
		{"ctx deadline", func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(t.Context(), 50*time.Millisecond)
		}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := tc.ctx()
			defer cancel()
			s, err := bolt.Open(ctx, path, tc.opts...)
			if err == nil {
				s.Close()
				t.Fatalf("second Open of a locked file succeeded")
			}
		})
	}
}

func TestReopenKeepsDataAndRevision(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openAt(t, path)
	r1, err := s.Put(ctx, "a", []byte("1"), store.MustNotExist)
	if err != nil {
		t.Fatal(err)
	}
	r2, err := s.Txn(ctx, []store.Op{
		{Key: "a", Value: []byte("2"), Expected: r1},
		{Key: "b", Value: []byte("3"), Expected: store.MustNotExist},
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openAt(t, path)
	if rev, err := s.Revision(ctx); err != nil || rev != r2 {
		t.Fatalf("Revision after reopen = %d, %v; want %d", rev, err, r2)
	}
	kvs, rev, err := s.List(ctx, "")
	if err != nil || rev != r2 || len(kvs) != 2 {
		t.Fatalf("List after reopen = %+v, %d, %v", kvs, rev, err)
	}
	want := []store.KV{
		{Key: "a", Value: []byte("2"), Revision: r2, CreateRevision: r1},
		{Key: "b", Value: []byte("3"), Revision: r2, CreateRevision: r2},
	}
	for i, kv := range kvs {
		w := want[i]
		if kv.Key != w.Key || string(kv.Value) != string(w.Value) || kv.Revision != w.Revision || kv.CreateRevision != w.CreateRevision {
			t.Errorf("kv %d = %+v; want %+v", i, kv, w)
		}
	}
	r3, err := s.Put(ctx, "c", nil, store.AnyRevision)
	if err != nil || r3 != r2+1 {
		t.Errorf("first Put after reopen = %d, %v; want revision %d", r3, err, r2+1)
	}
}

// recvAll reads n events or fails.
func recvAll(t *testing.T, ch <-chan store.Event, n int) []store.Event {
	t.Helper()
	timer := time.NewTimer(10 * time.Second)
	defer timer.Stop()
	var out []store.Event
	for len(out) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("watch closed after %d of %d events: %+v", len(out), n, out)
			}
			out = append(out, ev)
		case <-timer.C:
			t.Fatalf("got %d of %d events within 10s", len(out), n)
		}
	}
	return out
}

func TestWatchResumesAfterReopen(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openAt(t, path)
	var revs []int64
	for _, k := range []string{"w/1", "w/2", "w/3"} {
		rev, err := s.Put(ctx, k, []byte(k), store.AnyRevision)
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openAt(t, path)
	ch, err := s.Watch(ctx, "w/", revs[0])
	if err != nil {
		t.Fatal(err)
	}
	r4, err := s.Put(ctx, "w/4", []byte("w/4"), store.AnyRevision)
	if err != nil {
		t.Fatal(err)
	}
	got := recvAll(t, ch, 3)
	for i, want := range []struct {
		key string
		rev int64
	}{{"w/2", revs[1]}, {"w/3", revs[2]}, {"w/4", r4}} {
		if got[i].KV.Key != want.key || got[i].KV.Revision != want.rev || string(got[i].KV.Value) != want.key {
			t.Errorf("event %d = %+v; want %s at %d", i, got[i], want.key, want.rev)
		}
	}
}

// TestHistoryHorizon checks the compaction horizon: with WithHistory(n) a
// watch can start at Revision()-n but not before, also after a reopen with a
// smaller history.
func TestHistoryHorizon(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "nimbus.db")
	s := openAt(t, path, bolt.WithHistory(5))
	for i := range 10 {
		if _, err := s.Put(ctx, "h", []byte{byte(i)}, store.AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	check := func(t *testing.T, s *bolt.Store, cur, history int64) {
		tests := []struct {
			from      int64
			compacted bool
		}{
			{1, true},
			{cur - history - 1, true},
			{cur - history, false},
			{cur - 1, false},
		}
		for _, tc := range tests {
			wctx, cancel := context.WithCancel(ctx)
			ch, err := s.Watch(wctx, "h", tc.from)
			if err != nil {
				t.Fatal(err)
			}
			if tc.compacted {
				evs := recvAll(t, ch, 1)
				if !errors.Is(evs[0].Err, store.ErrCompacted) {
					t.Errorf("Watch from %d (current %d, history %d): %+v; want ErrCompacted", tc.from, cur, history, evs[0])
				}
				if _, ok := <-ch; ok {
					t.Errorf("Watch from %d: channel open after ErrCompacted", tc.from)
				}
			} else {
				evs := recvAll(t, ch, int(cur-tc.from))
				for i, ev := range evs {
					if ev.Err != nil || ev.KV.Revision != tc.from+int64(i)+1 {
						t.Errorf("Watch from %d event %d = %+v", tc.from, i, ev)
					}
				}
			}
			cancel()
		}
	}
	check(t, s, 10, 5)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, openAt(t, path, bolt.WithHistory(3)), 10, 3)
}

func TestWatchBufferOverflow(t *testing.T) {
	ctx := t.Context()
	s := openAt(t, filepath.Join(t.TempDir(), "nimbus.db"), bolt.WithWatchBuffer(4))
	slow, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	fast, err := s.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := s.Put(ctx, "k", []byte{byte(i)}, store.AnyRevision); err != nil {
			t.Fatal(err)
		}
		if ev := recvAll(t, fast, 1)[0]; ev.Err != nil || ev.KV.Value[0] != byte(i) {
			t.Fatalf("fast watcher event %d = %+v", i, ev)
		}
	}
	var n int
	for ev := range slow {
		if ev.Err != nil {
			if !errors.Is(ev.Err, store.ErrCompacted) {
				t.Errorf("slow watcher ended with %v; want ErrCompacted", ev.Err)
			}
			break
		}
		if ev.KV.Value[0] != byte(n) {
			t.Errorf("slow watcher event %d has value %d", n, ev.KV.Value[0])
		}
		n++
	}
	if n > 5 {
		t.Errorf("slow watcher got %d events with a buffer of 4", n)
	}
	if _, ok := <-slow; ok {
		t.Errorf("slow watcher open after ErrCompacted")
	}
}

func TestDiskFull(t *testing.T) {
	storetest.RunDiskFull(t, func(t *testing.T, dir string) store.Store {
		return openAt(t, filepath.Join(dir, "nimbus.db"))
	})
}
