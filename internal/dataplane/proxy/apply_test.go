package proxy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
	"nimbus/internal/poll"
)

// echoServer listens on addr, greets with name and echoes.
func echoServer(t testing.TB, addr netip.AddrPort, name string) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		l.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				fmt.Fprintf(c, "%s\n", name)
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

func freePort(t testing.TB, ip netip.Addr) uint16 {
	t.Helper()
	l, err := net.Listen("tcp", netip.AddrPortFrom(ip, 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort().Port()
}

func tcpRule(id string, fe netip.Addr, port uint16, bs ...netip.AddrPort) dataplane.Rule {
	r := dataplane.Rule{ID: id, Frontend: dataplane.Frontend{ID: "/fe", IP: fe}, Protocol: dataplane.TCP,
		FrontendPort: port, Distribution: dataplane.Default}
	for i, b := range bs {
		r.BackendPort = b.Port()
		r.Backends = append(r.Backends, dataplane.Backend{ID: fmt.Sprintf("/b%d", i), IP: b.Addr(), DialIP: b.Addr()})
	}
	return r
}

type client struct {
	net.Conn
	r    *bufio.Reader
	name string
}

func dial(t testing.TB, to netip.AddrPort) *client {
	t.Helper()
	c, err := net.DialTimeout("tcp", to.String(), 2*time.Second)
	if err != nil {
		t.Fatalf("dial %v: %v", to, err)
	}
	t.Cleanup(func() { c.Close() })
	cl := &client{Conn: c, r: bufio.NewReader(c)}
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	line, err := cl.r.ReadString('\n')
	if err != nil {
		t.Fatalf("greeting via %v: %v", to, err)
	}
	c.SetReadDeadline(time.Time{})
	cl.name = strings.TrimSpace(line)
	return cl
}

func (c *client) echo(msg string) error {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	got, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(got) != msg {
		return fmt.Errorf("echo %q, want %q", got, msg)
	}
	return nil
}

func TestApplyIsolatesFailedRules(t *testing.T) {
	ctx := context.Background()
	fe := lo(10, 1)
	b := echoServer(t, netip.AddrPortFrom(lo(11, 1), 0), "b0")
	pA, pB := freePort(t, fe), freePort(t, fe)
	busy, err := net.Listen("tcp", netip.AddrPortFrom(fe, pB).String())
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()

	e := New(Options{})
	defer e.Close()
	good := dataplane.Config{Rules: []dataplane.Rule{tcpRule("/rules/a", fe, pA, b)}}
	if err := e.Apply(ctx, good); err != nil {
		t.Fatal(err)
	}
	c := dial(t, netip.AddrPortFrom(fe, pA))

	for _, tc := range []struct {
		name   string
		bad    dataplane.Rule
		reason string
		want   string
	}{
		{"port held by another program", tcpRule("/rules/b", fe, pB, b), dataplane.ReasonPortInUse,
			fmt.Sprintf("held by pid %d", os.Getpid())},
		{"two rules on one port", tcpRule("/rules/c", fe, pA, b), dataplane.ReasonInvalid, "both use"},
		{"no frontend address", tcpRule("/rules/d", netip.Addr{}, pA, b), dataplane.ReasonInvalid, "no address"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := dataplane.Config{Rules: []dataplane.Rule{tcpRule("/rules/a", fe, pA, b), tc.bad}}
			err := e.Apply(ctx, cfg)
			var ae *dataplane.ApplyError
			if !errors.As(err, &ae) || len(ae.Rules) != 1 || ae.Rules[0].RuleID != tc.bad.ID ||
				ae.Rules[0].Reason != tc.reason || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply error = %v, want one %s failure of %s containing %q", err, tc.reason, tc.bad.ID, tc.want)
			}
			// The valid rule is applied, its flow is intact.
			if err := c.echo("after " + tc.name); err != nil {
				t.Errorf("established flow broken by a failed rule: %v", err)
			}
			dial(t, netip.AddrPortFrom(fe, pA))
		})
	}
	// Once the holder lets go, applying the same config again opens it.
	cfg := dataplane.Config{Rules: []dataplane.Rule{tcpRule("/rules/a", fe, pA, b), tcpRule("/rules/b", fe, pB, b)}}
	if err := e.Apply(ctx, cfg); err == nil {
		t.Fatal("Apply with the port still held succeeded")
	}
	busy.Close()
	if err := e.Apply(ctx, cfg); err != nil {
		t.Fatalf("Apply after the holder closed: %v", err)
	}
	dial(t, netip.AddrPortFrom(fe, pB))
	// Idempotent: the same config twice keeps the flow.
	for range 2 {
		if err := e.Apply(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.echo("after reapply"); err != nil {
		t.Errorf("reapplying the same config broke a flow: %v", err)
	}
}

func TestRemovalEndsFlows(t *testing.T) {
	ctx := context.Background()
	fe := lo(12, 1)
	b0 := echoServer(t, netip.AddrPortFrom(lo(13, 1), 0), "b0")
	b1 := echoServer(t, netip.AddrPortFrom(lo(13, 2), b0.Port()), "b1")
	port := freePort(t, fe)
	e := New(Options{})
	defer e.Close()
	both := tcpRule("/rules/r", fe, port, b0, b1)
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{both}}); err != nil {
		t.Fatal(err)
	}
	byName := map[string]*client{}
	for i := 0; i < 100 && len(byName) < 2; i++ {
		c := dial(t, netip.AddrPortFrom(fe, port))
		byName[c.name] = c
	}
	if len(byName) < 2 {
		t.Fatal("100 connections all went to one backend")
	}
	// Remove b1 from the rule: its flow ends with RST, b0's continues.
	only := both
	only.Backends = both.Backends[:1]
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{only}}); err != nil {
		t.Fatal(err)
	}
	if err := byName["b0"].echo("kept"); err != nil {
		t.Errorf("flow to remaining backend broke: %v", err)
	}
	if err := byName["b1"].echo("gone"); !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, io.EOF) {
		t.Errorf("flow to removed backend: %v, want reset", err)
	}
	// Remove the rule: the listener closes and b0's flow ends too.
	if err := e.Apply(ctx, dataplane.Config{}); err != nil {
		t.Fatal(err)
	}
	if err := byName["b0"].echo("gone"); err == nil {
		t.Error("flow survived the removal of its rule")
	}
	if c, err := net.DialTimeout("tcp", netip.AddrPortFrom(fe, port).String(), time.Second); err == nil {
		c.Close()
		t.Error("listener of a removed rule still accepts")
	}
}

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	fe := lo(14, 1)
	b := echoServer(t, netip.AddrPortFrom(lo(15, 1), 0), "b0")
	port := freePort(t, fe)
	m := metrics.New()
	e := New(Options{Metrics: m})
	defer e.Close()
	r := tcpRule("/rules/m", fe, port, b)
	r.ProbeID = "/probes/p"
	cfg := dataplane.Config{Rules: []dataplane.Rule{r}, Outbound: []dataplane.SNATAllocation{{
		RuleID: "/outbound/o", Frontend: r.Frontend, Protocol: dataplane.TCP, Backend: r.Backends[0], PortStart: 1024, PortEnd: 2047}}}
	if err := e.Apply(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	c := dial(t, netip.AddrPortFrom(fe, port))
	if err := c.echo("count me"); err != nil {
		t.Fatal(err)
	}
	c.Close()
	if err := e.SetHealth(ctx, dataplane.Health{{ProbeID: "/probes/p", BackendID: "/b0"}: false}); err != nil {
		t.Fatal(err)
	}
	scrape := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		return rec.Body.String()
	}
	feL := fmt.Sprintf(`FrontendIPAddress="%s",FrontendPort="%d"`, fe, port)
	wants := []string{
		`SYNCount{Direction="Inbound",` + feL + `} 1`,
		`ByteCount{Direction="Inbound",` + feL + `} 9`,
		`VipAvailability{` + feL + `} 0`,
		`DipAvailability{BackendIPAddress="127.88.15.1",BackendPort="` + fmt.Sprint(b.Port()) + `",` + feL + `,ProtocolType="Tcp"} 0`,
		`AllocatedSnatPorts{BackendIPAddress="127.88.15.1",FrontendIPAddress="127.88.14.1",IsAwaitingRemoval="false",ProtocolType="Tcp"} 1024`,
	}
	// Byte counters land when the flow's copy loop returns.
	poll.Until(t, 5*time.Second, "every expected series in /metrics", func() error {
		got := scrape()
		var missing []string
		for _, want := range wants {
			if !strings.Contains(got, want) {
				missing = append(missing, want)
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("metrics lack %s\n%s", strings.Join(missing, ", "), grep(got, "Count{", "Availability{", "SnatPorts{"))
		}
		return nil
	})
}

func grep(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

// BenchmarkTCPCopy measures the proxy copy loop: bulk bytes from a client
// through the engine to a discarding backend.
func BenchmarkTCPCopy(b *testing.B) {
	fe := lo(16, 1)
	l, err := net.Listen("tcp", netip.AddrPortFrom(lo(17, 1), 0).String())
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c, err := l.Accept()
		if err != nil {
			return
		}
		io.Copy(io.Discard, c)
		c.Close()
	}()
	port := freePort(b, fe)
	e := New(Options{})
	defer e.Close()
	r := tcpRule("/rules/bench", fe, port, l.Addr().(*net.TCPAddr).AddrPort())
	if err := e.Apply(context.Background(), dataplane.Config{Rules: []dataplane.Rule{r}}); err != nil {
		b.Fatal(err)
	}
	c, err := net.Dial("tcp", netip.AddrPortFrom(fe, port).String())
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 1<<20)
	b.SetBytes(int64(len(buf)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
	}
	c.Close()
	<-done
}

// TestBulkThenIdle: a flow that moved to splice (bulk data both ways) still
// ends at its idle timeout, with an RST when TCPReset is set.
func TestBulkThenIdle(t *testing.T) {
	ctx := context.Background()
	fe := lo(18, 1)
	b := echoServer(t, netip.AddrPortFrom(lo(19, 1), 0), "b0")
	port := freePort(t, fe)
	e := New(Options{})
	defer e.Close()
	r := tcpRule("/rules/bulk", fe, port, b)
	r.IdleTimeout, r.TCPReset = 500*time.Millisecond, true
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{r}}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, netip.AddrPortFrom(fe, port))
	payload := strings.Repeat("0123456789abcdef", 64<<10) // 1 MiB, fills the copy buffer
	errc := make(chan error, 1)
	go func() { _, err := io.WriteString(c, payload); errc <- err }()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(c.r, got); err != nil {
		t.Fatalf("bulk echo: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if string(got) != payload {
		t.Fatal("bulk echo corrupted")
	}
	start := time.Now()
	c.SetReadDeadline(start.Add(5 * time.Second))
	_, err := c.r.ReadByte()
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("after idle: %v, want ECONNRESET", err)
	}
	if took := time.Since(start); took < 450*time.Millisecond || took > 2*time.Second {
		t.Errorf("idle flow ended after %v, timeout 500ms", took)
	}
}

// TestBackendPortZeroAndAll: BackendPort 0 means the frontend port, and
// protocol All serves TCP and UDP on the same port.
func TestBackendPortZeroAndAll(t *testing.T) {
	ctx := context.Background()
	fe, be := lo(20, 1), lo(21, 1)
	port := freePort(t, fe)
	echoServer(t, netip.AddrPortFrom(be, port), "b0")
	u, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(be, port)))
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := u.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			u.WriteToUDPAddrPort(append([]byte("udp:"), buf[:n]...), from)
		}
	}()
	e := New(Options{})
	defer e.Close()
	r := tcpRule("/rules/all", fe, port, netip.AddrPortFrom(be, port))
	r.Protocol, r.BackendPort = dataplane.All, 0
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{r}}); err != nil {
		t.Fatal(err)
	}
	if c := dial(t, netip.AddrPortFrom(fe, port)); c.name != "b0" {
		t.Errorf("tcp reached %q", c.name)
	}
	uc, err := net.Dial("udp", netip.AddrPortFrom(fe, port).String())
	if err != nil {
		t.Fatal(err)
	}
	defer uc.Close()
	var reply string
	for range 5 { // bounded retries: UDP may drop
		uc.SetDeadline(time.Now().Add(time.Second))
		if _, err := uc.Write([]byte("hi")); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 100)
		n, err := uc.Read(buf)
		if err == nil {
			reply = string(buf[:n])
			break
		}
	}
	if reply != "udp:hi" {
		t.Errorf("udp reply %q, want udp:hi", reply)
	}
}

// TestStuckFlowsAreReaped: flows whose only live direction is blocked
// writing to a client that never reads (the client half-closed and left its
// socket unread), and half-closed flows whose backend never answers, end
// after their idle and half-close timeouts, and their budget comes back.
func TestStuckFlowsAreReaped(t *testing.T) {
	ctx := context.Background()
	fe := lo(10, 3)
	flood, err := net.Listen("tcp", netip.AddrPortFrom(lo(11, 3), 0).String())
	if err != nil {
		t.Fatal(err)
	}
	defer flood.Close()
	ended := make(chan error, 1)
	go func() {
		c, err := flood.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		// Write until the proxy stops taking bytes, then until it closes.
		buf := make([]byte, 64<<10)
		for {
			if _, err := c.Write(buf); err != nil {
				ended <- err
				return
			}
		}
	}()
	silent, err := net.Listen("tcp", netip.AddrPortFrom(lo(11, 4), 0).String()) // never accepts
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()

	e := New(Options{HalfCloseTimeout: 300 * time.Millisecond, MaxFlows: 10, MaxFlowsPerFrontend: 10})
	defer e.Close()
	pFlood, pSilent := freePort(t, fe), freePort(t, fe)
	rFlood := tcpRule("/rules/flood", fe, pFlood, flood.Addr().(*net.TCPAddr).AddrPort())
	rFlood.IdleTimeout = 400 * time.Millisecond
	rSilent := tcpRule("/rules/silent", fe, pSilent, silent.Addr().(*net.TCPAddr).AddrPort())
	rSilent.IdleTimeout = time.Hour
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{rFlood, rSilent}}); err != nil {
		t.Fatal(err)
	}

	c, err := net.Dial("tcp", netip.AddrPortFrom(fe, pFlood).String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.(*net.TCPConn).CloseWrite() // FIN, and never read
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("a flow blocked writing to a client that never reads was not ended")
	}

	// Half-closed, backend never answers: gone after the half-close
	// timeout although the rule's idle timeout is an hour.
	var conns []net.Conn
	for range 10 {
		c, err := net.Dial("tcp", netip.AddrPortFrom(fe, pSilent).String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.(*net.TCPConn).CloseWrite()
		conns = append(conns, c)
	}
	for _, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Fatal("read data from a backend that never answers")
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Fatal("a half-closed flow was not ended after the half-close timeout")
		}
	}
	poll.Until(t, 5*time.Second, "the budget given back", func() error {
		if n := e.budget.active.Load(); n != 0 {
			return fmt.Errorf("%d flows still counted", n)
		}
		return nil
	})
}
