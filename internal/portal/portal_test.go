package portal_test

// Address plan: the node listens on 127.0.0.1:0; the handler-level cases
// use httptest requests from 127.0.0.1 (loopback) and 192.0.2.7 (RFC 5737,
// a peer that is not loopback). Nothing leaves loopback.

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/auth"
	"nimbus/internal/portal"
)

// fakeAPI records the request the proxy hands to the ARM handler.
type fakeAPI struct{ got *http.Request }

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.got = r
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

type fakeMinter struct{ n int }

func (m *fakeMinter) Mint(string, time.Duration) (string, time.Time, error) {
	m.n++
	return "tok-" + string(rune('0'+m.n)), time.Now().Add(30 * time.Minute), nil
}

// signIn spends a fresh link against h and returns the session cookie.
func signIn(t *testing.T, h http.Handler, dir string) *http.Cookie {
	t.Helper()
	link, err := portal.NewSignInLink(dir, "https://127.0.0.1:8443")
	if err != nil {
		t.Fatal(err)
	}
	w := serve(h, httptest.NewRequest(http.MethodGet, link, nil))
	if w.Code != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", w.Code, w.Body)
	}
	for _, c := range w.Result().Cookies() {
		if c.Name == portal.CookieName {
			return c
		}
	}
	t.Fatal("sign-in set no session cookie")
	return nil
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	if r.RemoteAddr == "192.0.2.1:1234" { // httptest's default: make it loopback unless a case says otherwise
		r.RemoteAddr = "127.0.0.1:40000"
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func csrfOf(t *testing.T, h http.Handler, c *http.Cookie) string {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "https://127.0.0.1:8443/portal/session", nil)
	r.AddCookie(c)
	w := serve(h, r)
	if w.Code != http.StatusOK {
		t.Fatalf("session: %d %s", w.Code, w.Body)
	}
	var s struct{ CSRFToken string }
	if err := json.Unmarshal(w.Body.Bytes(), &s); err != nil || s.CSRFToken == "" {
		t.Fatalf("session body %s: %v", w.Body, err)
	}
	return s.CSRFToken
}

func newPortal(t *testing.T) (*portal.Portal, *fakeAPI, string) {
	t.Helper()
	dir := t.TempDir()
	api := &fakeAPI{}
	p, err := portal.New(portal.Config{API: api, Tokens: &fakeMinter{}, DataDir: dir, SubscriptionID: "sub"})
	if err != nil {
		t.Fatal(err)
	}
	return p, api, dir
}

func TestSignIn(t *testing.T) {
	p, _, dir := newPortal(t)
	t.Run("cookie", func(t *testing.T) {
		c := signIn(t, p, dir)
		if !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Path != "/" || c.Domain != "" {
			t.Fatalf("cookie %+v: want Secure, HttpOnly, SameSite=Strict, Path=/, no Domain", c)
		}
	})
	t.Run("link works once", func(t *testing.T) {
		link, err := portal.NewSignInLink(dir, "https://127.0.0.1:8443/")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(link, "https://127.0.0.1:8443/portal/signin?code=") {
			t.Fatalf("link %q", link)
		}
		if w := serve(p, httptest.NewRequest(http.MethodGet, link, nil)); w.Code != http.StatusSeeOther {
			t.Fatalf("first use: %d", w.Code)
		}
		if w := serve(p, httptest.NewRequest(http.MethodGet, link, nil)); w.Code != http.StatusForbidden || w.Header().Get("Set-Cookie") != "" {
			t.Fatalf("second use: %d, cookie %q; want 403 without a cookie", w.Code, w.Header().Get("Set-Cookie"))
		}
	})
	t.Run("expired", func(t *testing.T) {
		link, _ := portal.NewSignInLink(dir, "https://127.0.0.1:8443")
		u, _ := url.Parse(link)
		ents, _ := os.ReadDir(filepath.Join(dir, portal.SignInDir))
		old := time.Now().Add(-portal.CodeTTL - time.Minute)
		for _, e := range ents {
			_ = os.Chtimes(filepath.Join(dir, portal.SignInDir, e.Name()), old, old)
		}
		if w := serve(p, httptest.NewRequest(http.MethodGet, u.String(), nil)); w.Code != http.StatusForbidden {
			t.Fatalf("expired code: %d, want 403", w.Code)
		}
		if ents, _ := os.ReadDir(filepath.Join(dir, portal.SignInDir)); len(ents) != 0 {
			t.Fatalf("expired codes left: %v", ents)
		}
	})
	t.Run("unknown code", func(t *testing.T) {
		for _, q := range []string{"", "?code=", "?code=nope", "?code=../../identity.json"} {
			if w := serve(p, httptest.NewRequest(http.MethodGet, "https://127.0.0.1:8443/portal/signin"+q, nil)); w.Code != http.StatusForbidden {
				t.Fatalf("%q: %d, want 403", q, w.Code)
			}
		}
	})
	t.Run("not loopback", func(t *testing.T) {
		link, _ := portal.NewSignInLink(dir, "https://127.0.0.1:8443")
		r := httptest.NewRequest(http.MethodGet, link, nil)
		r.RemoteAddr = "192.0.2.7:5555"
		if w := serve(p, r); w.Code != http.StatusForbidden {
			t.Fatalf("remote peer: %d, want 403", w.Code)
		}
		// The refused attempt did not spend the code.
		if w := serve(p, httptest.NewRequest(http.MethodGet, link, nil)); w.Code != http.StatusSeeOther {
			t.Fatalf("loopback after refused remote: %d", w.Code)
		}
	})
}

func TestProxy(t *testing.T) {
	p, api, dir := newPortal(t)
	c := signIn(t, p, dir)
	csrf := csrfOf(t, p, c)
	const path = "/subscriptions/sub/resourcegroups/rg?api-version=2021-04-01"
	req := func(method string, mod func(*http.Request)) *httptest.ResponseRecorder {
		api.got = nil
		r := httptest.NewRequest(method, "https://127.0.0.1:8443/portal/api"+path, strings.NewReader(`{"location":"eastus"}`))
		mod(r)
		return serve(p, r)
	}
	withAll := func(r *http.Request) { r.AddCookie(c); r.Header.Set(portal.CSRFHeader, csrf) }
	t.Run("forwards with bearer", func(t *testing.T) {
		w := req(http.MethodPut, func(r *http.Request) {
			withAll(r)
			r.Header.Set("Origin", "https://127.0.0.1:8443")
			r.Header.Set("Sec-Fetch-Site", "same-origin")
		})
		if w.Code != http.StatusOK || api.got == nil {
			t.Fatalf("%d %s", w.Code, w.Body)
		}
		g := api.got
		if g.URL.Path != "/subscriptions/sub/resourcegroups/rg" || g.URL.RawQuery != "api-version=2021-04-01" || g.Method != http.MethodPut {
			t.Fatalf("forwarded %s %s?%s", g.Method, g.URL.Path, g.URL.RawQuery)
		}
		if g.Header.Get("Authorization") != "Bearer tok-1" || g.Header.Get("Cookie") != "" || g.Header.Get(portal.CSRFHeader) != "" {
			t.Fatalf("forwarded headers %v", g.Header)
		}
		if b, _ := io.ReadAll(g.Body); string(b) != `{"location":"eastus"}` {
			t.Fatalf("forwarded body %q", b)
		}
		// The session's token is reused while it is fresh.
		req(http.MethodGet, withAll)
		if api.got.Header.Get("Authorization") != "Bearer tok-1" {
			t.Fatalf("second request minted again: %s", api.got.Header.Get("Authorization"))
		}
	})
	for _, tc := range []struct {
		name string
		mod  func(*http.Request)
		want int
	}{
		{"no cookie", func(r *http.Request) { r.Header.Set(portal.CSRFHeader, csrf) }, http.StatusUnauthorized},
		{"no csrf header", func(r *http.Request) { r.AddCookie(c) }, http.StatusForbidden},
		{"wrong csrf header", func(r *http.Request) { r.AddCookie(c); r.Header.Set(portal.CSRFHeader, csrf+"x") }, http.StatusForbidden},
		{"form post", func(r *http.Request) {
			r.AddCookie(c)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}, http.StatusForbidden},
		{"cross origin", func(r *http.Request) { withAll(r); r.Header.Set("Origin", "https://attacker.example") }, http.StatusForbidden},
		{"plain http origin", func(r *http.Request) { withAll(r); r.Header.Set("Origin", "http://127.0.0.1:8443") }, http.StatusForbidden},
		{"cross site", func(r *http.Request) { withAll(r); r.Header.Set("Sec-Fetch-Site", "cross-site") }, http.StatusForbidden},
		{"same site other origin", func(r *http.Request) { withAll(r); r.Header.Set("Sec-Fetch-Site", "same-site") }, http.StatusForbidden},
		{"forged cookie", func(r *http.Request) {
			r.AddCookie(&http.Cookie{Name: portal.CookieName, Value: "forged"})
			r.Header.Set(portal.CSRFHeader, csrf)
		}, http.StatusUnauthorized},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, m := range []string{http.MethodPost, http.MethodPut, http.MethodDelete, http.MethodGet} {
				w := req(m, tc.mod)
				if w.Code != tc.want || api.got != nil {
					t.Fatalf("%s: %d (forwarded: %v) %s, want %d and nothing forwarded", m, w.Code, api.got != nil, w.Body, tc.want)
				}
			}
		})
	}
	t.Run("sign out", func(t *testing.T) {
		r := httptest.NewRequest(http.MethodPost, "https://127.0.0.1:8443/portal/signout", nil)
		r.AddCookie(c)
		if w := serve(p, r); w.Code != http.StatusForbidden {
			t.Fatalf("sign-out without csrf: %d", w.Code)
		}
		r = httptest.NewRequest(http.MethodPost, "https://127.0.0.1:8443/portal/signout", nil)
		withAll(r)
		if w := serve(p, r); w.Code != http.StatusNoContent {
			t.Fatalf("sign-out: %d", w.Code)
		}
		if w := req(http.MethodGet, withAll); w.Code != http.StatusUnauthorized {
			t.Fatalf("after sign-out: %d, want 401", w.Code)
		}
	})
}

func TestAssets(t *testing.T) {
	p, _, _ := newPortal(t)
	for _, tc := range []struct{ path, ctype, contains string }{
		{"/portal/", "text/html", `src="/portal/assets/app.js"`},
		{"/portal/assets/app.js", "javascript", "X-Nimbus-Csrf"},
		{"/portal/assets/app.css", "text/css", ":root"},
	} {
		w := serve(p, httptest.NewRequest(http.MethodGet, "https://127.0.0.1:8443"+tc.path, nil))
		if w.Code != http.StatusOK || !strings.Contains(w.Header().Get("Content-Type"), tc.ctype) || !strings.Contains(w.Body.String(), tc.contains) {
			t.Fatalf("%s: %d %q", tc.path, w.Code, w.Header().Get("Content-Type"))
		}
		if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Fatalf("%s: CSP %q", tc.path, csp)
		}
	}
	if w := serve(p, httptest.NewRequest(http.MethodGet, "https://127.0.0.1:8443/portal", nil)); w.Code != http.StatusMovedPermanently {
		t.Fatalf("/portal: %d", w.Code)
	}
}

// TestNodeMountsPortal drives a real node: the portal answers under
// /portal/, the ARM API everywhere else, and a write through the proxy is
// an ARM write the API then shows.
func TestNodeMountsPortal(t *testing.T) {
	n := armtest.Start(t)
	pool, err := auth.CertPool(n.Dir)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(hc.CloseIdleConnections)
	link, err := portal.NewSignInLink(n.Dir, n.Base)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	var cookie *http.Cookie
	for _, c := range resp.Cookies() {
		if c.Name == portal.CookieName {
			cookie = c
		}
	}
	if resp.StatusCode != http.StatusSeeOther || cookie == nil {
		t.Fatalf("sign-in: %d, cookie %v", resp.StatusCode, cookie)
	}
	do := func(method, path, body, csrf string) (int, []byte) {
		r, _ := http.NewRequest(method, n.Base+path, strings.NewReader(body))
		r.AddCookie(cookie)
		if csrf != "" {
			r.Header.Set(portal.CSRFHeader, csrf)
		}
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, b
	}
	st, b := do(http.MethodGet, "/portal/session", "", "")
	var s struct{ CSRFToken, SubscriptionID string }
	if err := json.Unmarshal(b, &s); st != http.StatusOK || err != nil || s.SubscriptionID != n.Sub {
		t.Fatalf("session: %d %s", st, b)
	}
	rg := "/subscriptions/" + n.Sub + "/resourcegroups/viaportal?api-version=2021-04-01"
	if st, b := do(http.MethodPut, "/portal/api"+rg, `{"location":"eastus"}`, ""); st != http.StatusForbidden {
		t.Fatalf("write without CSRF header: %d %s", st, b)
	}
	if st, _, _ := n.Do(http.MethodGet, rg, nil); st != http.StatusNotFound {
		t.Fatalf("the refused write created the group: %d", st)
	}
	if st, b := do(http.MethodPut, "/portal/api"+rg, `{"location":"eastus"}`, s.CSRFToken); st != http.StatusCreated {
		t.Fatalf("write through the proxy: %d %s", st, b)
	}
	if st, _, b := n.Do(http.MethodGet, rg, nil); st != http.StatusOK || !strings.Contains(string(b), "viaportal") {
		t.Fatalf("API after proxied write: %d %s", st, b)
	}
	// The cookie alone is no ARM credential.
	if st, b := do(http.MethodGet, rg, "", ""); st != http.StatusUnauthorized {
		t.Fatalf("ARM with the session cookie only: %d %s", st, b)
	}
}
