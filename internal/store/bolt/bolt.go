// Package bolt is nimbus's embedded store backend: a store.Store kept in one
// bbolt file on local disk.
//
// Durability: every write is one bbolt read-write transaction, committed with
// fsync (bbolt's NoSync stays false) before the call returns. The global
// revision counter, the key's value and the change-log entry for the
// revision are written in that same transaction, so after a crash the store
// holds exactly the acknowledged writes plus at most the last unacknowledged
// one, and never part of a Txn.
//
// Watch history and compaction horizon: every committed revision's events are
// also appended to an on-disk change log, trimmed in the same transaction to
// the last WithHistory revisions (DefaultHistory unless set). Watch(ctx,
// prefix, fromRev) replays from that log, so a watcher can resume after a
// restart of the process as long as fromRev >= Revision() - history; older
// start revisions get one Event{Err: store.ErrCompacted}. Compact trims the
// log further on demand. Live events fan out from memory to a bounded
// per-watcher buffer (WithWatchBuffer); a reader that falls that far behind
// gets ErrCompacted as its last event instead of blocking writers.
//
// Writers are serialised (bbolt allows one read-write transaction at a time);
// readers run concurrently with them.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"

	"nimbus/internal/store"
)

// DefaultHistory is the number of most recent revisions whose events the
// change log keeps for Watch replay when WithHistory is not given.
const DefaultHistory = 10000

// DefaultWatchBuffer is the number of live events buffered per watcher when
// WithWatchBuffer is not given.
const DefaultWatchBuffer = 1024

// DefaultLockTimeout bounds how long Open waits for another process to release
// the database file lock when neither WithLockTimeout nor a ctx deadline says
// otherwise.
const DefaultLockTimeout = 10 * time.Second

// replayChunk is how many revisions a replaying watcher reads per read
// transaction; short transactions keep bbolt free to remap for writers.
const replayChunk = 256

var _ store.Store = (*Store)(nil)

// Store is the bbolt-backed store.Store. It is safe for concurrent use. The
// zero value is not usable; call Open.
type Store struct {
	db   *bbolt.DB
	cfg  config
	log  *slog.Logger
	done chan struct{} // closed by Close; ends every watcher goroutine

	life   sync.RWMutex // held shared by every call, exclusively by Close
	closed bool

	wmu sync.Mutex // serialises commit + publish so watchers see revision order

	hubMu    sync.Mutex
	rev      int64 // last committed and published revision
	watchers map[*watcher]struct{}
	wg       sync.WaitGroup // watcher goroutines
}

type config struct {
	history     int64
	watchBuffer int
	lockTimeout time.Duration
	logger      *slog.Logger
}

// Option configures Open.
type Option func(*config)

// WithHistory sets how many most recent revisions the change log keeps for
// Watch replay (the compaction horizon). n must be at least 1. Lowering it on
// an existing database trims the log when the database is opened.
func WithHistory(n int64) Option {
	return func(c *config) { c.history = n }
}

// WithWatchBuffer sets how many live events each watcher may have pending
// before its stream ends with store.ErrCompacted. n must be at least 1.
func WithWatchBuffer(n int) Option {
	return func(c *config) { c.watchBuffer = n }
}

// WithLockTimeout bounds how long Open waits for the database file lock held
// by another process. A ctx deadline that comes sooner wins.
func WithLockTimeout(d time.Duration) Option {
	return func(c *config) { c.lockTimeout = d }
}

// WithLogger sets the logger. Nil (the default) discards logs.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) { c.logger = l }
}

// Open opens or creates the database file at path (mode 0600; the directory
// must exist) and returns the store. The caller owns the Store and must Close
// it. ctx bounds the wait for the file lock.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	cfg := config{
		history:     DefaultHistory,
		watchBuffer: DefaultWatchBuffer,
		lockTimeout: DefaultLockTimeout,
	}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.history < 1 {
		return nil, fmt.Errorf("bolt open: history %d must be at least 1", cfg.history)
	}
	if cfg.watchBuffer < 1 {
		return nil, fmt.Errorf("bolt open: watch buffer %d must be at least 1", cfg.watchBuffer)
	}
	if cfg.logger == nil {
		cfg.logger = slog.New(slog.DiscardHandler)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bolt open: %w", err)
	}
	timeout := cfg.lockTimeout
	if dl, ok := ctx.Deadline(); ok {
		if until := time.Until(dl); until < timeout || timeout <= 0 {
			timeout = max(until, time.Millisecond)
		}
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: timeout})
	if err != nil {
		return nil, fmt.Errorf("bolt open %s: %w", path, err)
	}
	var rev, compacted int64
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket(bucketMeta)
		var err error
		if rev, err = readU64(meta.Get(metaRev)); err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		if compacted, err = trim(tx, rev-cfg.history); err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("bolt open %s: %w", path, err), db.Close())
	}
	cfg.logger.Info("store opened", "path", path, "revision", rev, "compacted", compacted)
	return &Store{
		db:       db,
		cfg:      cfg,
		log:      cfg.logger,
		done:     make(chan struct{}),
		rev:      rev,
		watchers: make(map[*watcher]struct{}),
	}, nil
}

// trim removes change-log entries at revisions <= upTo that are still there
// and records the new compaction point. It returns the compaction point.
func trim(tx *bbolt.Tx, upTo int64) (int64, error) {
	meta := tx.Bucket(bucketMeta)
	compacted, err := readU64(meta.Get(metaCompacted))
	if err != nil {
		return 0, fmt.Errorf("read compacted: %w", err)
	}
	if upTo <= compacted {
		return compacted, nil
	}
	c := tx.Bucket(bucketLog).Cursor()
	limit := u64(upTo)
	for k, _ := c.Seek(u64(compacted + 1)); k != nil && bytes.Compare(k, limit) <= 0; k, _ = c.Next() {
		if err := c.Delete(); err != nil {
			return 0, fmt.Errorf("trim log: %w", err)
		}
	}
	if err := meta.Put(metaCompacted, limit); err != nil {
		return 0, fmt.Errorf("write compacted: %w", err)
	}
	return upTo, nil
}

// enter takes the shared lifecycle lock; the caller must call s.life.RUnlock
// when enter returns nil.
func (s *Store) enter(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return store.ErrClosed
	}
	return nil
}

// Get returns the value at key, or an error wrapping store.ErrNotFound.
func (s *Store) Get(ctx context.Context, key string) (store.KV, error) {
	if err := s.enter(ctx); err != nil {
		return store.KV{}, fmt.Errorf("bolt get %q: %w", key, err)
	}
	defer s.life.RUnlock()
	var kv store.KV
	err := s.db.View(func(tx *bbolt.Tx) error {
		raw := tx.Bucket(bucketKV).Get([]byte(key))
		if raw == nil {
			return store.ErrNotFound
		}
		var err error
		kv, err = decodeKV([]byte(key), raw)
		return err
	})
	if err != nil {
		return store.KV{}, fmt.Errorf("bolt get %q: %w", key, err)
	}
	return kv, nil
}

// List returns every key with the given prefix in byte order, and the
// revision of the snapshot it was read from.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	out, rev, err := s.list(ctx, []string{prefix})
	if err != nil {
		return nil, 0, fmt.Errorf("bolt list %q: %w", prefix, err)
	}
	return out[0], rev, nil
}

// ListPrefixes lists every prefix in one read transaction, so all listings
// reflect the one revision returned.
func (s *Store) ListPrefixes(ctx context.Context, prefixes []string) ([][]store.KV, int64, error) {
	out, rev, err := s.list(ctx, prefixes)
	if err != nil {
		return nil, 0, fmt.Errorf("bolt list %q: %w", prefixes, err)
	}
	return out, rev, nil
}

// list reads the keys under each prefix and the revision in one bbolt read
// transaction (one consistent snapshot of the file).
func (s *Store) list(ctx context.Context, prefixes []string) ([][]store.KV, int64, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, err
	}
	defer s.life.RUnlock()
	out := make([][]store.KV, len(prefixes))
	var rev int64
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if rev, err = readU64(tx.Bucket(bucketMeta).Get(metaRev)); err != nil {
			return err
		}
		c := tx.Bucket(bucketKV).Cursor()
		for i, prefix := range prefixes {
			for k, v := c.Seek([]byte(prefix)); k != nil && hasPrefix(k, prefix); k, v = c.Next() {
				kv, err := decodeKV(k, v)
				if err != nil {
					return err
				}
				out[i] = append(out[i], kv)
			}
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, rev, nil
}

// Put writes value at key if expected matches and returns the new revision.
// A positive expected on a missing key yields an error that wraps both
// store.ErrNotFound and a *store.ConflictError with Current 0.
func (s *Store) Put(ctx context.Context, key string, value []byte, expected int64) (int64, error) {
	rev, err := s.write(ctx, []store.Op{{Key: key, Value: value, Expected: expected}})
	if err != nil {
		return 0, fmt.Errorf("bolt put %q: %w", key, err)
	}
	return rev, nil
}

// Delete removes key if expected matches and returns the new revision. As
// for Put, a positive expected on a missing key yields an error wrapping both
// store.ErrNotFound and a *store.ConflictError with Current 0.
func (s *Store) Delete(ctx context.Context, key string, expected int64) (int64, error) {
	rev, err := s.write(ctx, []store.Op{{Key: key, Delete: true, Expected: expected}})
	if err != nil {
		return 0, fmt.Errorf("bolt delete %q: %w", key, err)
	}
	return rev, nil
}

// Txn applies ops atomically at one new revision. Each key may appear at most
// once. An empty ops writes nothing and returns the current revision.
func (s *Store) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if len(ops) == 0 {
		rev, err := s.Revision(ctx)
		if err != nil {
			return 0, fmt.Errorf("bolt txn: %w", err)
		}
		return rev, nil
	}
	rev, err := s.write(ctx, ops)
	if err != nil {
		return 0, fmt.Errorf("bolt txn: %w", err)
	}
	return rev, nil
}

// Revision returns the revision of the last committed write.
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, fmt.Errorf("bolt revision: %w", err)
	}
	defer s.life.RUnlock()
	s.hubMu.Lock()
	defer s.hubMu.Unlock()
	return s.rev, nil
}

// Compact drops the change-log entries at revisions <= rev, so that Watch from
// an older revision ends with store.ErrCompacted (the storetest.Compacter
// power). rev must not exceed the
// current revision; compacting below the current compaction point is a no-op.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("bolt compact: %w", err)
	}
	defer s.life.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		cur, err := readU64(tx.Bucket(bucketMeta).Get(metaRev))
		if err != nil {
			return err
		}
		if rev > cur {
			return fmt.Errorf("revision %d is past the current revision %d", rev, cur)
		}
		_, err = trim(tx, rev)
		return err
	})
	if err != nil {
		return fmt.Errorf("bolt compact %d: %w", rev, err)
	}
	return nil
}

// Close closes the database and every open watch. Later calls return
// store.ErrClosed.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return fmt.Errorf("bolt close: %w", store.ErrClosed)
	}
	s.closed = true
	s.life.Unlock()

	s.hubMu.Lock()
	for w := range s.watchers {
		close(w.in)
	}
	clear(s.watchers)
	s.hubMu.Unlock()
	close(s.done)
	s.wg.Wait()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt close: %w", err)
	}
	return nil
}

// write commits ops in one transaction, then publishes their events.
func (s *Store) write(ctx context.Context, ops []store.Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	var (
		rev    int64
		events []store.Event
	)
	err := s.db.Update(func(tx *bbolt.Tx) error {
		var err error
		rev, events, err = apply(tx, ops, s.cfg.history)
		return err
	})
	if err != nil {
		return 0, err
	}
	s.publish(rev, events)
	return rev, nil
}

func validate(ops []store.Op) error {
	seen := make(map[string]struct{}, len(ops))
	for _, op := range ops {
		if op.Key == "" {
			return errors.New("empty key")
		}
		if op.Expected < store.AnyRevision {
			return fmt.Errorf("key %q: invalid expected revision %d", op.Key, op.Expected)
		}
		if _, dup := seen[op.Key]; dup {
			return fmt.Errorf("key %q appears twice", op.Key)
		}
		seen[op.Key] = struct{}{}
	}
	return nil
}

// apply checks and applies ops inside tx at the next revision, appends the
// change-log entry, and trims the log to history revisions.
func apply(tx *bbolt.Tx, ops []store.Op, history int64) (int64, []store.Event, error) {
	meta, kv := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
	cur, err := readU64(meta.Get(metaRev))
	if err != nil {
		return 0, nil, err
	}
	rev := cur + 1
	events := make([]store.Event, 0, len(ops))
	var record []byte
	for _, op := range ops {
		key := []byte(op.Key)
		raw := kv.Get(key)
		var old store.KV
		if raw != nil {
			if old, err = decodeKV(key, raw); err != nil {
				return 0, nil, err
			}
		}
		if err := check(op, raw != nil, old.Revision); err != nil {
			return 0, nil, err
		}
		ev := store.Event{Type: store.EventPut, KV: store.KV{Key: op.Key, Revision: rev, CreateRevision: rev}}
		if raw != nil {
			ev.KV.CreateRevision = old.CreateRevision
		}
		if op.Delete {
			ev.Type, ev.KV.Value = store.EventDelete, old.Value
			if err := kv.Delete(key); err != nil {
				return 0, nil, err
			}
		} else {
			ev.KV.Value = append([]byte{}, op.Value...)
			if err := kv.Put(key, encodeKV(rev, ev.KV.CreateRevision, ev.KV.Value)); err != nil {
				return 0, nil, err
			}
		}
		events = append(events, ev)
		record = appendEvent(record, ev)
	}
	if err := tx.Bucket(bucketLog).Put(u64(rev), record); err != nil {
		return 0, nil, err
	}
	if err := meta.Put(metaRev, u64(rev)); err != nil {
		return 0, nil, err
	}
	if _, err := trim(tx, rev-history); err != nil {
		return 0, nil, err
	}
	return rev, events, nil
}

// check applies the expected-revision rules of store.Store to one op.
func check(op store.Op, exists bool, current int64) error {
	conflict := &store.ConflictError{Key: op.Key, Expected: op.Expected, Current: current}
	switch {
	case !exists && op.Delete && op.Expected == store.AnyRevision:
		return store.ErrNotFound
	case !exists && op.Expected > 0:
		return fmt.Errorf("%w: %w", conflict, store.ErrNotFound)
	case !exists && op.Delete:
		return store.ErrNotFound
	case op.Expected == store.AnyRevision:
		return nil
	case !exists && op.Expected == store.MustNotExist:
		return nil
	case exists && op.Expected != current:
		return conflict
	}
	return nil
}
