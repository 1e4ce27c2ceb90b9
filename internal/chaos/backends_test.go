package chaos

import (
	"context"
	"os"
	"sync"
	"testing"
	"time"
)

// TestBrokenBackends puts four backends behind one frontend, all healthy
// by the probe: one answers at once, one answers after SlowDelay, one
// never accepts, one resets every connection. Many clients at once open
// fresh connections. The good and the slow backends keep serving (the
// good one fast, whatever the others hold); a client sent to the
// resetting one gets a prompt clean error (reset or close), not a hang; a
// client sent to the silent one waits, and only its own timeout ends it
// (the load balancer's idle timeout is 4 minutes, beyond this suite's
// budget). The API answers within its bound throughout.
func TestBrokenBackends(t *testing.T) { bothModes(t, testBrokenBackends) }

func testBrokenBackends(t *testing.T, m mode) {
	const (
		requests = 120
		clients  = 16
		timeout  = 2500 * time.Millisecond
	)
	n := startNimbus(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	modes := []Mode{ModeOK, ModeSlow, ModeHang, ModeReset}
	for i, md := range modes {
		if err := os.WriteFile(ModeFile(n.ctl, "web_"+string(rune('0'+i))), []byte(md), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	n.setupNetwork(ctx, "rg")
	fe := n.createLB(ctx, lbSpec{rg: "rg", name: "lb", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "web", lb: "lb", capacity: len(modes)})
	n.waitInstances(t, "rg", "web", len(modes), 30*time.Second)

	// The API is asked all along.
	apiDone := make(chan struct{})
	var apiWG sync.WaitGroup
	apiWG.Add(1)
	go func() {
		defer apiWG.Done()
		for i := 0; i < 1000; i++ {
			select {
			case <-apiDone:
				return
			case <-time.After(50 * time.Millisecond):
			}
			_, _ = n.instances(ctx, "rg", "web")
		}
	}()

	var mu sync.Mutex
	var rs []result
	var wg sync.WaitGroup
	work := make(chan struct{}, requests)
	for range requests {
		work <- struct{}{}
	}
	close(work)
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				start := time.Now()
				r, err := hit(ctx, fe, timeout)
				mu.Lock()
				rs = append(rs, result{start: start, took: time.Since(start), name: r.Name, err: err})
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	close(apiDone)
	apiWG.Wait()

	var fast, slow, resets, hangs int
	var worstFast, worstReset time.Duration
	for _, r := range rs {
		switch {
		case r.err == nil && r.name == "web_0":
			fast++
			worstFast = max(worstFast, r.took)
		case r.err == nil && r.name == "web_1":
			slow++
			if r.took < SlowDelay {
				t.Errorf("the slow backend answered in %s (< %s)", r.took, SlowDelay)
			}
		case r.err == nil:
			t.Errorf("answer from %s, which should never answer", r.name)
		case isTimeout(r.err):
			hangs++
		case isCleanError(r.err):
			resets++
			worstReset = max(worstReset, r.took)
		default:
			t.Errorf("a request failed with an unclean error: %v", r.err)
		}
	}
	t.Logf("%d requests from %d clients: %d fast (worst %s), %d slow, %d clean errors (worst %s), %d waited for their own %s timeout",
		len(rs), clients, fast, worstFast.Round(time.Millisecond), slow, resets, worstReset.Round(time.Millisecond), hangs, timeout)
	if fast == 0 || slow == 0 || resets == 0 {
		t.Errorf("every backend should have been chosen: fast %d, slow %d, reset %d, silent %d", fast, slow, resets, hangs)
	}
	if worstFast > time.Second {
		t.Errorf("the good backend took %s to answer while the others were broken", worstFast)
	}
	if worstReset > time.Second {
		t.Errorf("a reset took %s to reach the client", worstReset)
	}
	if hangs > requests/2 {
		t.Errorf("%d of %d requests hung: more than the silent backend's share", hangs, requests)
	}
	if !n.alive() {
		t.Fatal("nimbus exited")
	}
	n.checkAPIBound()
}
