package arm

import (
	"context"
	"net/http"
)

// Runtime is the running system behind the API: the scale-set controller and
// the health prober. A Server without one (Config.Runtime nil, as in
// API-only tests) answers from the store alone: operations that would wait
// for instances finish when the write commits, and health is unknown.
type Runtime interface {
	// WaitScaleSet blocks until the scale set vmssID has converged on its
	// model (instances created, started, stopped or removed as asked), or
	// is gone with all its instances; it returns the error that stops
	// progress, or ctx's.
	WaitScaleSet(ctx context.Context, vmssID string) error
	// BackendHealth reports a health probe's view of one backend ipconfig
	// (ids in any case): up, whether the prober has an answer yet, and the
	// reason of the last result.
	BackendHealth(probeID, backendID string) (up, known bool, reason string)
	// Info describes the running system (driver, data plane, addresses) for
	// GET /nimbus/info.
	Info() any
}

// Runtime returns the server's runtime, or nil.
func (s *Server) Runtime() Runtime { return s.cfg.Runtime }

// registerRuntime registers the routes of runtime.go.
func (s *Server) registerRuntime() {
	// GET /nimbus/info (authenticated, no api-version): the mode nimbus
	// runs in and its address plan, as `nimbus serve` printed at start.
	s.Handle(http.MethodGet, "/nimbus/info", nil, func(ctx context.Context, r *Request) (*Response, error) {
		body := map[string]any{"runtime": nil, "subscriptionId": s.cfg.Identity.SubscriptionID,
			"tenantId": s.cfg.Identity.TenantID, "publicPool": s.cfg.PublicPool.String()}
		if rt := s.Runtime(); rt != nil {
			body["runtime"] = rt.Info()
		}
		unserved, err := s.unservedInfo(ctx)
		if err != nil {
			return nil, err
		}
		body["unservedTypes"] = unserved
		return JSON(http.StatusOK, body), nil
	})
}
