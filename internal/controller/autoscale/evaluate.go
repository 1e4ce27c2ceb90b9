// Package autoscale is the autoscale engine: it evaluates every
// Microsoft.Insights/autoscaleSettings against the metrics history and
// changes the target scale set's capacity the way a user would, with an
// ARM PATCH of sku.capacity through the server's own handler (so scale-in
// policy, instance protection, upgrades and repairs all apply).
//
// Evaluate is the decision, a pure function of the setting, the metrics
// history, the clock, the current capacity and the time of the last scale
// action. Engine runs it periodically, applies decisions, and keeps a
// bounded in-memory activity log (insights.Event) and a log line per
// action.
//
// Semantics (Azure's documented ones): the active profile is a fixedDate
// profile whose window contains now, else the recurrence profile that
// started most recently, else the default profile (neither). A capacity
// outside [minimum, maximum] is brought back at once. A scale-out happens
// when any Increase rule fires (the largest result wins); a scale-in only
// when every Decrease rule fires (the smallest decrease wins). A rule is
// evaluated only when its cooldown has passed since the last scale
// action. Before scaling in, the engine projects each scale-out rule's
// metric onto the new count (value × current / new for per-instance
// metrics); if one would fire, the scale-in is flapping: it scales in by
// less, or not at all. Without any metric data, a capacity below the
// profile's default is raised to it.
package autoscale

import (
	"cmp"
	"math"
	"strings"
	"time"

	"nimbus/internal/monitor"
	"nimbus/internal/rp/insights"
)

// Input is everything one evaluation depends on.
type Input struct {
	Setting insights.Setting
	// History holds the metrics; its grain is one Azure minute (shorter
	// when tests compress time), and every duration of the setting is
	// read in those minutes.
	History  *monitor.History
	Now      time.Time
	Capacity int
	// LastScale is when the engine last scaled this setting's target
	// (zero: never, or not since nimbus started).
	LastScale time.Time
}

// Decision is the outcome of one evaluation.
type Decision struct {
	// Scale is true when the capacity should become NewCapacity.
	Scale       bool
	NewCapacity int
	// Direction is Increase or Decrease ("" without a change).
	Direction string
	// Profile is the active profile's name ("" when none applies).
	Profile string
	// Reason says why, for the activity log.
	Reason string
	// Flapping is true when a scale-in was skipped (Scale false) or
	// reduced because it would trigger a scale-out at once.
	Flapping bool
}

// Evaluate decides what to do with one setting's target.
func Evaluate(in Input) Decision {
	s := in.Setting
	if !s.Enabled {
		return Decision{Reason: "the autoscale setting is disabled"}
	}
	p, ok := ActiveProfile(s, in.Now)
	if !ok {
		return Decision{Reason: "no profile applies now"}
	}
	d := Decision{Profile: p.Name}
	c := in.Capacity
	switch {
	case c < p.Min:
		return d.to(p.Min, "Increase", "the capacity is below the profile's minimum")
	case c > p.Max:
		return d.to(p.Max, "Decrease", "the capacity is above the profile's maximum")
	}
	ev := evaluator{in: in, p: p, values: map[int]ruleValue{}}
	// Scale out: any Increase rule.
	out, why := c, ""
	for i, r := range p.Rules {
		if r.Direction != "Increase" || !ev.cooled(r) {
			continue
		}
		if v := ev.value(i); v.ok && compare(r.Operator, v.v, r.Threshold) {
			if t := min(target(r, c), p.Max); t > out {
				out, why = t, ruleReason(r, v.v)
			}
		}
	}
	if out > c {
		return d.to(out, "Increase", why)
	}
	// Scale in: every Decrease rule.
	in_, whyIn, nIn := c, "", 0
	for i, r := range p.Rules {
		if r.Direction != "Decrease" {
			continue
		}
		nIn++
		v := ev.value(i)
		if !ev.cooled(r) || !v.ok || !compare(r.Operator, v.v, r.Threshold) {
			in_ = c
			break
		}
		t := max(target(r, c), p.Min)
		if whyIn == "" || t > in_ {
			in_, whyIn = t, ruleReason(r, v.v)
		}
	}
	if nIn > 0 && in_ < c {
		for n := in_; n < c; n++ {
			if !ev.wouldScaleOut(n) {
				d = d.to(n, "Decrease", whyIn)
				d.Flapping = n != in_
				return d
			}
		}
		d.Flapping = true
		d.Reason = "flapping: scaling in to " + itoa(in_) + " would trigger a scale-out at once"
		return d
	}
	if !ev.anyData() && c < p.Default {
		return d.to(p.Default, "Increase", "no metric data: the capacity is raised to the profile's default")
	}
	d.Reason = "no rule fired"
	return d
}

func (d Decision) to(n int, dir, why string) Decision {
	d.Scale, d.NewCapacity, d.Direction, d.Reason = true, n, dir, why
	return d
}

// ActiveProfile returns the profile of s that applies at now.
func ActiveProfile(s insights.Setting, now time.Time) (insights.ParsedProfile, bool) {
	for _, p := range s.Profiles {
		if p.Fixed && !now.Before(p.FixedStart) && now.Before(p.FixedEnd) {
			return p, true
		}
	}
	var best insights.ParsedProfile
	var bestStart time.Time
	for _, p := range s.Profiles {
		if p.Recurrence == nil {
			continue
		}
		if st, ok := lastStart(p.Recurrence, now); ok && st.After(bestStart) {
			best, bestStart = p, st
		}
	}
	if !bestStart.IsZero() {
		return best, true
	}
	for _, p := range s.Profiles {
		if !p.Fixed && p.Recurrence == nil {
			return p, true
		}
	}
	return insights.ParsedProfile{}, false
}

// lastStart returns the latest start of a weekly schedule at or before now.
func lastStart(r *insights.ParsedRecurrence, now time.Time) (time.Time, bool) {
	local := now.In(r.Location)
	var best time.Time
	for back := 0; back <= 7; back++ {
		day := local.AddDate(0, 0, -back)
		for _, wd := range r.Days {
			if day.Weekday() != wd {
				continue
			}
			for _, h := range r.Hours {
				for _, m := range r.Minutes {
					t := time.Date(day.Year(), day.Month(), day.Day(), h, m, 0, 0, r.Location)
					if !t.After(now) && t.After(best) {
						best = t
					}
				}
			}
		}
	}
	return best, !best.IsZero()
}

// ruleValue is a rule's metric value over its window; ok is false without
// data.
type ruleValue struct {
	v  float64
	ok bool
}

type evaluator struct {
	in     Input
	p      insights.ParsedProfile
	values map[int]ruleValue
}

// minutes converts Azure minutes to the history's real time.
func (e *evaluator) minutes(d time.Duration) time.Duration {
	return time.Duration(float64(d) / float64(time.Minute) * float64(e.in.History.Grain()))
}

func (e *evaluator) cooled(r insights.ParsedRule) bool {
	return e.in.LastScale.IsZero() || e.in.Now.Sub(e.in.LastScale) >= e.minutes(r.Cooldown)
}

func (e *evaluator) anyData() bool {
	for i := range e.p.Rules {
		if e.value(i).ok {
			return true
		}
	}
	return false
}

// value computes rule i's metric over its time window: per time grain the
// statistic across the selected series, then the time aggregation of those
// grain values; divided by the capacity with dividePerInstance. Only
// complete grains count: the window ends where the current grain starts.
func (e *evaluator) value(i int) ruleValue {
	if v, ok := e.values[i]; ok {
		return v
	}
	r := e.p.Rules[i]
	h := e.in.History
	end := h.GrainStart(e.in.Now)
	start := end.Add(-e.minutes(r.Window))
	res := h.Query(monitor.Query{Resource: r.Resource, Metric: metricName(r.Metric), Start: start, End: end,
		Step: int(max(r.Grain/time.Minute, 1)), Where: r.Where})
	var vals []float64
	if len(res) > 0 {
		for _, pt := range res[0].Points {
			if pt.Agg.Count == 0 {
				continue
			}
			vals = append(vals, statistic(r.Statistic, pt.Agg))
		}
	}
	out := ruleValue{}
	if len(vals) > 0 {
		out = ruleValue{v: aggregate(r.TimeAggregation, vals), ok: true}
		if r.DividePerInstance {
			out.v /= float64(max(e.in.Capacity, 1))
		}
	}
	e.values[i] = out
	return out
}

// wouldScaleOut reports whether, at capacity n, some scale-out rule would
// fire on its current value projected to n instances.
func (e *evaluator) wouldScaleOut(n int) bool {
	for i, r := range e.p.Rules {
		if r.Direction != "Increase" {
			continue
		}
		v := e.value(i)
		if !v.ok {
			continue
		}
		projected := v.v
		if e.perInstance(r) && n > 0 {
			projected = v.v * float64(e.in.Capacity) / float64(n)
		}
		if compare(r.Operator, projected, r.Threshold) {
			return true
		}
	}
	return false
}

// perInstance reports whether a rule's metric is a per-instance figure
// that redistributes when the count changes: divided per instance, or an
// average of the target scale set's own metrics.
func (e *evaluator) perInstance(r insights.ParsedRule) bool {
	if r.DividePerInstance {
		return true
	}
	_, own := monitor.Lookup(monitor.ScaleSetMetrics, r.Metric)
	return own && r.Statistic == "Average" && strings.EqualFold(r.Resource, e.in.Setting.Target)
}

// metricName spells a metric as nimbus records it.
func metricName(n string) string {
	for _, defs := range [][]monitor.Definition{monitor.ScaleSetMetrics, monitor.LoadBalancerMetrics} {
		if d, ok := monitor.Lookup(defs, n); ok {
			return d.Name
		}
	}
	return n
}

func statistic(s string, a monitor.Agg) float64 {
	switch s {
	case "Min":
		return a.Min
	case "Max":
		return a.Max
	case "Sum":
		return a.Sum
	case "Count":
		return float64(a.Count)
	}
	return a.Average()
}

func aggregate(s string, vals []float64) float64 {
	switch s {
	case "Minimum":
		m := vals[0]
		for _, v := range vals {
			m = math.Min(m, v)
		}
		return m
	case "Maximum":
		m := vals[0]
		for _, v := range vals {
			m = math.Max(m, v)
		}
		return m
	case "Total":
		t := 0.0
		for _, v := range vals {
			t += v
		}
		return t
	case "Count":
		return float64(len(vals))
	case "Last":
		return vals[len(vals)-1]
	}
	t := 0.0
	for _, v := range vals {
		t += v
	}
	return t / float64(len(vals))
}

func compare(op string, v, threshold float64) bool {
	c := cmp.Compare(v, threshold)
	switch op {
	case "Equals":
		return c == 0
	case "NotEquals":
		return c != 0
	case "GreaterThan":
		return c > 0
	case "GreaterThanOrEqual":
		return c >= 0
	case "LessThan":
		return c < 0
	case "LessThanOrEqual":
		return c <= 0
	}
	return false
}

// target is the capacity rule r asks for from capacity c (not clamped to
// the profile). PercentChangeCount changes by the percentage of c rounded
// up, at least one instance.
func target(r insights.ParsedRule, c int) int {
	delta := r.Value
	switch r.Type {
	case "ExactCount":
		return r.Value
	case "PercentChangeCount":
		delta = max(int(math.Ceil(float64(c)*float64(r.Value)/100)), 1)
	}
	if r.Direction == "Decrease" {
		return max(c-delta, 0)
	}
	return c + delta
}

func ruleReason(r insights.ParsedRule, v float64) string {
	return r.Metric + " " + r.TimeAggregation + " over " + insights.FormatDuration(r.Window) + " is " +
		ftoa(v) + " (" + r.Operator + " " + ftoa(r.Threshold) + ")"
}
