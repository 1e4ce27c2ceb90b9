package node_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
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
			if tc.listen == "0.0.0.0:0" {
				// docs/operations.md (TLS): listening on all addresses, the
				// certificate names only the loopback names.
				leaf := serverCert(t, n.Addr.String())
				if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 2 {
					t.Fatalf("certificate for 0.0.0.0 names %v %v, want localhost, 127.0.0.1, ::1 only", leaf.DNSNames, leaf.IPAddresses)
				}
				if e.Endpoint != "https://127.0.0.1:"+strconv.Itoa(n.Addr.(*net.TCPAddr).Port) {
					t.Fatalf("endpoint %s", e.Endpoint)
				}
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

// serverCert returns the certificate the server at addr presents.
func serverCert(t *testing.T, addr string) *x509.Certificate {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0]
}

// TestServerCertificateReissuedForNewNames: a certificate issued for a
// listen host names it; started again for loopback only, the node reissues
// it without that name (an old certificate listing more names is replaced).
func TestServerCertificateReissuedForNewNames(t *testing.T) {
	dir := t.TempDir()
	n, err := node.Start(context.Background(), node.Config{DataDir: dir, Listen: "localhost:0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ServerTLS(dir, []string{"127.0.0.2", "nimbus.example"}); err != nil {
		t.Fatal(err)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	n, err = node.Start(context.Background(), node.Config{DataDir: dir, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	leaf := serverCert(t, n.Addr.String())
	if !slices.Equal(leaf.DNSNames, []string{"localhost"}) || len(leaf.IPAddresses) != 2 {
		t.Fatalf("certificate names %v %v, want localhost, 127.0.0.1, ::1 only", leaf.DNSNames, leaf.IPAddresses)
	}
}

// TestTLSCipherSuites: TLS 1.2 clients get only ECDHE with AES-GCM or
// ChaCha20-Poly1305; a client offering only CBC (with SHA-1 or SHA-256
// MACs) fails the handshake; TLS 1.3 works.
func TestTLSCipherSuites(t *testing.T) {
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
	for _, tc := range []struct {
		name    string
		version uint16
		suite   uint16
		ok      bool
	}{
		{"tls1.2 aes-128-gcm", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, true},
		{"tls1.2 aes-256-gcm", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, true},
		{"tls1.2 chacha20-poly1305", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, true},
		{"tls1.2 aes-128-cbc-sha", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"tls1.2 aes-256-cbc-sha", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, false},
		{"tls1.2 aes-128-cbc-sha256", tls.VersionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, false},
		{"tls1.1", tls.VersionTLS11, tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, false},
		{"tls1.3", tls.VersionTLS13, 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tc.version, MaxVersion: tc.version}
			if tc.suite != 0 {
				cfg.CipherSuites = []uint16{tc.suite}
			}
			conn, err := tls.Dial("tcp", n.Addr.String(), cfg)
			if !tc.ok {
				if err == nil {
					conn.Close()
					t.Fatalf("handshake with only %s succeeded", tls.CipherSuiteName(tc.suite))
				}
				return
			}
			if err != nil {
				t.Fatalf("handshake: %v", err)
			}
			defer conn.Close()
			if cs := conn.ConnectionState(); cs.Version != tc.version || (tc.suite != 0 && cs.CipherSuite != tc.suite) {
				t.Fatalf("negotiated %x %s", cs.Version, tls.CipherSuiteName(cs.CipherSuite))
			}
		})
	}
}
