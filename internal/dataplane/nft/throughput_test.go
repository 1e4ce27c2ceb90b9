package nft_test

// TestMeasureThroughput measures the kernel path side by side (run by
// bench/run-nft.sh; skipped unless NIMBUS_NFT_BENCH=1). No assertions: it
// logs figures.
//
//	direct  client namespace -> backend 198.19.1.4, routed through nimbus's
//	        namespace with the table loaded (conntrack on, no NAT)
//	nft     client -> frontend 198.18.100.10 -> DNAT -> the same backend
//
// iperf3 single TCP stream (DUR seconds) and short connections (connect,
// read the greeting, close; CONNS per run, CPU of this process per
// connection from getrusage, client and server both run here). Each rep runs
// both variants in rotating order; the summary is the median of the paired
// ratios. Everything stays inside the test's namespaces; every run is
// bounded in time and count.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"nimbus/internal/dataplane"
	"nimbus/internal/hostnet"
	"nimbus/internal/poll"
)

func envInt(name string, def, lo, hi int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v >= lo && v <= hi {
		return v
	}
	return def
}

func TestMeasureThroughput(t *testing.T) {
	if os.Getenv("NIMBUS_NFT_BENCH") != "1" {
		t.Skip("measurement, run by bench/run-nft.sh (NIMBUS_NFT_BENCH=1)")
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		// Skip only when iperf3 is missing; any other lookup error is a
		// failure.
		if !errors.Is(err, exec.ErrNotFound) {
			t.Fatalf("look up iperf3: %v", err)
		}
		t.Skipf("iperf3 (the throughput load generator) not installed: %v", err)
	}
	reps := envInt("REPS", 5, 1, 20)
	dur := envInt("DUR", 3, 1, 30)
	conns := envInt("CONNS", 2000, 100, 20000)

	e := newEnv(t, 1)
	vm := e.vms[0]
	// The client namespace routes the subnet through nimbus for "direct".
	if err := e.Host.Handle().RouteAdd(&netlink.Route{
		Dst: &net.IPNet{IP: subnet.Addr().AsSlice(), Mask: net.CIDRMask(subnet.Bits(), 32)},
		Gw:  e.Net.UplinkAddr().AsSlice(),
	}); err != nil {
		t.Fatal(err)
	}
	srv := startIn(t, vm.ns, "iperf3", "-s", "-p", "5201")
	_ = srv
	rIperf := lbRule("rule/iperf", publicFE(feIP), dataplane.TCP, 5201, 5201, e.backends())
	rIperf.Distribution = dataplane.SourceIP // control and data connections on one backend
	e.apply(t, dataplane.Config{Rules: []dataplane.Rule{rIperf, lbRule("rule/conn", publicFE(feIP), dataplane.TCP, 80, 22, e.backends())}})
	waitIperf(t, e.Host, vm.ip)

	type sample struct{ direct, nft float64 }
	var gbps, cpu []sample
	for rep := 0; rep < reps; rep++ {
		order := []bool{rep%2 == 0, rep%2 != 0} // true = direct first
		var g, c sample
		for _, direct := range order {
			target, port := feIP, 80
			if direct {
				target, port = vm.ip, 22
			}
			bw := iperf(t, e.Host, target, dur)
			us := connCPU(t, e.Host, netip.AddrPortFrom(target, uint16(port)), conns)
			if direct {
				g.direct, c.direct = bw, us
			} else {
				g.nft, c.nft = bw, us
			}
		}
		t.Logf("rep %d: iperf3 direct %.2f Gbit/s, nft %.2f Gbit/s; CPU per connection direct %.1f µs, nft %.1f µs", rep+1, g.direct, g.nft, c.direct, c.nft)
		gbps, cpu = append(gbps, g), append(cpu, c)
	}
	med := func(xs []float64) float64 {
		sort.Float64s(xs)
		return xs[len(xs)/2]
	}
	var gr, gd, gn, cr, cd, cn, delta []float64
	for i := range gbps {
		gr = append(gr, gbps[i].nft/gbps[i].direct)
		gd, gn = append(gd, gbps[i].direct), append(gn, gbps[i].nft)
		cr = append(cr, cpu[i].nft/cpu[i].direct)
		cd, cn = append(cd, cpu[i].direct), append(cn, cpu[i].nft)
		delta = append(delta, cpu[i].nft-cpu[i].direct)
	}
	fmt.Printf("RESULT iperf3 single stream: direct %.2f Gbit/s, nft %.2f Gbit/s, nft/direct (median of %d paired) %.3f\n", med(gd), med(gn), reps, med(gr))
	fmt.Printf("RESULT CPU per new connection: direct %.1f µs, nft %.1f µs, nft/direct %.3f, delta %+.1f µs (median of %d paired, %d connections each)\n", med(cd), med(cn), med(cr), med(delta), reps, conns)
}

// startIn starts a command inside ns (forked from a thread in it) and stops
// it at cleanup.
func startIn(t *testing.T, ns *hostnet.Namespace, name string, args ...string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(name, args...)
	if err := ns.Do(cmd.Start); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

func waitIperf(t *testing.T, ns *hostnet.Namespace, ip netip.Addr) {
	t.Helper()
	poll.Until(t, 5*time.Second, "the iperf3 server to accept", func() error {
		c, err := hostnet.DialIn(context.Background(), ns, "tcp4", hp(ip, 5201))
		if err != nil {
			return err
		}
		return c.Close()
	})
}

func iperf(t *testing.T, ns *hostnet.Namespace, target netip.Addr, dur int) float64 {
	t.Helper()
	cmd := exec.Command("iperf3", "-c", target.String(), "-p", "5201", "-t", strconv.Itoa(dur), "-J")
	var out []byte
	err := ns.Do(func() error {
		var err error
		out, err = cmd.Output()
		return err
	})
	if err != nil {
		t.Fatalf("iperf3 to %s: %v: %s", target, err, out)
	}
	var res struct {
		End struct {
			SumReceived struct {
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
		} `json:"end"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatal(err)
	}
	return res.End.SumReceived.BitsPerSecond / 1e9
}

// connCPU opens n short connections (8 at a time) and returns this
// process's CPU time per connection in µs (client and echo server).
func connCPU(t *testing.T, ns *hostnet.Namespace, to netip.AddrPort, n int) float64 {
	t.Helper()
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	const workers = 8
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		go func() {
			errc <- ns.Do(func() error {
				d := net.Dialer{Timeout: 2 * time.Second}
				for i := 0; i < n/workers; i++ {
					c, err := d.Dial("tcp4", to.String())
					if err != nil {
						return err
					}
					c.SetDeadline(time.Now().Add(2 * time.Second))
					if _, err := bufio.NewReader(c).ReadString('\n'); err != nil {
						c.Close()
						return err
					}
					// The client closes first (no TIME_WAIT on the server).
					c.Close()
				}
				return nil
			})
		}()
	}
	for w := 0; w < workers; w++ {
		if err := <-errc; err != nil {
			t.Fatalf("connections to %s: %v", to, err)
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()+after.Stime.Nano()-before.Utime.Nano()-before.Stime.Nano()) * time.Nanosecond
	return float64(cpu.Microseconds()) / float64(n/workers*workers)
}
