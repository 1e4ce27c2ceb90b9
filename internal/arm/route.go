package arm

import (
	"context"
	"strings"
)

// HandlerFunc serves one routed ARM request. It returns the response to send
// or an error, which the server maps to an ARM error response (see
// errorResponse); handlers never write error bodies themselves.
type HandlerFunc func(ctx context.Context, r *Request) (*Response, error)

// route is one registered method + path pattern.
type route struct {
	method   string
	segs     []string // literal segments lower-cased; "{name}" for parameters
	params   []string // parameter name per segment ("" for literals)
	literals int
	versions Versions
	// anyVersion: the route accepts every api-version of Resource Manager
	// and of the registered namespaces (Server.allVersions).
	anyVersion bool
	// public: the route needs no bearer token (HandlePublic).
	public bool
	// versionCode is the error code for an unknown api-version.
	versionCode string
	handler     HandlerFunc
}

// Handle registers h for method and pattern. Pattern segments in braces are
// parameters (Request.Param); other segments match case-insensitively. vs
// lists the accepted api-versions; nil means the request needs no
// api-version. A more specific pattern (more literal segments) wins over a
// less specific one. Handle must be called before the server serves requests.
func (s *Server) Handle(method, pattern string, vs Versions, h HandlerFunc) {
	rt := &route{method: method, versions: vs, handler: h, versionCode: "InvalidApiVersionParameter"}
	for _, seg := range splitSegments(pattern) {
		if strings.HasPrefix(seg, "{") && strings.HasSuffix(seg, "}") {
			rt.segs = append(rt.segs, "{}")
			rt.params = append(rt.params, strings.ToLower(seg[1:len(seg)-1]))
			continue
		}
		rt.segs = append(rt.segs, strings.ToLower(seg))
		rt.params = append(rt.params, "")
		rt.literals++
		if strings.EqualFold(seg, "providers") {
			rt.versionCode = "NoRegisteredProviderFound"
		}
	}
	s.routes = append(s.routes, rt)
}

// HandleAnyVersion registers h like Handle, accepting any api-version of
// Resource Manager itself or of a registered namespace (RegisterNamespace),
// as operation status URLs do: they echo the api-version of the request
// that started the operation.
func (s *Server) HandleAnyVersion(method, pattern string, h HandlerFunc) {
	s.Handle(method, pattern, Versions{}, h)
	s.routes[len(s.routes)-1].anyVersion = true
}

// HandlePublic registers h like Handle with no api-version, and serves it
// without a bearer token: for documents clients fetch before or without
// signing in, such as the VM image alias document az reads
// (--endpoint-vm-image-alias-doc). Such a handler must serve only public
// information.
func (s *Server) HandlePublic(method, pattern string, h HandlerFunc) {
	s.Handle(method, pattern, nil, h)
	s.routes[len(s.routes)-1].public = true
}

// splitSegments splits a path into non-empty segments, collapsing "//".
func splitSegments(p string) []string {
	parts := strings.Split(p, "/")
	out := parts[:0]
	for _, s := range parts {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// match finds the route for method and segs. It reports pathMatched when
// some route matched the path but not the method.
func (s *Server) match(method string, segs []string) (best *route, params map[string]string, pathMatched bool) {
	for _, rt := range s.routes {
		if len(rt.segs) != len(segs) {
			continue
		}
		ok := true
		for i, want := range rt.segs {
			if want != "{}" && !strings.EqualFold(want, segs[i]) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		if rt.method != method {
			pathMatched = true
			continue
		}
		if best == nil || rt.literals > best.literals {
			best = rt
		}
	}
	if best == nil {
		return nil, nil, pathMatched
	}
	params = make(map[string]string, len(best.params))
	for i, p := range best.params {
		if p != "" {
			params[p] = segs[i]
		}
	}
	return best, params, pathMatched
}
