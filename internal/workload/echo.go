package workload

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pires/go-proxyproto"
	"golang.org/x/sync/errgroup"
)

// Default ports of the echo image, as the issue defines them.
const (
	DefaultHTTPPort = 80
	DefaultSSHPort  = 22
	DefaultUDPPort  = 80
)

// EchoReply is the JSON body of GET / and of every UDP answer.
type EchoReply struct {
	Name       string `json:"name"`
	InstanceID string `json:"instanceId"`
	PrivateIP  string `json:"privateIp"`
	// Client is the peer as the workload sees it, "ip:port": the TCP or
	// UDP peer, or the source a PROXY protocol header carried.
	Client string `json:"client"`
}

// Echo is the echo image. The zero ports mean the defaults (80, 22, 80);
// tests in this package set others only to run without privilege. Serve it
// once.
type Echo struct {
	Config   Config
	HTTPPort int
	SSHPort  int
	UDPPort  int
	// Ports are served besides the three above (Config.Ports in
	// production): TCP ports answer HTTP (and HTTPS, told apart by the
	// first byte a client sends), the SSH port the banner, UDP ports echo.
	Ports []Port
	// Logger receives per-server errors; nil discards them.
	Logger *slog.Logger
	// Bound, if not nil, is called once every port is bound and before
	// anything is served; an error from it ends Serve. Main drops root
	// privileges there: ports below 1024 are bound first.
	Bound func() error

	health atomic.Int32
}

func (e *Echo) port(p, def int) int {
	if p == 0 {
		return def
	}
	return p
}

// plan returns the distinct HTTP, SSH and UDP ports to serve.
func (e *Echo) plan() (httpPorts []int, ssh int, udpPorts []int) {
	ssh = e.port(e.SSHPort, DefaultSSHPort)
	httpPorts = []int{e.port(e.HTTPPort, DefaultHTTPPort)}
	udpPorts = []int{e.port(e.UDPPort, DefaultUDPPort)}
	for _, p := range e.Ports {
		switch {
		case p.Number <= 0 || p.Number > 65535:
		case p.Protocol == ProtoUDP && !slices.Contains(udpPorts, p.Number):
			udpPorts = append(udpPorts, p.Number)
		case p.Protocol == ProtoTCP && p.Number != ssh && !slices.Contains(httpPorts, p.Number):
			httpPorts = append(httpPorts, p.Number)
		}
	}
	return httpPorts, ssh, udpPorts
}

// Serve binds every port on Config.BindIP, calls ready (if not nil) once all
// are bound, and serves until ctx ends, then closes everything and returns
// nil. A bind error is returned at once; one caused by missing privilege for
// a low port wraps ErrPrivilegedPort.
func (e *Echo) Serve(ctx context.Context, ready func()) error {
	log := e.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e.health.Store(http.StatusOK)
	bind := e.Config.BindIP
	addr := func(p int) string { return netip.AddrPortFrom(bind, uint16(p)).String() }
	httpPorts, sshPort, udpPorts := e.plan()

	var lc net.ListenConfig
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var httpLns []net.Listener
	for _, p := range httpPorts {
		ln, err := lc.Listen(ctx, "tcp", addr(p))
		if err != nil {
			return bindError(err)
		}
		closers = append(closers, ln)
		httpLns = append(httpLns, ln)
	}
	sshLn, err := lc.Listen(ctx, "tcp", addr(sshPort))
	if err != nil {
		return bindError(err)
	}
	closers = append(closers, sshLn)
	var udps []net.PacketConn
	for _, p := range udpPorts {
		pc, err := lc.ListenPacket(ctx, "udp", addr(p))
		if err != nil {
			return bindError(err)
		}
		closers = append(closers, pc)
		udps = append(udps, pc)
	}
	if e.Bound != nil {
		if err := e.Bound(); err != nil {
			return err
		}
	}
	tlsConf, err := selfSignedTLS(e.Config.Name)
	if err != nil {
		return fmt.Errorf("echo: %w", err)
	}

	srv := &http.Server{
		Handler:           e.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	if ready != nil {
		ready()
	}

	g, gctx := errgroup.WithContext(ctx)
	serve := func(ln net.Listener) {
		g.Go(func() error {
			err := srv.Serve(ln)
			if errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("echo: http: %w", err)
		})
	}
	for _, ln := range httpLns {
		plain, secure := sniffTLS(gctx, &proxyproto.Listener{Listener: ln})
		serve(plain)
		serve(tls.NewListener(secure, tlsConf))
		closers = append(closers, plain, secure)
	}
	g.Go(func() error { return e.serveSSH(gctx, sshLn) })
	for _, pc := range udps {
		g.Go(func() error { return e.serveUDP(gctx, pc) })
	}
	g.Go(func() error {
		<-gctx.Done()
		shut, cancel := context.WithTimeout(context.WithoutCancel(gctx), 2*time.Second)
		defer cancel()
		srv.Shutdown(shut) //nolint:errcheck // closing on the way out
		for _, c := range closers {
			c.Close()
		}
		return nil
	})
	err = g.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

// bindError explains a failed listen: missing privilege for a low port wraps
// ErrPrivilegedPort; an address that is not local gets a hint about loopback
// aliases (macOS only has 127.0.0.1 on lo0 by default).
func bindError(err error) error {
	var op *net.OpError
	port := 0
	if errors.As(err, &op) && op.Addr != nil {
		if ap, perr := netip.ParseAddrPort(op.Addr.String()); perr == nil {
			port = int(ap.Port())
		}
	}
	switch {
	case errors.Is(err, syscall.EACCES) && port > 0 && port < 1024:
		return fmt.Errorf("echo: %w: %w", err, ErrPrivilegedPort)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		hint := "the bind address is not configured on this host"
		if runtime.GOOS == "darwin" {
			hint += "; on macOS add it as a loopback alias (sudo ifconfig lo0 alias <address>)"
		}
		return fmt.Errorf("echo: %w (%s)", err, hint)
	}
	return fmt.Errorf("echo: %w", err)
}

func (e *Echo) reply(client string) EchoReply {
	return EchoReply{
		Name:       e.Config.Name,
		InstanceID: e.Config.InstanceID,
		PrivateIP:  e.Config.PrivateIP.String(),
		Client:     client,
	}
}

func (e *Echo) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(e.reply(r.RemoteAddr)) //nolint:errcheck // client gone
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) {
		code := int(e.health.Load())
		w.WriteHeader(code)
		fmt.Fprintf(w, "%d %s\n", code, http.StatusText(code))
	})
	mux.HandleFunc("PUT /health", func(w http.ResponseWriter, r *http.Request) {
		n, err := strconv.Atoi(r.URL.Query().Get("status"))
		if err != nil || n < 100 || n > 599 {
			http.Error(w, "status must be an HTTP status code from 100 to 599", http.StatusBadRequest)
			return
		}
		e.health.Store(int32(n))
		fmt.Fprintf(w, "/health now answers %d\n", n)
	})
	return mux
}

// serveSSH sends the banner line to each connection and closes it. It half
// closes first and drains what the peer sent (a PROXY header, an SSH client
// hello), so the peer sees a clean end instead of a reset that could
// discard the banner.
func (e *Echo) serveSSH(ctx context.Context, ln net.Listener) error {
	banner := []byte("SSH-2.0-nimbus " + e.Config.Name + "\r\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("echo: ssh: %w", err)
		}
		go func() {
			defer c.Close()
			c.SetDeadline(time.Now().Add(2 * time.Second)) //nolint:errcheck // best effort
			if _, err := c.Write(banner); err != nil {
				return
			}
			if tc, ok := c.(*net.TCPConn); ok {
				tc.CloseWrite() //nolint:errcheck // best effort
			}
			io.Copy(io.Discard, io.LimitReader(c, 64<<10)) //nolint:errcheck // draining
		}()
	}
}

func (e *Echo) serveUDP(ctx context.Context, pc net.PacketConn) error {
	uc := pc.(*net.UDPConn)
	buf := make([]byte, 64<<10)
	for {
		_, peer, err := uc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			return fmt.Errorf("echo: udp: %w", err)
		}
		peer = netip.AddrPortFrom(peer.Addr().Unmap(), peer.Port())
		b, err := json.Marshal(e.reply(peer.String()))
		if err != nil {
			return fmt.Errorf("echo: udp: %w", err)
		}
		uc.WriteToUDPAddrPort(append(b, '\n'), peer) //nolint:errcheck // datagrams may be lost
	}
}
