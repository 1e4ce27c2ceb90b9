package dptest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"nimbus/internal/dataplane"
)

// backend is one test instance: a TCP echo server that first writes
// "backend-<i>\n", a UDP echo server that prefixes replies with
// "backend-<i>:", and an HTTP server answering /health with a status the
// test can flip.
type backend struct {
	i      int
	id     string
	ip     netip.Addr
	status atomic.Int32
	conns  atomic.Int64
	// proxyHeaders receives PROXY v2 source addresses when expectProxy.
	expectProxy atomic.Bool
	proxySrc    chan netip.AddrPort

	mu      sync.Mutex
	closers []io.Closer
}

// fleet is the backends of one scenario, all on the same ports.
type fleet struct {
	h        *Harness
	bs       []*backend
	port     uint16 // TCP and UDP echo
	health   uint16 // HTTP health
	wg       sync.WaitGroup
	stopping atomic.Bool
}

// startFleet starts n backends on common ports.
func startFleet(t *testing.T, h *Harness, n int) *fleet {
	t.Helper()
	f := &fleet{h: h}
	t.Cleanup(f.stop)
	for range 20 {
		if f.tryStart(t, n) {
			return f
		}
		f.stop()
		f.stopping.Store(false)
		f.bs, f.port, f.health = nil, 0, 0
	}
	t.Fatal("dptest: could not start backends on common ports")
	return nil
}

func (f *fleet) tryStart(t *testing.T, n int) bool {
	for i := range n {
		b := &backend{i: i, id: fmt.Sprintf("/backend/%d/ipconfigurations/ipconfig1", i), ip: f.h.BackendIP(i),
			proxySrc: make(chan netip.AddrPort, 64)}
		b.status.Store(200)
		f.bs = append(f.bs, b)
		tl, err := f.h.listenTCP(i, f.port)
		if err != nil {
			if i == 0 {
				t.Fatalf("dptest: backend listen: %v", err)
			}
			return false
		}
		b.track(tl)
		if i == 0 {
			f.port = uint16(tl.Addr().(*net.TCPAddr).Port)
		}
		ul, err := f.h.listenUDP(i, f.port)
		if err != nil {
			return false
		}
		b.track(ul)
		hl, err := f.h.listenTCP(i, f.health)
		if err != nil {
			return false
		}
		b.track(hl)
		if i == 0 {
			f.health = uint16(hl.Addr().(*net.TCPAddr).Port)
		}
		srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
		b.track(srv)
		f.wg.Add(3)
		go func() { defer f.wg.Done(); f.serveTCP(b, tl) }()
		go func() { defer f.wg.Done(); f.serveUDP(b, ul) }()
		go func() { defer f.wg.Done(); _ = srv.Serve(hl) }()
	}
	return true
}

func (b *backend) track(c io.Closer) {
	b.mu.Lock()
	b.closers = append(b.closers, c)
	b.mu.Unlock()
}

func (f *fleet) stop() {
	f.stopping.Store(true)
	for _, b := range f.bs {
		b.mu.Lock()
		cs := b.closers
		b.closers = nil
		b.mu.Unlock()
		for _, c := range cs {
			c.Close()
		}
	}
	f.wg.Wait()
}

// ServeHTTP answers the health endpoint.
func (b *backend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.WriteHeader(int(b.status.Load()))
}

func (f *fleet) serveTCP(b *backend, l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		b.track(c)
		b.conns.Add(1)
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer c.Close()
			var r io.Reader = c
			if b.expectProxy.Load() {
				br := bufio.NewReader(c)
				hdr, err := proxyproto.Read(br)
				if err != nil {
					return
				}
				if src, ok := hdr.SourceAddr.(*net.TCPAddr); ok {
					select {
					case b.proxySrc <- src.AddrPort():
					default:
					}
				}
				r = br
			}
			if _, err := fmt.Fprintf(c, "backend-%d\n", b.i); err != nil {
				return
			}
			_, _ = io.Copy(c, r)
		}()
	}
}

func (f *fleet) serveUDP(b *backend, c net.PacketConn) {
	buf := make([]byte, 65535)
	prefix := fmt.Sprintf("backend-%d:", b.i)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return
		}
		payload := buf[:n]
		if b.expectProxy.Load() {
			hdr, err := proxyproto.Read(bufio.NewReader(strings.NewReader(string(payload))))
			if err == nil {
				if src, ok := hdr.SourceAddr.(*net.UDPAddr); ok {
					select {
					case b.proxySrc <- src.AddrPort():
					default:
					}
				}
				hl, _ := hdr.Format()
				payload = payload[len(hl):]
			}
		}
		_, _ = c.WriteTo(append([]byte(prefix), payload...), from)
	}
}

// Backends returns the fleet's first n members as Config backends.
func (f *fleet) backends(n int) []dataplane.Backend {
	out := make([]dataplane.Backend, 0, n)
	for _, b := range f.bs[:n] {
		out = append(out, dataplane.Backend{ID: b.id, IP: b.ip, DialIP: b.ip})
	}
	return out
}

// conn is a client connection through the engine, with the backend that
// answered.
type conn struct {
	net.Conn
	r       *bufio.Reader
	backend int
}

// connect dials the frontend as client and reads the backend's name.
func (f *fleet) connect(ctx context.Context, client int, to netip.AddrPort) (*conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	c, err := f.h.dial(ctx, client, "tcp", to)
	if err != nil {
		return nil, err
	}
	cc := &conn{Conn: c, r: bufio.NewReader(c), backend: -1}
	_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
	line, err := cc.r.ReadString('\n')
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("read backend name: %w", err)
	}
	i, err := strconv.Atoi(strings.TrimPrefix(strings.TrimSpace(line), "backend-"))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("bad backend name %q", line)
	}
	cc.backend = i
	return cc, nil
}

// echo sends msg and checks it comes back.
func (c *conn) echo(msg string) error {
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	defer c.SetDeadline(time.Time{})
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return err
	}
	line, err := c.r.ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != msg {
		return fmt.Errorf("echo got %q, want %q", line, msg)
	}
	return nil
}

// udpAsk sends msg over pc to the frontend and returns the answering backend
// and the reply's source.
func udpAsk(c net.Conn, msg string) (int, error) {
	for range 3 { // UDP may drop on a busy host: a few bounded tries
		_ = c.SetDeadline(time.Now().Add(time.Second))
		if _, err := c.Write([]byte(msg)); err != nil {
			return -1, err
		}
		buf := make([]byte, 2048)
		n, err := c.Read(buf)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			continue
		}
		if err != nil {
			return -1, err
		}
		name, payload, ok := strings.Cut(string(buf[:n]), ":")
		if !ok || payload != msg {
			return -1, fmt.Errorf("udp reply %q for %q", buf[:n], msg)
		}
		return strconv.Atoi(strings.TrimPrefix(name, "backend-"))
	}
	return -1, errors.New("udp: no reply after 3 tries")
}
