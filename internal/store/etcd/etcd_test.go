package etcd_test

import (
	"errors"
	"log/slog"
	"testing"

	"nimbus/internal/store"
	"nimbus/internal/store/etcd"
	"nimbus/internal/store/etcd/etcdtest"
	"nimbus/internal/store/storetest"
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
