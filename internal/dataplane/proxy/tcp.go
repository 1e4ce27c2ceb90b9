package proxy

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
)

// tcpMSS is the segment size used to estimate PacketCount from bytes: the
// userspace engine moves bytes with splice and never sees packets.
const tcpMSS = 1448

// tcpListener accepts connections for one listener key.
type tcpListener struct {
	e   *Engine
	key lkey
	ln  *net.TCPListener

	// active counts this listener's flows against the per-frontend budget.
	active atomic.Int64

	mu     sync.Mutex
	closed bool
	flows  map[*tcpFlow]struct{}
}

// tcpFlow is one proxied connection.
type tcpFlow struct {
	l         *tcpListener
	client    *net.TCPConn
	backend   *net.TCPConn
	src       netip.AddrPort // the client's address
	backendID string
	addr      netip.AddrPort
	idle      time.Duration
	reset     bool
	counters  *metrics.FrontendCounters
	last      atomic.Int64 // unix nanoseconds of the last byte either way
	eofs      atomic.Int32 // directions that reached EOF
	halfAt    atomic.Int64 // unix nanoseconds of the first EOF (0: none)
	once      sync.Once
}

func (e *Engine) serveTCP(k lkey, ln *net.TCPListener) *tcpListener {
	l := &tcpListener{e: e, key: k, ln: ln, flows: map[*tcpFlow]struct{}{}}
	e.wg.Add(1)
	go l.acceptLoop()
	return l
}

func (l *tcpListener) acceptLoop() {
	defer l.e.wg.Done()
	backoff := 5 * time.Millisecond
	for {
		c, err := l.ln.AcceptTCP()
		if err != nil {
			if isClosed(err) {
				return
			}
			// Out of file descriptors or similar: wait a little and retry.
			l.e.log.Warn("accept failed", "listener", l.key.String(), "err", err)
			t := time.NewTimer(backoff)
			select {
			case <-l.e.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			backoff = min(backoff*2, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if why := l.e.budget.acquire(&l.active); why != "" {
			// Over budget: refuse at once with an RST, so the client
			// fails fast and the descriptor comes straight back.
			resetConn(c)
			var counters *metrics.FrontendCounters
			if r := l.e.state.Load().routes[l.key]; r != nil {
				counters = r.counters
			}
			l.e.budget.refused(l.key, counters, dataplane.TCP, why)
			continue
		}
		l.e.wg.Add(1)
		go l.handle(c)
	}
}

// resetConn closes c with an RST.
func resetConn(c *net.TCPConn) {
	_ = c.SetLinger(0)
	_ = c.Close()
}

func (l *tcpListener) handle(c *net.TCPConn) {
	defer l.e.wg.Done()
	defer l.e.budget.release(&l.active)
	r := l.e.state.Load().routes[l.key]
	if r == nil {
		resetConn(c)
		return
	}
	r.counters.AddSYN()
	src := c.RemoteAddr().(*net.TCPAddr).AddrPort()
	dst := c.LocalAddr().(*net.TCPAddr).AddrPort()
	b, addr, ok := r.pick(dataplane.TCP, src, dst)
	if !ok || !l.e.admit(r, dataplane.ProtoTCP, src, b, addr.Port()) {
		resetConn(c)
		return
	}
	d := net.Dialer{Timeout: l.e.opts.DialTimeout, KeepAlive: -1}
	bc, err := d.DialContext(l.e.ctx, "tcp", addr.String())
	if err != nil {
		l.e.log.Debug("backend dial failed", "listener", l.key.String(), "backend", b.ID, "err", err)
		resetConn(c)
		return
	}
	backend := bc.(*net.TCPConn)
	if r.spec.proxyProto {
		h := proxyproto.HeaderProxyFromAddrs(2, net.TCPAddrFromAddrPort(src), net.TCPAddrFromAddrPort(dst))
		if _, err := h.WriteTo(backend); err != nil {
			resetConn(backend)
			resetConn(c)
			return
		}
	}
	f := &tcpFlow{l: l, client: c, backend: backend, src: src, backendID: b.ID, addr: addr,
		idle: r.spec.idle, reset: r.spec.tcpReset, counters: r.counters}
	f.last.Store(time.Now().UnixNano())
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		resetConn(backend)
		resetConn(c)
		return
	}
	l.flows[f] = struct{}{}
	l.mu.Unlock()
	f.run()
	l.mu.Lock()
	delete(l.flows, f)
	l.mu.Unlock()
}

// run copies both ways until both directions end or the flow is torn down.
func (f *tcpFlow) run() {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		f.pipe(f.backend, f.client, true)
	}()
	f.pipe(f.client, f.backend, false)
	wg.Wait()
	f.teardown(false)
}

// pipe copies src to dst. It wakes every idle tick to check whether the whole
// flow (both directions) has been idle for the idle timeout.
//
// A direction starts with plain reads and writes through a pooled buffer,
// which is cheapest for the short exchanges most connections are, and
// switches to splice (zero copy) once it looks like bulk: a read that fills
// the whole buffer. Request/response traffic, even long-lived, stays on the
// buffer, where splice would cost a pipe round trip per message.
func (f *tcpFlow) pipe(dst, src *net.TCPConn, inbound bool) {
	tick := idleTick(f.idle)
	bufp := copyBufs.Get().(*[]byte)
	defer func() {
		if bufp != nil {
			copyBufs.Put(bufp)
		}
	}()
	deadline := time.Time{}
	for {
		var n int64
		var err error
		now := time.Now()
		if bufp != nil {
			if now.After(deadline.Add(-tick / 2)) {
				deadline = now.Add(tick)
				_ = src.SetReadDeadline(deadline)
			}
			var m int
			m, err = src.Read(*bufp)
			if m > 0 {
				var w int
				w, err = dst.Write((*bufp)[:m])
				n = int64(w)
				if err != nil && w < m {
					err = fmt.Errorf("write: %w", err)
				}
			}
			if m == len(*bufp) {
				copyBufs.Put(bufp)
				bufp = nil
			}
		} else {
			_ = src.SetReadDeadline(now.Add(tick))
			// CopyN with a large limit: on Linux *net.TCPConn.ReadFrom
			// splices from src through a pipe into dst until the deadline,
			// EOF or an error.
			n, err = io.CopyN(dst, src, 1<<62)
		}
		if n > 0 {
			now = time.Now()
			f.last.Store(now.UnixNano())
			pk := (uint64(n) + tcpMSS - 1) / tcpMSS
			if inbound {
				f.counters.AddBytes(uint64(n), 0, pk, 0)
			} else {
				f.counters.AddBytes(0, uint64(n), 0, pk)
			}
		}
		switch {
		case err == nil:
			continue
		case errors.Is(err, os.ErrDeadlineExceeded):
			if time.Since(time.Unix(0, f.last.Load())) >= f.idle {
				f.teardown(f.reset)
				return
			}
			deadline = time.Time{}
			continue
		case errors.Is(err, io.EOF):
			// Half close: pass the FIN on and let the other direction
			// finish. The second direction to end needs no shutdown: run
			// closes both sockets at once, which sends the FIN.
			if f.eofs.Add(1) == 1 {
				f.halfAt.Store(time.Now().UnixNano())
				_ = dst.CloseWrite()
			}
			return
		case isClosed(err):
			return
		case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
			// One side reset: reset the other too.
			f.teardown(true)
			return
		default:
			f.teardown(false)
			return
		}
	}
}

// copyBufs holds the buffers of directions still in their buffered phase.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// teardown closes both sockets once, with RST when rst is true.
func (f *tcpFlow) teardown(rst bool) {
	f.once.Do(func() {
		if rst {
			resetConn(f.client)
			resetConn(f.backend)
			return
		}
		_ = f.client.Close()
		_ = f.backend.Close()
	})
}

func (l *tcpListener) prune(r *route) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for f := range l.flows {
		if r == nil || r.valid[f.backendID] != f.addr || !r.stillAllowed(dataplane.ProtoTCP, f.src, f.backendID, f.addr.Port()) {
			f.teardown(true)
		}
	}
}

// reap ends, at now (unix nanoseconds), the flows idle (no byte either way)
// for their idle timeout, and the half-closed ones idle since the later of
// their first FIN and their last byte for the half-close timeout (or the
// idle timeout, if shorter).
func (l *tcpListener) reap(now int64) {
	half := l.e.opts.HalfCloseTimeout
	l.mu.Lock()
	defer l.mu.Unlock()
	for f := range l.flows {
		last := f.last.Load()
		if time.Duration(now-last) >= f.idle {
			f.teardown(f.reset)
			continue
		}
		if h := f.halfAt.Load(); h != 0 && time.Duration(now-max(last, h)) >= min(half, f.idle) {
			f.teardown(f.reset)
		}
	}
}

func (l *tcpListener) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	_ = l.ln.Close()
	l.prune(nil)
}
