package store_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

func TestNotifyWakesOnChangesUnderPrefix(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	wake := make(chan struct{}, 1)
	done := make(chan error, 1)
	go func() { done <- store.Notify(ctx, st, "/a/", wake) }()
	// Writes until a wake-up arrives: the watch may start after the first.
	deadline := time.After(5 * time.Second)
	for woke := false; !woke; {
		if _, err := st.Put(ctx, "/a/k", []byte("v"), store.AnyRevision); err != nil {
			t.Fatal(err)
		}
		select {
		case <-wake:
			woke = true
		case <-time.After(20 * time.Millisecond):
		case <-deadline:
			t.Fatal("no wake-up for a change under the prefix")
		}
	}
	// A change elsewhere does not wake (first let the earlier writes'
	// wake-ups drain).
	time.Sleep(200 * time.Millisecond)
	select {
	case <-wake:
	default:
	}
	if _, err := st.Put(ctx, "/b/k", []byte("v"), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	select {
	case <-wake:
		t.Fatal("woken by a change outside the prefix")
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Notify after cancel: %v", err)
	}
}
