package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// CAFile is the name of the CA certificate in the data directory.
const CAFile = "ca.pem"

// ServerCipherSuites are the TLS 1.2 cipher suites the server accepts: ECDHE
// key exchange with an AEAD cipher (AES-GCM, ChaCha20-Poly1305) only, no CBC
// or SHA-1 MAC. TLS 1.3's suites are all AEAD and not configurable.
var ServerCipherSuites = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// ServerTLSConfig returns the server's TLS configuration for cert: TLS 1.2
// with ServerCipherSuites, or TLS 1.3. The caller owns the result.
func ServerTLSConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
		CipherSuites: slices.Clone(ServerCipherSuites),
	}
}

// ServerTLS returns the server certificate for hosts (IP addresses or DNS
// names), creating the CA on first use and (re)issuing the server certificate
// when it is missing, expires within 30 days, or does not name exactly
// hosts in its SANs (one missing, or one more, as a certificate issued for
// other hosts would). 127.0.0.1, ::1 and localhost are always included.
func ServerTLS(dir string, hosts []string) (tls.Certificate, error) {
	caCert, caKey, err := loadOrCreateCA(dir)
	if err != nil {
		return tls.Certificate{}, err
	}
	want := append([]string{"127.0.0.1", "::1", "localhost"}, hosts...)
	ips, names := sans(want)
	certPath, keyPath := filepath.Join(dir, "server.pem"), filepath.Join(dir, "server-key.pem")
	if c, err := tls.LoadX509KeyPair(certPath, keyPath); err == nil && namesExactly(c.Leaf, ips, names) && c.Leaf.CheckSignatureFrom(caCert) == nil {
		return c, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("auth: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "nimbus"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  ips,
		DNSNames:     names,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("auth: issue server certificate: %w", err)
	}
	if err := writeCertAndKey(certPath, keyPath, der, key); err != nil {
		return tls.Certificate{}, err
	}
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("auth: %w", err)
	}
	return c, nil
}

// CertPool returns a pool holding the CA of dir (for clients and tests).
func CertPool(dir string) (*x509.CertPool, error) {
	b, err := os.ReadFile(filepath.Join(dir, CAFile))
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("auth: no certificate in %s", CAFile)
	}
	return p, nil
}

// sans splits hosts into the IP addresses and DNS names a certificate for
// them holds, without duplicates or empty names.
func sans(hosts []string) ([]net.IP, []string) {
	var ips []net.IP
	var names []string
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if h != "" && !slices.Contains(names, h) {
			names = append(names, h)
		}
	}
	return ips, names
}

// namesExactly reports whether c is valid for 30 more days and its SANs
// are exactly ips and names (in any order).
func namesExactly(c *x509.Certificate, ips []net.IP, names []string) bool {
	if c == nil || time.Until(c.NotAfter) < 30*24*time.Hour {
		return false
	}
	sameIPs := func(a, b []net.IP) bool {
		for _, ip := range a {
			if !slices.ContainsFunc(b, ip.Equal) {
				return false
			}
		}
		return true
	}
	sameNames := func(a, b []string) bool {
		for _, n := range a {
			if !slices.Contains(b, n) {
				return false
			}
		}
		return true
	}
	return sameIPs(c.IPAddresses, ips) && sameIPs(ips, c.IPAddresses) &&
		sameNames(c.DNSNames, names) && sameNames(names, c.DNSNames)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		return big.NewInt(time.Now().UnixNano())
	}
	return n
}

func loadOrCreateCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	certPath, keyPath := filepath.Join(dir, CAFile), filepath.Join(dir, "ca-key.pem")
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		k, ok := c.PrivateKey.(*ecdsa.PrivateKey)
		if !ok {
			return nil, nil, fmt.Errorf("auth: %s is not an ECDSA key", keyPath)
		}
		return c.Leaf, k, nil
	}
	if _, statErr := os.Stat(certPath); !errors.Is(statErr, fs.ErrNotExist) {
		return nil, nil, fmt.Errorf("auth: load CA: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "nimbus local CA", Organization: []string{"nimbus"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: create CA: %w", err)
	}
	if err := writeCertAndKey(certPath, keyPath, der, key); err != nil {
		return nil, nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, nil, fmt.Errorf("auth: %w", err)
	}
	return cert, key, nil
}

func writeCertAndKey(certPath, keyPath string, der []byte, key *ecdsa.PrivateKey) error {
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := writeFileAtomic(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return err
	}
	return writeFileAtomic(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644)
}
