package demo

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"nimbus/internal/dataplane/nft"
	"nimbus/internal/driver"
	"nimbus/internal/hostnet"
	"nimbus/internal/system"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// TestDemo runs the demo end to end in each mode this machine can run and
// checks what it observed, not just that it finished.
func TestDemo(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does); for a normal user the demo runs rootless through nimbus demo's re-exec, which internal/readmetest's TestRootlessAsNormalUser runs")
	}
	// As root the kernel path must run; it is skipped, visibly, only when
	// the kernel lacks what it needs (a typed not-supported error).
	_, kernelErr := system.ChooseMode(system.Netns, system.NFT)
	if kernelErr != nil && !errors.Is(kernelErr, driver.ErrNotSupported) && !errors.Is(kernelErr, nft.ErrUnavailable) {
		t.Fatalf("kernel path as root: %v", kernelErr)
	}
	modes := []struct{ driver, dataplane string }{{system.Process, system.Proxy}, {system.Netns, system.NFT}}
	for _, m := range modes {
		t.Run(m.driver+"+"+m.dataplane, func(t *testing.T) {
			if m.driver == system.Netns && kernelErr != nil {
				t.Skipf("this kernel cannot run the kernel path: %v", kernelErr)
			}
			var out bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			// The kernel path needs a routed public range (198.18.0.0/15 is
			// for tests); the userspace engine's lives on loopback.
			pool := netip.MustParsePrefix("127.78.2.0/24")
			if m.dataplane == system.NFT {
				pool = netip.MustParsePrefix("198.18.130.0/24")
			}
			var logs bytes.Buffer
			res, err := Run(ctx, Options{Out: &out, Driver: m.driver, Dataplane: m.dataplane,
				DataDir: t.TempDir(), WorkloadEnv: map[string]string{workload.ReexecEnv: "1"},
				// Pools of their own: other test packages run nimbus side by side.
				PublicPool:   pool,
				ProviderPool: netip.MustParsePrefix("127.79.2.0/24"),
				HostNet:      hostnet.Options{Name: "nbdemo", Uplink: netip.MustParsePrefix("198.19.254.0/30")},
				Logger:       slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Log("\n" + logs.String())
			}
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatalf("demo failed: %v", err)
			}
			if res.Instances != 3 || len(res.Spread) != 3 || res.Spread["error"] != 0 {
				t.Errorf("spread over 3 instances: %v", res.Spread)
			}
			for name, n := range res.Spread {
				if n < 60 || n > 140 { // 300 connections, even = 100
					t.Errorf("instance %s got %d of 300 connections", name, n)
				}
			}
			if len(res.NATReached) != 3 {
				t.Errorf("NAT ports reached %v", res.NATReached)
			}
			seen := map[string]bool{}
			for _, name := range res.NATReached {
				seen[name] = true
			}
			if len(seen) != 3 {
				t.Errorf("each NAT port should reach its own instance: %v", res.NATReached)
			}
			if res.SpreadSick[res.SickName] != 0 || len(res.SpreadSick) != 2 {
				t.Errorf("sick instance %s still got traffic: %v", res.SickName, res.SpreadSick)
			}
			if res.SickOutAfter > 6*time.Second {
				t.Errorf("sick instance left after %s, want within the 5 s probe interval + 1 s", res.SickOutAfter)
			}
			if res.RuleErrorCode != "CannotModifyRuleUsedByProbeUsedByVMSS" {
				t.Errorf("rule change error code %q", res.RuleErrorCode)
			}
			if len(res.SpreadMoved) != 2 || res.SpreadMoved["error"] != 0 {
				t.Errorf("traffic on the moved rule: %v", res.SpreadMoved)
			}
			if res.ScaledTo != 5 || len(res.SpreadScaled) != 5 || res.SpreadScaled["error"] != 0 {
				t.Errorf("after scaling to 5: %d instances, spread %v", res.ScaledTo, res.SpreadScaled)
			}
			if len(res.SNAT) != 5 {
				t.Errorf("SNAT blocks %v, want one per instance", res.SNAT)
			}
			if m.dataplane == system.NFT && !strings.Contains(res.Egress, res.SNAT[0].Frontend) {
				t.Errorf("outbound flow seen from %q, want the frontend %s", res.Egress, res.SNAT[0].Frontend)
			}
			if res.Elapsed > 60*time.Second {
				t.Errorf("demo took %s, want under 60 s", res.Elapsed)
			}
		})
	}
}

// TestProgressSaysFailed: a step that fails ends its progress line with
// "failed", never "ok" (the error itself is printed once, by the caller).
func TestProgressSaysFailed(t *testing.T) {
	var b strings.Builder
	w := &walker{out: &b}
	w.progress("  step one")(nil)
	w.progress("  step two")(errors.New("boom"))
	if got, want := b.String(), "  step one ok\n  step two failed\n"; got != want {
		t.Fatalf("progress printed %q, want %q", got, want)
	}
}
