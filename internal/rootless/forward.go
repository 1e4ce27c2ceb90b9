package rootless

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Forward is one port the Forwarder carries: connections (TCP) or
// datagrams (UDP) to Listen go to Target. Listen is an address the host's
// clients use (a public frontend on the host's loopback); Target is where
// that frontend is inside nimbus's namespace.
type Forward struct {
	Network string // "tcp" or "udp"
	Listen  netip.AddrPort
	Target  netip.AddrPort
}

// String is "tcp 127.77.0.4:8080 → 198.18.0.4:8080".
func (f Forward) String() string {
	return f.Network + " " + f.Listen.String() + " → " + f.Target.String()
}

// UDPIdle is how long a UDP session of the forwarder lives without a
// datagram either way.
const UDPIdle = 2 * time.Minute

// dialTimeout bounds the connection to a forward's target.
const dialTimeout = 5 * time.Second

// Forwarder carries the host's connections to public frontends into
// nimbus's namespace, as rootlesskit's and pasta's port drivers do: for
// each Forward it listens on the host (through the parent, Host) and
// inside the child's own namespace (for clients there, such as the
// demo's), and splices each connection into one it opens to the target.
// The target sees the connection come from the child's end of nimbus's
// uplink, not from the host's client: the client's address stops at the
// host boundary. Set takes the whole wanted set, opens what is new and
// closes what is gone (with its connections). Safe for concurrent use.
type Forwarder struct {
	host *Host // nil: listen inside only (tests)
	log  *slog.Logger

	mu   sync.Mutex
	open map[Forward]*forward
}

// NewForwarder returns a forwarder listening through host (nil: only in
// the calling process's namespace, for tests) that logs to log (nil
// discards).
func NewForwarder(host *Host, log *slog.Logger) *Forwarder {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Forwarder{host: host, log: log, open: map[Forward]*forward{}}
}

// Set makes the forwarder carry exactly want. It returns the forwards
// the host refused, with why (a port below 1024 on the host, a port another
// program holds: see HostError); they are carried inside nimbus's
// namespace all the same, and every Set tries the host again.
func (f *Forwarder) Set(want []Forward) map[Forward]error {
	f.mu.Lock()
	defer f.mu.Unlock()
	keep := map[Forward]bool{}
	for _, w := range want {
		keep[w] = true
	}
	for k, fw := range f.open {
		if !keep[k] {
			fw.close()
			delete(f.open, k)
			f.log.Info("forward closed", "forward", k.String())
		}
	}
	failed := map[Forward]error{}
	for _, w := range want {
		fw, ok := f.open[w]
		if !ok {
			var err error
			if fw, err = f.start(w); err != nil {
				failed[w] = err
				continue
			}
			f.open[w] = fw
			f.log.Info("forward opened", "forward", w.String())
		}
		if f.host != nil && !fw.onHost {
			if err := fw.openHost(f.host); err != nil {
				failed[w] = err
			}
		}
	}
	return failed
}

// Open returns the forwards in force, sorted.
func (f *Forwarder) Open() []Forward {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]Forward, 0, len(f.open))
	for k := range f.open {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b Forward) int {
		if c := a.Listen.Compare(b.Listen); c != 0 {
			return c
		}
		if a.Network < b.Network {
			return -1
		}
		if a.Network > b.Network {
			return 1
		}
		return 0
	})
	return out
}

// Close closes every forward and its connections.
func (f *Forwarder) Close() error {
	f.Set(nil)
	return nil
}

// forward is one open Forward: its sockets and live connections.
type forward struct {
	fw     Forward
	onHost bool // the host's socket is open too
	closer []io.Closer
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	conns  map[io.Closer]struct{}
}

// start opens w inside the calling process's namespace.
func (f *Forwarder) start(w Forward) (*forward, error) {
	ctx, cancel := context.WithCancel(context.Background())
	fw := &forward{fw: w, ctx: ctx, cancel: cancel, conns: map[io.Closer]struct{}{}}
	switch w.Network {
	case "tcp":
		l, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(w.Listen))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("rootless: forward %s: listen inside: %w", w, err)
		}
		fw.serve(l)
	case "udp":
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(w.Listen))
		if err != nil {
			cancel()
			return nil, fmt.Errorf("rootless: forward %s: listen inside: %w", w, err)
		}
		fw.serve(c)
	default:
		cancel()
		return nil, fmt.Errorf("rootless: forward %s: unknown network", w)
	}
	return fw, nil
}

// openHost opens fw's socket on the host through h.
func (fw *forward) openHost(h *Host) error {
	var sock io.Closer
	var err error
	if fw.fw.Network == "tcp" {
		sock, err = h.listenTCP(fw.fw.Listen)
	} else {
		sock, err = h.listenUDP(fw.fw.Listen)
	}
	if err != nil {
		return err
	}
	fw.serve(sock)
	fw.onHost = true
	return nil
}

// serve carries the connections or datagrams of sock (a *net.TCPListener
// or *net.UDPConn) until the forward closes.
func (fw *forward) serve(sock io.Closer) {
	fw.mu.Lock()
	fw.closer = append(fw.closer, sock)
	fw.mu.Unlock()
	fw.wg.Add(1)
	switch s := sock.(type) {
	case *net.TCPListener:
		go fw.acceptTCP(s)
	case *net.UDPConn:
		go fw.serveUDP(s)
	}
}

// close stops accepting, ends every connection and waits for them.
func (fw *forward) close() {
	fw.cancel()
	fw.mu.Lock()
	for _, c := range fw.closer {
		c.Close()
	}
	for c := range fw.conns {
		c.Close()
	}
	fw.mu.Unlock()
	fw.wg.Wait()
}

// track registers c to be closed with the forward; false when it is closing.
func (fw *forward) track(cs ...io.Closer) bool {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	if fw.ctx.Err() != nil {
		return false
	}
	for _, c := range cs {
		fw.conns[c] = struct{}{}
	}
	return true
}

func (fw *forward) untrack(cs ...io.Closer) {
	fw.mu.Lock()
	defer fw.mu.Unlock()
	for _, c := range cs {
		delete(fw.conns, c)
	}
}

func (fw *forward) acceptTCP(l *net.TCPListener) {
	defer fw.wg.Done()
	for {
		c, err := l.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || fw.ctx.Err() != nil {
				return
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and the like: back off
			continue
		}
		fw.wg.Add(1)
		go fw.spliceTCP(c)
	}
}

// spliceTCP connects c to the target and copies both ways (splice(2) under
// io.Copy between TCP sockets), passing half-closes on.
func (fw *forward) spliceTCP(c *net.TCPConn) {
	defer fw.wg.Done()
	defer c.Close()
	d := net.Dialer{Timeout: dialTimeout}
	tc, err := d.DialContext(fw.ctx, "tcp", fw.fw.Target.String())
	if err != nil {
		c.SetLinger(0) // the client sees a reset, as from a closed port
		return
	}
	t := tc.(*net.TCPConn)
	defer t.Close()
	if !fw.track(c, t) {
		return
	}
	defer fw.untrack(c, t)
	done := make(chan struct{}, 2)
	pipe := func(dst, src *net.TCPConn) {
		_, err := io.Copy(dst, src)
		if err != nil {
			// A reset on one side resets the other.
			dst.SetLinger(0)
			dst.Close()
			src.Close()
		} else {
			dst.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(t, c)
	go pipe(c, t)
	<-done
	<-done
}

// serveUDP relays datagrams of pc's clients, one connected socket to the
// target per client address, each ending after UDPIdle without traffic.
func (fw *forward) serveUDP(pc *net.UDPConn) {
	defer fw.wg.Done()
	type session struct {
		c    *net.UDPConn
		last time.Time
	}
	var mu sync.Mutex
	sessions := map[netip.AddrPort]*session{}
	buf := make([]byte, 64<<10)
	for {
		n, from, err := pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) || fw.ctx.Err() != nil {
				return
			}
			continue
		}
		mu.Lock()
		s := sessions[from]
		if s == nil {
			c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(fw.fw.Target))
			if err != nil || !fw.track(c) {
				mu.Unlock()
				if c != nil {
					c.Close()
				}
				continue
			}
			s = &session{c: c}
			sessions[from] = s
			fw.wg.Add(1)
			go func() {
				defer fw.wg.Done()
				defer fw.untrack(c)
				defer c.Close()
				rb := make([]byte, 64<<10)
				for {
					c.SetReadDeadline(time.Now().Add(UDPIdle))
					n, err := c.Read(rb)
					if err != nil {
						var ne net.Error
						mu.Lock()
						idle := time.Since(s.last) >= UDPIdle
						if errors.As(err, &ne) && ne.Timeout() && !idle {
							mu.Unlock()
							continue
						}
						delete(sessions, from)
						mu.Unlock()
						return
					}
					mu.Lock()
					s.last = time.Now()
					mu.Unlock()
					pc.WriteToUDPAddrPort(rb[:n], from)
				}
			}()
		}
		s.last = time.Now()
		c := s.c
		mu.Unlock()
		c.Write(buf[:n])
	}
}
