// Package etcd is nimbus's store backend for several machines: a
// store.Store kept in an etcd cluster (etcd's v3 API through
// go.etcd.io/etcd/client/v3), so that the consensus is etcd's and nimbus
// has none of its own.
//
// Keys: every store key k is the etcd key Prefix+k (Config.Prefix,
// DefaultPrefix unless set). Several nimbus share one etcd cluster by
// using different prefixes; no key outside the prefix is read, written or
// watched.
//
// Revisions: the store revision is etcd's revision, the cluster's one
// global counter. KV.Revision is the key's mod_revision and
// KV.CreateRevision its create_revision; a write returns the revision in
// etcd's response header, List and Revision the header revision of a
// linearizable read. etcd's revision is global, strictly increasing and
// never reused, as the store.Store contract demands, but it also counts
// writes to other prefixes: when nimbus instances share a cluster, a
// store's revisions have gaps. Nothing in the contract promises
// consecutive revisions.
//
// Expected revisions map to etcd Txn compares: a revision r to
// mod_revision == r, MustNotExist to create_revision == 0, and a Delete
// with AnyRevision to create_revision > 0 (so deleting a missing key
// writes nothing and returns store.ErrNotFound). A store Txn is one etcd
// Txn: all compares in If, all writes in Then, and in Else a keys-only Get
// of every key, read atomically with the failed compares, from which the
// first failing op's *store.ConflictError or store.ErrNotFound is worked
// out. etcd bounds the ops of one Txn (its --max-txn-ops, 128 by default):
// nimbus's largest Txns hold one op per scale-set instance plus a few, so
// run etcd with a larger --max-txn-ops for very large scale sets.
//
// Watch: an etcd watch of Prefix+prefix with WithPrefix, WithRev(fromRev+1)
// (etcd's start revision is inclusive, the store's fromRev exclusive) and
// WithPrevKV (a delete event carries the last value and create revision).
// fromRev 0 ("from now") first reads the current revision, so a write that
// returns after Watch returns is never missed. A start revision that etcd
// has compacted ends the stream with store.ErrCompacted, as does a reader
// that falls more than the watch buffer behind (Config.WatchBuffer). The
// watch asks for a leader (clientv3.WithRequireLeader): a member cut off
// from its cluster ends the stream with an error instead of going silent.
// Compaction itself is etcd's: run etcd with --auto-compaction-retention,
// or call Compact, which compacts the whole cluster (every prefix).
//
// Durability: a write is acknowledged only after etcd has committed it
// through raft, that is after a quorum of members has fsynced it to its
// write-ahead log (etcd must not run with --unsafe-no-fsync), and a
// member that restarts replays its log. The client's part is to count a
// write as done only when the call returned nil. A call that fails with a
// timeout, a cancelled ctx or an unavailable cluster has an unknown
// outcome: the write may have been committed. A caller that must know
// re-reads the key: with an expected revision, a retry of a write that did
// land fails with a *store.ConflictError rather than applying twice.
package etcd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"nimbus/internal/store"
)

// DefaultPrefix is the key prefix when Config.Prefix is empty.
const DefaultPrefix = "/nimbus/"

// DefaultDialTimeout bounds connecting to the cluster when
// Config.DialTimeout is zero.
const DefaultDialTimeout = 5 * time.Second

// DefaultWatchBuffer is the number of events a watcher may have pending
// when Config.WatchBuffer is zero.
const DefaultWatchBuffer = 1024

var _ store.Store = (*Store)(nil)

// Config says how to reach the etcd cluster.
type Config struct {
	// Endpoints are the members' client URLs (http://host:port, or
	// https://host:port for TLS). At least one is required.
	Endpoints []string
	// Prefix is prepended to every key (empty: DefaultPrefix). Give each
	// nimbus that shares a cluster its own.
	Prefix string
	// CAFile is the PEM file of the CA that signed the members'
	// certificates (as etcdctl's --cacert); empty uses the system roots.
	CAFile string
	// CertFile and KeyFile are the client certificate and key (as
	// etcdctl's --cert and --key), for a cluster run with
	// --client-cert-auth. Give both or neither.
	CertFile, KeyFile string
	// DialTimeout bounds the first connection in Open (zero:
	// DefaultDialTimeout); a ctx deadline that comes sooner wins.
	DialTimeout time.Duration
	// WatchBuffer is how many events each watcher may have pending before
	// its stream ends with store.ErrCompacted (zero: DefaultWatchBuffer).
	WatchBuffer int
	// Logger receives logs (nil discards). The etcd client's own logging
	// is off; its failures come back as errors.
	Logger *slog.Logger
}

// tls reports whether TLS options were given.
func (c Config) tls() bool { return c.CAFile != "" || c.CertFile != "" || c.KeyFile != "" }

// Store is the etcd-backed store.Store. It is safe for concurrent use. The
// zero value is not usable; call Open.
type Store struct {
	cli    *clientv3.Client
	prefix string
	buffer int
	log    *slog.Logger
	done   chan struct{} // closed by Close; ends every watcher goroutine

	life   sync.RWMutex // held shared by every call, exclusively by Close
	closed bool
	wg     sync.WaitGroup // watcher goroutines
}

// Open connects to the cluster and checks that it answers a linearizable
// read within ctx and the dial timeout. The caller owns the Store and must
// Close it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if len(cfg.Endpoints) == 0 {
		return nil, errors.New("etcd open: no endpoints")
	}
	for _, ep := range cfg.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("etcd open: endpoint %q: want http://host:port or https://host:port", ep)
		}
		if cfg.tls() && u.Scheme != "https" {
			return nil, fmt.Errorf("etcd open: endpoint %q is plaintext but TLS files are given: use https://", ep)
		}
	}
	if (cfg.CertFile == "") != (cfg.KeyFile == "") {
		return nil, errors.New("etcd open: give both the client certificate and its key, or neither")
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	if cfg.DialTimeout <= 0 {
		cfg.DialTimeout = DefaultDialTimeout
	}
	if cfg.WatchBuffer <= 0 {
		cfg.WatchBuffer = DefaultWatchBuffer
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ccfg := clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: cfg.DialTimeout,
		Logger:      zap.NewNop(),
		// Keepalives notice a dead member behind an idle connection, so a
		// watch moves to another member.
		DialKeepAliveTime:    10 * time.Second,
		DialKeepAliveTimeout: 5 * time.Second,
		// The server's --max-request-bytes is the one limit on a Txn's
		// size (the client's own default is 2 MiB).
		MaxCallSendMsgSize: math.MaxInt32,
	}
	if cfg.tls() {
		tc, err := transport.TLSInfo{TrustedCAFile: cfg.CAFile, CertFile: cfg.CertFile, KeyFile: cfg.KeyFile}.ClientConfig()
		if err != nil {
			return nil, fmt.Errorf("etcd open: tls: %w", err)
		}
		ccfg.TLS = tc
	}
	cli, err := clientv3.New(ccfg)
	if err != nil {
		return nil, fmt.Errorf("etcd open %s: %w", strings.Join(cfg.Endpoints, ","), err)
	}
	s := &Store{cli: cli, prefix: cfg.Prefix, buffer: cfg.WatchBuffer, log: log, done: make(chan struct{})}
	pctx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	rev, err := s.revision(pctx)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("etcd open %s: %w", strings.Join(cfg.Endpoints, ","), err), cli.Close())
	}
	log.Info("store opened", "endpoints", strings.Join(cfg.Endpoints, ","), "prefix", cfg.Prefix, "revision", rev)
	return s, nil
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
		return store.KV{}, fmt.Errorf("etcd get %q: %w", key, err)
	}
	defer s.life.RUnlock()
	resp, err := s.cli.Get(ctx, s.prefix+key)
	if err != nil {
		return store.KV{}, fmt.Errorf("etcd get %q: %w", key, err)
	}
	if len(resp.Kvs) == 0 {
		return store.KV{}, fmt.Errorf("etcd get %q: %w", key, store.ErrNotFound)
	}
	return s.kv(resp.Kvs[0].Key, resp.Kvs[0].Value, resp.Kvs[0].ModRevision, resp.Kvs[0].CreateRevision), nil
}

// List returns every key with the given prefix in byte order, and the
// revision the range was read at.
func (s *Store) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, fmt.Errorf("etcd list %q: %w", prefix, err)
	}
	defer s.life.RUnlock()
	resp, err := s.cli.Get(ctx, s.prefix+prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %q: %w", prefix, err)
	}
	return s.kvs(resp), resp.Header.Revision, nil
}

// ListPrefixes reads every prefix in one read-only etcd Txn, so all
// listings reflect the one revision returned.
func (s *Store) ListPrefixes(ctx context.Context, prefixes []string) ([][]store.KV, int64, error) {
	if err := s.enter(ctx); err != nil {
		return nil, 0, fmt.Errorf("etcd list %q: %w", prefixes, err)
	}
	defer s.life.RUnlock()
	if len(prefixes) == 0 {
		rev, err := s.revision(ctx)
		if err != nil {
			return nil, 0, fmt.Errorf("etcd list: %w", err)
		}
		return [][]store.KV{}, rev, nil
	}
	gets := make([]clientv3.Op, len(prefixes))
	for i, p := range prefixes {
		gets[i] = clientv3.OpGet(s.prefix+p, clientv3.WithPrefix())
	}
	resp, err := s.cli.Txn(ctx).Then(gets...).Commit()
	if err != nil {
		return nil, 0, fmt.Errorf("etcd list %q: %w", prefixes, err)
	}
	out := make([][]store.KV, len(prefixes))
	for i, r := range resp.Responses {
		out[i] = s.kvs((*clientv3.GetResponse)(r.GetResponseRange()))
	}
	return out, resp.Header.Revision, nil
}

// Put writes value at key if expected matches and returns the new revision.
// A positive expected on a missing key yields an error that wraps both
// store.ErrNotFound and a *store.ConflictError with Current 0.
func (s *Store) Put(ctx context.Context, key string, value []byte, expected int64) (int64, error) {
	rev, err := s.write(ctx, []store.Op{{Key: key, Value: value, Expected: expected}})
	if err != nil {
		return 0, fmt.Errorf("etcd put %q: %w", key, err)
	}
	return rev, nil
}

// Delete removes key if expected matches and returns the new revision. As
// for Put, a positive expected on a missing key yields an error wrapping
// both store.ErrNotFound and a *store.ConflictError with Current 0.
func (s *Store) Delete(ctx context.Context, key string, expected int64) (int64, error) {
	rev, err := s.write(ctx, []store.Op{{Key: key, Delete: true, Expected: expected}})
	if err != nil {
		return 0, fmt.Errorf("etcd delete %q: %w", key, err)
	}
	return rev, nil
}

// Txn applies ops atomically at one new revision (one etcd Txn). Each key
// may appear at most once. An empty ops writes nothing and returns the
// current revision.
func (s *Store) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	if len(ops) == 0 {
		rev, err := s.Revision(ctx)
		if err != nil {
			return 0, fmt.Errorf("etcd txn: %w", err)
		}
		return rev, nil
	}
	rev, err := s.write(ctx, ops)
	if err != nil {
		return 0, fmt.Errorf("etcd txn: %w", err)
	}
	return rev, nil
}

// Revision returns the cluster's current revision (a linearizable read).
func (s *Store) Revision(ctx context.Context) (int64, error) {
	if err := s.enter(ctx); err != nil {
		return 0, fmt.Errorf("etcd revision: %w", err)
	}
	defer s.life.RUnlock()
	rev, err := s.revision(ctx)
	if err != nil {
		return 0, fmt.Errorf("etcd revision: %w", err)
	}
	return rev, nil
}

// revision reads the header revision of a count-only linearizable Get.
func (s *Store) revision(ctx context.Context) (int64, error) {
	resp, err := s.cli.Get(ctx, s.prefix, clientv3.WithCountOnly())
	if err != nil {
		return 0, err
	}
	return resp.Header.Revision, nil
}

// Compact discards the cluster's history at revisions <= rev, so that a
// Watch from an older revision ends with store.ErrCompacted (the
// storetest.Compacter power). etcd's compaction is cluster-wide: it
// affects every prefix. It returns once the compaction is applied;
// compacting at or below the current compaction point is a no-op, and rev
// must not exceed the current revision.
//
// etcd's compact(r) keeps the events of revision r itself (a watch may
// start at r), while the store's Compact(rev) drops the events of rev, so
// etcd is compacted at rev+1. When rev is the current revision, rev+1
// does not exist yet and etcd is compacted at rev: the events of that one
// last revision stay watchable.
func (s *Store) Compact(ctx context.Context, rev int64) error {
	if err := s.enter(ctx); err != nil {
		return fmt.Errorf("etcd compact: %w", err)
	}
	defer s.life.RUnlock()
	cur, err := s.revision(ctx)
	if err != nil {
		return fmt.Errorf("etcd compact %d: %w", rev, err)
	}
	if rev > cur {
		return fmt.Errorf("etcd compact %d: past the current revision %d", rev, cur)
	}
	if _, err := s.cli.Compact(ctx, min(rev+1, cur), clientv3.WithCompactPhysical()); err != nil {
		if errors.Is(err, rpctypes.ErrCompacted) {
			return nil
		}
		return fmt.Errorf("etcd compact %d: %w", rev, err)
	}
	return nil
}

// Close closes every open watch and the client connection. Later calls
// return store.ErrClosed. The data stays in etcd.
func (s *Store) Close() error {
	s.life.Lock()
	if s.closed {
		s.life.Unlock()
		return fmt.Errorf("etcd close: %w", store.ErrClosed)
	}
	s.closed = true
	s.life.Unlock()
	close(s.done)
	s.wg.Wait()
	if err := s.cli.Close(); err != nil && !errors.Is(err, context.Canceled) {
		return fmt.Errorf("etcd close: %w", err)
	}
	return nil
}

// write applies ops in one etcd Txn: compares for the expected revisions
// in If, the writes in Then, and a keys-only Get of every key in Else to
// say which op failed.
func (s *Store) write(ctx context.Context, ops []store.Op) (int64, error) {
	if err := validate(ops); err != nil {
		return 0, err
	}
	if err := s.enter(ctx); err != nil {
		return 0, err
	}
	defer s.life.RUnlock()
	var cmps []clientv3.Cmp
	then := make([]clientv3.Op, len(ops))
	diag := make([]clientv3.Op, len(ops))
	for i, op := range ops {
		k := s.prefix + op.Key
		if c, ok := compare(k, op); ok {
			cmps = append(cmps, c)
		}
		if op.Delete {
			then[i] = clientv3.OpDelete(k)
		} else {
			then[i] = clientv3.OpPut(k, string(op.Value))
		}
		diag[i] = clientv3.OpGet(k, clientv3.WithKeysOnly())
	}
	resp, err := s.cli.Txn(ctx).If(cmps...).Then(then...).Else(diag...).Commit()
	switch {
	case errors.Is(err, rpctypes.ErrTooManyOps):
		return 0, fmt.Errorf("%d ops: %w (raise etcd's --max-txn-ops)", len(ops), err)
	case errors.Is(err, rpctypes.ErrRequestTooLarge):
		return 0, fmt.Errorf("%d ops: %w (raise etcd's --max-request-bytes)", len(ops), err)
	case err != nil:
		return 0, err
	}
	if resp.Succeeded {
		return resp.Header.Revision, nil
	}
	for i, op := range ops {
		kvs := resp.Responses[i].GetResponseRange().GetKvs()
		var current int64
		if len(kvs) > 0 {
			current = kvs[0].ModRevision
		}
		if err := check(op, len(kvs) > 0, current); err != nil {
			return 0, err
		}
	}
	// The compares and the Gets ran at one revision, so some op must fail
	// its check; reaching here is a bug in compare or check.
	return 0, fmt.Errorf("txn compare failed at revision %d but every op checks", resp.Header.Revision)
}

// compare returns the etcd compare that holds exactly when op's expected
// revision matches, and false when op needs none (a Put with AnyRevision).
func compare(key string, op store.Op) (clientv3.Cmp, bool) {
	switch {
	case op.Expected == store.AnyRevision && op.Delete:
		return clientv3.Compare(clientv3.CreateRevision(key), ">", 0), true
	case op.Expected == store.AnyRevision:
		return clientv3.Cmp{}, false
	case op.Expected == store.MustNotExist && op.Delete:
		// Never holds: deleting "a key that must not exist" fails either
		// way; check says whether with ErrNotFound or a conflict.
		return clientv3.Compare(clientv3.CreateRevision(key), "<", 0), true
	case op.Expected == store.MustNotExist:
		return clientv3.Compare(clientv3.CreateRevision(key), "=", 0), true
	default:
		return clientv3.Compare(clientv3.ModRevision(key), "=", op.Expected), true
	}
}

// check applies the expected-revision rules of store.Store to one op, given
// whether its key exists and its current revision.
func check(op store.Op, exists bool, current int64) error {
	conflict := &store.ConflictError{Key: op.Key, Expected: op.Expected, Current: current}
	switch {
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

// kv turns an etcd key-value into a store.KV, stripping the prefix. etcd
// decodes every response into fresh slices, so Value is the caller's.
func (s *Store) kv(key, value []byte, rev, create int64) store.KV {
	return store.KV{Key: strings.TrimPrefix(string(key), s.prefix), Value: value, Revision: rev, CreateRevision: create}
}

func (s *Store) kvs(resp *clientv3.GetResponse) []store.KV {
	if len(resp.Kvs) == 0 {
		return nil
	}
	out := make([]store.KV, len(resp.Kvs))
	for i, kv := range resp.Kvs {
		out[i] = s.kv(kv.Key, kv.Value, kv.ModRevision, kv.CreateRevision)
	}
	return out
}
