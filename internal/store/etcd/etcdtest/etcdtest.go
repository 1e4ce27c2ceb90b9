// Package etcdtest runs a real etcd server for tests: the etcd binary
// users run (Debian's etcd-server package), one member on loopback ports
// with a temporary data directory, stopped and removed when the test ends.
//
// Without the binary, Start skips the test when not root and fails it as
// root: scripts/test installs etcd-server as root, so CI always runs the
// etcd tests.
package etcdtest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// Binary is the etcd executable Start looks up in PATH.
const Binary = "etcd"

// startTimeout bounds how long Start and Restart wait for the server to
// answer.
const startTimeout = 30 * time.Second

// Server is one running etcd member. Its fields are set by Start and
// read-only; it is not safe for concurrent use.
type Server struct {
	// Endpoint is the client URL (http://127.0.0.1:PORT, or https:// with TLS).
	Endpoint string
	// DataDir is the member's data directory (removed with the test's temp dir).
	DataDir string
	// CAFile, CertFile and KeyFile are set with TLS: the CA that signed the
	// server's certificate, and a client certificate and key it accepts.
	// They are empty without TLS.
	CAFile, CertFile, KeyFile string

	t       testing.TB
	args    []string
	logPath string
	cmd     *exec.Cmd
	exited  chan struct{}
}

type options struct{ tls bool }

// Option configures Start.
type Option func(*options)

// WithTLS serves clients over TLS with client-certificate authentication,
// from a CA and certificates made for the test (see Server.CAFile).
func WithTLS() Option { return func(o *options) { o.tls = true } }

// Start runs an etcd member for the rest of t and returns once it answers.
// t.Cleanup kills it; the data directory goes with t.TempDir.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	bin, err := exec.LookPath(Binary)
	if err != nil {
		if os.Geteuid() == 0 {
			t.Fatalf("etcd is not installed (as root it must be: apt-get install etcd-server, as scripts/test does): %v", err)
		}
		t.Skipf("etcd is not installed and not root (apt-get install etcd-server): %v", err)
	}
	dir := t.TempDir()
	s := &Server{t: t, DataDir: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "etcd.log")}
	scheme := "http"
	var tlsArgs []string
	if o.tls {
		scheme = "https"
		s.CAFile, s.CertFile, s.KeyFile = makeCerts(t, dir)
		tlsArgs = []string{
			"--cert-file", filepath.Join(dir, "server.pem"), "--key-file", filepath.Join(dir, "server-key.pem"),
			"--trusted-ca-file", s.CAFile, "--client-cert-auth",
		}
	}
	client, peer := freePort(t), freePort(t)
	s.Endpoint = scheme + "://127.0.0.1:" + strconv.Itoa(client)
	peerURL := "http://127.0.0.1:" + strconv.Itoa(peer)
	s.args = append([]string{bin,
		"--name", "nimbus-test",
		"--data-dir", s.DataDir,
		"--listen-client-urls", s.Endpoint,
		"--advertise-client-urls", s.Endpoint,
		"--listen-peer-urls", peerURL,
		"--initial-advertise-peer-urls", peerURL,
		"--initial-cluster", "nimbus-test=" + peerURL,
		"--initial-cluster-state", "new",
		"--logger", "zap",
		"--log-outputs", "stderr",
	}, tlsArgs...)
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			if b, err := os.ReadFile(s.logPath); err == nil {
				t.Logf("etcd log (last 4 KiB):\n%s", tail(b, 4096))
			}
		}
	})
	s.Restart()
	return s
}

// Restart starts the member again on the same ports and data directory
// (after Kill) and waits until it answers.
func (s *Server) Restart() {
	s.t.Helper()
	if s.cmd != nil {
		s.t.Fatalf("etcdtest: Restart of a running server")
	}
	logf, err := os.OpenFile(s.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	defer logf.Close()
	cmd := exec.Command(s.args[0], s.args[1:]...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, and killed with the test binary if that dies.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		s.t.Fatalf("start etcd: %v", err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()
	if err := s.waitReady(); err != nil {
		b, _ := os.ReadFile(s.logPath)
		s.t.Fatalf("etcd did not come up: %v\n%s", err, tail(b, 4096))
	}
}

// Kill stops the member with SIGKILL (as a crash would) and waits for it
// to exit. Killing a stopped server does nothing.
func (s *Server) Kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// ClientConfig returns a client configuration for the server (TLS files
// included when it serves TLS).
func (s *Server) ClientConfig() (clientv3.Config, error) {
	cfg := clientv3.Config{Endpoints: []string{s.Endpoint}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()}
	if s.CAFile != "" {
		tc, err := transport.TLSInfo{TrustedCAFile: s.CAFile, CertFile: s.CertFile, KeyFile: s.KeyFile}.ClientConfig()
		if err != nil {
			return cfg, err
		}
		cfg.TLS = tc
	}
	return cfg, nil
}

// waitReady polls a linearizable read until it succeeds, the process exits
// or startTimeout passes.
func (s *Server) waitReady() error {
	cfg, err := s.ClientConfig()
	if err != nil {
		return err
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return err
	}
	defer cli.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := cli.Get(ctx, "etcdtest-ready")
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-s.exited:
			return errors.New("etcd exited")
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no answer within %v: %w", startTimeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// makeCerts writes a CA (ca.pem), a server certificate for 127.0.0.1
// (server.pem, server-key.pem) and a client certificate (client.pem,
// client-key.pem) into dir, and returns the CA, client certificate and
// client key paths.
func makeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "etcdtest CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caDER)
	leaf := func(name string, serial int64, usage x509.ExtKeyUsage) {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "etcdtest " + name},
			NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
			IPAddresses: []net.IP{netip.MustParseAddr("127.0.0.1").AsSlice()},
			DNSNames:    []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		keyDER, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			t.Fatal(err)
		}
		writePEM(t, filepath.Join(dir, name+".pem"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, name+"-key.pem"), "EC PRIVATE KEY", keyDER)
	}
	leaf("server", 2, x509.ExtKeyUsageServerAuth)
	leaf("client", 3, x509.ExtKeyUsageClientAuth)
	return filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		b = b[len(b)-n:]
		if i := bytes.IndexByte(b, '\n'); i >= 0 {
			b = b[i+1:]
		}
	}
	return b
}
