package dptest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/poll"
	"nimbus/internal/probe"
)

// Run runs every scenario against the harness's engine.
func Run(t *testing.T, h Harness) {
	for _, sc := range []struct {
		name string
		fn   func(*testing.T, *Harness)
	}{
		{"DefaultSpread", testDefaultSpread},
		{"SourceIPAffinity", testSourceIPAffinity},
		{"ProbeFailover", testProbeFailover},
		{"NoHealthyBackends", testNoHealthy},
		{"IdleTimeout", testIdleTimeout},
		{"UDP", testUDP},
		{"NATRules", testNAT},
		{"ChangeUnderLoad", testChangeUnderLoad},
		{"ProxyProtocol", testProxyProtocol},
		{"NetworkSecurity", testNetworkSecurity},
	} {
		t.Run(sc.name, func(t *testing.T) { sc.fn(t, &h) })
	}
}

// env is one scenario's engine, backends and frontend port.
type env struct {
	h    *Harness
	eng  dataplane.Engine
	f    *fleet
	port uint16
	ctx  context.Context
}

func newEnv(t *testing.T, h *Harness, backends int) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	e := &env{h: h, f: startFleet(t, h, backends), port: h.frontendPort(t), ctx: ctx}
	e.eng = h.NewEngine(t)
	t.Cleanup(func() { e.eng.Close() })
	return e
}

func (e *env) rule(id string, fe int, proto dataplane.Protocol, n int) dataplane.Rule {
	return dataplane.Rule{
		ID:           "/rules/" + id,
		Frontend:     e.h.Frontend(fe),
		Protocol:     proto,
		FrontendPort: e.port,
		BackendPort:  e.f.port,
		Distribution: dataplane.Default,
		IdleTimeout:  dataplane.DefaultIdleTimeout,
		Backends:     e.f.backends(n),
	}
}

func (e *env) apply(t *testing.T, cfg dataplane.Config) {
	t.Helper()
	if err := e.eng.Apply(e.ctx, cfg); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

func (e *env) fe(i int) netip.AddrPort {
	return netip.AddrPortFrom(e.h.Frontend(i).IP, e.port)
}

// connectRetry connects, retrying briefly while a just-applied listener
// comes up (bounded).
func (e *env) connectRetry(t *testing.T, client int, to netip.AddrPort) *conn {
	t.Helper()
	var c *conn
	poll.Until(t, 2*time.Second, "a connection to "+to.String(), func() error {
		var err error
		c, err = e.f.connect(e.ctx, client, to)
		return err
	})
	return c
}

func testDefaultSpread(t *testing.T, h *Harness) {
	const n, total = 4, 3000
	e := newEnv(t, h, n)
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{e.rule("spread", 0, dataplane.TCP, n)}})
	e.connectRetry(t, 0, e.fe(0)).Close()
	counts := make([]int, n)
	for i := range total {
		c, err := e.f.connect(e.ctx, i%4, e.fe(0))
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		counts[c.backend]++
		c.Close()
	}
	even := float64(total) / n
	for i, c := range counts {
		if d := (float64(c) - even) / even; d > 0.15 || d < -0.15 {
			t.Errorf("backend %d got %d of %d connections (%.1f%% off even)", i, c, total, d*100)
		}
	}
	t.Logf("spread over %d backends: %v", n, counts)
}

func testSourceIPAffinity(t *testing.T, h *Harness) {
	const n, clients, per = 4, 8, 15
	e := newEnv(t, h, n)
	r := e.rule("affinity", 0, dataplane.TCP, n)
	r.Distribution = dataplane.SourceIP
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
	e.connectRetry(t, 0, e.fe(0)).Close()
	used := map[int]bool{}
	for cl := range clients {
		first := -1
		for k := range per {
			c, err := e.f.connect(e.ctx, cl, e.fe(0))
			if err != nil {
				t.Fatalf("client %d connection %d: %v", cl, k, err)
			}
			c.Close()
			if first < 0 {
				first = c.backend
			} else if c.backend != first {
				t.Errorf("client %d moved from backend %d to %d under SourceIP", cl, first, c.backend)
			}
		}
		used[first] = true
	}
	if len(used) < 2 {
		t.Errorf("%d clients all landed on %d backend(s)", clients, len(used))
	}
}

// testProbeFailover: a backend whose health endpoint turns 500 gets no new
// connections within interval × threshold + 1 s, while a connection opened
// to it before keeps working.
func testProbeFailover(t *testing.T, h *Harness) {
	const n = 3
	const interval, threshold = 500 * time.Millisecond, 2
	e := newEnv(t, h, n)
	r := e.rule("failover", 0, dataplane.TCP, n)
	r.ProbeID = "/probes/health"
	pr := dataplane.Probe{ID: r.ProbeID, Protocol: dataplane.ProbeHTTP, Port: e.f.health, RequestPath: "/health",
		Interval: interval, Threshold: threshold, NoHealthyBackends: dataplane.AllProbedDown, Backends: r.Backends}
	p := probe.New(probe.Options{Dialer: h.ProbeDialer})
	feedDone := make(chan struct{})
	go func() {
		defer close(feedDone)
		p.Feed(e.ctx, func(ctx context.Context, hl dataplane.Health) {
			if err := e.eng.SetHealth(ctx, hl); err != nil && ctx.Err() == nil {
				t.Errorf("SetHealth: %v", err)
			}
		})
	}()
	t.Cleanup(func() {
		p.Close()
		<-feedDone
	})
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}, Probes: []dataplane.Probe{pr}})
	p.Update([]dataplane.Probe{pr})

	const victim = 1
	var old *conn
	for i := 0; i < 200 && old == nil; i++ {
		c := e.connectRetry(t, i%4, e.fe(0))
		if c.backend == victim {
			old = c
		} else {
			c.Close()
		}
	}
	if old == nil {
		t.Fatal("no connection reached the victim backend in 200 tries")
	}
	defer old.Close()

	e.f.bs[victim].status.Store(500)
	flipped := time.Now()
	deadline := flipped.Add(interval*threshold + time.Second)
	var lastHit time.Time
	after := 0
	for i := 0; i < 5000 && after < 60; i++ {
		c, err := e.f.connect(e.ctx, i%4, e.fe(0))
		if err != nil {
			t.Fatalf("connection during failover: %v", err)
		}
		now := time.Now()
		if c.backend == victim {
			lastHit = now
		}
		if now.After(deadline) {
			after++
		}
		c.Close()
		if !now.After(deadline) {
			time.Sleep(10 * time.Millisecond) // pace the load, not synchronisation
		}
	}
	if after < 60 {
		t.Fatalf("only %d connections after the deadline", after)
	}
	if lastHit.After(deadline) {
		t.Errorf("victim got a new connection %v after the flip (limit %v)", lastHit.Sub(flipped), interval*threshold+time.Second)
	} else if !lastHit.IsZero() {
		t.Logf("victim's last new connection %v after the flip", lastHit.Sub(flipped))
	}
	if err := old.echo("still here"); err != nil {
		t.Errorf("established connection to the down backend broke: %v", err)
	}
	// Back to healthy: it gets traffic again.
	e.f.bs[victim].status.Store(200)
	i := 0
	poll.Until(t, 10*time.Second, "the backend to get traffic again after its probe turned 200", func() error {
		c := e.connectRetry(t, i%4, e.fe(0))
		defer c.Close()
		i++
		if c.backend != victim {
			return fmt.Errorf("connection %d reached %v", i, c.backend)
		}
		return nil
	})
}

func testNoHealthy(t *testing.T, h *Harness) {
	for _, tc := range []struct {
		behavior dataplane.NoHealthyBehavior
		reaches  bool
	}{
		{dataplane.AllProbedDown, false},
		{dataplane.AllProbedUp, true},
	} {
		t.Run(string(tc.behavior), func(t *testing.T) {
			e := newEnv(t, h, 2)
			r := e.rule("nohealthy", 0, dataplane.TCP, 2)
			r.ProbeID, r.NoHealthyBackends = "/probes/p", tc.behavior
			e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
			e.connectRetry(t, 0, e.fe(0)).Close()
			down := dataplane.Health{}
			for _, b := range r.Backends {
				down[dataplane.HealthKey{ProbeID: r.ProbeID, BackendID: b.ID}] = false
			}
			if err := e.eng.SetHealth(e.ctx, down); err != nil {
				t.Fatal(err)
			}
			for i := range 3 {
				c, err := e.f.connect(e.ctx, i%4, e.fe(0))
				if tc.reaches && err != nil {
					t.Fatalf("AllProbedUp: connection %d failed: %v", i, err)
				}
				if !tc.reaches && err == nil {
					c.Close()
					t.Fatalf("AllProbedDown: connection %d reached backend %d", i, c.backend)
				}
				if c != nil {
					c.Close()
				}
			}
		})
	}
}

func testIdleTimeout(t *testing.T, h *Harness) {
	const idle = time.Second
	for _, reset := range []bool{false, true} {
		t.Run(fmt.Sprintf("TCPReset=%v", reset), func(t *testing.T) {
			e := newEnv(t, h, 1)
			r := e.rule("idle", 0, dataplane.TCP, 1)
			r.IdleTimeout, r.TCPReset = idle, reset
			e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})

			// A busy connection outlives the idle timeout.
			busy := e.connectRetry(t, 0, e.fe(0))
			defer busy.Close()
			for i := range 8 {
				if err := busy.echo(fmt.Sprint("ping", i)); err != nil {
					t.Fatalf("busy connection broke after %d pings: %v", i, err)
				}
				time.Sleep(idle / 4)
			}

			c := e.connectRetry(t, 1, e.fe(0))
			defer c.Close()
			start := time.Now()
			_ = c.SetReadDeadline(start.Add(idle + 3*time.Second))
			_, err := c.r.ReadByte()
			took := time.Since(start)
			switch {
			case reset && !errors.Is(err, syscall.ECONNRESET):
				t.Errorf("with TCP reset: read returned %v after %v, want ECONNRESET", err, took)
			case !reset && h.SilentIdle && errors.Is(err, syscall.ECONNRESET):
				t.Errorf("silent idle timeout sent an RST")
			case !reset && !h.SilentIdle && err != io.EOF:
				t.Errorf("without TCP reset: read returned %v after %v, want EOF", err, took)
			}
			if !h.SilentIdle || reset {
				if took < idle-50*time.Millisecond || took > idle+2*time.Second {
					t.Errorf("flow ended after %v, idle timeout %v", took, idle)
				}
			}
		})
	}
}

func testUDP(t *testing.T, h *Harness) {
	const n = 3
	e := newEnv(t, h, n)
	r := e.rule("udp", 0, dataplane.UDP, n)
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})

	type client struct {
		c       net.Conn
		backend int
	}
	var cs []client
	var dialErr error
	for i := range 8 {
		c, err := h.dial(e.ctx, i, "udp", e.fe(0))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if got := c.RemoteAddr().(*net.UDPAddr).AddrPort(); got != e.fe(0) {
			t.Fatalf("udp socket connected to %v", got)
		}
		var b int
		for range 20 { // the listener may still be coming up
			if b, dialErr = udpAsk(c, fmt.Sprint("hello", i)); dialErr == nil {
				break
			}
		}
		if dialErr != nil {
			t.Fatalf("client %d: %v", i, dialErr)
		}
		// A connected UDP socket only accepts replies from the frontend
		// address, so a reply proves it came from there.
		cs = append(cs, client{c, b})
	}
	// Same flow, same backend.
	for i, c := range cs {
		for k := range 3 {
			b, err := udpAsk(c.c, fmt.Sprint("again", i, k))
			if err != nil {
				t.Fatal(err)
			}
			if b != c.backend {
				t.Errorf("udp client %d moved from %d to %d while healthy", i, c.backend, b)
			}
		}
	}
	// Its backend goes down: the flow moves to a healthy one.
	victim := cs[0].backend
	if err := e.eng.SetHealth(e.ctx, dataplane.Health{}); err != nil {
		t.Fatal(err)
	}
	r.ProbeID = "/probes/p"
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r}})
	if err := e.eng.SetHealth(e.ctx, dataplane.Health{{ProbeID: r.ProbeID, BackendID: e.f.bs[victim].id}: false}); err != nil {
		t.Fatal(err)
	}
	b, err := udpAsk(cs[0].c, "moved?")
	if err != nil {
		t.Fatal(err)
	}
	if b == victim {
		t.Errorf("udp flow stayed on down backend %d", victim)
	}
}

func testNAT(t *testing.T, h *Harness) {
	const n = 3
	e := newEnv(t, h, n)
	var cfg dataplane.Config
	ports := make([]uint16, n)
	bs := e.f.backends(n)
	for i := range n {
		ports[i] = e.port
		fe := i // one frontend per NAT port keeps ports free on every harness
		cfg.NATRules = append(cfg.NATRules, dataplane.NATRule{
			ID: fmt.Sprint("/inboundnatrules/ssh", i), Frontend: h.Frontend(fe), Protocol: dataplane.TCP,
			FrontendPort: e.port, BackendPort: e.f.port, IdleTimeout: dataplane.DefaultIdleTimeout, Backend: bs[i],
		})
	}
	e.apply(t, cfg)
	for i := range n {
		for k := range 5 {
			c := e.connectRetry(t, k, e.fe(i))
			if c.backend != i {
				t.Errorf("NAT frontend %d reached backend %d", i, c.backend)
			}
			c.Close()
		}
	}
}

// testChangeUnderLoad: 1,000 open connections survive configuration
// changes that keep their rule and backend.
func testChangeUnderLoad(t *testing.T, h *Harness) {
	const n, open = 4, 1000
	e := newEnv(t, h, n)
	r := e.rule("load", 0, dataplane.TCP, n)
	cfg := dataplane.Config{Rules: []dataplane.Rule{r}}
	e.apply(t, cfg)
	e.connectRetry(t, 0, e.fe(0)).Close()
	conns := make([]*conn, 0, open)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range open {
		c, err := e.f.connect(e.ctx, i%16, e.fe(0))
		if err != nil {
			t.Fatalf("open connection %d: %v", i, err)
		}
		conns = append(conns, c)
	}
	// Changes: same config again, a second rule, a new distribution mode,
	// a health change on the second rule's probe, and a new backend.
	r2 := e.rule("second", 1, dataplane.TCP, n)
	r2.ProbeID = "/probes/second"
	steps := []dataplane.Config{
		cfg,
		{Rules: []dataplane.Rule{r, r2}},
		{Rules: []dataplane.Rule{withDist(r, dataplane.SourceIPProtocol), r2}},
	}
	for i, c := range steps {
		if err := e.eng.Apply(e.ctx, c); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	if err := e.eng.SetHealth(e.ctx, dataplane.Health{{ProbeID: r2.ProbeID, BackendID: r2.Backends[0].ID}: false}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	var firstErr error
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(conns); i += 8 {
				if err := conns[i].echo(fmt.Sprint("after change ", i)); err != nil {
					mu.Lock()
					failed++
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if failed > 0 {
		t.Errorf("%d of %d connections lost across configuration changes (first: %v)", failed, open, firstErr)
	}
	// The second rule works too.
	c := e.connectRetry(t, 0, e.fe(1))
	c.Close()
}

func withDist(r dataplane.Rule, d dataplane.Distribution) dataplane.Rule {
	r.Distribution = d
	return r
}

// testProxyProtocol: with Rule.ProxyProtocol the backend learns the
// client's address from a PROXY v2 header, on TCP and on UDP.
func testProxyProtocol(t *testing.T, h *Harness) {
	if !h.ProxyProtocol {
		t.Skip("engine preserves the client address and sends no PROXY protocol header")
	}
	e := newEnv(t, h, 1)
	for _, b := range e.f.bs {
		b.expectProxy.Store(true)
	}
	r := e.rule("pp", 0, dataplane.TCP, 1)
	r.ProxyProtocol = true
	u := e.rule("ppu", 0, dataplane.UDP, 1)
	u.ProxyProtocol = true
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{r, u}})
	c := e.connectRetry(t, 3, e.fe(0))
	defer c.Close()
	src := <-e.f.bs[0].proxySrc
	if src != c.LocalAddr().(*net.TCPAddr).AddrPort() {
		t.Errorf("PROXY header source %v, client is %v", src, c.LocalAddr())
	}
	if err := c.echo("through proxy protocol"); err != nil {
		t.Error(err)
	}
	uc, err := h.dial(e.ctx, 4, "udp", e.fe(0))
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	if _, err := udpAsk(uc, "dgram"); err != nil {
		t.Fatal(err)
	}
	select {
	case src := <-e.f.bs[0].proxySrc:
		if src != uc.LocalAddr().(*net.UDPAddr).AddrPort() {
			t.Errorf("UDP PROXY header source %v, client is %v", src, uc.LocalAddr())
		}
	case <-time.After(time.Second):
		t.Error("no PROXY header on the UDP datagram")
	}
}
