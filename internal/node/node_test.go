package node_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"nimbus/internal/auth"
	"nimbus/internal/node"
)

type countingComponent struct{ started, stopped *atomic.Int32 }

func (c countingComponent) Run(ctx context.Context) error {
	c.started.Add(1)
	<-ctx.Done()
	c.stopped.Add(1)
	return nil
}

func get(t *testing.T, dir, url, token string) int {
	t.Helper()
	pool, err := auth.CertPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}
	req, _ := http.NewRequest("GET", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func TestStartWritesEndpointAndKeepsIdentity(t *testing.T) {
	for _, tc := range []struct{ name, listen string }{
		{"loopback", "127.0.0.1:0"},
		{"all interfaces", "0.0.0.0:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			var started, stopped atomic.Int32
			comp := func(*node.Node) (node.Component, error) { return countingComponent{&started, &stopped}, nil }
			n, err := node.Start(context.Background(), node.Config{DataDir: dir, Listen: tc.listen, Components: []node.ComponentFunc{comp}})
			if err != nil {
				t.Fatal(err)
			}
			e, err := node.ReadEndpoint(dir)
			if err != nil || e != n.Endpoint || e.Endpoint == "" || e.SubscriptionID == "" || e.TenantID == "" || e.IdentityHeader == "" {
				t.Fatalf("endpoint.json %+v %v", e, err)
			}
			if _, err := os.Stat(e.CAFile); err != nil || e.CAFile != filepath.Join(dir, "ca.pem") {
				t.Fatalf("CA file %q: %v", e.CAFile, err)
			}
			// Authentication stays on whatever the listen address.
			if st := get(t, dir, e.Endpoint+"/subscriptions?api-version=2016-06-01", ""); st != http.StatusUnauthorized {
				t.Fatalf("no token: %d", st)
			}
			tok, _, err := n.Issuer.Mint("", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if st := get(t, dir, e.Endpoint+"/subscriptions?api-version=2016-06-01", tok); st != http.StatusOK {
				t.Fatalf("with token: %d", st)
			}
			if h, err := os.Hostname(); err == nil && tc.listen == "0.0.0.0:0" {
				pool, err := auth.CertPool(dir)
				if err != nil {
					t.Fatal(err)
				}
				loop := net.JoinHostPort("127.0.0.1", strconv.Itoa(n.Addr.(*net.TCPAddr).Port))
				conn, err := tls.Dial("tcp", loop, &tls.Config{RootCAs: pool, ServerName: h})
				if err != nil {
					t.Fatalf("certificate does not cover host name %q when listening on all addresses: %v", h, err)
				}
				conn.Close()
			}
			if err := n.Stop(); err != nil {
				t.Fatal(err)
			}
			if started.Load() != 1 || stopped.Load() != 1 {
				t.Fatalf("component started %d stopped %d", started.Load(), stopped.Load())
			}
			// A restart keeps the identity, the CA and the token key.
			n2, err := node.Start(context.Background(), node.Config{DataDir: dir, Listen: "127.0.0.1:0"})
			if err != nil {
				t.Fatal(err)
			}
			defer n2.Stop()
			if n2.Endpoint.SubscriptionID != e.SubscriptionID || n2.Endpoint.TenantID != e.TenantID {
				t.Fatalf("identity changed: %+v vs %+v", n2.Endpoint, e)
			}
			if st := get(t, dir, n2.Endpoint.Endpoint+"/subscriptions/"+e.SubscriptionID+"?api-version=2016-06-01", tok); st != http.StatusOK {
				t.Fatalf("old token after restart: %d", st)
			}
		})
	}
}

func TestServerCertificateNames(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Start(context.Background(), node.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	pool, err := auth.CertPool(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"localhost", "127.0.0.1"} {
		conn, err := tls.Dial("tcp", n.Addr.String(), &tls.Config{RootCAs: pool, ServerName: name})
		if err != nil {
			t.Fatalf("TLS as %s: %v", name, err)
		}
		conn.Close()
	}
	if _, err := tls.Dial("tcp", n.Addr.String(), &tls.Config{RootCAs: pool, ServerName: "example.com"}); err == nil {
		t.Fatal("certificate valid for example.com")
	}
}
