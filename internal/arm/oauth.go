package arm

import (
	"crypto/subtle"
	"encoding/json"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"nimbus/internal/auth"
)

// Service-principal sign-in. nimbus has one principal: client ID
// auth.ObjectID, client secret the identity secret (Identity.IdentityHeader,
// endpoint.json's identityHeader). Two authority shapes are served, without
// a bearer token:
//
//	ADFS style (az login --service-principal with loginEndpoint https://host/adfs):
//	  GET  /adfs/.well-known/openid-configuration, POST /adfs/oauth2/token
//	AAD style (azidentity with DisableInstanceDiscovery and authority https://host/):
//	  GET  /{tenant}/v2.0/.well-known/openid-configuration, POST /{tenant}/oauth2/v2.0/token
//
// The token endpoint accepts grant_type=client_credentials only. Failed
// sign-ins (wrong client ID or secret) are rate limited (signInLimiter):
// once a peer address or the principal has used up its allowance, every
// sign-in from it, right secret or not, gets 429 with Retry-After until
// the allowance refills, as Entra ID answers a throttled client-credentials
// grant (429 Too Many Requests with Retry-After).

// oauthRoute reports whether segs is one of the sign-in paths, and which.
func oauthRoute(segs []string) (discovery, token bool) {
	lower := make([]string, len(segs))
	for i, s := range segs {
		lower[i] = strings.ToLower(s)
	}
	p := strings.Join(lower, "/")
	switch {
	case p == "adfs/.well-known/openid-configuration":
		return true, false
	case p == "adfs/oauth2/token":
		return false, true
	case len(lower) == 4 && lower[1] == "v2.0" && lower[2] == ".well-known" && lower[3] == "openid-configuration":
		return true, false
	case len(lower) == 4 && lower[1] == "oauth2" && lower[2] == "v2.0" && lower[3] == "token":
		return false, true
	}
	return false, false
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveOpenIDConfiguration answers the OpenID discovery document of an authority.
func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, hr *http.Request, segs []string) {
	base := "https://" + hr.Host + "/" + segs[0]
	tokenPath := base + "/oauth2/token"
	if !strings.EqualFold(segs[0], "adfs") {
		tokenPath = base + "/oauth2/v2.0/token"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/oauth2/authorize",
		"token_endpoint":                        tokenPath,
		"jwks_uri":                              base + "/discovery/keys",
		"response_types_supported":              []string{"code", "id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"scopes_supported":                      []string{"openid"},
		"tenant_region_scope":                   nil,
	})
}

// serveOAuthToken issues a token for the client-credentials grant.
func (s *Server) serveOAuthToken(w http.ResponseWriter, hr *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(oauthError{Error: code, Description: desc})
	}
	if hr.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if err := hr.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "the request form could not be parsed")
		return
	}
	if gt := hr.PostForm.Get("grant_type"); gt != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret := hr.PostForm.Get("client_id"), hr.PostForm.Get("client_secret")
	if u, p, ok := hr.BasicAuth(); ok {
		id, secret = u, p
	}
	keys := signInKeys(hr.RemoteAddr, id)
	now := s.now()
	if wait := s.signIns.wait(now, keys); wait > 0 {
		secs := int(math.Ceil(wait.Seconds()))
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		fail(http.StatusTooManyRequests, "temporarily_unavailable",
			"too many failed sign-ins from this address or for this client; retry after "+strconv.Itoa(secs)+" seconds")
		return
	}
	if !strings.EqualFold(id, auth.ObjectID) || subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Identity.IdentityHeader)) != 1 {
		s.signIns.failed(now, keys)
		fail(http.StatusUnauthorized, "invalid_client", "the client ID or secret is wrong")
		return
	}
	aud := ""
	for _, sc := range strings.Fields(hr.PostForm.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			aud = strings.TrimSuffix(sc, ".default")
			aud = strings.TrimSuffix(aud, "/") + "/"
			break
		}
	}
	if aud == "" {
		aud = hr.PostForm.Get("resource")
	}
	tok, exp, err := s.cfg.Tokens.Mint(aud, MSITokenTTL)
	if err != nil {
		s.log.Error("mint token", "err", err)
		fail(http.StatusInternalServerError, "server_error", "could not mint a token")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "access_token": tok,
		"expires_in": int(exp.Sub(s.now()).Seconds()), "ext_expires_in": int(exp.Sub(s.now()).Seconds()),
	})
}

// Allowances of failed sign-ins: a token bucket per peer address (IPv6 by
// /64) and one for the principal (whatever the address, against guessing
// from many addresses). A failure takes a token; a sign-in is refused while
// a bucket it counts against has less than one.
var (
	// peerSignIns: 10 failures at once, then one every 6 s (10 a minute).
	peerSignIns = bucketLimit{burst: 10, every: 6 * time.Second}
	// clientSignIns: 30 failures at once, then one every 2 s (30 a minute).
	clientSignIns = bucketLimit{burst: 30, every: 2 * time.Second}
)

// maxSignInBuckets bounds the limiter's memory: past it, buckets that have
// refilled (forgotten at no cost) are dropped.
const maxSignInBuckets = 4096

// bucketLimit is a token bucket's size and refill period (one token per every).
type bucketLimit struct {
	burst float64
	every time.Duration
}

// signInKey names a bucket and its limit.
type signInKey struct {
	name  string
	limit bucketLimit
}

// signInKeys returns the buckets a sign-in from remoteAddr as clientID
// counts against: its address, and the principal when clientID is
// nimbus's (failures under other IDs cannot guess its secret).
func signInKeys(remoteAddr, clientID string) []signInKey {
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	peer := host
	if a, err := netip.ParseAddr(host); err == nil {
		a = a.Unmap().WithZone("")
		if a.Is6() {
			peer = netip.PrefixFrom(a, 64).Masked().String()
		} else {
			peer = a.String()
		}
	}
	keys := []signInKey{{name: "peer " + peer, limit: peerSignIns}}
	if strings.EqualFold(clientID, auth.ObjectID) {
		keys = append(keys, signInKey{name: "client " + auth.ObjectID, limit: clientSignIns})
	}
	return keys
}

// signInLimiter holds the buckets of failed sign-ins. The zero value is
// ready; it is safe for concurrent use.
type signInLimiter struct {
	mu      sync.Mutex
	buckets map[string]*signInBucket // absent: full
}

type signInBucket struct {
	tokens float64
	at     time.Time // when tokens was computed
	limit  bucketLimit
}

// level returns the bucket's tokens at now.
func (b *signInBucket) level(now time.Time) float64 {
	el := now.Sub(b.at)
	if el < 0 {
		el = 0
	}
	return math.Min(b.limit.burst, b.tokens+float64(el)/float64(b.limit.every))
}

// wait returns how long until every bucket of keys holds a token (0: now).
func (l *signInLimiter) wait(now time.Time, keys []signInKey) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	var longest time.Duration
	for _, k := range keys {
		b := l.buckets[k.name]
		if b == nil {
			continue
		}
		if lv := b.level(now); lv < 1 {
			longest = max(longest, time.Duration((1-lv)*float64(k.limit.every)))
		}
	}
	return longest
}

// failed takes a token from every bucket of keys.
func (l *signInLimiter) failed(now time.Time, keys []signInKey) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buckets == nil {
		l.buckets = make(map[string]*signInBucket)
	}
	if len(l.buckets) >= maxSignInBuckets {
		for name, b := range l.buckets {
			if b.level(now) >= b.limit.burst {
				delete(l.buckets, name)
			}
		}
	}
	for _, k := range keys {
		b := l.buckets[k.name]
		if b == nil {
			b = &signInBucket{tokens: k.limit.burst, at: now, limit: k.limit}
			l.buckets[k.name] = b
		}
		b.tokens, b.at = math.Max(0, b.level(now)-1), now
	}
}
