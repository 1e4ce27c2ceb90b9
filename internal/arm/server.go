package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"reflect"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"nimbus/internal/auth"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Tokens mints and verifies bearer tokens (auth.Issuer implements it).
type Tokens interface {
	// Mint returns a token for audience valid for ttl, and its expiry.
	Mint(audience string, ttl time.Duration) (string, time.Time, error)
	// Verify checks a token.
	Verify(token string) (*auth.Claims, error)
}

var _ Tokens = (*auth.Issuer)(nil)

// Config configures a Server. Store, Tokens and Identity are required.
type Config struct {
	// Store holds every resource; the server does not close it.
	Store store.Store
	// Tokens verifies bearer tokens and mints managed-identity tokens.
	Tokens Tokens
	// Identity is the tenant, default subscription and MSI secret.
	Identity auth.Identity
	// PublicPool is the prefix public IP addresses are allocated from
	// (zero: 127.77.0.0/16).
	PublicPool netip.Prefix
	// Logger receives request errors; nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
	// Runtime is the running system (controllers, prober); nil serves the
	// API from the store alone. See Runtime.
	Runtime Runtime
	// TrustedUIDs are the local users (besides root, always trusted) whose
	// loopback connections get managed-identity tokens: node sets the
	// owner of the data directory. Empty: root only.
	TrustedUIDs []uint32
	// UnservedTypes is what happens to resources of types nimbus does not
	// serve: UnservedRefuse ("" too) refuses them, UnservedStore stores
	// them as generic resources without behaviour (unserved.go). A
	// resource group's UnservedGroupTag overrides it.
	UnservedTypes string
}

// DefaultPublicPool is the public address pool used when Config.PublicPool is zero.
var DefaultPublicPool = netip.MustParsePrefix("127.77.0.0/16")

// Server is nimbus's ARM front door: an http.Handler serving the ARM API,
// the managed-identity endpoint and cloud metadata. Create it with New; it is
// safe for concurrent use once serving.
type Server struct {
	cfg    Config
	st     store.Store
	log    *slog.Logger
	now    func() time.Time
	routes []*route
	kinds  []*Kind
	// namespaces are the resource provider namespaces served, in
	// registration order (RegisterNamespace).
	namespaces []namespace
	// allVersions is the union of Resource Manager's and every registered
	// namespace's api-versions, newest first (HandleAnyVersion routes).
	allVersions Versions
	// Ops manages long-running operation records.
	Ops *Ops
	// signIns rate-limits failed service-principal sign-ins (oauth.go).
	signIns signInLimiter
	// writeMu serialises mutating requests on this node so multi-key
	// validations (references, allocations) see a stable store; the store's
	// expected revisions still guard against writers elsewhere.
	writeMu sync.Mutex
}

// New returns a server that serves Resource Manager itself: subscriptions,
// resource groups, providers, generic /resources, operations and
// /nimbus/info. Resource providers add their types with RegisterNamespace,
// RegisterKind and Handle before the server serves requests.
func New(cfg Config) (*Server, error) {
	if cfg.Store == nil || cfg.Tokens == nil || cfg.Identity.TenantID == "" || cfg.Identity.SubscriptionID == "" {
		return nil, errors.New("arm: config needs Store, Tokens and Identity")
	}
	if !ValidUnservedMode(cfg.UnservedTypes) {
		return nil, fmt.Errorf("arm: unserved types %q: want %s or %s", cfg.UnservedTypes, UnservedRefuse, UnservedStore)
	}
	if !cfg.PublicPool.IsValid() {
		cfg.PublicPool = DefaultPublicPool
	}
	s := &Server{cfg: cfg, st: cfg.Store, log: cfg.Logger, now: cfg.Now}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	s.Ops = newOps(s.st, s.log, s.now)
	s.allVersions = NewVersions(SubscriptionVersions...)
	s.RegisterNamespace("Microsoft.Resources", ResourcesVersions)
	s.registerLro()
	s.registerProviders()
	s.registerResourcegroups()
	s.registerResources()
	s.registerRuntime()
	s.registerSubscriptions()
	return s, nil
}

// Store returns the server's store.
func (s *Server) Store() store.Store { return s.st }

// Identity returns the server's tenant and default subscription.
func (s *Server) Identity() auth.Identity { return s.cfg.Identity }

// PublicPool returns the prefix public addresses come from.
func (s *Server) PublicPool() netip.Prefix { return s.cfg.PublicPool }

// Logger returns the server's logger.
func (s *Server) Logger() *slog.Logger { return s.log }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(rw http.ResponseWriter, hr *http.Request) {
	start := time.Now()
	w := &statusWriter{ResponseWriter: rw, status: http.StatusOK}
	defer func() {
		if s.log.Enabled(hr.Context(), slog.LevelDebug) {
			s.log.Debug("request", slog.String("method", hr.Method), slog.String("path", hr.URL.Path),
				slog.Int("status", w.status), slog.Duration("took", time.Since(start)))
		}
	}()
	reqID := uuid.NewString()
	w.Header().Set("x-ms-request-id", reqID)
	w.Header().Set("x-ms-correlation-request-id", reqID)
	if c := hr.Header.Get("x-ms-client-request-id"); c != "" {
		w.Header().Set("x-ms-client-request-id", c)
	}
	segs := splitSegments(hr.URL.Path)
	// Unauthenticated endpoints.
	switch {
	case len(segs) == 2 && strings.EqualFold(segs[0], "metadata") && strings.EqualFold(segs[1], "endpoints"):
		s.serveMetadata(w, hr)
		return
	case len(segs) == 2 && strings.EqualFold(segs[0], "msi") && strings.EqualFold(segs[1], "token"):
		s.serveMSI(w, hr)
		return
	}
	if discovery, token := oauthRoute(segs); discovery {
		s.serveOpenIDConfiguration(w, hr, segs)
		return
	} else if token {
		s.serveOAuthToken(w, hr)
		return
	}
	if err := s.authenticate(hr); err != nil {
		s.writeError(w, hr, err)
		return
	}
	rt, params, pathMatched := s.match(hr.Method, segs)
	if rt == nil {
		if pathMatched {
			s.writeError(w, hr, resource.Errorf(http.StatusMethodNotAllowed, "HttpMethodNotAllowed",
				"The HTTP method '%s' is not supported at '%s'.", hr.Method, hr.URL.Path))
			return
		}
		if s.tryUnserved(w, hr, segs) {
			return
		}
		s.writeError(w, hr, notFoundRoute(segs, hr))
		return
	}
	req := &Request{HTTP: hr, Segments: segs, params: params, server: s}
	if rt.anyVersion {
		cp := *rt
		cp.versions = s.allVersions
		rt = &cp
	}
	if rt.versions != nil {
		req.APIVersion = req.Query("api-version")
		if req.APIVersion == "" {
			s.writeError(w, hr, resource.BadRequest("MissingApiVersionParameter",
				"The api-version query parameter (?api-version=) is required for all requests."))
			return
		}
		if !rt.versions.Has(req.APIVersion) {
			s.writeError(w, hr, badVersion(rt, req, segs))
			return
		}
	}
	b, err := readBody(hr)
	if err != nil {
		s.writeError(w, hr, err)
		return
	}
	req.Body = b
	resp, err := s.call(hr.Context(), rt, req)
	if err != nil {
		s.writeError(w, hr, err)
		return
	}
	s.writeResponse(w, hr, resp)
}

// tryUnserved serves a request no route matched as a stored unserved
// resource when the opt-in applies (unserved.go); false: not handled.
func (s *Server) tryUnserved(w http.ResponseWriter, hr *http.Request, segs []string) bool {
	b, err := readBody(hr)
	if err != nil {
		s.writeError(w, hr, err)
		return true
	}
	resp, handled, err := s.serveUnserved(hr.Context(), hr, segs, b)
	if !handled {
		return false
	}
	if err != nil {
		s.writeError(w, hr, err)
		return true
	}
	s.writeResponse(w, hr, resp)
	return true
}

// readBody reads a request body of at most maxBody bytes.
func readBody(hr *http.Request) ([]byte, error) {
	if hr.Body == nil {
		return nil, nil
	}
	b, err := io.ReadAll(io.LimitReader(hr.Body, maxBody+1))
	if err != nil {
		return nil, resource.BadRequest("InvalidRequestContent", "The request body could not be read: %v.", err)
	}
	if len(b) > maxBody {
		return nil, resource.Errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request body exceeds %d bytes.", maxBody)
	}
	return b, nil
}

// writeResponse writes a handler's response.
func (s *Server) writeResponse(w http.ResponseWriter, hr *http.Request, resp *Response) {
	for k, v := range resp.Header {
		w.Header()[k] = v
	}
	if resp.Body == nil {
		w.WriteHeader(resp.Status)
		return
	}
	if hr.Method == http.MethodHead {
		w.WriteHeader(resp.Status)
		return
	}
	writeJSON(w, resp.Status, resp.Body)
}

// statusWriter records the status code for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// call runs a handler, turning a panic into a 500 so one bad request never takes the server down.
func (s *Server) call(ctx context.Context, rt *route, req *Request) (resp *Response, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("arm: handler panic: %v", p)
		}
	}()
	resp, err = rt.handler(ctx, req)
	if err == nil && resp == nil {
		err = errors.New("arm: handler returned no response")
	}
	return resp, err
}

func badVersion(rt *route, req *Request, segs []string) error {
	supported := strings.Join(rt.versions, ", ")
	if rt.versionCode == "NoRegisteredProviderFound" {
		typ := ""
		for i, s := range segs {
			if strings.EqualFold(s, "providers") && i+2 < len(segs) {
				typ = segs[i+2]
			}
		}
		return resource.BadRequest("NoRegisteredProviderFound",
			"No registered resource provider found for location 'global' and API version '%s' for type '%s'. The supported api-versions are '%s'.",
			req.APIVersion, typ, supported)
	}
	return resource.BadRequest("InvalidApiVersionParameter",
		"The api-version '%s' is invalid. The supported versions are '%s'.", req.APIVersion, supported)
}

func notFoundRoute(segs []string, hr *http.Request) error {
	for i := len(segs) - 1; i >= 0; i-- {
		if strings.EqualFold(segs[i], "providers") && i+2 < len(segs) {
			// The whole type, child segments included
			// ('virtualMachineScaleSets/extensions'), as Azure names it.
			types := []string{segs[i+2]}
			for j := i + 4; j < len(segs); j += 2 {
				types = append(types, segs[j])
			}
			return resource.NotFound("InvalidResourceType",
				"The resource type '%s' could not be found in the namespace '%s'.", strings.Join(types, "/"), segs[i+1])
		}
	}
	return resource.NotFound("NotFound", "No HTTP resource was found that matches the request URI '%s'.", hr.URL.Path)
}

// authenticate checks the bearer token of an ARM request.
func (s *Server) authenticate(hr *http.Request) error {
	h := hr.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if h == "" {
		return resource.Errorf(http.StatusUnauthorized, "AuthenticationFailed",
			"Authentication failed. The 'Authorization' header is missing.")
	}
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return resource.Errorf(http.StatusUnauthorized, "AuthenticationFailed",
			"Authentication failed. The 'Authorization' header is not in the 'Bearer <token>' format.")
	}
	if _, err := s.cfg.Tokens.Verify(strings.TrimSpace(tok)); err != nil {
		return resource.Errorf(http.StatusUnauthorized, "InvalidAuthenticationToken",
			"The access token is invalid: %v.", err)
	}
	return nil
}

// isLoopback reports whether the peer of hr is on loopback.
func isLoopback(hr *http.Request) bool {
	host, _, err := net.SplitHostPort(hr.RemoteAddr)
	if err != nil {
		host = hr.RemoteAddr
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// writeJSON writes v with ARM's content type, filling nil collection slices with [].
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(FillEmpty(v))
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"error":{"code":"InternalServerError","message":"The response could not be encoded.","details":[]}}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// FillEmpty returns v with every nil slice field that lacks `omitempty` set
// to an empty slice, so it marshals as []. Byte slices are left alone.
func FillEmpty(v any) any {
	if v == nil {
		return nil
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer {
		p := reflect.New(rv.Type())
		p.Elem().Set(rv)
		fillValue(p.Elem(), 0)
		return p.Interface()
	}
	fillValue(rv, 0)
	return v
}

func fillValue(v reflect.Value, depth int) {
	if depth > 32 {
		return
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			e := v.Elem()
			if v.Kind() == reflect.Interface && e.Kind() != reflect.Pointer {
				if e.Kind() == reflect.Slice || e.Kind() == reflect.Map {
					fillValue(e, depth+1)
				}
				return
			}
			fillValue(e, depth+1)
		}
	case reflect.Struct:
		t := v.Type()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			fv := v.Field(i)
			if fv.Kind() == reflect.Slice && fv.IsNil() && fv.CanSet() && fv.Type().Elem().Kind() != reflect.Uint8 {
				tag := f.Tag.Get("json")
				if tag != "-" && !strings.Contains(tag, "omitempty") {
					fv.Set(reflect.MakeSlice(fv.Type(), 0, 0))
				}
				continue
			}
			fillValue(fv, depth+1)
		}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return
		}
		for i := 0; i < v.Len(); i++ {
			fillValue(v.Index(i), depth+1)
		}
	case reflect.Map:
		for _, k := range v.MapKeys() {
			e := v.MapIndex(k)
			if e.Kind() == reflect.Pointer || e.Kind() == reflect.Interface {
				fillValue(e, depth+1)
			}
		}
	}
}

// Now returns the server's current time (Config.Now, or time.Now).
func (s *Server) Now() time.Time { return s.now() }

// Tokens returns the server's token minter and verifier.
func (s *Server) Tokens() Tokens { return s.cfg.Tokens }

// LockWrites takes the node's write lock, which Apply and Remove hold while
// they read, validate and commit, so multi-key validations see a stable
// store; call the returned function to release it. Handlers that commit a
// raw store transaction of their own (instance actions) take it too.
func (s *Server) LockWrites() (unlock func()) {
	s.writeMu.Lock()
	return s.writeMu.Unlock
}
