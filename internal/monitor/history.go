// Package monitor keeps nimbus's metrics history, the data behind the Azure
// Monitor metrics API (internal/rp/insights) and autoscale
// (internal/controller/autoscale): it samples instances' CPU, network and
// memory from /proc and the load balancers' Prometheus series, and keeps
// them in memory at a fixed grain (one minute by default) for a bounded
// retention (six hours by default).
//
// A series is one metric of one resource with one set of dimension values
// (a scale set's "Percentage CPU" for VMName vmss_3; a load balancer's
// ByteCount for one frontend address, port and direction). Each grain of a
// series keeps sum, minimum, maximum and count, so any aggregation Azure
// offers (Average, Minimum, Maximum, Total, Count) can be computed over any
// multiple of the grain and across series. A gauge (CPU, availability)
// adds one sample per sampling pass; a counter (bytes, SYNs) adds the
// increase since the previous pass, and its grain holds the grain's total.
//
// Nothing is written to disk: a restart starts an empty history.
package monitor

import (
	"cmp"
	"math"
	"slices"
	"strings"
	"sync"
	"time"
)

// Defaults of Options.
const (
	DefaultGrain     = time.Minute
	DefaultRetention = 6 * time.Hour
)

// Kind says how a metric's samples add up within a grain.
type Kind int

const (
	// Gauge samples are values at an instant (a percentage, a port
	// count): a grain averages them.
	Gauge Kind = iota
	// Counter samples are increases since the previous sample: a grain
	// holds their total.
	Counter
)

// Dim is one dimension value of a series.
type Dim struct {
	Name, Value string
}

// Agg is the aggregate of samples: their sum, minimum, maximum and count.
// The zero value holds no sample.
type Agg struct {
	Sum      float64
	Min, Max float64
	Count    int64
}

// Average returns Sum/Count (0 without samples).
func (a Agg) Average() float64 {
	if a.Count == 0 {
		return 0
	}
	return a.Sum / float64(a.Count)
}

// Merge returns the aggregate of a's and b's samples.
func (a Agg) Merge(b Agg) Agg {
	if b.Count == 0 {
		return a
	}
	if a.Count == 0 {
		return b
	}
	return Agg{Sum: a.Sum + b.Sum, Min: math.Min(a.Min, b.Min), Max: math.Max(a.Max, b.Max), Count: a.Count + b.Count}
}

// bucket is one grain of a series (24 bytes: a six-hour minute ring is
// 8.6 KB per series).
type bucket struct {
	sum      float64
	min, max float32
	n        uint32
}

func (b bucket) agg() Agg {
	if b.n == 0 {
		return Agg{}
	}
	return Agg{Sum: b.sum, Min: float64(b.min), Max: float64(b.max), Count: int64(b.n)}
}

// series is one metric of one resource with one set of dimension values.
type series struct {
	dims []Dim // sorted by name
	kind Kind
	ring []bucket
	// last is the grain index (unix time / grain) of the newest grain
	// written; ring[i % len] holds grain i for last-len < i <= last.
	last int64
}

// History is the in-memory metrics history. It is safe for concurrent use;
// the zero value is not usable: create it with NewHistory.
type History struct {
	grain time.Duration
	slots int

	mu sync.RWMutex
	// res maps a lower-case resource ID to its metrics (name as
	// registered) and their series, keyed by seriesKey.
	res map[string]map[string]map[string]*series
}

// Options configure a History. The zero value means one-minute grain and
// six hours of retention.
type Options struct {
	// Grain is the length of one stored grain: DefaultGrain, or shorter
	// when tests compress time.
	Grain time.Duration
	// Retention is how long a grain is kept; it is rounded up to whole
	// grains.
	Retention time.Duration
}

// NewHistory returns an empty history.
func NewHistory(o Options) *History {
	if o.Grain <= 0 {
		o.Grain = DefaultGrain
	}
	if o.Retention <= 0 {
		o.Retention = DefaultRetention
	}
	slots := int((o.Retention + o.Grain - 1) / o.Grain)
	return &History{grain: o.Grain, slots: max(slots, 1), res: map[string]map[string]map[string]*series{}}
}

// Grain returns the length of one grain.
func (h *History) Grain() time.Duration { return h.grain }

// Retention returns how long grains are kept.
func (h *History) Retention() time.Duration { return time.Duration(h.slots) * h.grain }

// index returns t's grain index.
func (h *History) index(t time.Time) int64 {
	return floorDiv(t.UnixNano(), int64(h.grain))
}

// GrainStart returns the start of the grain holding t.
func (h *History) GrainStart(t time.Time) time.Time {
	return time.Unix(0, h.index(t)*int64(h.grain)).UTC()
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

func seriesKey(dims []Dim) string {
	var b strings.Builder
	for _, d := range dims {
		b.WriteString(d.Name)
		b.WriteByte(0)
		b.WriteString(d.Value)
		b.WriteByte(0)
	}
	return b.String()
}

// Sample is one value to record.
type Sample struct {
	// Resource is the resource ID (any case).
	Resource string
	// Metric is the metric's name, e.g. "Percentage CPU".
	Metric string
	Kind   Kind
	// Dims are the dimension values; their order does not matter.
	Dims []Dim
	// Value is the gauge's value or the counter's increase.
	Value float64
}

// Add records samples taken at t. Samples older than the retention are
// dropped.
func (h *History) Add(t time.Time, samples ...Sample) {
	idx := h.index(t)
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range samples {
		s := &samples[i]
		if math.IsNaN(s.Value) || math.IsInf(s.Value, 0) {
			continue
		}
		dims := slices.Clone(s.Dims)
		slices.SortFunc(dims, func(a, b Dim) int { return cmp.Compare(a.Name, b.Name) })
		res := strings.ToLower(s.Resource)
		metrics := h.res[res]
		if metrics == nil {
			metrics = map[string]map[string]*series{}
			h.res[res] = metrics
		}
		byDims := metrics[s.Metric]
		if byDims == nil {
			byDims = map[string]*series{}
			metrics[s.Metric] = byDims
		}
		key := seriesKey(dims)
		se := byDims[key]
		if se == nil {
			se = &series{dims: dims, kind: s.Kind, ring: make([]bucket, h.slots), last: idx}
			byDims[key] = se
		}
		se.add(idx, s.Value)
	}
}

func (se *series) add(idx int64, v float64) {
	n := int64(len(se.ring))
	switch {
	case idx <= se.last-n:
		return // older than the retention
	case idx > se.last:
		// Clear the grains skipped since the last write.
		for i := se.last + 1; i <= idx && i <= se.last+n; i++ {
			se.ring[i%n] = bucket{}
		}
		se.last = idx
	}
	b := &se.ring[idx%n]
	if se.kind == Counter {
		b.sum += v
		b.min, b.max, b.n = float32(b.sum), float32(b.sum), 1
		return
	}
	f := float32(v)
	if b.n == 0 || f < b.min {
		b.min = f
	}
	if b.n == 0 || f > b.max {
		b.max = f
	}
	b.sum += v
	b.n++
}

// Expire drops series with no grain inside the retention as of now.
func (h *History) Expire(now time.Time) {
	idx := h.index(now)
	h.mu.Lock()
	defer h.mu.Unlock()
	for res, metrics := range h.res {
		for name, byDims := range metrics {
			for k, se := range byDims {
				if se.last <= idx-int64(len(se.ring)) {
					delete(byDims, k)
				}
			}
			if len(byDims) == 0 {
				delete(metrics, name)
			}
		}
		if len(metrics) == 0 {
			delete(h.res, res)
		}
	}
}

// Series counts the stored series (for tests and /nimbus/info).
func (h *History) Series() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, metrics := range h.res {
		for _, byDims := range metrics {
			n += len(byDims)
		}
	}
	return n
}

// Cond selects series by one dimension: its value is one of Values (or, with
// Not, none of them). The dimension name matches case-insensitively, values
// too, as Azure's filters do.
type Cond struct {
	Name   string
	Values []string
	Not    bool
}

func (c Cond) match(dims []Dim) bool {
	v, ok := "", false
	for _, d := range dims {
		if strings.EqualFold(d.Name, c.Name) {
			v, ok = d.Value, true
			break
		}
	}
	hit := ok && slices.ContainsFunc(c.Values, func(w string) bool { return strings.EqualFold(w, v) })
	return hit != c.Not
}

// Query selects and aggregates series of one metric of one resource.
type Query struct {
	Resource string
	Metric   string
	// Start and End bound the points: the first point is the grain holding
	// Start, points start every Step grains, the last one before End.
	Start, End time.Time
	// Step is the number of grains per point (at least 1).
	Step int
	// Where keeps the series every Cond matches.
	Where []Cond
	// Split names the dimensions to split by: one result Series per
	// combination of their values. Empty: all selected series merge into one.
	Split []string
	// MaxPoints bounds the points per series (0: 100,000).
	MaxPoints int
}

// Point is the aggregate of one step.
type Point struct {
	Time time.Time
	Agg  Agg
}

// Result is one time series of a query: the split dimensions' values (in
// Query.Split order) and one Point per step, empty ones included.
type Result struct {
	Dims   []Dim
	Points []Point
}

// Query answers q. Without any matching series it returns nil. Points
// within one series aggregate its grains; across series, grains of the
// same time merge (an Average is the mean of every sample).
func (h *History) Query(q Query) []Result {
	step := int64(max(q.Step, 1))
	first, end := h.index(q.Start), h.index(q.End.Add(-1))+1
	if q.End.IsZero() || end <= first {
		end = first + 1
	}
	maxPts := int64(q.MaxPoints)
	if maxPts <= 0 {
		maxPts = 100_000
	}
	npts := min((end-first+step-1)/step, maxPts)
	h.mu.RLock()
	defer h.mu.RUnlock()
	byDims := h.res[strings.ToLower(q.Resource)][q.Metric]
	groups := map[string]*Result{}
	var order []string
	for _, se := range byDims {
		if !matchAll(q.Where, se.dims) {
			continue
		}
		split := make([]Dim, len(q.Split))
		for i, name := range q.Split {
			split[i] = Dim{Name: name}
			for _, d := range se.dims {
				if strings.EqualFold(d.Name, name) {
					split[i].Value = d.Value
				}
			}
		}
		k := seriesKey(split)
		g := groups[k]
		if g == nil {
			g = &Result{Dims: split, Points: make([]Point, npts)}
			for i := range g.Points {
				g.Points[i].Time = time.Unix(0, (first+int64(i)*step)*int64(h.grain)).UTC()
			}
			groups[k] = g
			order = append(order, k)
		}
		n := int64(len(se.ring))
		lo := max(first, se.last-n+1)
		hi := min(end, se.last+1, first+npts*step)
		for i := lo; i < hi; i++ {
			b := se.ring[i%n]
			if b.n == 0 {
				continue
			}
			p := &g.Points[(i-first)/step]
			p.Agg = p.Agg.Merge(b.agg())
		}
	}
	slices.Sort(order)
	out := make([]Result, 0, len(order))
	for _, k := range order {
		out = append(out, *groups[k])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// Values returns every value dimension name takes in the series of metric
// of resource, sorted.
func (h *History) Values(resource, metric, name string) []string {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seen := map[string]bool{}
	for _, se := range h.res[strings.ToLower(resource)][metric] {
		for _, d := range se.dims {
			if strings.EqualFold(d.Name, name) {
				seen[d.Value] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	slices.Sort(out)
	return out
}

func matchAll(cs []Cond, dims []Dim) bool {
	for _, c := range cs {
		if !c.match(dims) {
			return false
		}
	}
	return true
}
