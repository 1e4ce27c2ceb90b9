package monitor

import (
	"math"
	"testing"
	"time"
)

// t0 is the start of a grain: tests place samples relative to it.
var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

const vmss = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"

func vm(name string) []Dim { return []Dim{{Name: VMName, Value: name}} }

func cpu(name string, v float64) Sample {
	return Sample{Resource: vmss, Metric: PercentageCPU, Kind: Gauge, Dims: vm(name), Value: v}
}

func TestQueryAggregates(t *testing.T) {
	h := NewHistory(Options{})
	// Grain 0: web_0 at 10 and 30, web_1 at 50. Grain 1: web_0 at 90.
	h.Add(t0, cpu("web_0", 10), cpu("web_1", 50))
	h.Add(t0.Add(30*time.Second), cpu("web_0", 30))
	h.Add(t0.Add(time.Minute), cpu("web_0", 90))

	tests := []struct {
		name string
		q    Query
		want []Agg // per point of the single (or first) series
		nser int
	}{
		{"merged per grain", Query{Start: t0, End: t0.Add(3 * time.Minute), Step: 1},
			[]Agg{{Sum: 90, Min: 10, Max: 50, Count: 3}, {Sum: 90, Min: 90, Max: 90, Count: 1}, {}}, 1},
		{"two-grain step", Query{Start: t0, End: t0.Add(2 * time.Minute), Step: 2},
			[]Agg{{Sum: 180, Min: 10, Max: 90, Count: 4}}, 1},
		{"filter one instance", Query{Start: t0, End: t0.Add(time.Minute), Step: 1, Where: []Cond{{Name: "vmname", Values: []string{"WEB_1"}}}},
			[]Agg{{Sum: 50, Min: 50, Max: 50, Count: 1}}, 1},
		{"not equals", Query{Start: t0, End: t0.Add(time.Minute), Step: 1, Where: []Cond{{Name: VMName, Values: []string{"web_1"}, Not: true}}},
			[]Agg{{Sum: 40, Min: 10, Max: 30, Count: 2}}, 1},
		{"split", Query{Start: t0, End: t0.Add(time.Minute), Step: 1, Split: []string{VMName}},
			[]Agg{{Sum: 40, Min: 10, Max: 30, Count: 2}}, 2},
		{"start inside a grain", Query{Start: t0.Add(59 * time.Second), End: t0.Add(61 * time.Second), Step: 1},
			[]Agg{{Sum: 90, Min: 10, Max: 50, Count: 3}, {Sum: 90, Min: 90, Max: 90, Count: 1}}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.q.Resource, tc.q.Metric = vmss, PercentageCPU
			res := h.Query(tc.q)
			if len(res) != tc.nser {
				t.Fatalf("got %d series, want %d: %+v", len(res), tc.nser, res)
			}
			pts := res[0].Points
			if len(pts) != len(tc.want) {
				t.Fatalf("got %d points, want %d: %+v", len(pts), len(tc.want), pts)
			}
			for i, w := range tc.want {
				if pts[i].Agg != w {
					t.Errorf("point %d = %+v, want %+v", i, pts[i].Agg, w)
				}
				if want := h.GrainStart(tc.q.Start).Add(time.Duration(i*max(tc.q.Step, 1)) * time.Minute); !pts[i].Time.Equal(want) {
					t.Errorf("point %d at %v, want %v", i, pts[i].Time, want)
				}
			}
		})
	}
	if res := h.Query(Query{Resource: vmss, Metric: "Network In Total", Start: t0, End: t0.Add(time.Minute)}); res != nil {
		t.Errorf("a metric without series answered %+v", res)
	}
	if got := h.Values(vmss, PercentageCPU, VMName); len(got) != 2 || got[0] != "web_0" {
		t.Errorf("Values = %v", got)
	}
}

func TestCounterGrainIsTotal(t *testing.T) {
	h := NewHistory(Options{})
	c := func(v float64) Sample {
		return Sample{Resource: vmss, Metric: NetworkInTotal, Kind: Counter, Dims: vm("web_0"), Value: v}
	}
	h.Add(t0, c(100))
	h.Add(t0.Add(15*time.Second), c(50))
	h.Add(t0.Add(time.Minute), c(10))
	res := h.Query(Query{Resource: vmss, Metric: NetworkInTotal, Start: t0, End: t0.Add(2 * time.Minute), Step: 2})
	if got := res[0].Points[0].Agg; got != (Agg{Sum: 160, Min: 10, Max: 150, Count: 2}) {
		t.Errorf("two grains of a counter = %+v, want total 160 over 2 grains (max 150)", got)
	}
}

func TestRetentionBounded(t *testing.T) {
	h := NewHistory(Options{Grain: time.Second, Retention: 10 * time.Second})
	if h.Retention() != 10*time.Second {
		t.Fatalf("retention %v", h.Retention())
	}
	for i := range 25 {
		h.Add(t0.Add(time.Duration(i)*time.Second), cpu("web_0", float64(i)))
	}
	res := h.Query(Query{Resource: vmss, Metric: PercentageCPU, Start: t0, End: t0.Add(25 * time.Second), Step: 1})
	for i, p := range res[0].Points {
		kept := i >= 15
		if (p.Agg.Count == 1) != kept || (kept && p.Agg.Sum != float64(i)) {
			t.Errorf("grain %d: %+v (kept %v)", i, p.Agg, kept)
		}
	}
	// A sample older than the retention is dropped, not written over a
	// newer grain sharing its slot.
	h.Add(t0.Add(5*time.Second), cpu("web_0", 1000))
	res = h.Query(Query{Resource: vmss, Metric: PercentageCPU, Start: t0.Add(15 * time.Second), End: t0.Add(16 * time.Second)})
	if res[0].Points[0].Agg.Sum != 15 {
		t.Errorf("a stale sample landed in a live grain: %+v", res[0].Points[0].Agg)
	}
	// A gap longer than the ring clears every slot.
	h.Add(t0.Add(100*time.Second), cpu("web_0", 7))
	res = h.Query(Query{Resource: vmss, Metric: PercentageCPU, Start: t0.Add(91 * time.Second), End: t0.Add(101 * time.Second)})
	for i, p := range res[0].Points {
		if (i == 9) != (p.Agg.Count > 0) {
			t.Errorf("after a long gap, grain %d = %+v", i, p.Agg)
		}
	}
	h.Expire(t0.Add(200 * time.Second))
	if n := h.Series(); n != 0 {
		t.Errorf("%d series survive expiry", n)
	}
}

func TestAddIgnoresNaN(t *testing.T) {
	h := NewHistory(Options{})
	h.Add(t0, cpu("web_0", math.NaN()), cpu("web_0", math.Inf(1)))
	if h.Series() != 0 {
		t.Error("NaN/Inf samples created a series")
	}
}
