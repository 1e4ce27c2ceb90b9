package store

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"
)

// Notify sends a wake-up on out after changes under prefix, until ctx ends.
// Wake-ups coalesce: out should have a buffer of one, and a receiver that
// is busy sees one wake-up for many changes. When the watch ends with
// ErrCompacted (a slow reader, a compaction) Notify sends a wake-up, since
// changes may have been missed, and watches again from the current
// revision. It returns nil when ctx ends and an error if the store fails.
func Notify(ctx context.Context, st Store, prefix string, out chan<- struct{}) error {
	for ctx.Err() == nil {
		rev, err := st.Revision(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("notify %s: %w", prefix, err)
		}
		ch, err := st.Watch(ctx, prefix, rev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("notify %s: %w", prefix, err)
		}
		for range ch {
			select {
			case out <- struct{}{}:
			default:
			}
		}
	}
	return nil
}

// Loop calls pass at once, then again after every change under any of
// prefixes, after every value received on kick, and every resync period,
// until ctx ends. Changes that arrive during a pass coalesce into one more
// pass. A pass's error goes to onErr (never while ctx is ending); Loop
// returns nil when ctx ends, or the first watch error.
func Loop(ctx context.Context, st Store, prefixes []string, resync time.Duration, kick <-chan struct{},
	pass func(ctx context.Context) error, onErr func(error)) error {
	events := make(chan struct{}, 1)
	g, ctx := errgroup.WithContext(ctx)
	for _, prefix := range prefixes {
		g.Go(func() error { return Notify(ctx, st, prefix, events) })
	}
	g.Go(func() error {
		t := time.NewTicker(resync)
		defer t.Stop()
		for {
			if err := pass(ctx); err != nil && ctx.Err() == nil {
				onErr(err)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			case <-events:
			case <-kick:
			}
		}
	})
	return g.Wait()
}
