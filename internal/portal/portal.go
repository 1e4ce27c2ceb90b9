// Package portal serves nimbus's web portal: a single-page application
// embedded in the binary (assets/, embed.FS) and the few server endpoints it
// needs around the public ARM API: sign-in with a one-time loopback link,
// a session cookie, and a same-origin proxy that turns the session into a
// bearer token and hands the request to the ARM handler unchanged.
//
// Every action the portal takes is an ARM request a user could make with
// `nimbus token` and curl: the proxy adds the Authorization header and
// nothing else, and the ARM handler is the same http.Handler the listener
// serves at /. See docs/portal.md for the security model.
//
// Endpoints (under Prefix, /portal):
//
//	GET  /portal/                  the application (index.html; assets under /portal/assets/)
//	GET  /portal/signin?code=C     loopback only: spends the one-time code C, sets the session cookie
//	GET  /portal/session           the session's CSRF token and identity (401 without a session)
//	POST /portal/signout           ends the session (CSRF header required)
//	*    /portal/api/<ARM path>    the proxy: session + CSRF header → Authorization: Bearer
package portal

import (
	"crypto/rand"
	"crypto/subtle"
	"embed"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Prefix is the path the portal is mounted under; the node routes every
// path starting with it to the portal.
const Prefix = "/portal/"

// CookieName is the session cookie. The __Host- prefix makes the browser
// refuse it unless it is Secure, has Path=/ and no Domain.
const CookieName = "__Host-nimbus-portal"

// CSRFHeader is the header the application sends on every proxied request
// and on sign-out, carrying the session's CSRF token. A cross-site form or
// link cannot set a header, and the token is readable only same-origin.
const CSRFHeader = "X-Nimbus-Csrf"

// SessionTTL is how long a session lasts after sign-in (no sliding renewal).
const SessionTTL = 12 * time.Hour

// tokenTTL is the life of the bearer tokens the proxy mints for a session
// (never beyond the session's end).
const tokenTTL = 30 * time.Minute

// maxSessions bounds the live sessions; the oldest goes when a new one would exceed it.
const maxSessions = 64

//go:embed assets
var assets embed.FS

// Minter mints bearer tokens for the ARM API (auth.Issuer implements it).
type Minter interface {
	// Mint returns a token for audience ("" = the default) valid for ttl, and its expiry.
	Mint(audience string, ttl time.Duration) (string, time.Time, error)
}

// Config configures a Portal. API, Tokens and DataDir are required.
type Config struct {
	// API is the ARM handler the proxy forwards to (the node's *arm.Server).
	API http.Handler
	// Tokens mints the bearer tokens the proxy adds.
	Tokens Minter
	// DataDir is the data directory; sign-in codes live in its
	// portal-signin directory (see NewSignInLink).
	DataDir string
	// SubscriptionID and TenantID are shown by the application.
	SubscriptionID, TenantID string
	// Logger receives sign-in events; nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Portal is the portal's http.Handler. Create it with New; safe for
// concurrent use. Sessions live in memory: they end when nimbus restarts.
type Portal struct {
	cfg    Config
	log    *slog.Logger
	now    func() time.Time
	static http.Handler

	mu       sync.Mutex
	sessions map[string]*session
}

// session is one signed-in browser.
type session struct {
	id      string
	csrf    string
	created time.Time
	expires time.Time
	// token is the cached bearer token and tokenExp its expiry.
	token    string
	tokenExp time.Time
}

// New returns a portal.
func New(cfg Config) (*Portal, error) {
	if cfg.API == nil || cfg.Tokens == nil || cfg.DataDir == "" {
		return nil, errors.New("portal: config needs API, Tokens and DataDir")
	}
	sub, err := fs.Sub(assets, "assets")
	if err != nil {
		return nil, fmt.Errorf("portal: %w", err)
	}
	p := &Portal{cfg: cfg, log: cfg.Logger, now: cfg.Now, sessions: map[string]*session{},
		static: http.StripPrefix(Prefix+"assets/", http.FileServerFS(sub))}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	return p, nil
}

// ServeHTTP implements http.Handler for paths under Prefix.
func (p *Portal) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	// The application loads only its own scripts and styles and talks only
	// to its own origin; nothing may frame it.
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	rest := strings.TrimPrefix(r.URL.Path, strings.TrimSuffix(Prefix, "/"))
	switch {
	case rest == "" || rest == "/":
		if rest == "" {
			http.Redirect(w, r, Prefix, http.StatusMovedPermanently)
			return
		}
		p.serveIndex(w, r)
	case strings.HasPrefix(rest, "/assets/"):
		h.Set("Cache-Control", "no-cache")
		p.static.ServeHTTP(w, r)
	case rest == "/signin":
		p.serveSignIn(w, r)
	case rest == "/session":
		p.serveSession(w, r)
	case rest == "/signout":
		p.serveSignOut(w, r)
	case strings.HasPrefix(rest, "/api/"):
		p.serveProxy(w, r, strings.TrimPrefix(rest, "/api"))
	default:
		writeError(w, http.StatusNotFound, "NotFound", "No portal page at "+r.URL.Path+".")
	}
}

func (p *Portal) serveIndex(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		writeError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "Use GET.")
		return
	}
	b, err := assets.ReadFile("assets/index.html")
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerError", "index.html is missing from the binary.")
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(b)
}

// serveSignIn spends a one-time code and starts a session. Only loopback
// peers may sign in: the link is for the data directory's owner on this
// machine, who alone can create codes (NewSignInLink writes them into the
// 0700 data directory).
func (p *Portal) serveSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "Use GET.")
		return
	}
	if !loopbackPeer(r) {
		writeError(w, http.StatusForbidden, "SignInNotLoopback", "Sign-in links work only from this machine (a loopback connection).")
		return
	}
	code := r.URL.Query().Get("code")
	if err := spendCode(p.cfg.DataDir, code, p.now()); err != nil {
		p.log.Info("portal sign-in refused", slog.Any("err", err))
		writeSignInPage(w, http.StatusForbidden, "This sign-in link is not valid: it was used already, it expired, or it was never issued. Run `nimbus portal` for a new one.")
		return
	}
	s, err := p.newSession()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "InternalServerError", err.Error())
		return
	}
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: s.id, Path: "/", Expires: s.expires,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	p.log.Info("portal sign-in", slog.Time("expires", s.expires))
	// The redirect drops the spent code from the address bar.
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, Prefix, http.StatusSeeOther)
}

func (p *Portal) newSession() (*session, error) {
	now := p.now()
	s := &session{id: randomString(32), csrf: randomString(32), created: now, expires: now.Add(SessionTTL)}
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, o := range p.sessions {
		if !now.Before(o.expires) {
			delete(p.sessions, id)
		}
	}
	for len(p.sessions) >= maxSessions {
		var oldest *session
		for _, o := range p.sessions {
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
		delete(p.sessions, oldest.id)
	}
	p.sessions[s.id] = s
	return s, nil
}

// lookup returns the live session of r's cookie, or nil.
func (p *Portal) lookup(r *http.Request) *session {
	c, err := r.Cookie(CookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.sessions[c.Value]
	if s == nil {
		return nil
	}
	if !p.now().Before(s.expires) {
		delete(p.sessions, s.id)
		return nil
	}
	return s
}

// sessionBody is GET /portal/session's answer.
type sessionBody struct {
	CSRFToken      string    `json:"csrfToken"`
	Expires        time.Time `json:"expires"`
	SubscriptionID string    `json:"subscriptionId"`
	TenantID       string    `json:"tenantId"`
}

func (p *Portal) serveSession(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		writeError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "Use GET.")
		return
	}
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "CrossSiteRequest", "The portal answers only its own pages.")
		return
	}
	s := p.lookup(r)
	if s == nil {
		writeError(w, http.StatusUnauthorized, "NotSignedIn", "Not signed in. Run `nimbus portal` on the machine nimbus runs on and open the link it prints.")
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, sessionBody{CSRFToken: s.csrf, Expires: s.expires,
		SubscriptionID: p.cfg.SubscriptionID, TenantID: p.cfg.TenantID})
}

func (p *Portal) serveSignOut(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		writeError(w, http.StatusMethodNotAllowed, "HttpMethodNotAllowed", "Use POST.")
		return
	}
	s, ok := p.checkWrite(w, r)
	if !ok {
		return
	}
	p.mu.Lock()
	delete(p.sessions, s.id)
	p.mu.Unlock()
	http.SetCookie(w, &http.Cookie{Name: CookieName, Value: "", Path: "/", MaxAge: -1,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	w.WriteHeader(http.StatusNoContent)
}

// checkWrite authorises a request that acts with the session: it must come
// from the portal's own origin, carry the session cookie and the session's
// CSRF token in CSRFHeader. It writes the refusal itself.
func (p *Portal) checkWrite(w http.ResponseWriter, r *http.Request) (*session, bool) {
	if !sameOrigin(r) {
		writeError(w, http.StatusForbidden, "CrossSiteRequest", "Cross-site requests cannot act with a portal session.")
		return nil, false
	}
	s := p.lookup(r)
	if s == nil {
		writeError(w, http.StatusUnauthorized, "NotSignedIn", "Not signed in, or the session expired. Run `nimbus portal` for a new sign-in link.")
		return nil, false
	}
	got := r.Header.Get(CSRFHeader)
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) != 1 {
		writeError(w, http.StatusForbidden, "InvalidCsrfToken", "The request lacks the session's "+CSRFHeader+" header.")
		return nil, false
	}
	return s, true
}

// bearer returns a token for s, minting one when the cached one is near its end.
func (p *Portal) bearer(s *session) (string, error) {
	now := p.now()
	p.mu.Lock()
	if s.token != "" && now.Add(time.Minute).Before(s.tokenExp) {
		t := s.token
		p.mu.Unlock()
		return t, nil
	}
	p.mu.Unlock()
	ttl := min(tokenTTL, s.expires.Sub(now))
	if ttl < time.Second {
		return "", errors.New("portal: session expired")
	}
	t, exp, err := p.cfg.Tokens.Mint("", ttl)
	if err != nil {
		return "", fmt.Errorf("portal: %w", err)
	}
	p.mu.Lock()
	s.token, s.tokenExp = t, exp
	p.mu.Unlock()
	return t, nil
}

// serveProxy hands an ARM request to the ARM handler with the session's
// bearer token. The request keeps its method, path, query and body; the
// cookie and CSRF header are removed, Authorization is set. Absolute URLs
// in the answer (LRO headers) keep pointing at the ARM API; the application
// maps them onto the proxy.
func (p *Portal) serveProxy(w http.ResponseWriter, r *http.Request, armPath string) {
	s, ok := p.checkWrite(w, r)
	if !ok {
		return
	}
	tok, err := p.bearer(s)
	if err != nil {
		writeError(w, http.StatusUnauthorized, "NotSignedIn", "The session expired. Run `nimbus portal` for a new sign-in link.")
		return
	}
	out := r.Clone(r.Context())
	u := *r.URL
	u.Path, u.RawPath = armPath, ""
	if r.URL.RawPath != "" {
		u.RawPath = strings.TrimPrefix(r.URL.RawPath, Prefix+"api")
	}
	out.URL = &u
	out.RequestURI = u.RequestURI()
	out.Header.Del("Cookie")
	out.Header.Del(CSRFHeader)
	out.Header.Set("Authorization", "Bearer "+tok)
	w.Header().Set("Cache-Control", "no-store")
	p.cfg.API.ServeHTTP(w, out)
}

// sameOrigin rejects requests a browser marks as coming from another site
// or origin (Sec-Fetch-Site, Origin). Non-browser clients send neither and
// pass; they still need the cookie and the CSRF token.
func sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	return err == nil && u.Scheme == "https" && strings.EqualFold(u.Host, r.Host)
}

func loopbackPeer(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

func randomString(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go 1.24+)
	return base64.RawURLEncoding.EncodeToString(b)
}

// writeError writes an error in ARM's shape, so the application reads
// portal and ARM refusals alike.
func writeError(w http.ResponseWriter, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeSignInPage answers a browser that followed a bad sign-in link.
func writeSignInPage(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	fmt.Fprintf(w, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>nimbus portal: sign-in</title>
<link rel="stylesheet" href="%sassets/app.css"></head><body><main class="signin"><h1>nimbus portal</h1><p role="alert">%s</p></main></body></html>`,
		Prefix, htmlEscape(msg))
}

func htmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "`", "&#96;").Replace(s)
}
