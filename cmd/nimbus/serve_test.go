package main

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"nimbus/internal/store/etcd/etcdtest"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestServeStoreFlagsRejected: store flag mistakes fail before anything
// starts, saying which flag is wrong.
func TestServeStoreFlagsRejected(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown store", []string{"--store", "consul"}, `--store "consul": want bolt or etcd`},
		{"etcd without endpoints", []string{"--store", "etcd"}, "--store etcd needs --etcd-endpoints"},
		{"etcd flag with bolt", []string{"--etcd-endpoints", "http://127.0.0.1:2379"}, "--etcd-endpoints needs --store etcd"},
		{"etcd TLS flag with bolt", []string{"--store", "bolt", "--etcd-cacert", "ca.pem"}, "--etcd-cacert needs --store etcd"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := newServeCmd()
			cmd.SetArgs(append([]string{"--data-dir", t.TempDir()}, tc.args...))
			cmd.SetOut(&bytes.Buffer{})
			cmd.SetErr(&bytes.Buffer{})
			err := cmd.ExecuteContext(t.Context())
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("serve %q: %v; want an error containing %q", tc.args, err, tc.want)
			}
		})
	}
}

// TestServeOnEtcd runs `nimbus serve --store etcd` in process against a
// real etcd: the banner names the store, the default subscription is
// written to etcd under --etcd-prefix, and cancelling stops serve cleanly.
func TestServeOnEtcd(t *testing.T) {
	const prefix = "/serve-test/"
	srv := etcdtest.Start(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cmd := newServeCmd()
	cmd.SetArgs([]string{"--data-dir", t.TempDir(), "--listen", "127.0.0.1:0", "--metrics-listen", "off",
		"--driver", "process", "--dataplane", "proxy", "--provider-pool", "127.101.0.0/16",
		"--store", "etcd", "--etcd-endpoints", srv.Endpoint, "--etcd-prefix", prefix})
	var out syncBuffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()

	want := "store: etcd " + srv.Endpoint + " (prefix " + prefix + ")"
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("serve ended early: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q in serve's banner within 30s:\n%s", want, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cfg, err := srv.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), prefix, clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count == 0 {
		t.Errorf("etcd keys under %s: %d, %v; want the subscription at least", prefix, resp.Count, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve after cancel: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("serve did not stop within 30s of cancel")
	}
}
