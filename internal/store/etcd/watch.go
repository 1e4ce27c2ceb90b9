package etcd

import (
	"context"
	"errors"
	"fmt"

	clientv3 "go.etcd.io/etcd/client/v3"

	"nimbus/internal/store"
)

// Watch streams the changes under prefix with revision > fromRev (0: from
// now) from an etcd watch; see store.Store for the contract and the package
// doc for the mapping. The events' values are owned by the receiver.
func (s *Store) Watch(ctx context.Context, prefix string, fromRev int64) (<-chan store.Event, error) {
	if fromRev < 0 {
		return nil, fmt.Errorf("etcd watch %q: negative revision %d", prefix, fromRev)
	}
	if err := s.enter(ctx); err != nil {
		return nil, fmt.Errorf("etcd watch %q: %w", prefix, err)
	}
	defer s.life.RUnlock()
	if fromRev == 0 {
		// "From now" is from the revision read here: every write that
		// returns after Watch returns has a later revision.
		cur, err := s.revision(ctx)
		if err != nil {
			return nil, fmt.Errorf("etcd watch %q: %w", prefix, err)
		}
		fromRev = cur
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wch := s.cli.Watch(wctx, s.prefix+prefix, clientv3.WithPrefix(), clientv3.WithRev(fromRev+1), clientv3.WithPrevKV())
	out := make(chan store.Event)
	s.wg.Add(1)
	go s.serve(ctx, cancel, prefix, wch, out)
	return out, nil
}

// serve moves events from the etcd watch to out through a queue of at most
// about s.buffer events, so a slow reader never holds up etcd's stream. The
// stream's end (compaction, overflow, a watch error) is delivered after the
// events queued before it. serve owns out and closes it.
func (s *Store) serve(ctx context.Context, cancel context.CancelFunc, prefix string, wch clientv3.WatchChan, out chan<- store.Event) {
	defer s.wg.Done()
	defer close(out)
	defer cancel()
	var (
		queue []store.Event
		end   error // delivered once queue is empty; then serve returns
	)
	// stop ends the etcd watch; what is queued is still delivered.
	stop := func(err error) {
		end, wch = err, nil
		cancel()
	}
	for {
		var (
			send chan<- store.Event
			next store.Event
		)
		switch {
		case len(queue) > 0:
			send, next = out, queue[0]
		case end != nil:
			send, next = out, store.Event{Err: end}
		case wch == nil:
			return
		}
		select {
		case send <- next:
			if len(queue) == 0 {
				return // that was the end
			}
			queue[0] = store.Event{}
			queue = queue[1:]
		case resp, ok := <-wch:
			switch {
			case !ok:
				// The client closes the channel when wctx ends or the
				// client closes; both are also seen below, so an open
				// ctx and store mean the stream broke.
				if ctx.Err() == nil && !s.isClosed() {
					stop(fmt.Errorf("etcd watch %q: stream closed", prefix))
				} else {
					wch = nil
				}
			case resp.CompactRevision != 0:
				stop(store.ErrCompacted)
			case resp.Canceled || resp.Err() != nil:
				err := resp.Err()
				if err == nil {
					err = errors.New("cancelled by the server")
				}
				stop(fmt.Errorf("etcd watch %q: %w", prefix, err))
			default:
				for _, ev := range resp.Events {
					queue = append(queue, s.event(ev))
				}
				if len(queue) > s.buffer {
					s.log.Warn("watch buffer overflow", "prefix", prefix, "pending", len(queue))
					stop(store.ErrCompacted)
				}
			}
		case <-ctx.Done():
			return
		case <-s.done:
			return
		}
	}
}

// event converts an etcd event. A delete's KV is etcd's previous KV (the
// last value and create revision) at the delete's revision.
func (s *Store) event(ev *clientv3.Event) store.Event {
	kv := s.kv(ev.Kv.Key, ev.Kv.Value, ev.Kv.ModRevision, ev.Kv.CreateRevision)
	if ev.Type != clientv3.EventTypeDelete {
		return store.Event{Type: store.EventPut, KV: kv}
	}
	if ev.PrevKv != nil {
		kv.Value, kv.CreateRevision = ev.PrevKv.Value, ev.PrevKv.CreateRevision
	}
	return store.Event{Type: store.EventDelete, KV: kv}
}

func (s *Store) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}
