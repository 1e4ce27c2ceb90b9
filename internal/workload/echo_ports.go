package workload

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Protocols of a Port.
const (
	ProtoTCP = "tcp"
	ProtoUDP = "udp"
)

// Port is one port the echo workload serves beyond its defaults.
type Port struct {
	Protocol string // ProtoTCP or ProtoUDP
	Number   int
}

// String formats p as "tcp/443".
func (p Port) String() string { return p.Protocol + "/" + strconv.Itoa(p.Number) }

// FormatPorts formats ports for EnvPorts: "tcp/80,udp/53", sorted and
// without duplicates.
func FormatPorts(ports []Port) string {
	var out []string
	for _, p := range ports {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ",")
}

// ParsePorts parses EnvPorts (FormatPorts' format; "" is no ports).
func ParsePorts(s string) ([]Port, error) {
	var out []Port
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		proto, num, ok := strings.Cut(f, "/")
		n, err := strconv.Atoi(num)
		if !ok || err != nil || n < 1 || n > 65535 || (proto != ProtoTCP && proto != ProtoUDP) {
			return nil, fmt.Errorf("workload: %s: bad port %q (want tcp/N or udp/N)", EnvPorts, f)
		}
		out = append(out, Port{Protocol: proto, Number: n})
	}
	return out, nil
}

// sniffTLS splits ln's connections by their first byte: a TLS handshake
// record (0x16) goes to secure, anything else to plain. A connection that
// sends nothing within 10 s is closed. Both listeners end when ln does or
// ctx ends; closing either closes ln.
func sniffTLS(ctx context.Context, ln net.Listener) (plain, secure net.Listener) {
	once, done := &sync.Once{}, make(chan struct{})
	p := &chanListener{ln: ln, ch: make(chan net.Conn), done: done, once: once}
	s := &chanListener{ln: ln, ch: make(chan net.Conn), done: done, once: once}
	go func() {
		defer p.Close()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				c.SetReadDeadline(time.Now().Add(10 * time.Second)) //nolint:errcheck // best effort
				br := bufio.NewReader(c)
				b, err := br.Peek(1)
				c.SetReadDeadline(time.Time{}) //nolint:errcheck // best effort
				if err != nil {
					c.Close()
					return
				}
				to := p
				if b[0] == 0x16 {
					to = s
				}
				select {
				case to.ch <- &peekedConn{Conn: c, r: br}:
				case <-to.done:
					c.Close()
				case <-ctx.Done():
					c.Close()
				}
			}()
		}
	}()
	return p, s
}

// chanListener is a net.Listener fed by sniffTLS.
type chanListener struct {
	ln   net.Listener
	ch   chan net.Conn
	done chan struct{}
	once *sync.Once
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done); l.ln.Close() })
	return nil
}

func (l *chanListener) Addr() net.Addr { return l.ln.Addr() }

// peekedConn is a connection whose first bytes were read into r.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// CloseWrite half-closes when the underlying connection can.
func (c *peekedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return errors.New("echo: connection cannot half-close")
}

// selfSignedTLS returns a server configuration with a fresh self-signed
// certificate for name (health probes do not verify it, as Azure's do not).
func selfSignedTLS(name string) (*tls.Config, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tls key: %w", err)
	}
	if name == "" {
		name = "nimbus-instance"
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{name},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("tls certificate: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12,
		Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}, nil
}
