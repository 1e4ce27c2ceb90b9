package etcd_test

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"nimbus/internal/store"
	"nimbus/internal/store/etcd"
	"nimbus/internal/store/etcd/etcdtest"
	"nimbus/internal/store/storetest"

	clientv3 "go.etcd.io/etcd/client/v3"
)

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// open opens a store on srv with cfg's other fields, closed with the test.
func open(t testing.TB, srv *etcdtest.Server, cfg etcd.Config) *etcd.Store {
	t.Helper()
	cfg.Endpoints = []string{srv.Endpoint}
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	s, err := etcd.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("Open(%s): %v", srv.Endpoint, err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, store.ErrClosed) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

// TestConformance runs the suite against a real etcd: a new member for
// every case, so that each store is empty and the cluster-wide revision
// and compaction belong to that case alone.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, etcdtest.Start(t), etcd.Config{})
	})
}

func put(t testing.TB, s store.Store, key, value string) int64 {
	t.Helper()
	rev, err := s.Put(t.Context(), key, []byte(value), store.AnyRevision)
	if err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
	return rev
}

// recv returns the next event within 20 s or fails.
func recv(t testing.TB, ch <-chan store.Event) store.Event {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Fatalf("watch closed; want an event")
		}
		return ev
	case <-time.After(20 * time.Second):
		t.Fatalf("no watch event within 20s")
	}
	return store.Event{}
}

// TestPrefixesShareOneCluster: two stores with different prefixes on one
// cluster see only their own keys and events, while their revisions are
// the cluster's (each sees the other's writes as gaps).
func TestPrefixesShareOneCluster(t *testing.T) {
	srv := etcdtest.Start(t)
	a := open(t, srv, etcd.Config{Prefix: "/nimbus-a/"})
	b := open(t, srv, etcd.Config{Prefix: "/nimbus-b/"})
	ctx := t.Context()
	wb, err := b.Watch(ctx, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ra := put(t, a, "k", "from a")
	if _, err := b.Get(ctx, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("b.Get(k) after a's Put = %v; want ErrNotFound", err)
	}
	if kvs, rev, err := b.List(ctx, ""); err != nil || len(kvs) != 0 || rev != ra {
		t.Errorf("b.List(\"\") = %v, %d, %v; want nothing at revision %d", kvs, rev, err, ra)
	}
	rb := put(t, b, "k", "from b")
	if rb != ra+1 {
		t.Errorf("b's Put revision %d; want the cluster's next, %d", rb, ra+1)
	}
	// b's watch of everything sees its own write, not a's.
	if ev := recv(t, wb); ev.KV.Key != "k" || string(ev.KV.Value) != "from b" || ev.KV.Revision != rb {
		t.Errorf("b's watch got %+v; want its own put of k at %d", ev, rb)
	}
	kv, err := a.Get(ctx, "k")
	if err != nil || string(kv.Value) != "from a" || kv.Revision != ra {
		t.Errorf("a.Get(k) = %+v, %v", kv, err)
	}
	// The raw keys carry the prefixes.
	cfg, err := srv.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(ctx, "/", clientv3.WithPrefix(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var raw []string
	for _, kv := range resp.Kvs {
		raw = append(raw, string(kv.Key))
	}
	if want := []string{"/nimbus-a/k", "/nimbus-b/k"}; !slices.Equal(raw, want) {
		t.Errorf("etcd keys %q; want %q", raw, want)
	}
	// Closing one store leaves the other working.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	put(t, b, "after", "v")
}

// TestAcknowledgedWritesSurviveKill: every write acknowledged before etcd
// is killed with SIGKILL is there after it restarts on its data directory,
// at the same revisions; a store open across the restart reconnects by
// itself, and a watch open across it resumes without a gap.
func TestAcknowledgedWritesSurviveKill(t *testing.T) {
	srv := etcdtest.Start(t)
	s := open(t, srv, etcd.Config{})
	ctx := t.Context()
	w, err := s.Watch(ctx, "k/", 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 50
	revs := make(map[string]int64, n)
	for i := range n {
		k := fmt.Sprintf("k/%03d", i)
		revs[k] = put(t, s, k, k)
	}
	srv.Kill()
	srv.Restart()

	check := func(t *testing.T, s store.Store) {
		kvs, _, err := s.List(ctx, "k/")
		if err != nil {
			t.Fatalf("List after restart: %v", err)
		}
		if len(kvs) != n {
			t.Fatalf("List after restart: %d keys; want %d", len(kvs), n)
		}
		for _, kv := range kvs {
			if string(kv.Value) != kv.Key || kv.Revision != revs[kv.Key] {
				t.Errorf("after restart %s = %q at %d; want %q at %d", kv.Key, kv.Value, kv.Revision, kv.Key, revs[kv.Key])
			}
		}
	}
	t.Run("new store", func(t *testing.T) { check(t, open(t, srv, etcd.Config{})) })
	t.Run("store open across the restart", func(t *testing.T) { check(t, s) })
	t.Run("watch open across the restart", func(t *testing.T) {
		last := put(t, s, "k/last", "last")
		for i := range n {
			k := fmt.Sprintf("k/%03d", i)
			if ev := recv(t, w); ev.Err != nil || ev.KV.Key != k || ev.KV.Revision != revs[k] {
				t.Fatalf("watch event %d = %+v; want %s at %d", i, ev, k, revs[k])
			}
		}
		if ev := recv(t, w); ev.Err != nil || ev.KV.Key != "k/last" || ev.KV.Revision != last {
			t.Fatalf("watch event after the restart = %+v; want k/last at %d", ev, last)
		}
	})
}

// TestTLS: against a member that demands client certificates, the CA,
// certificate and key files connect; no client certificate, or a
// plaintext endpoint, does not.
func TestTLS(t *testing.T) {
	srv := etcdtest.Start(t, etcdtest.WithTLS())
	s := open(t, srv, etcd.Config{CAFile: srv.CAFile, CertFile: srv.CertFile, KeyFile: srv.KeyFile})
	r := put(t, s, "tls", "v")
	if kv, err := s.Get(t.Context(), "tls"); err != nil || kv.Revision != r {
		t.Fatalf("Get over TLS = %+v, %v", kv, err)
	}
	plain := "http" + strings.TrimPrefix(srv.Endpoint, "https")
	tests := []struct {
		name string
		cfg  etcd.Config
	}{
		{"no client certificate", etcd.Config{Endpoints: []string{srv.Endpoint}, CAFile: srv.CAFile}},
		{"untrusted server", etcd.Config{Endpoints: []string{srv.Endpoint}, CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
		{"certificate without key", etcd.Config{Endpoints: []string{srv.Endpoint}, CAFile: srv.CAFile, CertFile: srv.CertFile}},
		{"TLS files with a plaintext endpoint", etcd.Config{Endpoints: []string{plain}, CAFile: srv.CAFile, CertFile: srv.CertFile, KeyFile: srv.KeyFile}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.cfg.DialTimeout = 2 * time.Second
			if s, err := etcd.Open(t.Context(), tc.cfg); err == nil {
				s.Close()
				t.Fatalf("Open succeeded; want an error")
			}
		})
	}
}

// TestOpenFails: Open reports a cluster it cannot reach within the dial
// timeout, and endpoints it cannot use, without hanging.
func TestOpenFails(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	tests := []struct {
		name      string
		endpoints []string
	}{
		{"no endpoints", nil},
		{"nothing listening", []string{closed}},
		{"no scheme", []string{strings.TrimPrefix(closed, "http://")}},
		{"unknown scheme", []string{"unix:///run/etcd.sock"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			s, err := etcd.Open(t.Context(), etcd.Config{Endpoints: tc.endpoints, DialTimeout: 500 * time.Millisecond})
			if err == nil {
				s.Close()
				t.Fatalf("Open(%q) succeeded", tc.endpoints)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("Open took %v; want about the 500ms dial timeout", d)
			}
		})
	}
}

// TestTxnOverEtcdLimit: a Txn with more ops than etcd's --max-txn-ops (128
// by default) fails whole, applies nothing, and says which flag to raise.
func TestTxnOverEtcdLimit(t *testing.T) {
	s := open(t, etcdtest.Start(t), etcd.Config{})
	before := put(t, s, "k", "v")
	ops := make([]store.Op, 129)
	for i := range ops {
		ops[i] = store.Op{Key: fmt.Sprintf("big/%03d", i), Value: []byte("v"), Expected: store.AnyRevision}
	}
	_, err := s.Txn(t.Context(), ops)
	if err == nil || !strings.Contains(err.Error(), "--max-txn-ops") {
		t.Fatalf("Txn of %d ops: %v; want an error naming --max-txn-ops", len(ops), err)
	}
	if rev, err := s.Revision(t.Context()); err != nil || rev != before {
		t.Errorf("Revision after the failed Txn = %d, %v; want %d", rev, err, before)
	}
}
