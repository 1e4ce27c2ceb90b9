package arm

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/auth"
	"nimbus/internal/store/bolt"
)

// Address plan: sign-ins come from 198.18.0.0/15 and 2001:db8::/32 peers;
// the requests are handed to the handler directly, nothing is sent.

// fakeClock is an injectable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newSignInServer(t *testing.T) (*Server, auth.Identity, *fakeClock) {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := auth.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	s, err := New(Config{Store: st, Tokens: iss, Identity: id, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return s, id, clock
}

type signInAnswer struct {
	status     int
	retryAfter string
	Error      string `json:"error"`
	Desc       string `json:"error_description"`
	Token      string `json:"access_token"`
}

// signIn posts a client-credentials grant from peer to the ADFS token path.
func signIn(t *testing.T, s *Server, peer, clientID, secret string) signInAnswer {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {clientID}, "client_secret": {secret},
		"scope": {"https://management.core.windows.net//.default"}}
	req := httptest.NewRequest("POST", "/adfs/oauth2/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.RemoteAddr = peer
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	a := signInAnswer{status: rec.Code, retryAfter: rec.Header().Get("Retry-After")}
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil {
		t.Fatalf("sign-in answer %d %q: %v", rec.Code, rec.Body, err)
	}
	return a
}

func TestSignInRateLimit(t *testing.T) {
	s, id, clock := newSignInServer(t)
	const attacker, other = "198.18.0.10:40000", "198.18.0.20:40000"
	good := func(peer string) signInAnswer { return signIn(t, s, peer, auth.ObjectID, id.IdentityHeader) }

	// A burst of wrong secrets: the peer's allowance (10) is answered 401, then 429.
	for i := range int(peerSignIns.burst) {
		if a := signIn(t, s, attacker, auth.ObjectID, "wrong"+strconv.Itoa(i)); a.status != http.StatusUnauthorized || a.Error != "invalid_client" {
			t.Fatalf("wrong secret %d: %+v", i, a)
		}
	}
	a := signIn(t, s, attacker, auth.ObjectID, "wrong")
	if a.status != http.StatusTooManyRequests || a.Error != "temporarily_unavailable" || a.retryAfter != "6" || !strings.Contains(a.Desc, "retry after 6 seconds") {
		t.Fatalf("over the allowance: %+v", a)
	}
	// The right secret from the limited address is refused too (no oracle),
	// with the same wait; the port does not matter, another address is not limited.
	if a := signIn(t, s, "198.18.0.10:40001", auth.ObjectID, id.IdentityHeader); a.status != http.StatusTooManyRequests || a.Token != "" {
		t.Fatalf("right secret while limited: %+v", a)
	}
	if a := good(other); a.status != http.StatusOK || a.Token == "" {
		t.Fatalf("other address: %+v", a)
	}
	// Part of the window is not enough; after Retry-After one more try is allowed.
	clock.Add(5 * time.Second)
	if a := good(attacker); a.status != http.StatusTooManyRequests || a.retryAfter != "1" {
		t.Fatalf("before the window ended: %+v", a)
	}
	clock.Add(time.Second)
	if a := good(attacker); a.status != http.StatusOK || a.Token == "" {
		t.Fatalf("right secret after the window: %+v", a)
	}
	if _, err := s.cfg.Tokens.Verify(good(other).Token); err != nil {
		t.Fatal(err)
	}
}

// TestSignInRateLimitPrincipal: failures spread over many addresses use up
// the principal's allowance, which then limits every address, until it refills.
func TestSignInRateLimitPrincipal(t *testing.T) {
	s, id, clock := newSignInServer(t)
	for i := range int(clientSignIns.burst) {
		peer := "198.18.1." + strconv.Itoa(i) + ":5000"
		if a := signIn(t, s, peer, auth.ObjectID, "wrong"); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %+v", i, a)
		}
	}
	a := signIn(t, s, "198.18.2.1:5000", auth.ObjectID, id.IdentityHeader)
	if a.status != http.StatusTooManyRequests || a.retryAfter != "2" {
		t.Fatalf("principal over its allowance: %+v", a)
	}
	// Wrong client IDs do not count against the principal (they cannot
	// guess its secret) but do against the address.
	clock.Add(clientSignIns.every)
	for i := range int(peerSignIns.burst) {
		if a := signIn(t, s, "198.18.3.1:5000", "00000000-0000-0000-0000-000000000000", "x"); a.status != http.StatusUnauthorized {
			t.Fatalf("wrong client %d: %+v", i, a)
		}
	}
	if a := signIn(t, s, "198.18.3.1:5000", auth.ObjectID, id.IdentityHeader); a.status != http.StatusTooManyRequests {
		t.Fatalf("address over its allowance: %+v", a)
	}
	if a := signIn(t, s, "198.18.2.1:5000", auth.ObjectID, id.IdentityHeader); a.status != http.StatusOK {
		t.Fatalf("after the principal's window: %+v", a)
	}
}

// TestSignInKeys: IPv6 peers share a bucket per /64, IPv4-mapped ones are
// IPv4, and only nimbus's client ID counts against the principal.
func TestSignInKeys(t *testing.T) {
	for _, tc := range []struct {
		remote, client string
		want           []string
	}{
		{"198.18.0.1:1", auth.ObjectID, []string{"peer 198.18.0.1", "client " + auth.ObjectID}},
		{"[::ffff:198.18.0.1]:1", strings.ToUpper(auth.ObjectID), []string{"peer 198.18.0.1", "client " + auth.ObjectID}},
		{"[2001:db8:1:2:3:4:5:6]:443", "other", []string{"peer 2001:db8:1:2::/64"}},
		{"[fe80::1%eth0]:443", "", []string{"peer fe80::/64"}},
		{"not an address", "", []string{"peer not an address"}},
	} {
		var got []string
		for _, k := range signInKeys(tc.remote, tc.client) {
			got = append(got, k.name)
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("signInKeys(%q, %q) = %q, want %q", tc.remote, tc.client, got, tc.want)
		}
	}
}

// TestSignInLimiterForgetsRefilledBuckets: past maxSignInBuckets, buckets
// that have refilled are dropped.
func TestSignInLimiterForgetsRefilledBuckets(t *testing.T) {
	var l signInLimiter
	now := time.Unix(0, 0)
	for i := range maxSignInBuckets {
		l.failed(now, signInKeys("198.18."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256)+":1", ""))
	}
	now = now.Add(peerSignIns.every)
	l.failed(now, signInKeys("198.19.0.1:1", ""))
	if len(l.buckets) != 1 {
		t.Fatalf("%d buckets kept, want 1", len(l.buckets))
	}
}
