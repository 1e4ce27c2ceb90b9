// Package poll waits, in tests, for a condition to hold: it re-checks the
// condition with a short backoff until a deadline, instead of sleeping a
// fixed time and hoping.
package poll

import (
	"testing"
	"time"
)

// Backoff bounds: the first re-check comes after minWait, each later one
// after twice the previous wait, never more than maxWait apart.
const (
	minWait = time.Millisecond
	maxWait = 100 * time.Millisecond
)

// Until calls cond until it returns nil, and fails tb (Fatalf) if timeout
// passes first; the failure names what was awaited and cond's last error,
// so write cond to say what it saw ("2 of 3 instances answer"). cond runs
// at least once, also with a zero timeout, and once more at the deadline.
// Like any Fatalf, Until must be called from the goroutine running the test.
func Until(tb testing.TB, timeout time.Duration, what string, cond func() error) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	wait := minWait
	for {
		err := cond()
		if err == nil {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			tb.Fatalf("timed out after %s waiting for %s; last: %v", timeout, what, err)
			return
		}
		time.Sleep(min(wait, left))
		wait = min(2*wait, maxWait)
	}
}
