package monitor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"nimbus/internal/poll"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name  string
		line  string
		pgrp  int
		ticks uint64
		err   bool
	}{
		{"plain", "42 (sh) S 1 40 40 0 -1 4194560 100 0 0 0 7 3 2 1 20 0 1 0 100 1000 10", 40, 13, false},
		{"spaces and parens in comm", "43 (a b) (c)) R 1 41 41 0 -1 0 0 0 0 0 100 200 0 0 20 0", 41, 300, false},
		{"short", "44 (x) S 1 44", 0, 0, true},
		{"no comm", "45 S 1 45 45", 0, 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st, err := parseStat([]byte(tc.line))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if !tc.err && (st.pgrp != tc.pgrp || st.ticks != tc.ticks) {
				t.Errorf("got %+v, want pgrp %d ticks %d", st, tc.pgrp, tc.ticks)
			}
		})
	}
}

func TestNetDevAndMeminfo(t *testing.T) {
	dev := "Inter-|   Receive                                                |  Transmit\n" +
		" face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed\n" +
		"    lo:     100       1    0    0    0     0          0         0      100       1    0    0    0     0       0          0\n" +
		"  eth0:    5000      10    0    0    0     0          0         0     7000      12    0    0    0     0       0          0\n"
	rx, tx, ok := netDev([]byte(dev), "eth0")
	if !ok || rx != 5000 || tx != 7000 {
		t.Errorf("netDev = %d, %d, %v", rx, tx, ok)
	}
	if _, _, ok := netDev([]byte(dev), "eth1"); ok {
		t.Error("found a missing interface")
	}
	m, ok := memAvailable([]byte("MemTotal: 1000 kB\nMemAvailable:     2048 kB\n"))
	if !ok || m != 2048*1024 {
		t.Errorf("memAvailable = %d, %v", m, ok)
	}
}

// fakeProc writes a /proc-like tree: one stat per process, meminfo and a
// net/dev per group leader.
type fakeProc struct {
	dir string
}

func (f fakeProc) proc(t testing.TB, pid, pgrp int, ticks uint64, rx, tx uint64) {
	d := filepath.Join(f.dir, strconv.Itoa(pid))
	if err := os.MkdirAll(filepath.Join(d, "net"), 0o755); err != nil {
		t.Fatal(err)
	}
	stat := fmt.Sprintf("%d (workload) S 1 %d %d 0 -1 0 0 0 0 0 %d 0 0 0 20 0 1 0 100 1000 10\n", pid, pgrp, pgrp, ticks)
	if err := os.WriteFile(filepath.Join(d, "stat"), []byte(stat), 0o644); err != nil {
		t.Fatal(err)
	}
	dev := fmt.Sprintf("h\nh\n  eth0: %d 0 0 0 0 0 0 0 %d 0 0 0 0 0 0 0\n", rx, tx)
	if err := os.WriteFile(filepath.Join(d, "net", "dev"), []byte(dev), 0o644); err != nil {
		t.Fatal(err)
	}
}

type staticInstances []Instance

func (s staticInstances) Instances(context.Context) ([]Instance, error) { return s, nil }

type staticOwners map[string]string

func (s staticOwners) FrontendOwners() map[string]string { return s }

func TestSamplerSyntheticProc(t *testing.T) {
	fp := fakeProc{t.TempDir()}
	os.WriteFile(filepath.Join(fp.dir, "meminfo"), []byte("MemAvailable: 1000 kB\n"), 0o644)
	// web_0: leader 100 and a child 101 in its group; web_1: leader 200
	// (process driver: no network of its own).
	fp.proc(t, 100, 100, 0, 0, 0)
	fp.proc(t, 101, 100, 0, 0, 0)
	fp.proc(t, 200, 200, 0, 0, 0)
	fp.proc(t, 300, 300, 1e6, 0, 0) // not an instance
	now := t0
	h := NewHistory(Options{})
	s := NewSampler(SamplerOptions{History: h, ProcDir: fp.dir, Now: func() time.Time { return now },
		Instances: staticInstances{
			{ScaleSetID: vmss, InstanceID: "0", Name: "web_0", PID: 100, OwnNetwork: true},
			{ScaleSetID: vmss, InstanceID: "1", Name: "web_1", PID: 200},
		}})
	s.Sample(context.Background())
	// 10 s later: web_0 used 3 s + 2 s of CPU (50 %), received 4000 and
	// sent 1000 bytes; web_1 used 20 s (capped at 100 %).
	now = t0.Add(10 * time.Second)
	fp.proc(t, 100, 100, 300, 4000, 1000)
	fp.proc(t, 101, 100, 200, 4000, 1000)
	fp.proc(t, 200, 200, 2000, 0, 0)
	s.Sample(context.Background())
	q := func(metric, name string) Agg {
		res := h.Query(Query{Resource: vmss, Metric: metric, Start: t0, End: t0.Add(time.Minute),
			Where: []Cond{{Name: VMName, Values: []string{name}}}})
		if res == nil {
			return Agg{}
		}
		return res[0].Points[0].Agg
	}
	if got := q(PercentageCPU, "web_0"); got.Count != 1 || got.Sum != 50 {
		t.Errorf("web_0 CPU = %+v, want one sample of 50", got)
	}
	if got := q(PercentageCPU, "web_1"); got.Sum != 100 {
		t.Errorf("web_1 CPU = %+v, want 100 (capped)", got)
	}
	if got := q(NetworkInTotal, "web_0"); got.Sum != 4000 {
		t.Errorf("web_0 Network In = %+v", got)
	}
	if got := q(NetworkOutTotal, "web_0"); got.Sum != 1000 {
		t.Errorf("web_0 Network Out = %+v", got)
	}
	if got := q(NetworkInTotal, "web_1"); got.Count != 0 {
		t.Errorf("a process instance reported network: %+v", got)
	}
	if got := q(AvailableMemoryBytes, "web_1"); got.Count != 2 || got.Average() != 1000*1024 {
		t.Errorf("memory = %+v", got)
	}
}

func TestSamplerLoadBalancer(t *testing.T) {
	reg := prometheus.NewRegistry()
	syn := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "SYNCount"}, []string{"FrontendIPAddress", "FrontendPort", "Direction"})
	vip := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "VipAvailability"}, []string{"FrontendIPAddress", "FrontendPort"})
	reg.MustRegister(syn, vip)
	const lb = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"
	now := t0
	h := NewHistory(Options{})
	s := NewSampler(SamplerOptions{History: h, Gatherer: reg, Frontends: staticOwners{"192.0.2.1": lb},
		Now: func() time.Time { return now }})
	syn.WithLabelValues("192.0.2.1", "80", "Inbound").Add(5)
	syn.WithLabelValues("192.0.2.9", "80", "Inbound").Add(7) // no owner: skipped
	vip.WithLabelValues("192.0.2.1", "80").Set(100)
	s.Sample(context.Background())
	now = now.Add(20 * time.Second)
	syn.WithLabelValues("192.0.2.1", "80", "Inbound").Add(3)
	s.Sample(context.Background())
	res := h.Query(Query{Resource: lb, Metric: "SYNCount", Start: t0, End: t0.Add(time.Minute), Split: []string{"FrontendPort"}})
	if len(res) != 1 || res[0].Points[0].Agg.Sum != 8 || res[0].Dims[0].Value != "80" {
		t.Errorf("SYNCount = %+v, want a total of 8 on port 80", res)
	}
	res = h.Query(Query{Resource: lb, Metric: "VipAvailability", Start: t0, End: t0.Add(time.Minute)})
	if len(res) != 1 || res[0].Points[0].Agg.Average() != 100 {
		t.Errorf("VipAvailability = %+v", res)
	}
}

// TestSamplerRealProcess measures a real process group that burns CPU.
func TestSamplerRealProcess(t *testing.T) {
	cmd := exec.Command("/bin/sh", "-c", "while :; do :; done")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL); cmd.Wait() })
	h := NewHistory(Options{Grain: time.Hour})
	s := NewSampler(SamplerOptions{History: h, Instances: staticInstances{
		{ScaleSetID: vmss, InstanceID: "0", Name: "web_0", PID: cmd.Process.Pid}}})
	start := time.Now()
	s.Sample(context.Background())
	poll.Until(t, 20*time.Second, "the busy loop to show CPU use", func() error {
		s.Sample(context.Background())
		res := h.Query(Query{Resource: vmss, Metric: PercentageCPU, Start: start, End: time.Now()})
		if res == nil {
			return fmt.Errorf("no CPU sample yet")
		}
		// Shared machines give the loop less than a core; a few percent
		// proves it is measured.
		if a := res[0].Points[len(res[0].Points)-1].Agg; a.Max < 5 {
			return fmt.Errorf("CPU %+v", a)
		}
		return nil
	})
}
