package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment of a backend: the script image's customData runs the chaos
// test binary with BackendEnv=1 and ControlDirEnv set; the workload's
// NIMBUS_* variables say who and where it is.
const (
	// BackendEnv, when "1", makes RunBackendIfReexec serve a Backend.
	BackendEnv = "NIMBUS_CHAOS_BACKEND"
	// ControlDirEnv is the directory the test and its backends share.
	ControlDirEnv = "NIMBUS_CHAOS_DIR"
	envName       = "NIMBUS_INSTANCE_NAME"
	envBindIP     = "NIMBUS_BIND_IP"
)

// Ports of a backend: traffic (what the load-balancing rule forwards to)
// and health (what the probe asks). Both are above 1024 so a backend runs
// without privilege.
const (
	TrafficPort = 8080
	HealthPort  = 8081
)

// Mode is how a backend's traffic port behaves. Its health port always
// answers the probe (from the health file), so a broken mode stays in
// rotation: the load balancer cannot tell, only the clients can.
type Mode string

// The modes, read once at start from "<name>.mode" in the control dir (a
// missing file means ModeOK).
const (
	// ModeOK answers GET / at once with a Reply.
	ModeOK Mode = "ok"
	// ModeSlow answers GET / after SlowDelay.
	ModeSlow Mode = "slow"
	// ModeHang listens but never accepts: connects complete in the
	// kernel's backlog and nothing is ever said.
	ModeHang Mode = "hang"
	// ModeReset accepts every connection and resets it (SO_LINGER 0).
	ModeReset Mode = "reset"
)

// SlowDelay is how long a ModeSlow backend waits before answering.
const SlowDelay = 1500 * time.Millisecond

// Reply is the JSON body a backend answers GET / with.
type Reply struct {
	Name string `json:"name"`
	// PID is the backend's own process; PPID its parent, the instance's
	// workload process that exec'd it (the driver's PID of the instance).
	PID  int `json:"pid"`
	PPID int `json:"ppid"`
}

// Files in the control directory, per instance name.

// HealthFile is the file whose content decides the health answer: "down"
// answers 503, anything else (or no file) 200. It is read at every probe.
func HealthFile(dir, name string) string { return filepath.Join(dir, name+".health") }

// ModeFile holds the instance's Mode.
func ModeFile(dir, name string) string { return filepath.Join(dir, name+".mode") }

// PIDFile receives "<ppid>\n" (the instance's workload PID) once the
// backend serves.
func PIDFile(dir, name string) string { return filepath.Join(dir, name+".pid") }

// EventsFile receives one line per event, "<kind> <unix nanoseconds>
// [detail]": "accept" for every traffic connection accepted, "probe <code>"
// for every health answer.
func EventsFile(dir, name string) string { return filepath.Join(dir, name+".events") }

// Backend is a controllable instance workload for the chaos scenarios. Its
// zero value is not usable: fill every field and call Serve once.
type Backend struct {
	// Dir is the control directory; Name the instance name; Bind the
	// address to listen on.
	Dir  string
	Name string
	Bind netip.Addr

	mu     sync.Mutex
	events *os.File
}

// RunBackendIfReexec serves a Backend and exits when the process was
// started as one (BackendEnv=1), until SIGTERM; otherwise it returns at
// once. Call it first in TestMain.
func RunBackendIfReexec() {
	if os.Getenv(BackendEnv) != "1" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	b := &Backend{Dir: os.Getenv(ControlDirEnv), Name: os.Getenv(envName)}
	var err error
	if b.Bind, err = netip.ParseAddr(os.Getenv(envBindIP)); err == nil {
		err = b.Serve(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos backend:", err)
		os.Exit(2)
	}
	os.Exit(0)
}

// Serve listens on both ports, writes the PID file and serves until ctx
// ends.
func (b *Backend) Serve(ctx context.Context) error {
	if b.Dir == "" || b.Name == "" || !b.Bind.IsValid() {
		return errors.New("backend: Dir, Name and Bind are required")
	}
	mode := ModeOK
	if m, err := os.ReadFile(ModeFile(b.Dir, b.Name)); err == nil {
		mode = Mode(strings.TrimSpace(string(m)))
	}
	ev, err := os.OpenFile(EventsFile(b.Dir, b.Name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("backend: events: %w", err)
	}
	b.events = ev
	defer ev.Close()

	var lc net.ListenConfig
	traffic, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(b.Bind, TrafficPort).String())
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	defer traffic.Close()
	health, err := lc.Listen(ctx, "tcp", netip.AddrPortFrom(b.Bind, HealthPort).String())
	if err != nil {
		return fmt.Errorf("backend: %w", err)
	}
	defer health.Close()

	hs := &http.Server{Handler: http.HandlerFunc(b.serveHealth), ReadHeaderTimeout: 5 * time.Second}
	go hs.Serve(health) //nolint:errcheck // ends with the listener
	defer hs.Close()

	switch mode {
	case ModeOK, ModeSlow:
		ts := &http.Server{Handler: b.trafficHandler(mode), ReadHeaderTimeout: 5 * time.Second,
			ConnState: func(_ net.Conn, s http.ConnState) {
				if s == http.StateNew {
					b.event("accept", "")
				}
			}}
		go ts.Serve(traffic) //nolint:errcheck // ends with the listener
		defer ts.Close()
	case ModeReset:
		go b.reset(traffic)
	case ModeHang:
		// Never accept.
	default:
		return fmt.Errorf("backend: unknown mode %q", mode)
	}
	if err := os.WriteFile(PIDFile(b.Dir, b.Name), fmt.Appendf(nil, "%d\n", os.Getppid()), 0o644); err != nil {
		return fmt.Errorf("backend: pid file: %w", err)
	}
	<-ctx.Done()
	return nil
}

func (b *Backend) event(kind, detail string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	line := fmt.Sprintf("%s %d", kind, time.Now().UnixNano())
	if detail != "" {
		line += " " + detail
	}
	b.events.WriteString(line + "\n") //nolint:errcheck // best effort: the test reads what is there
}

func (b *Backend) serveHealth(w http.ResponseWriter, _ *http.Request) {
	code := http.StatusOK
	if s, err := os.ReadFile(HealthFile(b.Dir, b.Name)); err == nil && strings.TrimSpace(string(s)) == "down" {
		code = http.StatusServiceUnavailable
	}
	w.WriteHeader(code)
	// Logged after the header is written: the prober learns the answer no
	// earlier than this line's time.
	b.event("probe", fmt.Sprint(code))
}

func (b *Backend) trafficHandler(mode Mode) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if mode == ModeSlow {
			select {
			case <-time.After(SlowDelay):
			case <-r.Context().Done():
				return
			}
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(Reply{Name: b.Name, PID: os.Getpid(), PPID: os.Getppid()}) //nolint:errcheck // client gone
	})
}

// reset accepts connections and closes each with a reset.
func (b *Backend) reset(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		b.event("accept", "reset")
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) //nolint:errcheck // best effort
		}
		c.Close()
	}
}
