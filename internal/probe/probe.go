// Package probe runs load-balancer health probes with Azure's semantics and
// owns backend health: the data-plane engine follows it (Feed), the API and
// the scale-set repairs read it (StatusOf). Nobody keeps a copy.
//
// Semantics (reference: azure-behavior.md §1.6):
//   - Tcp: healthy when the TCP handshake completes; the prober then closes
//     the connection (FIN). A refused or timed-out connect is a failure.
//   - Http/Https: GET RequestPath on a fresh connection; exactly 200 is
//     healthy. Any other status, or a reset (RST, refused connection), marks
//     the backend down at once, whatever the threshold. A timeout is an
//     ordinary failure. Redirects are not followed (a 301 is "not 200").
//   - Https: the backend's certificate is not verified against any trust
//     store. Azure probes instances by address, with no hostname to check and
//     no customer CA to trust; nimbus does the same, so a self-signed
//     certificate on an instance keeps it healthy, as it does in Azure.
//   - Every attempt times out after min(Interval, 30 s).
//   - Threshold: the number of consecutive results needed to flip a known
//     state. A backend starts unknown, which the data plane treats as up; its
//     first result sets its state at once (one success after boot means up,
//     as in Azure; one failure takes it out, so a dead instance does not
//     receive traffic for Threshold intervals).
//
// The prober runs exactly the probes it is given (Config.Probes lists only
// those a rule uses) and keeps no state across a process restart.
package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"sync"
	"syscall"
	"time"

	"nimbus/internal/dataplane"
)

// MaxTimeout caps one probe attempt (Azure: timeout = min(interval, 30 s)).
const MaxTimeout = 30 * time.Second

// Dialer opens probe connections. The kernel engine supplies one that dials
// from inside its network namespace.
type Dialer interface {
	DialContext(ctx context.Context, network, address string) (net.Conn, error)
}

// Observer receives every probe result (for metrics). It must not block.
type Observer interface {
	ProbeResult(probeID, backendID string, up bool)
}

// Options configure a Prober. The zero value works: a plain net.Dialer, a
// discarding logger, no observer.
type Options struct {
	// Dialer opens probe connections; nil means a net.Dialer.
	Dialer Dialer
	// Logger logs state flips; nil discards.
	Logger *slog.Logger
	// Observer, when set, sees every individual result.
	Observer Observer
}

// Status is the state of one probe's view of one backend, for the API.
type Status struct {
	ProbeID   string
	BackendID string
	// Known is false until the first result; an unknown backend counts as up.
	Known bool
	Up    bool
	// Reason explains the last result, e.g. "http status 500",
	// "tcp handshake completed", "dial: connection refused".
	Reason string
	// Since is when Up last changed (zero while unknown).
	Since time.Time
	// LastProbe is when the last result arrived.
	LastProbe time.Time
}

// Prober runs health probes. It is safe for concurrent use.
type Prober struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // target workers

	mu      sync.Mutex
	targets map[dataplane.HealthKey]*target
	feeds   map[chan struct{}]struct{} // one wake-up channel per running Feed
	closed  bool
}

// target is one (probe, backend) pair with its worker goroutine.
type target struct {
	spec   spec
	cancel context.CancelFunc

	// Guarded by Prober.mu.
	st     Status
	streak int // consecutive results opposite to st.Up
}

// spec is what a worker needs; a change restarts the worker.
type spec struct {
	protocol  dataplane.ProbeProtocol
	addr      string // DialIP:Port
	path      string
	interval  time.Duration
	threshold int
	// denied: a network security group denies the probe (Probe.Denied):
	// every attempt fails without a packet sent.
	denied bool
}

// New returns a Prober running no probes. Call Update to start probes, Feed
// to follow their health, and Close to stop them.
func New(opts Options) *Prober {
	if opts.Dialer == nil {
		opts.Dialer = &net.Dialer{}
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Prober{
		opts:    opts,
		ctx:     ctx,
		cancel:  cancel,
		targets: map[dataplane.HealthKey]*target{},
		feeds:   map[chan struct{}]struct{}{},
	}
	return p
}

// Update makes the running probes match probes: targets (probe, backend) not
// listed stop, new ones start, and unchanged ones keep running with their
// state. A target whose parameters changed (port, path, interval, address…)
// restarts its schedule but keeps its last state until a new result arrives.
// Update does not block on probes.
func (p *Prober) Update(probes []dataplane.Probe) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	want := map[dataplane.HealthKey]spec{}
	for _, pr := range probes {
		for _, b := range pr.Backends {
			s := specOf(pr, b)
			s.denied = slices.Contains(pr.Denied, b.ID)
			want[dataplane.HealthKey{ProbeID: pr.ID, BackendID: b.ID}] = s
		}
	}
	changed := false
	for k, t := range p.targets {
		if s, ok := want[k]; !ok || s != t.spec {
			t.cancel()
			if !ok {
				delete(p.targets, k)
				changed = true
			}
		}
	}
	for k, s := range want {
		old, ok := p.targets[k]
		if ok && old.spec == s {
			continue
		}
		t := &target{spec: s}
		t.st = Status{ProbeID: k.ProbeID, BackendID: k.BackendID}
		if ok {
			t.st, t.streak = old.st, 0
		} else {
			changed = true
		}
		var ctx context.Context
		ctx, t.cancel = context.WithCancel(p.ctx)
		p.targets[k] = t
		p.wg.Add(1)
		go p.run(ctx, k, t)
	}
	if changed {
		p.kick()
	}
}

func specOf(pr dataplane.Probe, b dataplane.Backend) spec {
	dial := b.DialIP
	if !dial.IsValid() {
		dial = b.IP
	}
	th := max(pr.Threshold, 1)
	iv := pr.Interval
	if iv <= 0 {
		iv = 15 * time.Second
	}
	return spec{
		protocol:  pr.Protocol,
		addr:      netip.AddrPortFrom(dial, pr.Port).String(),
		path:      pr.RequestPath,
		interval:  iv,
		threshold: th,
	}
}

// Health returns the current snapshot: one entry per target with a known
// state.
func (p *Prober) Health() dataplane.Health {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.healthLocked()
}

func (p *Prober) healthLocked() dataplane.Health {
	h := make(dataplane.Health, len(p.targets))
	for k, t := range p.targets {
		if t.st.Known {
			h[k] = t.st.Up
		}
	}
	return h
}

// Status returns the state of every target, sorted by probe then backend ID.
func (p *Prober) Status() []Status {
	p.mu.Lock()
	out := make([]Status, 0, len(p.targets))
	for _, t := range p.targets {
		out = append(out, t.st)
	}
	p.mu.Unlock()
	sort.Slice(out, func(i, j int) bool {
		if out[i].ProbeID != out[j].ProbeID {
			return out[i].ProbeID < out[j].ProbeID
		}
		return out[i].BackendID < out[j].BackendID
	})
	return out
}

// StatusOf returns the state of one probe's view of one backend (ids as in
// the Config), and false when that target is not probed.
func (p *Prober) StatusOf(probeID, backendID string) (Status, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	t, ok := p.targets[dataplane.HealthKey{ProbeID: probeID, BackendID: backendID}]
	if !ok {
		return Status{}, false
	}
	return t.st, true
}

// Close stops every probe and waits for the prober's goroutines to end.
// Running Feeds return after their current call.
func (p *Prober) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	return nil
}

// Feed calls fn with the complete health snapshot at once, then again after
// every change of any backend's state (a target added or removed included),
// until ctx ends or the prober is closed. It runs fn on the caller's
// goroutine, one call at a time, with ctx; changes during a call coalesce
// into one more call with the latest snapshot, so a slow fn never blocks the
// probes and never falls behind by more than one snapshot. fn owns the
// snapshot it gets. Several Feeds may run at once; each sees every change.
// The data-plane engine follows health this way:
//
//	p.Feed(ctx, func(ctx context.Context, h dataplane.Health) { _ = engine.SetHealth(ctx, h) })
func (p *Prober) Feed(ctx context.Context, fn func(ctx context.Context, h dataplane.Health)) {
	wake := make(chan struct{}, 1)
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.feeds[wake] = struct{}{}
	p.mu.Unlock()
	defer func() {
		p.mu.Lock()
		delete(p.feeds, wake)
		p.mu.Unlock()
	}()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.ctx.Done():
			return
		default:
		}
		fn(ctx, p.Health())
		select {
		case <-ctx.Done():
			return
		case <-p.ctx.Done():
			return
		case <-wake:
		}
	}
}

// kick wakes every Feed. Called with p.mu held; never blocks.
func (p *Prober) kick() {
	for wake := range p.feeds {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
}

// run probes one target every interval until ctx ends.
func (p *Prober) run(ctx context.Context, k dataplane.HealthKey, t *target) {
	defer p.wg.Done()
	tick := time.NewTicker(t.spec.interval)
	defer tick.Stop()
	for {
		r := p.check(ctx, t.spec)
		if ctx.Err() != nil {
			return
		}
		p.record(k, t, r)
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// result is one probe attempt's outcome.
type result struct {
	up bool
	// now marks the backend down at once, whatever the threshold (HTTP
	// non-200 or reset).
	now    bool
	reason string
}

func (p *Prober) record(k dataplane.HealthKey, t *target, r result) {
	if p.opts.Observer != nil {
		p.opts.Observer.ProbeResult(k.ProbeID, k.BackendID, r.up)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.targets[k] != t {
		return // replaced or removed meanwhile
	}
	now := time.Now()
	st := &t.st
	st.Reason, st.LastProbe = r.reason, now
	flip := false
	switch {
	case !st.Known:
		flip = true
	case st.Up == r.up:
		t.streak = 0
	case !r.up && r.now:
		flip = true
	default:
		t.streak++
		flip = t.streak >= t.spec.threshold
	}
	if !flip {
		return
	}
	was, known := st.Up, st.Known
	st.Known, st.Up, st.Since, t.streak = true, r.up, now, 0
	p.opts.Logger.Info("probe state", "probe", k.ProbeID, "backend", k.BackendID, "up", r.up, "reason", r.reason)
	if !known || was != r.up {
		p.kick()
	}
}

// check runs one attempt.
func (p *Prober) check(ctx context.Context, s spec) result {
	if s.denied {
		return result{reason: "denied by a network security group (source AzureLoadBalancer)"}
	}
	ctx, cancel := context.WithTimeout(ctx, min(s.interval, MaxTimeout))
	defer cancel()
	switch s.protocol {
	case dataplane.ProbeHTTP, dataplane.ProbeHTTPS:
		return p.checkHTTP(ctx, s)
	default:
		return p.checkTCP(ctx, s)
	}
}

func (p *Prober) checkTCP(ctx context.Context, s spec) result {
	c, err := p.opts.Dialer.DialContext(ctx, "tcp", s.addr)
	if err != nil {
		return result{reason: "dial: " + errText(err)}
	}
	_ = c.Close()
	return result{up: true, reason: "tcp handshake completed"}
}

func (p *Prober) checkHTTP(ctx context.Context, s spec) result {
	scheme := "http"
	tr := &http.Transport{
		DialContext:        p.opts.Dialer.DialContext,
		DisableKeepAlives:  true,
		DisableCompression: true,
		Proxy:              nil,
	}
	if s.protocol == dataplane.ProbeHTTPS {
		scheme = "https"
		// Deliberate: Azure does not check an instance's certificate against
		// a trust store (see the package comment).
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} //nolint:gosec
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{
		Transport:     tr,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	path := s.path
	if path == "" || path[0] != '/' {
		path = "/" + path
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, scheme+"://"+s.addr+path, nil)
	if err != nil {
		return result{reason: "request: " + err.Error(), now: true}
	}
	req.Header.Set("User-Agent", "Load Balancer Agent")
	resp, err := client.Do(req)
	if err != nil {
		return result{reason: "http: " + errText(err), now: isReset(err)}
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return result{reason: "http status " + strconv.Itoa(resp.StatusCode), now: true}
	}
	return result{up: true, reason: "http status 200"}
}

// isReset reports a refused or reset connection.
func isReset(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET)
}

func errText(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, syscall.ETIMEDOUT):
		return "timeout"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timeout"
	}
	return fmt.Sprint(err)
}
