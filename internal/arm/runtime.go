package arm

import "context"

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
}

// Runtime returns the server's runtime, or nil.
func (s *Server) Runtime() Runtime { return s.cfg.Runtime }
