package bolt

import (
	"context"
	"errors"
	"fmt"
	"strings"

	bbolt "go.etcd.io/bbolt"

	"nimbus/internal/store"
)

// watcher is one Watch stream. The hub (under Store.hubMu) sends live events
// to in without blocking; when in is full, or the store closes, the hub closes
// in after setting reason. The watcher's goroutine owns out.
type watcher struct {
	prefix string
	after  int64 // live events at or below this revision are skipped
	in     chan store.Event
	reason error // why in was closed: nil for Close, ErrCompacted for overflow
}

// Watch streams the changes under prefix with revision > fromRev (0: from
// now), replaying from the change log what was committed before the call. See
// store.Store for the contract and the package doc for the horizon. The
// events' values are owned by the receiver.
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan store.Event, error) {
	if fromRev < 0 {
		return nil, fmt.Errorf("bolt watch %q: negative revision %d", prefix, fromRev)
	}
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("bolt watch %q: %w", prefix, err)
	}
	defer s.life.RUnlock()

	s.hubMu.Lock()
	cur := s.rev
	w := &watcher{prefix: prefix, after: max(cur, fromRev), in: make(chan store.Event, s.cfg.watchBuffer)}
	s.watchers[w] = struct{}{}
	s.hubMu.Unlock()

	out := make(chan store.Event)
	replayFrom := cur // nothing to replay
	if fromRev > 0 && fromRev < cur {
		replayFrom = fromRev
	}
	s.wg.Add(1)
	go s.serve(ctx, w, out, replayFrom, cur)
	return out, nil
}

// serve feeds out: first the logged events in (from, to], then live events.
func (s *Store) serve(ctx context.Context, w *watcher, out chan<- store.Event, from, to int64) {
	defer s.wg.Done()
	defer close(out)
	defer s.unregister(w)

	send := func(ev store.Event) bool {
		select {
		case out <- ev:
			return true
		case <-ctx.Done():
		case <-s.done:
		}
		return false
	}
	for next := from + 1; next <= to; {
		events, last, err := s.readLog(w.prefix, next, to)
		if err != nil {
			if errors.Is(err, store.ErrCompacted) {
				send(store.Event{Err: store.ErrCompacted})
			} else if !errors.Is(err, store.ErrClosed) {
				s.log.Error("watch replay failed", "prefix", w.prefix, "revision", next, "err", err)
				send(store.Event{Err: err})
			}
			return
		}
		for _, ev := range events {
			if !send(ev) {
				return
			}
		}
		next = last + 1
	}
	for {
		select {
		case ev, ok := <-w.in:
			if !ok {
				if w.reason != nil {
					send(store.Event{Err: w.reason})
				}
				return
			}
			if !send(ev) {
				return
			}
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// readLog reads the change log from revision next up to at most to, in one
// short read transaction, returning the events under prefix and the last
// revision read.
func (s *Store) readLog(prefix string, next, to int64) ([]store.Event, int64, error) {
	s.life.RLock()
	defer s.life.RUnlock()
	if s.closed {
		return nil, 0, store.ErrClosed
	}
	if s.db == nil {
		return nil, 0, &store.UnavailableError{Op: "open", Err: s.openErr}
	}
	var (
		events []store.Event
		last   = next - 1
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		compacted, err := readU64(tx.Bucket(bucketMeta).Get(metaCompacted))
		if err != nil {
			return err
		}
		if next-1 < compacted {
			return store.ErrCompacted
		}
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(u64(next)); k != nil; k, v = c.Next() {
			rev, err := readU64(k)
			if err != nil {
				return err
			}
			if rev > to || rev-next >= replayChunk {
				break
			}
			if events, err = decodeEvents(rev, v, prefix, events); err != nil {
				return err
			}
			last = rev
		}
		if last < next {
			// The log ends before `to`, which only a foreign writer could cause.
			return fmt.Errorf("change log has no revision %d: %w", next, errCorrupt)
		}
		return nil
	})
	return events, last, err
}

// unregister removes w from the hub if the hub has not already done so.
func (s *Store) unregister(w *watcher) {
	s.hubMu.Lock()
	delete(s.watchers, w)
	s.hubMu.Unlock()
}

// publish records rev as committed and hands events to every matching
// watcher without blocking. A watcher whose buffer is full is dropped with
// reason ErrCompacted. The caller holds s.wmu, so publishes are in revision
// order.
func (s *Store) publish(rev int64, events []store.Event) {
	var overflowed []string
	s.hubMu.Lock()
	s.rev = rev
	for w := range s.watchers {
		for _, ev := range events {
			if ev.KV.Revision <= w.after || !strings.HasPrefix(ev.KV.Key, w.prefix) {
				continue
			}
			ev.KV.Value = append([]byte{}, ev.KV.Value...)
			select {
			case w.in <- ev:
				continue
			default:
			}
			w.reason = store.ErrCompacted
			close(w.in)
			delete(s.watchers, w)
			overflowed = append(overflowed, w.prefix)
			break
		}
	}
	s.hubMu.Unlock()
	for _, p := range overflowed {
		s.log.Warn("watch buffer overflow", "prefix", p, "revision", rev, "buffer", s.cfg.watchBuffer)
	}
}
