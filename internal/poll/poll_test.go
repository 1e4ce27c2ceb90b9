package poll

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// fakeTB records a Fatalf and ends its goroutine, as testing.T does.
type fakeTB struct {
	testing.TB
	failed string
}

func (f *fakeTB) Helper() {}

func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls Until on a fake TB in its own goroutine (Fatalf ends it) and
// returns the failure message, "" if Until returned.
func run(timeout time.Duration, cond func() error) string {
	f := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Until(f, timeout, "the thing", cond)
	}()
	<-done
	return f.failed
}

func TestUntil(t *testing.T) {
	tests := []struct {
		name      string
		timeout   time.Duration
		okAfter   int // cond succeeds on this call; 0 never
		wantCalls func(calls int) bool
		wantFail  []string // substrings of the failure; nil: no failure
	}{
		{name: "holds at once", timeout: time.Second, okAfter: 1,
			wantCalls: func(n int) bool { return n == 1 }},
		{name: "holds on the fifth check", timeout: 10 * time.Second, okAfter: 5,
			wantCalls: func(n int) bool { return n == 5 }},
		{name: "zero timeout still checks once", timeout: 0, okAfter: 1,
			wantCalls: func(n int) bool { return n == 1 }},
		{name: "zero timeout fails after one check", timeout: 0,
			wantCalls: func(n int) bool { return n == 1 },
			wantFail:  []string{"timed out after 0s waiting for the thing", "last: check 1 saw nothing"}},
		{name: "never holds: the failure names the last error", timeout: 50 * time.Millisecond,
			wantCalls: func(n int) bool { return n >= 2 },
			wantFail:  []string{"timed out after 50ms waiting for the thing", "saw nothing"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			var last error
			failed := run(tt.timeout, func() error {
				calls++
				if calls == tt.okAfter {
					return nil
				}
				last = fmt.Errorf("check %d saw nothing", calls)
				return last
			})
			if !tt.wantCalls(calls) {
				t.Errorf("cond called %d times", calls)
			}
			if tt.wantFail == nil {
				if failed != "" {
					t.Fatalf("Until failed: %s", failed)
				}
				return
			}
			if failed == "" {
				t.Fatal("Until returned; want a failure")
			}
			for _, want := range tt.wantFail {
				if !strings.Contains(failed, want) {
					t.Errorf("failure %q does not contain %q", failed, want)
				}
			}
			if !strings.Contains(failed, last.Error()) {
				t.Errorf("failure %q does not report the last error %q", failed, last)
			}
		})
	}
}

// TestUntilBackoff checks that the re-checks back off: a condition that
// never holds is checked a few dozen times in half a second, not thousands
// (a busy loop) and not once (a single long sleep).
func TestUntilBackoff(t *testing.T) {
	calls := 0
	failed := run(500*time.Millisecond, func() error { calls++; return errors.New("no") })
	if failed == "" {
		t.Fatal("Until returned; want a failure")
	}
	// 1+2+4+...+64 ms is 127 ms over 8 checks, then one per 100 ms: about
	// 12 checks in 500 ms. Allow a slow machine to check fewer.
	if calls < 3 || calls > 20 {
		t.Errorf("cond called %d times in 500ms; want about 12", calls)
	}
}

// TestUntilSucceedsOnOtherGoroutinesWork checks the common use: a condition
// another goroutine makes true.
func TestUntilSucceedsOnOtherGoroutinesWork(t *testing.T) {
	flag := make(chan struct{})
	go func() { close(flag) }()
	Until(t, 10*time.Second, "the flag", func() error {
		select {
		case <-flag:
			return nil
		default:
			return errors.New("flag not closed")
		}
	})
}
