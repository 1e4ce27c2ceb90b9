package storetest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"nimbus/internal/store"
)

// DiskFullSize is the size of the file system RunDiskFull mounts.
const DiskFullSize = 32 << 20

// FillerFile is the name of the file Fill writes.
const FillerFile = "filler"

// RunDiskFull checks a backend that keeps its data in a local directory
// against a full disk, on a real one: a DiskFullSize tmpfs (so it needs
// root, and skips without it). open opens the backend's store in dir, and
// must reopen the same data when called again for dir; RunDiskFull closes
// what it opens (a cleanup open registers must tolerate store.ErrClosed).
//
// The contract checked: once the disk is full a write fails with an error
// matching store.ErrNoSpace and a *store.UnavailableError, and has no
// effect (watchers see nothing of it); reads keep working; deletes still
// succeed; once space is freed writes succeed again on the same store,
// without a restart; and after a restart every acknowledged write is there
// and nothing else.
func RunDiskFull(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	t.Helper()
	dir := Tmpfs(t, DiskFullSize)
	ctx := t.Context()
	s := open(t, dir)
	t.Cleanup(func() { _ = s.Close() })

	rev0 := revision(t, s)
	events := watch(t, s, "", rev0)
	acked := map[string]string{}
	var done []store.Event // every acknowledged write, as watchers must see it
	value := func(k string) string { return k + ":" + strings.Repeat("v", 3000) }
	putNew := func(k string) error {
		v := value(k)
		rev, err := s.Put(ctx, k, []byte(v), store.MustNotExist)
		if err == nil {
			acked[k] = v
			done = append(done, ev(store.EventPut, k, v, rev, rev))
		}
		return err
	}
	for i := range 20 {
		if err := putNew(fmt.Sprintf("before/%02d", i)); err != nil {
			t.Fatalf("put before the disk is full: %v", err)
		}
	}

	removeFiller := Fill(t, dir)

	// bbolt and friends may still have room inside their files: write until
	// the disk says no.
	var full error
	for i := 0; i < 5000 && full == nil; i++ {
		full = putNew(fmt.Sprintf("full/%04d", i))
	}
	wantNoSpace := func(what string, err error) {
		t.Helper()
		var ue *store.UnavailableError
		if !errors.Is(err, store.ErrNoSpace) || !errors.As(err, &ue) {
			t.Fatalf("%s on a full disk: %v (%T); want an error matching store.ErrNoSpace and a *store.UnavailableError", what, err, err)
		}
	}
	wantNoSpace("put", full)
	for i := range 5 {
		k := fmt.Sprintf("again/%d", i)
		if _, err := s.Put(ctx, k, []byte(value(k)), store.MustNotExist); err == nil {
			acked[k] = value(k)
			t.Fatalf("put %s succeeded on a full disk after one failed", k)
		} else {
			wantNoSpace("put", err)
		}
	}

	// Reads keep working and see exactly the acknowledged writes.
	checkAll := func(s store.Store, when string) {
		t.Helper()
		for k, v := range acked {
			kv, err := s.Get(ctx, k)
			if err != nil || string(kv.Value) != v {
				t.Fatalf("%s: get %s: %q, %v; want the acknowledged value", when, k, trunc(kv.Value), err)
			}
		}
		kvs, _, err := s.List(ctx, "")
		if err != nil {
			t.Fatalf("%s: list: %v", when, err)
		}
		if got, want := keys(kvs), sortedKeys(acked); !slices.Equal(got, want) {
			t.Fatalf("%s: list has %d keys, want the %d acknowledged ones:\n got  %v\n want %v", when, len(got), len(want), got, want)
		}
	}
	checkAll(s, "full disk")

	// Deletes still work.
	for _, k := range sortedKeys(acked)[:5] {
		rev, err := s.Delete(ctx, k, store.AnyRevision)
		if err != nil {
			t.Fatalf("delete %s on a full disk: %v", k, err)
		}
		done = append(done, ev(store.EventDelete, k, acked[k], rev, 0))
		delete(acked, k)
	}
	if err := putNew("still/full"); err == nil {
		t.Fatalf("put succeeded on a full disk after deletes")
	} else {
		wantNoSpace("put after deletes", err)
	}
	checkAll(s, "full disk after deletes")

	// Writes resume once space is freed, on the same store.
	removeFiller()
	for i := range 5 {
		if err := putNew(fmt.Sprintf("after/%d", i)); err != nil {
			t.Fatalf("put after space was freed: %v", err)
		}
	}
	checkAll(s, "space freed")

	// Watchers saw every acknowledged write, in order, and nothing else.
	last := done[len(done)-1].KV.Revision
	var seen []store.Event
	for len(seen) == 0 || seen[len(seen)-1].KV.Revision < last {
		e := recv(t, events)
		if e.Err != nil {
			t.Fatalf("watch ended: %v", e.Err)
		}
		if e.Type == store.EventDelete {
			e.KV.CreateRevision = 0
		}
		seen = append(seen, e)
	}
	if got, want := fmtEvents(seen), fmtEvents(done); !slices.Equal(got, want) {
		t.Fatalf("watch saw %d events, want the %d acknowledged writes:\n got  %v\n want %v", len(got), len(want), got, want)
	}

	// A restart finds every acknowledged write and nothing else.
	if err := s.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	s2 := open(t, dir)
	t.Cleanup(func() { _ = s2.Close() })
	checkAll(s2, "after restart")
	if got := revision(t, s2); got != last {
		t.Fatalf("revision after restart %d, want %d (the last acknowledged write)", got, last)
	}
}

func fmtEvents(evs []store.Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		e.KV.Value = []byte(trunc(e.KV.Value))
		out[i] = fmtEvent(e)
	}
	return out
}

func trunc(b []byte) string {
	if len(b) > 16 {
		return string(b[:16]) + "…"
	}
	return string(b)
}

func sortedKeys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Fill fills the file system of dir with the file FillerFile until it
// reports ENOSPC, and returns a function that removes the file again (also
// run at cleanup).
func Fill(t testing.TB, dir string) (remove func()) {
	t.Helper()
	p := filepath.Join(dir, FillerFile)
	f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatalf("fill: %v", err)
	}
	remove = func() {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Errorf("remove filler: %v", err)
		}
	}
	t.Cleanup(remove)
	for _, chunk := range []int{1 << 20, 4 << 10, 512} {
		buf := make([]byte, chunk)
		for {
			if _, err = f.Write(buf); err != nil {
				break
			}
		}
		if !errors.Is(err, syscall.ENOSPC) {
			f.Close()
			t.Fatalf("fill %s: %v; want ENOSPC in the end", p, err)
		}
	}
	if err := f.Close(); err != nil && !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("fill: close: %v", err)
	}
	// The file system is full: even a small new file cannot be written.
	if err := os.WriteFile(filepath.Join(dir, "probe"), make([]byte, 4<<10), 0o600); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("after filling %s a 4 KiB file still fits (%v)", dir, err)
	}
	_ = os.Remove(filepath.Join(dir, "probe"))
	return remove
}
