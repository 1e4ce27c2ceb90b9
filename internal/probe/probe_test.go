package probe

// Address plan: every server listens on 127.0.0.1 with a kernel-chosen port;
// "closed" ports are ones we bound and closed again.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/poll"
)

const fast = 40 * time.Millisecond

// flipServer answers /health with a status that tests can change.
type flipServer struct {
	*httptest.Server
	status atomic.Int32
}

func newFlip(t *testing.T, tls bool) *flipServer {
	f := &flipServer{}
	f.status.Store(200)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/health" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.WriteHeader(int(f.status.Load()))
	})
	if tls {
		f.Server = httptest.NewTLSServer(h)
	} else {
		f.Server = httptest.NewServer(h)
	}
	t.Cleanup(f.Close)
	return f
}

func port(t *testing.T, addr string) uint16 {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return ap.Port()
}

func closedPort(t *testing.T) uint16 {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := port(t, l.Addr().String())
	l.Close()
	return p
}

func backend(id string) dataplane.Backend {
	lo := netip.MustParseAddr("127.0.0.1")
	return dataplane.Backend{ID: id, IP: netip.MustParseAddr("198.18.0.10"), DialIP: lo}
}

func probeOf(id string, proto dataplane.ProbeProtocol, p uint16, path string, threshold int, bs ...dataplane.Backend) dataplane.Probe {
	return dataplane.Probe{ID: id, Protocol: proto, Port: p, RequestPath: path, Interval: fast, Threshold: threshold, Backends: bs}
}

// recorder observes results and snapshots. With p set, each result also
// records whether the target was up when the result came in (its status
// before the result is applied), so tests count the results that changed
// the state however late they look.
type recorder struct {
	p       *Prober
	mu      sync.Mutex
	results []observed
	snaps   []dataplane.Health
}

// observed is one probe result and the target's state when it arrived.
type observed struct{ up, wasUp bool }

func (r *recorder) ProbeResult(probeID, backendID string, up bool) {
	var wasUp bool
	if r.p != nil {
		s, _ := r.p.StatusOf(probeID, backendID)
		wasUp = s.Up
	}
	r.mu.Lock()
	r.results = append(r.results, observed{up: up, wasUp: wasUp})
	r.mu.Unlock()
}

// mark returns the number of results so far, for count.
func (r *recorder) mark() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.results)
}

// count returns how many results after the first from were up (or not)
// and arrived while the target was wasUp.
func (r *recorder) count(from int, up, wasUp bool) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, o := range r.results[from:] {
		if o.up == up && o.wasUp == wasUp {
			n++
		}
	}
	return n
}

func (r *recorder) onChange(_ context.Context, h dataplane.Health) {
	r.mu.Lock()
	r.snaps = append(r.snaps, h)
	r.mu.Unlock()
}

// follow runs p.Feed into r until the test ends.
func (r *recorder) follow(t *testing.T, p *Prober) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		p.Feed(ctx, r.onChange)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
}

// wait bounds every poll.Until of these tests.
const wait = 5 * time.Second

// statusCond is a poll condition on one target's status: nil once ok
// holds, else an error showing the status last seen.
func statusCond(p *Prober, probeID, backendID string, ok func(Status) bool) func() error {
	return func() error {
		if s := status(p, probeID, backendID); !ok(s) {
			return fmt.Errorf("%s/%s status %+v", probeID, backendID, s)
		}
		return nil
	}
}

func known(s Status) bool  { return s.Known }
func isUp(s Status) bool   { return s.Known && s.Up }
func isDown(s Status) bool { return !s.Up }

func status(p *Prober, probeID, backendID string) Status {
	for _, s := range p.Status() {
		if s.ProbeID == probeID && s.BackendID == backendID {
			return s
		}
	}
	return Status{}
}

func TestFirstResult(t *testing.T) {
	okHTTP := newFlip(t, false)
	badHTTP := newFlip(t, false)
	badHTTP.status.Store(503)
	okTLS := newFlip(t, true)
	tcpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tcpL.Close() })
	go func() {
		for {
			c, err := tcpL.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	for _, tc := range []struct {
		name   string
		probe  dataplane.Probe
		up     bool
		reason string
	}{
		{"tcp open", probeOf("p", dataplane.ProbeTCP, port(t, tcpL.Addr().String()), "", 2, backend("b")), true, "tcp handshake completed"},
		{"tcp closed port", probeOf("p", dataplane.ProbeTCP, closedPort(t), "", 2, backend("b")), false, "connection refused"},
		{"http 200", probeOf("p", dataplane.ProbeHTTP, port(t, okHTTP.Listener.Addr().String()), "/health", 2, backend("b")), true, "http status 200"},
		{"http wrong path 404", probeOf("p", dataplane.ProbeHTTP, port(t, okHTTP.Listener.Addr().String()), "/nope", 2, backend("b")), false, "http status 404"},
		{"http 503", probeOf("p", dataplane.ProbeHTTP, port(t, badHTTP.Listener.Addr().String()), "/health", 2, backend("b")), false, "http status 503"},
		{"http closed port", probeOf("p", dataplane.ProbeHTTP, closedPort(t), "/health", 2, backend("b")), false, "connection refused"},
		{"https self-signed 200", probeOf("p", dataplane.ProbeHTTPS, port(t, okTLS.Listener.Addr().String()), "/health", 2, backend("b")), true, "http status 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := New(Options{})
			defer p.Close()
			p.Update([]dataplane.Probe{tc.probe})
			poll.Until(t, wait, "first result", statusCond(p, "p", "b", known))
			s := status(p, "p", "b")
			if s.Up != tc.up || !strings.Contains(s.Reason, tc.reason) {
				t.Errorf("status = up %v reason %q, want up %v reason containing %q", s.Up, s.Reason, tc.up, tc.reason)
			}
			if got, ok := p.Health()[dataplane.HealthKey{ProbeID: "p", BackendID: "b"}]; !ok || got != tc.up {
				t.Errorf("Health = %v,%v", got, ok)
			}
			if one, ok := p.StatusOf("p", "b"); !ok || !one.Known || one.Up != tc.up {
				t.Errorf("StatusOf = %+v,%v, want known, up %v", one, ok, tc.up)
			}
			if _, ok := p.StatusOf("p", "other"); ok {
				t.Error("StatusOf reports a target that is not probed")
			}
		})
	}
}

// TestHTTPNon200IsImmediate: with threshold 3 a 500 takes the backend down
// on the first bad answer, and coming back needs 3 consecutive 200s.
func TestHTTPNon200IsImmediate(t *testing.T) {
	srv := newFlip(t, false)
	rec := &recorder{}
	p := New(Options{Observer: rec})
	defer p.Close()
	rec.p = p // before Update: no result arrives earlier
	rec.follow(t, p)
	p.Update([]dataplane.Probe{probeOf("p", dataplane.ProbeHTTP, port(t, srv.Listener.Addr().String()), "/health", 3, backend("b"))})
	poll.Until(t, wait, "up", statusCond(p, "p", "b", isUp))

	before := rec.mark()
	srv.status.Store(500)
	poll.Until(t, wait, "down", statusCond(p, "p", "b", isDown))
	if fails := rec.count(before, false, true); fails != 1 {
		t.Errorf("went down after %d failed results, want 1 (non-200 is immediate)", fails)
	}

	before = rec.mark()
	srv.status.Store(200)
	poll.Until(t, wait, "up again", statusCond(p, "p", "b", isUp))
	if oks := rec.count(before, true, false); oks != 3 {
		t.Errorf("came back after %d successes, want 3 (threshold)", oks)
	}
	poll.Until(t, wait, "snapshots delivered, the last with p/b up", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		if n := len(rec.snaps); n < 3 || !rec.snaps[n-1][dataplane.HealthKey{ProbeID: "p", BackendID: "b"}] {
			return fmt.Errorf("snapshots %v", rec.snaps)
		}
		return nil
	})
}

// TestTCPThreshold: a TCP failure counts toward the threshold.
func TestTCPThreshold(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var closeOnce sync.Once
	t.Cleanup(func() { closeOnce.Do(func() { l.Close() }) })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	rec := &recorder{}
	p := New(Options{Observer: rec})
	defer p.Close()
	rec.p = p // before Update: no result arrives earlier
	p.Update([]dataplane.Probe{probeOf("p", dataplane.ProbeTCP, port(t, l.Addr().String()), "", 2, backend("b"))})
	poll.Until(t, wait, "up", statusCond(p, "p", "b", isUp))
	before := rec.mark()
	closeOnce.Do(func() { l.Close() })
	poll.Until(t, wait, "down", statusCond(p, "p", "b", isDown))
	if fails := rec.count(before, false, true); fails != 2 {
		t.Errorf("tcp went down after %d failures, want 2", fails)
	}
}

func TestUpdateKeepsAndStops(t *testing.T) {
	srv := newFlip(t, false)
	hp := port(t, srv.Listener.Addr().String())
	rec := &recorder{}
	p := New(Options{})
	defer p.Close()
	rec.follow(t, p)
	pa := probeOf("pa", dataplane.ProbeHTTP, hp, "/health", 1, backend("b1"), backend("b2"))
	p.Update([]dataplane.Probe{pa})
	poll.Until(t, wait, "both known", func() error {
		if h := p.Health(); len(h) != 2 {
			return fmt.Errorf("health %v", h)
		}
		return nil
	})
	since := status(p, "pa", "b1").Since

	// Same probe again plus a TCP probe; b2 dropped from pa.
	pa2 := probeOf("pa", dataplane.ProbeHTTP, hp, "/health", 1, backend("b1"))
	pb := probeOf("pb", dataplane.ProbeTCP, closedPort(t), "", 1, backend("b1"))
	p.Update([]dataplane.Probe{pa2, pb})
	poll.Until(t, wait, "pb known", statusCond(p, "pb", "b1", known))
	h := p.Health()
	if _, ok := h[dataplane.HealthKey{ProbeID: "pa", BackendID: "b2"}]; ok {
		t.Error("stale target pa/b2 still reported")
	}
	if got := status(p, "pa", "b1").Since; !got.Equal(since) {
		t.Errorf("unchanged target lost its state: since %v, was %v", got, since)
	}
	if h[dataplane.HealthKey{ProbeID: "pb", BackendID: "b1"}] {
		t.Error("pb/b1 up, want down (closed port)")
	}
	p.Update(nil)
	if n := len(p.Status()); n != 0 {
		t.Errorf("%d targets after Update(nil)", n)
	}
	poll.Until(t, wait, "an empty snapshot last", func() error {
		rec.mu.Lock()
		defer rec.mu.Unlock()
		n := len(rec.snaps)
		if n < 2 || len(rec.snaps[n-1]) != 0 || len(rec.snaps[n-2]) == 0 {
			return fmt.Errorf("snapshots %v", rec.snaps)
		}
		return nil
	})
}

// TestTimeout: a backend that accepts but never answers HTTP fails by
// timeout (min(interval, 30 s)), which counts toward the threshold.
func TestTimeout(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	accepted := make(chan struct{})
	t.Cleanup(func() {
		l.Close()
		<-accepted
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		defer close(accepted)
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c) // held open, never answered
			mu.Unlock()
		}
	}()
	p := New(Options{})
	defer p.Close()
	p.Update([]dataplane.Probe{probeOf("p", dataplane.ProbeHTTP, port(t, l.Addr().String()), "/health", 1, backend("b"))})
	poll.Until(t, wait, "known", statusCond(p, "p", "b", known))
	if s := status(p, "p", "b"); s.Up || s.Reason != "http: timeout" {
		t.Errorf("status = %+v, want down by timeout", s)
	}
}

// TestFeed: a Feed gets the current snapshot at once, every change after
// it, and returns when its ctx ends; two Feeds each see every change; a slow
// Feed is not queued up but gets the latest snapshot next.
func TestFeed(t *testing.T) {
	srv := newFlip(t, false)
	hp := port(t, srv.Listener.Addr().String())
	p := New(Options{})
	defer p.Close()
	key := dataplane.HealthKey{ProbeID: "p", BackendID: "b"}
	last := func(r *recorder) (up, ok bool) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.snaps) == 0 {
			return false, false
		}
		up, ok = r.snaps[len(r.snaps)-1][key]
		return up, ok
	}

	quick, stuck := &recorder{}, &recorder{}
	quick.follow(t, p)
	release := make(chan struct{})
	var calls atomic.Int32
	sctx, scancel := context.WithCancel(context.Background())
	sdone := make(chan struct{})
	go func() {
		defer close(sdone)
		p.Feed(sctx, func(ctx context.Context, h dataplane.Health) {
			if calls.Add(1) == 2 {
				<-release // stuck in the first change while more happen
			}
			stuck.onChange(ctx, h)
		})
	}()
	waitFor(t, "initial snapshots", func() bool {
		quick.mu.Lock()
		defer quick.mu.Unlock()
		return len(quick.snaps) > 0 && calls.Load() > 0
	})
	quick.mu.Lock()
	if first := quick.snaps[0]; first == nil || len(first) != 0 {
		t.Errorf("initial snapshot = %v, want empty", first)
	}
	quick.mu.Unlock()

	p.Update([]dataplane.Probe{probeOf("p", dataplane.ProbeHTTP, hp, "/health", 1, backend("b"))})
	waitFor(t, "quick feed sees up", func() bool { up, ok := last(quick); return ok && up })
	waitFor(t, "stuck feed stuck", func() bool { return calls.Load() == 2 })
	// Six more changes while the stuck feed is stuck, ending down.
	for range 3 {
		srv.status.Store(500)
		waitFor(t, "quick feed sees down", func() bool { up, ok := last(quick); return ok && !up })
		srv.status.Store(200)
		waitFor(t, "quick feed sees up", func() bool { up, ok := last(quick); return ok && up })
	}
	srv.status.Store(500)
	waitFor(t, "quick feed sees down", func() bool { up, ok := last(quick); return ok && !up })
	close(release)
	waitFor(t, "stuck feed sees the latest", func() bool { up, ok := last(stuck); return ok && !up })
	if n := calls.Load(); n > 4 {
		t.Errorf("stuck feed called %d times for 7 changes while stuck, want them coalesced into one or two", n)
	}
	scancel()
	select {
	case <-sdone:
	case <-time.After(5 * time.Second):
		t.Fatal("Feed did not return after its ctx ended")
	}
}

// TestFeedEndsWithClose: Close ends running Feeds; a Feed on a closed
// prober returns at once without calling fn.
func TestFeedEndsWithClose(t *testing.T) {
	p := New(Options{})
	done := make(chan struct{})
	called := make(chan struct{}, 1)
	go func() {
		defer close(done)
		p.Feed(context.Background(), func(context.Context, dataplane.Health) {
			select {
			case called <- struct{}{}:
			default:
			}
		})
	}()
	<-called
	p.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Feed did not return after Close")
	}
	p.Feed(context.Background(), func(context.Context, dataplane.Health) {
		t.Error("fn called on a closed prober")
	})
}

// waitFor is poll.Until for a condition that has nothing to report but
// whether it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	poll.Until(t, wait, what, func() error {
		if cond() {
			return nil
		}
		return errors.New("not yet")
	})
}

// TestDeniedByNSG: a backend the probe's Denied lists (its network security
// group denies the AzureLoadBalancer source) goes down although its port
// answers, without a connection; taken off the list it comes up.
func TestDeniedByNSG(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var accepted atomic.Int32
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	p := New(Options{})
	defer p.Close()
	pr := probeOf("p", dataplane.ProbeTCP, port(t, l.Addr().String()), "", 1, backend("b"))
	pr.Denied = []string{"b"}
	p.Update([]dataplane.Probe{pr})
	poll.Until(t, wait, "down while denied", statusCond(p, "p", "b", isDown))
	if n := accepted.Load(); n != 0 {
		t.Fatalf("a denied probe connected %d times", n)
	}
	pr.Denied = nil
	p.Update([]dataplane.Probe{pr})
	poll.Until(t, wait, "up once allowed", statusCond(p, "p", "b", isUp))
}
