package chaos

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestProbeFlapping flips one instance's health endpoint between up and
// down every few probe intervals while a client opens a fresh connection
// through the frontend every few milliseconds. The backend logs every
// probe answer and every accepted connection, so the test knows when the
// probe was told "down" and whether any flow still arrived after that.
// Invariants: no new flow reaches the instance later than flowSlack after
// its first 503 (established flows may finish; each request here is its
// own connection); it is back in rotation within a few probe intervals of
// its first 200; the probe follows every flip within two intervals; no
// request fails (the other instance is always up, and the flapping one
// keeps serving traffic); nimbus keeps running.
func TestProbeFlapping(t *testing.T) { bothModes(t, testProbeFlapping) }

// flowSlack is how long after the probe hears "down" a new flow may still
// reach the backend: the prober's processing and the data plane's apply.
const flowSlack = 300 * time.Millisecond

func testProbeFlapping(t *testing.T, m mode) {
	const (
		flips = 10
		// hold is how long each state lasts: a few probe intervals.
		hold = 4 * probeInterval
	)
	n := startNimbus(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.setupNetwork(ctx, "rg")
	fe := n.createLB(ctx, lbSpec{rg: "rg", name: "lb", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "web", lb: "lb", capacity: 2})
	names := n.waitInstances(t, "rg", "web", 2, 30*time.Second)
	waitTraffic(t, fe, names, 20*time.Second)
	flapper := names[0]

	traffic := startLoop(fe, 5*time.Millisecond, 2*time.Second, 20000)
	var flipsAt []time.Time // even index: down, odd: up
	for i := range flips {
		state := "down"
		if i%2 == 1 {
			state = "up"
		}
		if err := os.WriteFile(HealthFile(n.ctl, flapper), []byte(state), 0o644); err != nil {
			t.Fatal(err)
		}
		flipsAt = append(flipsAt, time.Now())
		time.Sleep(hold)
	}
	// End up: the last flip is "up"; let rotation settle.
	time.Sleep(hold)
	rs := traffic.stopLoop()
	t.Logf("traffic while %s flapped %d times every %s: %s", flapper, flips, hold, tally(rs))
	for _, r := range rs {
		if r.err != nil {
			t.Errorf("a request failed while %s flapped: %v", flapper, r.err)
			break
		}
	}

	evs, err := readEvents(n.ctl, flapper)
	if err != nil {
		t.Fatal(err)
	}
	// For each flip: when the probe first heard the new state.
	heard := make([]time.Time, len(flipsAt))
	for i, at := range flipsAt {
		want := "503"
		if i%2 == 1 {
			want = "200"
		}
		for _, e := range evs {
			if e.kind == "probe" && e.detail == want && e.at.After(at) {
				heard[i] = e.at
				break
			}
		}
		if heard[i].IsZero() {
			t.Fatalf("flip %d (%s at %s): the probe never heard it", i, want, at.Format(time.StampMicro))
		}
	}
	var worstFollow, worstOut, worstIn time.Duration
	for i := range flipsAt {
		worstFollow = max(worstFollow, heard[i].Sub(flipsAt[i]))
		if i%2 == 1 {
			// Up: a flow arrives again soon after the probe heard 200.
			end := time.Now()
			if i+1 < len(flipsAt) {
				end = heard[i+1]
			}
			first := time.Time{}
			for _, e := range evs {
				if e.kind == "accept" && e.at.After(heard[i]) && e.at.Before(end) {
					first = e.at
					break
				}
			}
			if first.IsZero() {
				t.Errorf("flip %d: %s got no flow in the %s it was up", i, flapper, end.Sub(heard[i]).Round(time.Millisecond))
				continue
			}
			worstIn = max(worstIn, first.Sub(heard[i]))
			continue
		}
		// Down: no flow arrives later than flowSlack after the 503,
		// until the probe hears 200 again.
		end := heard[i+1]
		for _, e := range evs {
			if e.kind != "accept" || !e.at.After(heard[i]) || !e.at.Before(end) {
				continue
			}
			lag := e.at.Sub(heard[i])
			worstOut = max(worstOut, lag)
			if lag > flowSlack {
				t.Errorf("flip %d: a new flow reached %s %s after the probe heard 503 (allowed %s)", i, flapper, lag.Round(time.Millisecond), flowSlack)
			}
		}
	}
	t.Logf("probe followed each flip within %s (interval %s); last flow after a 503: +%s; first flow after a 200: +%s",
		worstFollow.Round(time.Millisecond), probeInterval, worstOut.Round(time.Millisecond), worstIn.Round(time.Millisecond))
	if worstFollow > 2*probeInterval+flowSlack {
		t.Errorf("the probe took %s to follow a flip; interval %s", worstFollow, probeInterval)
	}
	if worstIn > 3*probeInterval {
		t.Errorf("%s came back into rotation %s after the probe heard 200; interval %s", flapper, worstIn, probeInterval)
	}
	if !n.alive() {
		t.Fatal("nimbus exited while a probe flapped")
	}
	n.checkAPIBound()
}
