package chaos

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/poll"
)

// hit sends GET / to addr over a fresh connection and returns the reply.
func hit(ctx context.Context, addr string, timeout time.Duration) (Reply, error) {
	var r Reply
	c := &http.Client{Timeout: timeout, Transport: &http.Transport{DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: timeout}).DialContext}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/", nil)
	if err != nil {
		return r, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return r, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("reply %q: %w", b, err)
	}
	return r, nil
}

// spread sends n requests and counts the answering instances ("error" for
// failures).
func spread(ctx context.Context, addr string, n int) map[string]int {
	out := map[string]int{}
	for range n {
		r, err := hit(ctx, addr, 2*time.Second)
		if err != nil {
			out["error"]++
			continue
		}
		out[r.Name]++
	}
	return out
}

// waitTraffic waits until requests to addr reach exactly the instances
// named, with no failure.
func waitTraffic(t *testing.T, addr string, names []string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	poll.Until(t, timeout, fmt.Sprintf("traffic to %s reaching exactly %v", addr, names), func() error {
		s := spread(ctx, addr, 8*len(names))
		if s["error"] > 0 || len(s) != len(names) {
			return fmt.Errorf("answers %v", s)
		}
		for _, n := range names {
			if s[n] == 0 {
				return fmt.Errorf("answers %v", s)
			}
		}
		return nil
	})
}

// result is one request of a traffic loop.
type result struct {
	start time.Time
	took  time.Duration
	name  string // answering instance; "" on error
	err   error
}

// loop sends requests to a frontend until stopped: bounded by count and
// by the timeout of each request.
type loop struct {
	mu      sync.Mutex
	results []result
	stop    chan struct{}
	done    chan struct{}
}

// startLoop sends a request to addr every gap (at most limit of them), each
// with the given timeout, until stopLoop.
func startLoop(addr string, gap, timeout time.Duration, limit int) *loop {
	l := &loop{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for i := 0; i < limit; i++ {
			select {
			case <-l.stop:
				return
			default:
			}
			start := time.Now()
			r, err := hit(context.Background(), addr, timeout)
			l.mu.Lock()
			l.results = append(l.results, result{start: start, took: time.Since(start), name: r.Name, err: err})
			l.mu.Unlock()
			select {
			case <-l.stop:
				return
			case <-time.After(gap):
			}
		}
	}()
	return l
}

// stopLoop stops the loop and returns its results.
func (l *loop) stopLoop() []result {
	close(l.stop)
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]result(nil), l.results...)
}

// tally summarises results: answers per instance, errors, slowest.
func tally(rs []result) string {
	by := map[string]int{}
	var slowest time.Duration
	for _, r := range rs {
		if r.err != nil {
			by["error"]++
		} else {
			by[r.name]++
		}
		slowest = max(slowest, r.took)
	}
	keys := make([]string, 0, len(by))
	for k := range by {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%d ", k, by[k])
	}
	return fmt.Sprintf("%d requests: %sslowest %s", len(rs), b.String(), slowest.Round(time.Millisecond))
}

// instancePID finds, in the host's /proc, the workload process of instance
// name: the parent of the backend process whose environment names that
// instance and this control dir. (The PID a backend sees of itself is the
// one inside its instance's PID namespace, useless on the host.) It checks
// that the process is a nimbus workload, not a reused PID.
func instancePID(ctl, name string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	want := []string{BackendEnv + "=1", ControlDirEnv + "=" + ctl, envName + "=" + name}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
		if err != nil {
			continue
		}
		vars := strings.Split(string(env), "\x00")
		if !hasAll(vars, want) {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut at the last ')'.
		f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(f) < 2 {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", ppid))
		if err != nil {
			return 0, fmt.Errorf("instance %s workload pid %d: %w", name, ppid, err)
		}
		if !strings.Contains(string(cmdline), "workload") {
			return 0, fmt.Errorf("instance %s pid %d is not a workload: %q", name, ppid, cmdline)
		}
		return ppid, nil
	}
	return 0, fmt.Errorf("no backend process of instance %s (control dir %s) on the host", name, ctl)
}

// hasAll reports whether vars holds every entry of want.
func hasAll(vars, want []string) bool {
	for _, w := range want {
		found := false
		for _, v := range vars {
			if v == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// isTimeout reports whether err is a timeout (a hang), as opposed to a
// clean end (reset, close, refusal).
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isCleanError reports whether err is a prompt end of the connection by
// the other side: a reset (also seen as a broken pipe while the request is
// written), an EOF, a refusal.
func isCleanError(err error) bool {
	return errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "EOF") ||
		strings.Contains(err.Error(), "connection reset") ||
		// The client's own transport read on a connection the proxy had
		// just closed (a reset seen from Go's side): a clean end too.
		errors.Is(err, net.ErrClosed)
}

// event is one line of a backend's events file.
type event struct {
	kind   string
	at     time.Time
	detail string
}

// readEvents reads a backend's events file.
func readEvents(ctl, name string) ([]event, error) {
	b, err := os.ReadFile(EventsFile(ctl, name))
	if err != nil {
		return nil, err
	}
	var out []event
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		ns, err := strconv.ParseInt(f[1], 10, 64)
		if err != nil {
			continue
		}
		e := event{kind: f[0], at: time.Unix(0, ns)}
		if len(f) > 2 {
			e.detail = f[2]
		}
		out = append(out, e)
	}
	return out, nil
}

// waitInstances waits until the scale set has want instances, all
// provisioned and with a live backend, and returns their names.
func (n *nimbus) waitInstances(t *testing.T, rg, vmss string, want int, timeout time.Duration) []string {
	t.Helper()
	var names []string
	poll.Until(t, timeout, fmt.Sprintf("%d running instances of %s", want, vmss), func() error {
		list, err := n.instances(context.Background(), rg, vmss)
		if err != nil {
			return err
		}
		names = names[:0]
		for _, in := range list {
			if in.State != "Succeeded" {
				return fmt.Errorf("%s is %s", in.Name, in.State)
			}
			if _, err := instancePID(n.ctl, in.Name); err != nil {
				return err
			}
			names = append(names, in.Name)
		}
		if len(names) != want {
			return fmt.Errorf("instances %v", names)
		}
		return nil
	})
	return names
}
