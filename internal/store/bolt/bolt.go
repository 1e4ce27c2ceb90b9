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
//
// Storage failures: a commit that fails (full disk, quota, read-only file
// system, I/O error) returns a *store.UnavailableError (matching
// store.ErrNoSpace for ENOSPC and EDQUOT) and leaves the database as the last
// successful commit left it: bbolt writes a commit's pages to free space and
// its meta page last, so a failed commit is invisible. The store then
// reopens its bbolt handle, so no in-memory state of the failed commit
// survives, and reads keep working throughout. If the meta page did reach
// the file (only a failed fsync can do that), the reopened store sees the
// write and reports it to watchers like any other.
//
// Reserve: so that deletes work on a full disk, the store keeps a reserve
// file of WithReserve bytes (DefaultReserve) beside the database,
// "<path>.reserve". When a write that deletes a key, or creates none, fails
// for lack of space, the store removes the reserve and tries once more in
// the space it freed. A write that creates keys and deletes none first
// re-creates a missing reserve, and fails with store.ErrNoSpace, writing
// nothing, while it cannot: creating things needs the reserve's worth of
// free disk, so writes resume by themselves once that much is freed.
package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
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

// DefaultReserve is the size in bytes of the reserve file kept beside the
// database when WithReserve is not given (see the package doc).
const DefaultReserve = 4 << 20

// ReserveSuffix is appended to the database path to name the reserve file.
const ReserveSuffix = ".reserve"

// replayChunk is how many revisions a replaying watcher reads per read
// transaction; short transactions keep bbolt free to remap for writers.
const replayChunk = 256

var _ store.Store = (*Store)(nil)

// Store is the bbolt-backed store.Store. It is safe for concurrent use. The
// zero value is not usable; call Open.
type Store struct {
	path string
	cfg  config
	log  *slog.Logger
	done chan struct{} // closed by Close; ends every watcher goroutine

	life    sync.RWMutex // held shared by every call, exclusively by Close and reopen
	closed  bool
	db      *bbolt.DB // nil while the file cannot be reopened; openErr says why
	openErr error

	wmu         sync.Mutex // serialises commit + publish so watchers see revision order
	reserveHeld bool       // the reserve file is in place (under wmu)

	hubMu    sync.Mutex
	rev      int64 // last committed and published revision
	watchers map[*watcher]struct{}
	wg       sync.WaitGroup // watcher goroutines
}

type config struct {
	history     int64
	watchBuffer int
	lockTimeout time.Duration
	reserve     int64
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

// WithReserve sets the size in bytes of the reserve file that lets deletes
// proceed on a full disk (see the package doc); 0 keeps no reserve.
func WithReserve(n int64) Option {
	return func(c *config) { c.reserve = n }
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
		reserve:     DefaultReserve,
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
	if cfg.reserve < 0 {
		return nil, fmt.Errorf("bolt open: reserve %d must not be negative", cfg.reserve)
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
	rev, compacted, err := prepare(db, cfg.history)
	if err != nil {
		err = fmt.Errorf("bolt open %s: %w", path, err)
		if store.NoSpace(err) {
			err = &store.UnavailableError{Op: "open", Err: err}
		}
		return nil, errors.Join(err, db.Close())
	}
	cfg.logger.Info("store opened", "path", path, "revision", rev, "compacted", compacted)
	s := &Store{
		path:     path,
		db:       db,
		cfg:      cfg,
		log:      cfg.logger,
		done:     make(chan struct{}),
		rev:      rev,
		watchers: make(map[*watcher]struct{}),
	}
	if cfg.reserve > 0 {
		if err := s.makeReserve(); err != nil {
			s.log.Warn("store reserve not made: creating keys needs free disk first", "path", s.reservePath(), "err", err)
		}
	}
	return s, nil
}

// prepare creates the buckets and trims the change log to history
// revisions if either is needed, and returns the revision and compaction
// point. A database that needs neither is not written to, so a store opens
// on a full disk.
func prepare(db *bbolt.DB, history int64) (rev, compacted int64, err error) {
	ready := false
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketKV) == nil || tx.Bucket(bucketLog) == nil {
			return nil
		}
		if rev, err = readU64(meta.Get(metaRev)); err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		if compacted, err = readU64(meta.Get(metaCompacted)); err != nil {
			return fmt.Errorf("read compacted: %w", err)
		}
		ready = rev-history <= compacted
		return nil
	})
	if err != nil || ready {
		return rev, compacted, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketKV, bucketLog} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		var err error
		if rev, err = readU64(tx.Bucket(bucketMeta).Get(metaRev)); err != nil {
			return fmt.Errorf("read revision: %w", err)
		}
		compacted, err = trim(tx, rev-history)
		return err
	})
	return rev, compacted, err
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
// when enter returns nil. If the database could not be reopened after a
// storage failure, enter tries once more first.
func (s *Store) enter(ctx context.Context) error {
	for retried := false; ; retried = true {
		if err := ctx.Err(); err != nil {
			return err
		}
		s.life.RLock()
		if s.closed {
			s.life.RUnlock()
			return store.ErrClosed
		}
		if s.db != nil {
			return nil
		}
		err := s.openErr
		s.life.RUnlock()
		if retried {
			return &store.UnavailableError{Op: "open", Err: err}
		}
		s.reopen()
	}
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
	s.wmu.Lock()
	err := s.update(func(tx *bbolt.Tx) error {
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
	s.wmu.Unlock()
	s.life.RUnlock()
	if commitFailed(err) {
		s.reopen()
	}
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
	if s.db == nil {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("bolt close: %w", err)
	}
	return nil
}

// errNeedReserve aborts, before anything is written, a transaction that
// creates keys while the reserve is missing.
var errNeedReserve = errors.New("reserve missing")

// write commits ops in one transaction, then publishes their events. A
// commit that fails for lack of space is tried once more after the reserve
// is released, if the write may use it (see the package doc).
func (s *Store) write(ctx context.Context, ops []store.Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	for released := false; ; released = true {
		rev, grows, err := s.tryWrite(ctx, ops)
		if !commitFailed(err) {
			return rev, err
		}
		s.reopen()
		if released || grows || !errors.Is(err, store.ErrNoSpace) || !s.releaseReserve() {
			return 0, err
		}
	}
}

// tryWrite makes one attempt at committing ops. grows reports whether ops
// create keys and delete none.
func (s *Store) tryWrite(ctx context.Context, ops []store.Op) (rev int64, grows bool, err error) {
	if err := s.enter(ctx); err != nil {
		return 0, false, err
	}
	defer s.life.RUnlock()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	for {
		var events []store.Event
		err = s.update(func(tx *bbolt.Tx) error {
			var err error
			if rev, events, grows, err = apply(tx, ops, s.cfg.history); err != nil {
				return err
			}
			if grows && s.cfg.reserve > 0 && !s.reserveHeld {
				return errNeedReserve
			}
			return nil
		})
		if errors.Is(err, errNeedReserve) {
			if err := s.makeReserve(); err != nil {
				return 0, grows, &store.UnavailableError{Op: "reserve", Err: err}
			}
			continue
		}
		if err != nil {
			return 0, grows, err
		}
		s.publish(rev, events)
		return rev, grows, nil
	}
}

// update runs fn in a read-write transaction. An error of the commit
// itself, after fn succeeded, is a storage failure: it is returned as a
// *store.UnavailableError with Op "commit".
func (s *Store) update(fn func(tx *bbolt.Tx) error) error {
	fnDone := false
	err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		fnDone = true
		return nil
	})
	if err != nil && fnDone {
		return &store.UnavailableError{Op: "commit", Err: err}
	}
	return err
}

// commitFailed reports whether err is a failed commit (see update).
func commitFailed(err error) bool {
	var ue *store.UnavailableError
	return errors.As(err, &ue) && ue.Op == "commit"
}

// reopen closes and reopens the bbolt handle after a failed commit, so that
// nothing of the failed transaction stays in memory, and reports to
// watchers any revision that reached the file anyway. If the file cannot be
// opened, later calls try again (see enter) and fail with a
// *store.UnavailableError until it can.
func (s *Store) reopen() {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return
	}
	if s.db != nil {
		if err := s.db.Close(); err != nil {
			s.log.Warn("store close before reopen failed", "path", s.path, "err", err)
		}
		s.db = nil
	}
	db, err := bbolt.Open(s.path, 0o600, &bbolt.Options{Timeout: s.cfg.lockTimeout})
	if err != nil {
		s.openErr = err
		s.log.Error("store reopen failed", "path", s.path, "err", err)
		return
	}
	s.db, s.openErr = db, nil
	if err := s.catchUp(); err != nil {
		s.log.Error("store reopened: reading the revisions past the last acknowledged one failed", "path", s.path, "err", err)
	}
}

// catchUp publishes the revisions on disk past the last published one: a
// commit whose fsync failed after its meta page was written. Called with
// s.life held exclusively, so no writer runs.
func (s *Store) catchUp() error {
	var (
		rev    int64
		events []store.Event
	)
	err := s.db.View(func(tx *bbolt.Tx) error {
		var err error
		if rev, err = readU64(tx.Bucket(bucketMeta).Get(metaRev)); err != nil || rev <= s.rev {
			return err
		}
		c := tx.Bucket(bucketLog).Cursor()
		for k, v := c.Seek(u64(s.rev + 1)); k != nil; k, v = c.Next() {
			r, err := readU64(k)
			if err != nil {
				return err
			}
			if events, err = decodeEvents(r, v, "", events); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil || rev <= s.rev {
		return err
	}
	s.log.Warn("store reopened: a failed commit reached the disk", "path", s.path, "revision", rev)
	s.publish(rev, events)
	return nil
}

// reservePath is the reserve file's path.
func (s *Store) reservePath() string { return s.path + ReserveSuffix }

// makeReserve writes the reserve file in full and syncs it, or removes what
// it wrote. The caller holds s.wmu (or owns s alone, in Open).
func (s *Store) makeReserve() error {
	p := s.reservePath()
	if fi, err := os.Stat(p); err == nil && fi.Size() >= s.cfg.reserve {
		s.reserveHeld = true
		return nil
	}
	err := writeZeros(p, s.cfg.reserve)
	if err != nil {
		return errors.Join(fmt.Errorf("make reserve %s: %w", p, err), removeIfExists(p))
	}
	if s.reserveHeld = true; s.rev > 0 {
		s.log.Info("store reserve restored", "path", p, "bytes", s.cfg.reserve)
	}
	return nil
}

// releaseReserve removes the reserve file so that a delete can use its
// space; false if there was none to remove.
func (s *Store) releaseReserve() bool {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if !s.reserveHeld {
		return false
	}
	s.reserveHeld = false
	if err := removeIfExists(s.reservePath()); err != nil {
		s.log.Error("store reserve not released", "path", s.reservePath(), "err", err)
		return false
	}
	s.log.Warn("store disk full: reserve released for a delete; creating keys needs free disk again",
		"path", s.reservePath(), "bytes", s.cfg.reserve)
	return true
}

// writeZeros creates (or truncates) path and writes n zero bytes to it,
// synced, so that the blocks are really allocated.
func writeZeros(path string, n int64) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for left := n; left > 0 && err == nil; left -= int64(len(buf)) {
		_, err = f.Write(buf[:min(left, int64(len(buf)))])
	}
	if err == nil {
		err = f.Sync()
	}
	return errors.Join(err, f.Close())
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
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
// change-log entry, and trims the log to history revisions. grows reports
// whether ops create keys and delete none.
func apply(tx *bbolt.Tx, ops []store.Op, history int64) (_ int64, _ []store.Event, grows bool, _ error) {
	meta, kv := tx.Bucket(bucketMeta), tx.Bucket(bucketKV)
	cur, err := readU64(meta.Get(metaRev))
	if err != nil {
		return 0, nil, false, err
	}
	var created, deleted bool
	rev := cur + 1
	events := make([]store.Event, 0, len(ops))
	var record []byte
	for _, op := range ops {
		key := []byte(op.Key)
		raw := kv.Get(key)
		var old store.KV
		if raw != nil {
			if old, err = decodeKV(key, raw); err != nil {
				return 0, nil, false, err
			}
		}
		if err := check(op, raw != nil, old.Revision); err != nil {
			return 0, nil, false, err
		}
		ev := store.Event{Type: store.EventPut, KV: store.KV{Key: op.Key, Revision: rev, CreateRevision: rev}}
		if raw != nil {
			ev.KV.CreateRevision = old.CreateRevision
		}
		created = created || raw == nil
		deleted = deleted || op.Delete
		if op.Delete {
			ev.Type, ev.KV.Value = store.EventDelete, old.Value
			if err := kv.Delete(key); err != nil {
				return 0, nil, false, err
			}
		} else {
			ev.KV.Value = append([]byte{}, op.Value...)
			if err := kv.Put(key, encodeKV(rev, ev.KV.CreateRevision, ev.KV.Value)); err != nil {
				return 0, nil, false, err
			}
		}
		events = append(events, ev)
		record = appendEvent(record, ev)
	}
	if err := tx.Bucket(bucketLog).Put(u64(rev), record); err != nil {
		return 0, nil, false, err
	}
	if err := meta.Put(metaRev, u64(rev)); err != nil {
		return 0, nil, false, err
	}
	if _, err := trim(tx, rev-history); err != nil {
		return 0, nil, false, err
	}
	return rev, events, created && !deleted, nil
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
