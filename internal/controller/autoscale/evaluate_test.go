package autoscale

import (
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"nimbus/internal/monitor"
	"nimbus/internal/rp/insights"
)

const (
	vmss = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	lb   = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"
)

// now is inside a grain; history helpers write the grains before it.
var now = time.Date(2026, 3, 2, 12, 0, 30, 0, time.UTC) // a Monday

func cpuRule(dir, op string, threshold float64, value int, cooldown time.Duration) insights.ParsedRule {
	return insights.ParsedRule{Metric: "Percentage CPU", Resource: vmss, Grain: time.Minute, Window: 5 * time.Minute,
		Statistic: "Average", TimeAggregation: "Average", Operator: op, Threshold: threshold,
		Direction: dir, Type: "ChangeCount", Value: value, Cooldown: cooldown}
}

func setting(p ...insights.ParsedProfile) insights.Setting {
	return insights.Setting{ID: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Insights/autoscaleSettings/as", Target: vmss, Enabled: true, Profiles: p}
}

func profile(min, max, def int, rules ...insights.ParsedRule) insights.ParsedProfile {
	return insights.ParsedProfile{Name: "p", Min: min, Max: max, Default: def, Rules: rules}
}

// withCPU returns a history whose last five complete grains hold each
// instance's CPU.
func withCPU(cpu ...float64) *monitor.History {
	h := monitor.NewHistory(monitor.Options{})
	for m := 1; m <= 5; m++ {
		for i, c := range cpu {
			h.Add(h.GrainStart(now).Add(-time.Duration(m)*time.Minute), monitor.Sample{Resource: vmss, Metric: monitor.PercentageCPU,
				Dims: []monitor.Dim{{Name: monitor.VMName, Value: "web_" + strconv.Itoa(i)}}, Value: c})
		}
	}
	return h
}

func TestEvaluate(t *testing.T) {
	out := cpuRule("Increase", "GreaterThan", 70, 1, time.Minute)
	in := cpuRule("Decrease", "LessThan", 30, 1, 5*time.Minute)
	tests := []struct {
		name      string
		s         insights.Setting
		h         *monitor.History
		capacity  int
		last      time.Time
		scale     bool
		want      int
		flapping  bool
		reasonHas string
	}{
		{"hot scales out", setting(profile(1, 5, 1, out, in)), withCPU(90, 80), 2, time.Time{}, true, 3, false, "Percentage CPU"},
		{"scale out capped at max", setting(profile(1, 3, 1, insights.ParsedRule{Metric: "Percentage CPU", Resource: vmss, Grain: time.Minute, Window: 5 * time.Minute,
			Statistic: "Average", TimeAggregation: "Average", Operator: "GreaterThan", Threshold: 70, Direction: "Increase", Type: "ChangeCount", Value: 2, Cooldown: time.Minute})),
			withCPU(90, 90), 2, time.Time{}, true, 3, false, ""},
		{"at max nothing", setting(profile(1, 2, 1, out)), withCPU(90, 90), 2, time.Time{}, false, 0, false, "no rule fired"},
		{"cooldown holds", setting(profile(1, 5, 1, out)), withCPU(90), 1, now.Add(-30 * time.Second), false, 0, false, ""},
		{"cooldown passed", setting(profile(1, 5, 1, out)), withCPU(90), 1, now.Add(-61 * time.Second), true, 2, false, ""},
		{"cold scales in", setting(profile(1, 5, 1, out, in)), withCPU(10, 10, 10), 3, time.Time{}, true, 2, false, ""},
		{"middle: nothing", setting(profile(1, 5, 1, out, in)), withCPU(50, 50), 2, time.Time{}, false, 0, false, ""},
		// 2 × 40 % on one instance is 80 %: scaling in would scale out again.
		{"flapping skipped", setting(profile(1, 5, 1, cpuRule("Increase", "GreaterThan", 70, 1, time.Minute), cpuRule("Decrease", "LessThan", 45, 1, time.Minute))),
			withCPU(40, 40), 2, time.Time{}, false, 0, true, "flapping"},
		// 4 → 2 would give 80 %, 4 → 3 gives 53 %: it scales in by one only.
		{"flapping reduced", setting(profile(1, 5, 1, cpuRule("Increase", "GreaterThan", 70, 1, time.Minute), cpuRule("Decrease", "LessThan", 45, 2, time.Minute))),
			withCPU(40, 40, 40, 40), 4, time.Time{}, true, 3, true, ""},
		{"every decrease rule must fire", setting(profile(1, 5, 1, in, cpuRule("Decrease", "LessThan", 5, 1, time.Minute))),
			withCPU(10, 10), 2, time.Time{}, false, 0, false, ""},
		{"the smallest decrease wins", setting(profile(1, 9, 1, cpuRule("Decrease", "LessThan", 30, 3, time.Minute), cpuRule("Decrease", "LessThan", 30, 1, time.Minute))),
			withCPU(10, 10, 10, 10), 4, time.Time{}, true, 3, false, ""},
		{"below minimum", setting(profile(3, 5, 3, out)), withCPU(10), 1, time.Time{}, true, 3, false, "minimum"},
		{"above maximum", setting(profile(1, 2, 1, out)), withCPU(10), 4, time.Time{}, true, 2, false, "maximum"},
		{"no data raises to default", setting(profile(1, 5, 3, out, in)), monitor.NewHistory(monitor.Options{}), 1, time.Time{}, true, 3, false, "default"},
		{"no data above default stays", setting(profile(1, 5, 3, out, in)), monitor.NewHistory(monitor.Options{}), 4, time.Time{}, false, 0, false, ""},
		{"disabled", insights.Setting{Target: vmss, Profiles: []insights.ParsedProfile{profile(1, 5, 1, out)}}, withCPU(90), 1, time.Time{}, false, 0, false, "disabled"},
		{"percent change rounds up", setting(profile(1, 20, 1, insights.ParsedRule{Metric: "Percentage CPU", Resource: vmss, Grain: time.Minute, Window: 5 * time.Minute,
			Statistic: "Average", TimeAggregation: "Average", Operator: "GreaterThan", Threshold: 70, Direction: "Increase", Type: "PercentChangeCount", Value: 50, Cooldown: time.Minute})),
			withCPU(90, 90, 90), 3, time.Time{}, true, 5, false, ""},
		{"exact count", setting(profile(1, 20, 1, insights.ParsedRule{Metric: "Percentage CPU", Resource: vmss, Grain: time.Minute, Window: 5 * time.Minute,
			Statistic: "Max", TimeAggregation: "Maximum", Operator: "GreaterThanOrEqual", Threshold: 90, Direction: "Increase", Type: "ExactCount", Value: 10, Cooldown: time.Minute})),
			withCPU(90, 10), 2, time.Time{}, true, 10, false, ""},
		{"dimension filter", setting(profile(1, 5, 1, insights.ParsedRule{Metric: "Percentage CPU", Resource: vmss, Grain: time.Minute, Window: 5 * time.Minute,
			Statistic: "Average", TimeAggregation: "Average", Operator: "GreaterThan", Threshold: 70, Direction: "Increase", Type: "ChangeCount", Value: 1, Cooldown: time.Minute,
			Where: []monitor.Cond{{Name: "VMName", Values: []string{"web_1"}}}})), withCPU(10, 95), 2, time.Time{}, true, 3, false, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Evaluate(Input{Setting: tc.s, History: tc.h, Now: now, Capacity: tc.capacity, LastScale: tc.last})
			if d.Scale != tc.scale || (tc.scale && d.NewCapacity != tc.want) || d.Flapping != tc.flapping {
				t.Fatalf("got %+v, want scale %v to %d (flapping %v)", d, tc.scale, tc.want, tc.flapping)
			}
			if tc.reasonHas != "" && !contains(d.Reason, tc.reasonHas) {
				t.Errorf("reason %q lacks %q", d.Reason, tc.reasonHas)
			}
		})
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestEvaluateLoadBalancerRule(t *testing.T) {
	h := monitor.NewHistory(monitor.Options{})
	for m := 1; m <= 5; m++ {
		h.Add(h.GrainStart(now).Add(-time.Duration(m)*time.Minute), monitor.Sample{Resource: lb, Metric: "SYNCount", Kind: monitor.Counter,
			Dims: []monitor.Dim{{Name: "FrontendIPAddress", Value: "127.77.0.1"}, {Name: "FrontendPort", Value: "80"}, {Name: "Direction", Value: "Inbound"}}, Value: 300})
	}
	rule := insights.ParsedRule{Metric: "syncount", Resource: lb, Grain: time.Minute, Window: 5 * time.Minute, Statistic: "Sum", TimeAggregation: "Total",
		Operator: "GreaterThan", Threshold: 1000, Direction: "Increase", Type: "ChangeCount", Value: 1, Cooldown: time.Minute, DividePerInstance: true}
	// 1,500 SYNs over the window: 750 per instance at 2 (no), 1,500 at 1 (yes).
	for capacity, want := range map[int]bool{1: true, 2: false} {
		d := Evaluate(Input{Setting: setting(profile(1, 5, 1, rule)), History: h, Now: now, Capacity: capacity})
		if d.Scale != want {
			t.Errorf("capacity %d: %+v, want scale %v", capacity, d, want)
		}
	}
}

func TestActiveProfile(t *testing.T) {
	pst, _ := insights.LoadTimeZone("Pacific Standard Time")
	def := insights.ParsedProfile{Name: "default"}
	fixed := insights.ParsedProfile{Name: "launch", Fixed: true, FixedStart: now.Add(-time.Hour), FixedEnd: now.Add(time.Hour)}
	past := insights.ParsedProfile{Name: "old", Fixed: true, FixedStart: now.Add(-3 * time.Hour), FixedEnd: now.Add(-2 * time.Hour)}
	// now is Monday 04:00:30 in Los Angeles: weekdays starts Monday 04:00,
	// nights started Sunday 20:00.
	weekdays := insights.ParsedProfile{Name: "weekdays", Recurrence: &insights.ParsedRecurrence{Location: pst,
		Days: []time.Weekday{time.Monday, time.Tuesday}, Hours: []int{4}, Minutes: []int{0}}}
	nights := insights.ParsedProfile{Name: "nights", Recurrence: &insights.ParsedRecurrence{Location: pst,
		Days: []time.Weekday{time.Sunday}, Hours: []int{20}, Minutes: []int{0}}}
	later := insights.ParsedProfile{Name: "later", Recurrence: &insights.ParsedRecurrence{Location: pst,
		Days: []time.Weekday{time.Monday}, Hours: []int{4}, Minutes: []int{1}}}
	tests := []struct {
		name     string
		profiles []insights.ParsedProfile
		want     string
	}{
		{"default only", []insights.ParsedProfile{def}, "default"},
		{"fixed wins", []insights.ParsedProfile{def, weekdays, fixed}, "launch"},
		{"past fixed ignored", []insights.ParsedProfile{past, def}, "default"},
		{"latest recurrence start", []insights.ParsedProfile{def, nights, weekdays}, "weekdays"},
		{"a start a minute ahead is last week's", []insights.ParsedProfile{nights, later}, "nights"},
		{"none applies", []insights.ParsedProfile{past}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, ok := ActiveProfile(insights.Setting{Profiles: tc.profiles}, now)
			if got := map[bool]string{true: p.Name}[ok]; got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestEvaluateProperties checks, over random settings, histories and
// capacities: a decision stays within the profile's limits (or moves
// toward them), a scale-out never happens while a cooldown holds, a
// scale-in only when every Decrease rule fires, and a scale-in never lands
// on a capacity where a scale-out rule would fire at once.
func TestEvaluateProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		min := rapid.IntRange(0, 5).Draw(t, "min")
		max := rapid.IntRange(min, 10).Draw(t, "max")
		def := rapid.IntRange(min, max).Draw(t, "default")
		var rules []insights.ParsedRule
		for i := range rapid.IntRange(0, 4).Draw(t, "rules") {
			dir := rapid.SampledFrom([]string{"Increase", "Decrease"}).Draw(t, "dir"+strconv.Itoa(i))
			op := rapid.SampledFrom([]string{"GreaterThan", "LessThan", "GreaterThanOrEqual", "LessThanOrEqual"}).Draw(t, "op"+strconv.Itoa(i))
			r := cpuRule(dir, op, float64(rapid.IntRange(0, 100).Draw(t, "th"+strconv.Itoa(i))), rapid.IntRange(1, 3).Draw(t, "v"+strconv.Itoa(i)),
				time.Duration(rapid.IntRange(1, 10).Draw(t, "cd"+strconv.Itoa(i)))*time.Minute)
			r.Type = rapid.SampledFrom([]string{"ChangeCount", "PercentChangeCount"}).Draw(t, "type"+strconv.Itoa(i))
			rules = append(rules, r)
		}
		var cpu []float64
		for i := range rapid.IntRange(0, 4).Draw(t, "instances") {
			cpu = append(cpu, float64(rapid.IntRange(0, 100).Draw(t, "cpu"+strconv.Itoa(i))))
		}
		h := withCPU(cpu...)
		capacity := rapid.IntRange(0, 12).Draw(t, "capacity")
		var last time.Time
		if rapid.Bool().Draw(t, "scaledBefore") {
			last = now.Add(-time.Duration(rapid.IntRange(0, 600).Draw(t, "ago")) * time.Second)
		}
		in := Input{Setting: setting(profile(min, max, def, rules...)), History: h, Now: now, Capacity: capacity, LastScale: last}
		d := Evaluate(in)
		if !d.Scale {
			return
		}
		if d.NewCapacity == capacity {
			t.Fatalf("a scale to the same capacity: %+v", d)
		}
		if capacity >= min && capacity <= max && (d.NewCapacity < min || d.NewCapacity > max) {
			t.Fatalf("left [%d,%d]: %+v", min, max, d)
		}
		if capacity < min || capacity > max {
			return
		}
		ev := evaluator{in: in, p: in.Setting.Profiles[0], values: map[int]ruleValue{}}
		for i, r := range rules {
			if !last.IsZero() && now.Sub(last) < r.Cooldown && d.Direction == r.Direction && d.Reason == ruleReason(r, ev.value(i).v) {
				t.Fatalf("rule %d fired during its cooldown: %+v", i, d)
			}
		}
		if d.Direction == "Decrease" {
			for i, r := range rules {
				if r.Direction == "Decrease" {
					v := ev.value(i)
					if !v.ok || !compare(r.Operator, v.v, r.Threshold) || !ev.cooled(r) {
						t.Fatalf("scaled in while rule %d did not fire: %+v", i, d)
					}
				}
			}
			if ev.wouldScaleOut(d.NewCapacity) {
				t.Fatalf("scaled in to a flapping capacity: %+v", d)
			}
		}
	})
}
