package monitor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"
)

// benchInstances builds a /proc-like tree of n instances (a leader and two
// group members each, plus n unrelated processes) and the instance list.
func benchInstances(b *testing.B, n int) (string, staticInstances) {
	fp := fakeProc{b.TempDir()}
	os.WriteFile(filepath.Join(fp.dir, "meminfo"), []byte("MemTotal: 4000 kB\nMemAvailable: 1000 kB\n"), 0o644)
	var insts staticInstances
	for i := range n {
		leader := 10000 + 10*i
		for j := range 3 {
			fp.proc(b, leader+j, leader, uint64(i), 0, 0)
		}
		fp.proc(b, 1000000+i, 1000000+i, 5, 0, 0)
		insts = append(insts, Instance{ScaleSetID: vmss, InstanceID: strconv.Itoa(i), Name: "web_" + strconv.Itoa(i),
			PID: leader, OwnNetwork: i%2 == 0})
	}
	return fp.dir, insts
}

// BenchmarkSample1000 is one sampling pass over 1,000 instances (4,000
// processes in the tree). At the default interval (15 s) a pass of d costs
// d/15 s of one core: under 2 % needs d < 300 ms.
func BenchmarkSample1000(b *testing.B) {
	dir, insts := benchInstances(b, 1000)
	now := t0
	s := NewSampler(SamplerOptions{History: NewHistory(Options{}), Instances: insts, ProcDir: dir,
		Now: func() time.Time { return now }})
	s.Sample(context.Background())
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		now = now.Add(DefaultInterval)
		s.Sample(context.Background())
	}
	perPass := b.Elapsed() / time.Duration(b.N)
	b.ReportMetric(float64(perPass)/float64(DefaultInterval)*100, "%core@15s")
}

// BenchmarkQueryHour is a metrics query over one hour at one-minute grain
// of a 1,000-instance scale set's Percentage CPU (merged, and split by
// VMName), after six hours of samples; it reports the 99th percentile.
func BenchmarkQueryHour(b *testing.B) {
	h := NewHistory(Options{})
	for m := range 360 {
		at := t0.Add(time.Duration(m) * time.Minute)
		samples := make([]Sample, 0, 1000)
		for i := range 1000 {
			samples = append(samples, cpu("web_"+strconv.Itoa(i), float64(i%100)))
		}
		h.Add(at, samples...)
	}
	end := t0.Add(6 * time.Hour)
	for _, split := range []bool{false, true} {
		b.Run(fmt.Sprintf("split=%v", split), func(b *testing.B) {
			q := Query{Resource: vmss, Metric: PercentageCPU, Start: end.Add(-time.Hour), End: end, Step: 1}
			if split {
				q.Split = []string{VMName}
			}
			var took []time.Duration
			b.ReportAllocs()
			for b.Loop() {
				st := time.Now()
				if res := h.Query(q); len(res) == 0 || len(res[0].Points) != 60 {
					b.Fatalf("bad answer: %d series", len(res))
				}
				took = append(took, time.Since(st))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
