package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// DefaultAudience is the token audience Azure clients ask for.
const DefaultAudience = "https://management.core.windows.net/"

// ObjectID is the object (and application) ID of the single principal nimbus knows.
const ObjectID = "00000000-0000-0000-0000-00000000b001"

// Claims are the claims of a nimbus bearer token.
type Claims struct {
	TenantID string `json:"tid"`
	ObjectID string `json:"oid"`
	AppID    string `json:"appid"`
	jwt.RegisteredClaims
}

// Issuer mints and verifies bearer tokens for one tenant with the key kept in
// the data directory. Safe for concurrent use.
type Issuer struct {
	key    *ecdsa.PrivateKey
	tenant string
	// Issuer is the iss claim of minted tokens.
	issuer string

	// verified caches tokens whose signature checked out (clients reuse one
	// token for an hour; an ECDSA verification costs far more than a GET).
	mu       sync.Mutex
	verified map[string]*Claims
}

// maxVerified bounds the verified-token cache; it is emptied when full.
const maxVerified = 4096

// LoadOrCreateIssuer returns the issuer of dir, creating its signing key on first use.
func LoadOrCreateIssuer(dir, tenant string) (*Issuer, error) {
	p := filepath.Join(dir, "token-key.pem")
	b, err := os.ReadFile(p)
	var key *ecdsa.PrivateKey
	switch {
	case err == nil:
		blk, _ := pem.Decode(b)
		if blk == nil {
			return nil, fmt.Errorf("auth: %s: no PEM block", p)
		}
		if key, err = x509.ParseECPrivateKey(blk.Bytes); err != nil {
			return nil, fmt.Errorf("auth: %s: %w", p, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		kb, err := x509.MarshalECPrivateKey(key)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		created, err := createFileExclusive(p, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
		if err != nil {
			return nil, err
		}
		if !created {
			return LoadOrCreateIssuer(dir, tenant)
		}
	default:
		return nil, fmt.Errorf("auth: %w", err)
	}
	return &Issuer{key: key, tenant: tenant, issuer: "https://sts.nimbus.local/" + tenant + "/"}, nil
}

// Mint returns a token for audience (DefaultAudience if empty) valid for ttl, and its expiry.
func (i *Issuer) Mint(audience string, ttl time.Duration) (string, time.Time, error) {
	if audience == "" {
		audience = DefaultAudience
	}
	now := time.Now().Truncate(time.Second)
	exp := now.Add(ttl)
	c := Claims{
		TenantID: i.tenant, ObjectID: ObjectID, AppID: ObjectID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer: i.issuer, Subject: ObjectID, Audience: jwt.ClaimStrings{audience},
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now.Add(-5 * time.Minute)),
			ExpiresAt: jwt.NewNumericDate(exp),
		},
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodES256, c).SignedString(i.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign token: %w", err)
	}
	return s, exp, nil
}

// Verify checks a token's signature, expiry, not-before and tenant, and
// returns its claims. Safe for concurrent use.
func (i *Issuer) Verify(token string) (*Claims, error) {
	i.mu.Lock()
	c, ok := i.verified[token]
	i.mu.Unlock()
	if ok {
		now := time.Now()
		if now.After(c.ExpiresAt.Add(30*time.Second)) || (c.NotBefore != nil && now.Before(c.NotBefore.Add(-30*time.Second))) {
			return nil, fmt.Errorf("auth: %w", jwt.ErrTokenExpired)
		}
		return c, nil
	}
	c, err := i.verify(token)
	if err != nil {
		return nil, err
	}
	i.mu.Lock()
	if len(i.verified) >= maxVerified || i.verified == nil {
		i.verified = make(map[string]*Claims)
	}
	i.verified[token] = c
	i.mu.Unlock()
	return c, nil
}

func (i *Issuer) verify(token string) (*Claims, error) {
	var c Claims
	_, err := jwt.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return &i.key.PublicKey, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodES256.Alg()}), jwt.WithExpirationRequired(),
		jwt.WithIssuer(i.issuer), jwt.WithLeeway(30*time.Second))
	if err != nil {
		return nil, fmt.Errorf("auth: %w", err)
	}
	if c.TenantID != i.tenant {
		return nil, fmt.Errorf("auth: token tenant %q is not %q", c.TenantID, i.tenant)
	}
	return &c, nil
}
