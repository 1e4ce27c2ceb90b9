package store

import (
	"context"
	"fmt"
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
