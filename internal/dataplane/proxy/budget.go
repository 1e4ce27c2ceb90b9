package proxy

import (
	"log/slog"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
)

// Descriptor reserve: the descriptors DefaultBudget leaves to everything
// but the data plane (the ARM API and its connections, the store, the
// prober, the driver, logs).
const (
	// DefaultReserve is the reserve when the limit allows it.
	DefaultReserve = 4096
	// fdsPerFlow is what one TCP flow holds: the client's socket and the
	// backend's.
	fdsPerFlow = 2
	// frontendShare: one frontend listener may take 1/frontendShare of the
	// total, so one flooded frontend leaves the others room.
	frontendShare = 4
)

// DefaultBudget returns the flow budget for a process whose descriptor
// limit is nofile: the descriptors above the reserve (DefaultReserve, or
// half of a limit below 2×DefaultReserve) divided by the two a TCP flow
// holds, and a quarter of that per frontend listener. Both are at least 1.
func DefaultBudget(nofile uint64) (total, perFrontend int) {
	reserve := uint64(DefaultReserve)
	if nofile < 2*reserve {
		reserve = nofile / 2
	}
	t := (nofile - reserve) / fdsPerFlow
	total = int(min(t, 1<<30))
	return max(total, 1), max(total/frontendShare, 1)
}

// nofileLimit is the process's soft RLIMIT_NOFILE (1024 when unknown).
func nofileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	return uint64(rl.Cur)
}

// Refusal reasons (the Reason label of nimbus_refused_flows_total).
const (
	refusedFrontend = "FrontendLimit"
	refusedTotal    = "TotalLimit"
)

// budget counts the engine's flows against its limits and reports refusals:
// a counter per frontend and reason, and at most one log line per interval.
type budget struct {
	total, perFrontend int64
	log                *slog.Logger
	metrics            *metrics.Metrics
	every              time.Duration

	active atomic.Int64 // flows of the whole engine

	mu      sync.Mutex
	lastLog time.Time
	pending map[string]int // refusals per reason since the last log line
}

// acquire takes one flow from the engine's budget and from the listener's
// (n). It returns "" on success, else the reason of the refusal; then
// nothing was taken.
func (b *budget) acquire(n *atomic.Int64) string {
	if n.Add(1) > b.perFrontend {
		n.Add(-1)
		return refusedFrontend
	}
	if b.active.Add(1) > b.total {
		b.active.Add(-1)
		n.Add(-1)
		return refusedTotal
	}
	return ""
}

// release gives back one flow taken by acquire.
func (b *budget) release(n *atomic.Int64) {
	n.Add(-1)
	b.active.Add(-1)
}

// refused counts one refused flow of listener k and logs, at most once per
// interval, how many were refused since the last line.
func (b *budget) refused(k lkey, c *metrics.FrontendCounters, proto dataplane.Protocol, reason string) {
	c.AddRefused(string(proto), reason)
	now := time.Now()
	b.mu.Lock()
	if b.pending == nil {
		b.pending = map[string]int{}
	}
	b.pending[reason]++
	if now.Sub(b.lastLog) < b.every {
		b.mu.Unlock()
		return
	}
	b.lastLog = now
	pending := b.pending
	b.pending = nil
	b.mu.Unlock()
	b.log.Warn("flows refused: budget reached", "listener", k.String(), "frontendLimit", pending[refusedFrontend],
		"totalLimit", pending[refusedTotal], "maxFlows", b.total, "maxFlowsPerFrontend", b.perFrontend,
		"active", b.active.Load())
}

// updateReaper publishes the TCP listeners and the reaper's period after an
// Apply. Called with e.mu held.
func (e *Engine) updateReaper() {
	var tcp []*tcpListener
	every := min(5*time.Second, idleTick(e.opts.HalfCloseTimeout))
	for k, l := range e.listeners {
		if t, ok := l.(*tcpListener); ok {
			tcp = append(tcp, t)
		}
		if s := e.specs[k]; s != nil {
			every = min(every, idleTick(s.idle))
		}
	}
	e.tcp.Store(&tcp)
	if e.reapEvery.Swap(int64(every)) != int64(every) {
		select {
		case e.reapKick <- struct{}{}:
		default:
		}
	}
}

// reapLoop ends TCP flows that moved no byte in either direction for their
// idle timeout, whatever their directions are doing (a direction blocked
// writing to a peer that never reads is closed like any idle flow), and
// half-closed flows after the half-close timeout: a client that left while
// its backend never answers does not hold two descriptors for minutes.
func (e *Engine) reapLoop() {
	defer e.wg.Done()
	t := time.NewTimer(time.Duration(e.reapEvery.Load()))
	defer t.Stop()
	for {
		select {
		case <-e.ctx.Done():
			return
		case <-e.reapKick:
		case <-t.C:
			now := time.Now().UnixNano()
			for _, l := range *e.tcp.Load() {
				l.reap(now)
			}
		}
		t.Reset(time.Duration(e.reapEvery.Load()))
	}
}
