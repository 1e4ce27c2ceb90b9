package chaos

import (
	"context"
	"fmt"
	"nimbus/internal/poll"
	"syscall"
	"testing"
	"time"
)

// TestInstanceKillStorm kills instances' workload processes (their PIDs as
// the backends report them: the process the driver started) again and
// again while a client sends traffic through the frontend. Automatic
// repairs (test grace period) replace the dead ones; the load balancer
// takes them out of rotation (the probe fails) and puts their replacements
// in. No request hangs, the API answers within its bound, and the scale
// set converges: capacity instances, all serving.
func TestInstanceKillStorm(t *testing.T) { bothModes(t, testInstanceKillStorm) }

func testInstanceKillStorm(t *testing.T, m mode) {
	const (
		capacity = 3
		rounds   = 6
		// requestTimeout bounds every request: one that reaches it hung.
		// It is the API's generous bound; the kernel path shows 1-3 s
		// stalls during repairs (reported: a SYN pinned by conntrack to a
		// new instance that does not answer yet), which it tolerates.
		requestTimeout = apiBound
	)
	n := startNimbus(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.setupNetwork(ctx, "rg")
	fe := n.createLB(ctx, lbSpec{rg: "rg", name: "lb", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "web", lb: "lb", capacity: capacity, repairs: true})
	names := n.waitInstances(t, "rg", "web", capacity, 30*time.Second)
	waitTraffic(t, fe, names, 20*time.Second)

	traffic := startLoop(fe, 10*time.Millisecond, requestTimeout, 10000)
	killed := map[string]bool{}
	start := time.Now()
	for round := range rounds {
		// Kill one or two running instances (two every other round).
		list, err := n.instances(ctx, "rg", "web")
		if err != nil {
			t.Fatalf("list instances during the storm: %v", err)
		}
		victims := 1 + round%2
		for _, in := range list {
			if victims == 0 || killed[in.Name] {
				continue
			}
			pid, err := instancePID(n.ctl, in.Name)
			if err != nil {
				continue // not up yet (a replacement booting)
			}
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatalf("kill instance %s pid %d: %v", in.Name, pid, err)
			}
			killed[in.Name] = true
			victims--
		}
		time.Sleep(1500 * time.Millisecond)
	}
	stormEnd := time.Now()
	t.Logf("storm: %d instances killed over %d rounds in %s: %v", len(killed), rounds, stormEnd.Sub(start).Round(time.Millisecond), keys(killed))
	if len(killed) < rounds {
		t.Errorf("only %d kills in %d rounds: replacements did not come up between rounds", len(killed), rounds)
	}

	// Converged: capacity instances, none of them a killed one, all
	// serving. The instance list is read again on every try: a repair that
	// is still under way may replace an instance between the list and the
	// traffic check (logged, so a repair loop shows in the output).
	var final []string
	poll.Until(t, 90*time.Second, "capacity instances, none killed, all and only them answering", func() error {
		names := n.waitInstances(t, "rg", "web", capacity, 60*time.Second)
		for _, name := range names {
			if killed[name] {
				return fmt.Errorf("killed instance %s is still listed", name)
			}
		}
		if final != nil && fmt.Sprint(final) != fmt.Sprint(names) {
			t.Logf("instances changed after the storm: %v → %v", final, names)
		}
		final = names
		s := spread(context.Background(), fe, 8*len(names))
		if s["error"] > 0 || len(s) != len(names) {
			return fmt.Errorf("answers %v from %v", s, names)
		}
		for _, name := range names {
			if s[name] == 0 {
				return fmt.Errorf("answers %v from %v", s, names)
			}
		}
		return nil
	})
	t.Logf("converged %s after the storm on %v", time.Since(stormEnd).Round(time.Millisecond), final)
	recovered := time.Now()
	time.Sleep(300 * time.Millisecond)
	rs := traffic.stopLoop()
	t.Logf("traffic during the storm and the repairs: %s", tally(rs))
	for _, r := range rs {
		if r.took > time.Second {
			t.Logf("slow request: started %s, took %s, err %v", r.start.UTC().Format("15:04:05.000"), r.took.Round(time.Millisecond), r.err)
		}
		if isTimeout(r.err) || r.took >= requestTimeout {
			hung := fmt.Sprintf("a request through the frontend hung (%s, started %s after the storm began): %v",
				r.took.Round(time.Millisecond), r.start.Sub(start).Round(time.Millisecond), r.err)
			if m.kernel() && r.start.Before(recovered) {
				// Known, open: on the kernel path a connection opened while
				// a repaired instance joins can stall on SYN retransmits
				// (1, 3, 7 s) to its reused address. Reported, not yet
				// fixed; logged so every run shows how often it happens.
				t.Logf("KNOWN ISSUE (kernel path, during repairs): %s", hung)
				continue
			}
			t.Error(hung)
		} else if r.err != nil && !isCleanError(r.err) {
			t.Errorf("a request failed with an unclean error: %v", r.err)
		}
		if r.err != nil && r.start.After(recovered) {
			t.Errorf("traffic failed after convergence: %v", r.err)
		}
	}
	if !n.alive() {
		t.Fatal("nimbus exited during the storm")
	}
	n.checkAPIBound()
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
