// Package store is nimbus's versioned key/value store: the single source of
// desired state. Backends: store/bolt (embedded, default) and store/etcd.
// Every backend must pass the suite in store/storetest.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"syscall"
)

// ErrNotFound is returned (wrapped) by Get, and by Put/Delete with an expected
// revision, when the key does not exist.
var ErrNotFound = errors.New("store: key not found")

// ErrCompacted ends a Watch stream whose start revision is older than the
// oldest revision the backend still keeps. The watcher must re-List and watch
// again from the List revision.
var ErrCompacted = errors.New("store: revision compacted")

// ErrClosed is returned by every call on a closed Store.
var ErrClosed = errors.New("store: closed")

// ErrNoSpace is matched (errors.Is) by the *UnavailableError of a write that
// failed because the backend's disk is full or its quota is used up
// (ENOSPC, EDQUOT). Reads keep working; writes succeed again once space is
// freed, without a restart.
var ErrNoSpace = errors.New("store: no space left on device")

// UnavailableError is returned (wrapped) by a call the backend could not
// carry out because its storage failed: a full disk or quota (then it also
// matches ErrNoSpace), a read-only file system, an I/O error, or a database
// file that could not be reopened after one of these. Op names the step
// that failed ("commit", "reserve", "open"); Err is the cause as the OS or
// the backend's engine gave it.
//
// A failed write left nothing half written and, unless the failure came
// after the commit itself was written (a failed fsync), had no effect: the
// backend reports what it finds on disk afterwards to its watchers. No
// acknowledged write is lost.
type UnavailableError struct {
	Op  string
	Err error
}

// Error names the failed step and its cause.
func (e *UnavailableError) Error() string {
	return "store: storage unavailable: " + e.Op + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is reports whether target is ErrNoSpace and the cause is a full disk or
// an exhausted quota.
func (e *UnavailableError) Is(target error) bool {
	return target == ErrNoSpace && NoSpace(e.Err)
}

// NoSpace reports whether err is, or says it is, ENOSPC or EDQUOT. The text
// is checked as well because storage engines sometimes format an OS error
// with %s (bbolt does when it grows its file), which drops the errno.
func NoSpace(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, syscall.ENOSPC.Error()) || strings.Contains(msg, syscall.EDQUOT.Error())
}

// ConflictError is returned when an expected revision does not match. Current
// is the key's revision at the time of the check (0 if the key is absent).
type ConflictError struct {
	Key      string
	Expected int64
	Current  int64
}

// Error describes the conflict with the key and both revisions.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("store: conflict on %q: expected revision %d, current %d", e.Key, e.Expected, e.Current)
}

// Expected-revision sentinels for Put, Delete and Op.
const (
	// AnyRevision skips the revision check (last writer wins).
	AnyRevision int64 = -1
	// MustNotExist makes a Put fail with a *ConflictError if the key exists.
	MustNotExist int64 = 0
)

// KV is one stored value. Revision is the store revision of the key's last
// modification; CreateRevision the revision that created it. Revisions are
// global, strictly increasing across the whole store, and never reused.
type KV struct {
	Key            string
	Value          []byte
	Revision       int64
	CreateRevision int64
}

// EventType says what happened to a key.
type EventType int

const (
	// EventPut means the key was created or updated; Event.KV holds the new value.
	EventPut EventType = iota + 1
	// EventDelete means the key was deleted; Event.KV.Value holds the last value
	// and Event.KV.Revision the revision of the delete.
	EventDelete
)

// Event is one change seen by Watch. Err is set only on the final event of a
// stream that ended abnormally (for example ErrCompacted).
type Event struct {
	Type EventType
	KV   KV
	Err  error
}

// Op is one write inside Txn. Delete false means put Value at Key.
// Expected is the expected revision as for Put/Delete.
type Op struct {
	Key      string
	Value    []byte
	Delete   bool
	Expected int64
}

// Store is a versioned key/value store with watches.
//
// Durability: a call that returns nil has its effect fsynced to stable storage;
// after a crash (kill -9) and restart every acknowledged write is present and
// no partial transaction is visible.
//
// Storage failures: a write the backend cannot make durable (full disk,
// quota, read-only file system, I/O error) fails with a
// *store.UnavailableError, matching ErrNoSpace for a full disk or quota, and
// leaves nothing half written. Reads keep working meanwhile; deletes should
// still succeed on a full disk (the bolt backend keeps a reserve for them);
// writes succeed again once the cause is gone, without a restart.
// storetest.RunDiskFull checks this on a real full file system.
//
// Watch contract: Watch(ctx, prefix, fromRev) delivers, in revision order,
// every change to keys under prefix with revision > fromRev (fromRev 0 means
// "from now"). The channel is closed when ctx is cancelled (the caller must
// cancel ctx to release the watch) or the store is closed. If fromRev is older
// than the backend's compaction horizon, the stream delivers one Event with
// Err = ErrCompacted and closes. A slow reader never blocks writers: the
// backend buffers, and if the buffer overflows the stream ends with
// ErrCompacted so the reader re-Lists.
//
// All methods are safe for concurrent use.
type Store interface {
	// Get returns the value at key, or an error wrapping ErrNotFound.
	Get(ctx context.Context, key string) (KV, error)
	// List returns every key with the given prefix in key order, and the store
	// revision the listing reflects (use it as Watch's fromRev).
	List(ctx context.Context, prefix string) ([]KV, int64, error)
	// ListPrefixes lists several prefixes at one store revision: out[i]
	// holds every key with prefixes[i] in key order, as List would return
	// it, and every listing reflects the same returned revision, so no
	// write lands between them. A key under two prefixes is in both
	// listings. No prefixes give no listings and the current revision.
	ListPrefixes(ctx context.Context, prefixes []string) (out [][]KV, rev int64, err error)
	// Put writes value at key if expected matches (AnyRevision, MustNotExist,
	// or the key's current Revision) and returns the new revision.
	Put(ctx context.Context, key string, value []byte, expected int64) (int64, error)
	// Delete removes key if expected matches (AnyRevision or the key's current
	// Revision). Deleting a missing key with AnyRevision returns ErrNotFound.
	Delete(ctx context.Context, key string, expected int64) (int64, error)
	// Txn applies every op atomically at one new revision, or none of them
	// (returning the first *ConflictError or ErrNotFound).
	Txn(ctx context.Context, ops []Op) (int64, error)
	// Watch streams changes under prefix after fromRev; see the type doc.
	Watch(ctx context.Context, prefix string, fromRev int64) (<-chan Event, error)
	// Revision returns the store's current revision.
	Revision(ctx context.Context) (int64, error)
	// Close releases the store. Open watches are closed.
	Close() error
}
