package chaos

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"testing"
	"time"

	"nimbus/internal/cli"
)

// writeLoad is N writers, each PUTting and PATCHing the tags of its own
// resource group and its own public IP, recording every write the API
// acknowledged (2xx).
type writeLoad struct {
	n    *nimbus
	mu   sync.Mutex
	acks map[string]int // resource path → highest acknowledged seq
	sent map[string]int // resource path → highest seq sent
	// version is the api-version of each path.
	version map[string]string
	errs    int // writes without an answer (nimbus down)
	ok      int
	// refused are the writes answered with an error status: none may be.
	refused []string
	stop    chan struct{}
	wg      sync.WaitGroup
}

// writeTargets are the resources writer i owns.
func (n *nimbus) writeTargets(i int) (group, pip string) {
	return n.group(fmt.Sprintf("w%d", i)), n.res("rg", "Microsoft.Network/publicIPAddresses", fmt.Sprintf("w%d-ip", i))
}

// prepareWrites creates the writers' resources.
func (n *nimbus) prepareWrites(ctx context.Context, writers int) {
	n.t.Helper()
	for i := range writers {
		g, _ := n.writeTargets(i)
		n.must(ctx, http.MethodPut, g, cli.ResourcesAPIVersion, map[string]any{"location": "eastus"})
		n.createPublicIP(ctx, "rg", fmt.Sprintf("w%d-ip", i))
	}
}

// startWrites starts the writers; each writes at most limit times.
func (n *nimbus) startWrites(writers, limit int, w *writeLoad) *writeLoad {
	if w == nil {
		w = &writeLoad{n: n, acks: map[string]int{}, sent: map[string]int{}, version: map[string]string{}}
	}
	w.stop = make(chan struct{})
	for i := range writers {
		w.wg.Add(1)
		go func() {
			defer w.wg.Done()
			g, pip := n.writeTargets(i)
			for k := 0; k < limit; k++ {
				select {
				case <-w.stop:
					return
				default:
				}
				path, version := g, cli.ResourcesAPIVersion
				if k%2 == 1 {
					path, version = pip, cli.NetworkAPIVersion
				}
				w.mu.Lock()
				w.version[path] = version
				seq := w.sent[path] + 1
				w.sent[path] = seq
				w.mu.Unlock()
				tags := map[string]string{"seq": strconv.Itoa(seq), "writer": strconv.Itoa(i)}
				var body any = map[string]any{"tags": tags}
				method := http.MethodPatch
				if k%4 < 2 {
					method = http.MethodPut
					if path == g {
						body = map[string]any{"location": "eastus", "tags": tags}
					} else {
						body = map[string]any{"location": "eastus", "tags": tags, "sku": map[string]any{"name": "Standard"},
							"properties": map[string]any{"publicIPAllocationMethod": "Static"}}
					}
				}
				ctx, cancel := context.WithTimeout(context.Background(), 2*apiBound)
				_, err := n.do(ctx, method, path, version, body)
				cancel()
				w.mu.Lock()
				if err == nil {
					w.ok++
					w.acks[path] = max(w.acks[path], seq)
				} else if ae := (*cli.APIError)(nil); errors.As(err, &ae) {
					w.refused = append(w.refused, fmt.Sprintf("%s %s: %d %s", method, path, ae.Status, ae.Code))
				} else {
					w.errs++
				}
				w.mu.Unlock()
				select {
				case <-w.stop:
					return
				case <-time.After(5 * time.Millisecond):
				}
			}
		}()
	}
	return w
}

// halt stops the writers and waits for them.
func (w *writeLoad) halt() {
	close(w.stop)
	w.wg.Wait()
}

// check fails the test unless every resource holds a seq at least its
// highest acknowledged one (and no higher than the highest sent).
func (w *writeLoad) check(ctx context.Context, what string) {
	w.n.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for path, sent := range w.sent {
		v, err := w.n.api.Get(ctx, path, w.version[path])
		if err != nil {
			w.n.t.Fatalf("%s: GET %s: %v", what, path, err)
		}
		s, _ := field(v, "tags", "seq").(string)
		got, _ := strconv.Atoi(s)
		if got < w.acks[path] || got > sent {
			w.n.t.Errorf("%s: %s has seq %d; acknowledged %d, sent %d: an acknowledged write is lost", what, path, got, w.acks[path], sent)
		}
	}
	for _, r := range w.refused {
		w.n.t.Errorf("%s: a valid write was refused: %s", what, r)
	}
	w.n.t.Logf("%s: %d writes acknowledged, %d unanswered (nimbus down); every acknowledged write is there", what, w.ok, w.errs)
}

// TestKill9UnderLoad kills the real nimbus with SIGKILL while writers PUT
// and PATCH tags and a client sends traffic through a load-balanced
// frontend; after a restart every acknowledged write is there and traffic
// flows to both instances again (on the kernel path it never stops: the
// kernel forwards without nimbus); a clean stop leaves nothing behind.
func TestKill9UnderLoad(t *testing.T) { bothModes(t, testKill9UnderLoad) }

func testKill9UnderLoad(t *testing.T, m mode) {
	const writers = 4
	n := startNimbus(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.setupNetwork(ctx, "rg")
	fe := n.createLB(ctx, lbSpec{rg: "rg", name: "lb", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "web", lb: "lb", capacity: 2})
	names := n.waitInstances(t, "rg", "web", 2, 30*time.Second)
	waitTraffic(t, fe, names, 20*time.Second)
	n.prepareWrites(ctx, writers)

	traffic := startLoop(fe, 10*time.Millisecond, 2*time.Second, 5000)
	w := n.startWrites(writers, 2000, nil)
	time.Sleep(1500 * time.Millisecond) // load runs; the kill lands mid-write
	killedAt := time.Now()
	n.kill9()
	time.Sleep(300 * time.Millisecond) // writers see the outage
	w.halt()
	restartAt := time.Now()
	n.start()
	upAt := time.Now()
	t.Logf("kill -9 at +0; restart at +%s; API up at +%s", restartAt.Sub(killedAt).Round(time.Millisecond), upAt.Sub(killedAt).Round(time.Millisecond))
	w.check(ctx, "after kill -9 and restart")

	waitTraffic(t, fe, names, 30*time.Second)
	recovered := time.Now()
	time.Sleep(500 * time.Millisecond)
	rs := traffic.stopLoop()
	var before, down, after []result
	for _, r := range rs {
		switch {
		case r.start.Add(r.took).Before(killedAt):
			before = append(before, r)
		case r.start.Before(upAt):
			down = append(down, r)
		default:
			after = append(after, r)
		}
	}
	t.Logf("traffic before the kill: %s", tally(before))
	t.Logf("traffic while nimbus was down: %s", tally(down))
	t.Logf("traffic after the restart: %s", tally(after))
	for _, r := range before {
		if r.err != nil {
			t.Errorf("traffic failed before the kill: %v", r.err)
			break
		}
	}
	for _, r := range rs {
		if r.took > 3*time.Second {
			t.Errorf("a request through the frontend hung for %s", r.took)
			break
		}
	}
	for _, r := range after {
		if r.err != nil && r.start.After(recovered) {
			t.Errorf("traffic failed after it had recovered: %v", r.err)
			break
		}
	}
	if m.kernel() {
		// The kernel forwards without nimbus: no request may fail.
		for _, r := range down {
			if r.err != nil {
				t.Errorf("kernel path: traffic failed while nimbus was down: %v", r.err)
				break
			}
		}
	}

	// Writes resume after the restart and are kept too.
	w = n.startWrites(writers, 10, w)
	w.wg.Wait()
	w.halt()
	w.check(ctx, "after writes resumed")
	n.checkAPIBound()

	// A clean stop leaves nothing behind. The process driver keeps
	// instances running across a stop (for re-adoption), so the scale set
	// goes first there; the kernel path's stop tears everything down.
	if !m.kernel() {
		if err := n.api.Delete(ctx, n.res("rg", "Microsoft.Compute/virtualMachineScaleSets", "web"), cli.ComputeAPIVersion, true); err != nil {
			t.Fatalf("delete scale set: %v", err)
		}
	}
	n.stop()
	n.checkNothingLeft()
}
