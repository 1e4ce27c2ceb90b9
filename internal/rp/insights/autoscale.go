package insights

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/monitor"
	"nimbus/internal/resource"
)

// AutoscaleType is the ARM type of autoscale settings.
const AutoscaleType = "Microsoft.Insights/autoscaleSettings"

// AutoscaleSettingResource is a Microsoft.Insights/autoscaleSettings
// resource in Azure's JSON shape, as stored.
type AutoscaleSettingResource struct {
	resource.Envelope
	Properties AutoscaleSetting `json:"properties"`
}

// SetProvisioningState implements arm.Object: autoscale settings have no
// provisioning state.
func (*AutoscaleSettingResource) SetProvisioningState(string) {}

// AutoscaleSetting is the properties of an autoscale setting.
type AutoscaleSetting struct {
	Profiles      []Profile      `json:"profiles"`
	Notifications []Notification `json:"notifications"`
	// Enabled nil means true (Azure's default).
	Enabled                   *bool             `json:"enabled,omitempty"`
	PredictiveAutoscalePolicy *PredictivePolicy `json:"predictiveAutoscalePolicy,omitempty"`
	Name                      string            `json:"name,omitempty"`
	TargetResourceURI         string            `json:"targetResourceUri,omitempty"`
	TargetResourceLocation    string            `json:"targetResourceLocation,omitempty"`
}

// PredictivePolicy is predictiveAutoscalePolicy: stored; nimbus has no
// predictive autoscale, so only Disabled is accepted.
type PredictivePolicy struct {
	ScaleMode          string `json:"scaleMode"`
	ScaleLookAheadTime string `json:"scaleLookAheadTime,omitempty"`
}

// Profile is one autoscale profile.
type Profile struct {
	Name       string      `json:"name"`
	Capacity   Capacity    `json:"capacity"`
	Rules      []Rule      `json:"rules"`
	FixedDate  *TimeWindow `json:"fixedDate,omitempty"`
	Recurrence *Recurrence `json:"recurrence,omitempty"`
}

// Capacity is a profile's instance limits. Azure sends them as strings;
// numbers are accepted too.
type Capacity struct {
	Minimum Count `json:"minimum"`
	Maximum Count `json:"maximum"`
	Default Count `json:"default"`
}

// Count is an integer Azure spells as a JSON string ("3"). It decodes from a
// string or a number and encodes as a string; "" means unset.
type Count string

// UnmarshalJSON implements json.Unmarshaler.
func (c *Count) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*c = Count(s)
		return nil
	}
	if string(b) == "null" {
		*c = ""
		return nil
	}
	var f json.Number
	if err := json.Unmarshal(b, &f); err != nil {
		return err
	}
	*c = Count(f.String())
	return nil
}

// Rule is a scale rule: a metric trigger and the action it fires.
type Rule struct {
	MetricTrigger MetricTrigger `json:"metricTrigger"`
	ScaleAction   ScaleAction   `json:"scaleAction"`
}

// MetricTrigger is the condition of a rule.
type MetricTrigger struct {
	MetricName             string      `json:"metricName"`
	MetricNamespace        string      `json:"metricNamespace,omitempty"`
	MetricResourceURI      string      `json:"metricResourceUri"`
	MetricResourceLocation string      `json:"metricResourceLocation,omitempty"`
	TimeGrain              string      `json:"timeGrain"`
	Statistic              string      `json:"statistic"`
	TimeWindow             string      `json:"timeWindow"`
	TimeAggregation        string      `json:"timeAggregation"`
	Operator               string      `json:"operator"`
	Threshold              float64     `json:"threshold"`
	Dimensions             []Dimension `json:"dimensions,omitempty"`
	DividePerInstance      *bool       `json:"dividePerInstance,omitempty"`
}

// Dimension is a dimension condition of a trigger (Azure capitalises its
// field names).
type Dimension struct {
	DimensionName string   `json:"DimensionName"`
	Operator      string   `json:"Operator"`
	Values        []string `json:"Values"`
}

// ScaleAction is what a rule does when it fires.
type ScaleAction struct {
	Direction string `json:"direction"`
	Type      string `json:"type"`
	Value     Count  `json:"value,omitempty"`
	Cooldown  string `json:"cooldown"`
}

// TimeWindow is a fixedDate profile's window.
type TimeWindow struct {
	TimeZone string `json:"timeZone,omitempty"`
	Start    string `json:"start"`
	End      string `json:"end"`
}

// Recurrence is a recurring profile's start schedule.
type Recurrence struct {
	Frequency string   `json:"frequency"`
	Schedule  Schedule `json:"schedule"`
}

// Schedule is when a recurring profile begins each week.
type Schedule struct {
	TimeZone string   `json:"timeZone"`
	Days     []string `json:"days"`
	Hours    []int    `json:"hours"`
	Minutes  []int    `json:"minutes"`
}

// Notification is stored and returned; nimbus sends no e-mail and calls no
// webhook.
type Notification struct {
	Operation string          `json:"operation"`
	Email     json.RawMessage `json:"email,omitempty"`
	Webhooks  json.RawMessage `json:"webhooks,omitempty"`
}

// Setting is a validated autoscale setting, parsed once (ParseSetting) for
// the engine: capacities are integers, durations are Azure time (a minute
// is a minute; the engine compresses them in tests), names canonical.
type Setting struct {
	// ID is the setting's resource ID; Target the scale set it scales.
	ID, Target string
	Enabled    bool
	Profiles   []ParsedProfile
}

// ParsedProfile is a validated profile. At most one of Fixed and
// Recurrence is set; neither means the default profile.
type ParsedProfile struct {
	Name                 string
	Min, Max, Default    int
	Rules                []ParsedRule
	FixedStart, FixedEnd time.Time
	Fixed                bool
	Recurrence           *ParsedRecurrence
}

// ParsedRecurrence is a weekly start schedule in a location.
type ParsedRecurrence struct {
	Location *time.Location
	Days     []time.Weekday
	Hours    []int
	Minutes  []int
}

// ParsedRule is a validated rule.
type ParsedRule struct {
	Metric, Namespace, Resource string
	Grain, Window, Cooldown     time.Duration
	// Statistic is Average, Min, Max, Sum or Count; TimeAggregation is
	// Average, Minimum, Maximum, Total, Count or Last; Operator one of
	// Equals ... LessThanOrEqual; Direction Increase, Decrease or None;
	// Type ChangeCount, PercentChangeCount, ExactCount or
	// ServiceAllowedNextValue (treated as ChangeCount 1).
	Statistic, TimeAggregation, Operator, Direction, Type string
	Threshold                                             float64
	Value                                                 int
	DividePerInstance                                     bool
	Where                                                 []monitor.Cond
}

var (
	statistics       = []string{"Average", "Min", "Max", "Sum", "Count"}
	timeAggregations = []string{"Average", "Minimum", "Maximum", "Total", "Count", "Last"}
	operators        = []string{"Equals", "NotEquals", "GreaterThan", "GreaterThanOrEqual", "LessThan", "LessThanOrEqual"}
	directions       = []string{"None", "Increase", "Decrease"}
	scaleTypes       = []string{"ChangeCount", "PercentChangeCount", "ExactCount", "ServiceAllowedNextValue"}
	weekdays         = []string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
)

// Limits Azure documents for autoscale settings.
const (
	MaxProfiles = 20
	MaxRules    = 10
	// MaxCapacity is a scale set's largest capacity.
	MaxCapacity = 1000
)

func badRequest(format string, args ...any) *resource.Error {
	return resource.BadRequest("BadRequest", format, args...)
}

// canonical returns the element of allowed equal to v ignoring case, or "".
func canonical(v string, allowed []string) string {
	for _, a := range allowed {
		if strings.EqualFold(a, strings.TrimSpace(v)) {
			return a
		}
	}
	return ""
}

func parseCount(c Count, what string, minimum int) (int, error) {
	n, err := strconv.Atoi(strings.TrimSpace(string(c)))
	if err != nil {
		return 0, badRequest("The %s value '%s' that you specified in the autoscale setting is not a valid integer.", what, c)
	}
	if n < minimum || n > MaxCapacity {
		return 0, badRequest("The %s value '%d' that you specified in the autoscale setting is out of range: it must be between %d and %d.", what, n, minimum, MaxCapacity)
	}
	return n, nil
}

func parseDurationIn(s, what string, lo, hi time.Duration) (time.Duration, error) {
	d, err := ParseDuration(s)
	if err != nil {
		return 0, badRequest("The %s '%s' is not a valid ISO 8601 duration.", what, s)
	}
	if d < lo || d > hi {
		return 0, badRequest("The %s '%s' must be between %s and %s.", what, s, FormatDuration(lo), FormatDuration(hi))
	}
	return d, nil
}

// ParseSetting validates obj as Azure does (codes BadRequest and
// UnsupportedRequestContent, messages naming the field) and returns its
// parsed form.
func ParseSetting(obj *AutoscaleSettingResource) (Setting, error) {
	p := &obj.Properties
	if strings.TrimSpace(p.TargetResourceURI) == "" || p.Profiles == nil {
		return Setting{}, resource.BadRequest("UnsupportedRequestContent", "Request content is not well formed or supported.")
	}
	target, err := resource.ParseID(p.TargetResourceURI)
	if err != nil || !strings.EqualFold(target.Type(), monitor.ScaleSetNamespace) {
		return Setting{}, resource.BadRequest("ResourceNotSupported", "The target resource id '%s' is not supported.", p.TargetResourceURI)
	}
	if len(p.Profiles) == 0 || len(p.Profiles) > MaxProfiles {
		return Setting{}, badRequest("The autoscale setting has %d profiles; it must have between 1 and %d.", len(p.Profiles), MaxProfiles)
	}
	if pp := p.PredictiveAutoscalePolicy; pp != nil && !strings.EqualFold(pp.ScaleMode, "Disabled") {
		return Setting{}, badRequest("Predictive autoscale (scaleMode '%s') is not supported for resource '%s': only Disabled is.", pp.ScaleMode, p.TargetResourceURI)
	}
	for i, n := range p.Notifications {
		if !strings.EqualFold(n.Operation, "Scale") {
			return Setting{}, badRequest("The notification operation '%s' (notifications[%d]) is not supported: it must be 'Scale'.", n.Operation, i)
		}
	}
	s := Setting{ID: obj.ID, Target: target.String(), Enabled: p.Enabled == nil || *p.Enabled}
	names := map[string]bool{}
	for i := range p.Profiles {
		pp, err := parseProfile(&p.Profiles[i], i)
		if err != nil {
			return Setting{}, err
		}
		if names[strings.ToLower(pp.Name)] {
			return Setting{}, badRequest("The profile name '%s' is used more than once; profile names must be unique.", pp.Name)
		}
		names[strings.ToLower(pp.Name)] = true
		s.Profiles = append(s.Profiles, pp)
	}
	return s, nil
}

func parseProfile(p *Profile, i int) (ParsedProfile, error) {
	out := ParsedProfile{Name: strings.TrimSpace(p.Name)}
	if out.Name == "" {
		return out, badRequest("The profile name (profiles[%d].name) is required.", i)
	}
	var err error
	if out.Min, err = parseCount(p.Capacity.Minimum, "minimum capacity", 0); err != nil {
		return out, err
	}
	if out.Max, err = parseCount(p.Capacity.Maximum, "maximum capacity", 0); err != nil {
		return out, err
	}
	if out.Default, err = parseCount(p.Capacity.Default, "default capacity", 0); err != nil {
		return out, err
	}
	switch {
	case out.Min > out.Max:
		return out, badRequest("The minimum capacity value '%d' that you specified in the autoscale setting is greater than the maximum capacity of '%d'.  Enter a minimum capacity less than '%d'.", out.Min, out.Max, out.Max)
	case out.Min > out.Default:
		return out, badRequest("The minimum capacity value '%d' that you specified in the autoscale setting is greater than the default capacity of '%d'.  Enter a minimum capacity less than '%d'.", out.Min, out.Default, out.Default)
	case out.Default > out.Max:
		return out, badRequest("The default capacity value '%d' that you specified in the autoscale setting is greater than the maximum capacity of '%d'.  Enter a default capacity less than '%d'.", out.Default, out.Max, out.Max)
	}
	if p.Rules == nil {
		p.Rules = []Rule{}
	}
	if len(p.Rules) > MaxRules {
		return out, badRequest("The profile '%s' has %d rules; at most %d are allowed.", out.Name, len(p.Rules), MaxRules)
	}
	for j := range p.Rules {
		r, err := parseRule(&p.Rules[j], out)
		if err != nil {
			return out, err
		}
		out.Rules = append(out.Rules, r)
	}
	if p.FixedDate != nil && p.Recurrence != nil {
		return out, badRequest("The profile '%s' has both fixedDate and recurrence; set at most one.", out.Name)
	}
	if fd := p.FixedDate; fd != nil {
		loc := time.UTC
		if fd.TimeZone != "" {
			if loc, err = LoadTimeZone(fd.TimeZone); err != nil {
				return out, err
			}
		}
		if out.FixedStart, err = parseLocalTime(fd.Start, loc); err != nil {
			return out, badRequest("The fixedDate start '%s' of profile '%s' is not a valid date-time.", fd.Start, out.Name)
		}
		if out.FixedEnd, err = parseLocalTime(fd.End, loc); err != nil {
			return out, badRequest("The fixedDate end '%s' of profile '%s' is not a valid date-time.", fd.End, out.Name)
		}
		if !out.FixedEnd.After(out.FixedStart) {
			return out, badRequest("The fixedDate end '%s' of profile '%s' must be after its start '%s'.", fd.End, out.Name, fd.Start)
		}
		out.Fixed = true
	}
	if rc := p.Recurrence; rc != nil {
		if !strings.EqualFold(rc.Frequency, "Week") {
			return out, badRequest("The recurrence frequency '%s' of profile '%s' is not supported: it must be 'Week'.", rc.Frequency, out.Name)
		}
		pr := &ParsedRecurrence{}
		if pr.Location, err = LoadTimeZone(rc.Schedule.TimeZone); err != nil {
			return out, err
		}
		if len(rc.Schedule.Days) == 0 || len(rc.Schedule.Hours) == 0 || len(rc.Schedule.Minutes) == 0 {
			return out, badRequest("The recurrence schedule of profile '%s' needs days, hours and minutes.", out.Name)
		}
		for _, d := range rc.Schedule.Days {
			c := canonical(d, weekdays)
			if c == "" {
				return out, badRequest("The recurrence day '%s' of profile '%s' is not valid: use Sunday through Saturday.", d, out.Name)
			}
			for k, w := range weekdays {
				if w == c {
					pr.Days = append(pr.Days, time.Weekday(k))
				}
			}
		}
		for _, h := range rc.Schedule.Hours {
			if h < 0 || h > 23 {
				return out, badRequest("The recurrence hour '%d' of profile '%s' must be between 0 and 23.", h, out.Name)
			}
		}
		for _, m := range rc.Schedule.Minutes {
			if m < 0 || m > 59 {
				return out, badRequest("The recurrence minute '%d' of profile '%s' must be between 0 and 59.", m, out.Name)
			}
		}
		pr.Hours, pr.Minutes = rc.Schedule.Hours, rc.Schedule.Minutes
		out.Recurrence = pr
	}
	return out, nil
}

// parseLocalTime parses an ISO 8601 date-time; without an offset it is
// read in loc (a fixedDate's timeZone).
func parseLocalTime(s string, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02T15:04", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("date-time %q", s)
}

func parseRule(r *Rule, p ParsedProfile) (ParsedRule, error) {
	mt, sa := &r.MetricTrigger, &r.ScaleAction
	out := ParsedRule{Metric: strings.TrimSpace(mt.MetricName), Namespace: mt.MetricNamespace, Threshold: mt.Threshold}
	if out.Metric == "" {
		return out, badRequest("The metricName of a rule in profile '%s' is required.", p.Name)
	}
	rid, err := resource.ParseID(mt.MetricResourceURI)
	if err != nil {
		return out, badRequest("The metricResourceUri '%s' of metric '%s' is not a valid resource ID.", mt.MetricResourceURI, out.Metric)
	}
	out.Resource = rid.String()
	if out.Grain, err = parseDurationIn(mt.TimeGrain, "timeGrain", time.Minute, 12*time.Hour); err != nil {
		return out, err
	}
	if out.Window, err = parseDurationIn(mt.TimeWindow, "timeWindow", 5*time.Minute, 12*time.Hour); err != nil {
		return out, err
	}
	if out.Window < out.Grain {
		return out, badRequest("The timeWindow '%s' of metric '%s' must not be shorter than its timeGrain '%s'.", mt.TimeWindow, out.Metric, mt.TimeGrain)
	}
	if out.Statistic = canonical(mt.Statistic, statistics); out.Statistic == "" {
		return out, badRequest("The statistic '%s' of metric '%s' is not valid: use one of %s.", mt.Statistic, out.Metric, strings.Join(statistics, ", "))
	}
	ta := mt.TimeAggregation
	if strings.TrimSpace(ta) == "" {
		ta = "Average"
	}
	if out.TimeAggregation = canonical(ta, timeAggregations); out.TimeAggregation == "" {
		return out, badRequest("The timeAggregation '%s' of metric '%s' is not valid: use one of %s.", mt.TimeAggregation, out.Metric, strings.Join(timeAggregations, ", "))
	}
	if out.Operator = canonical(mt.Operator, operators); out.Operator == "" {
		return out, badRequest("The operator '%s' of metric '%s' is not valid: use one of %s.", mt.Operator, out.Metric, strings.Join(operators, ", "))
	}
	if math.IsNaN(mt.Threshold) || math.IsInf(mt.Threshold, 0) {
		return out, badRequest("The threshold of metric '%s' must be a number.", out.Metric)
	}
	out.DividePerInstance = mt.DividePerInstance != nil && *mt.DividePerInstance
	for _, d := range mt.Dimensions {
		op := canonical(d.Operator, []string{"Equals", "NotEquals"})
		if strings.TrimSpace(d.DimensionName) == "" || op == "" || len(d.Values) == 0 {
			return out, badRequest("The dimension condition '%s' of metric '%s' needs a DimensionName, an Operator (Equals or NotEquals) and Values.", d.DimensionName, out.Metric)
		}
		if op == "Equals" && len(d.Values) == 1 && d.Values[0] == "*" {
			continue // every value
		}
		out.Where = append(out.Where, monitor.Cond{Name: d.DimensionName, Values: d.Values, Not: op == "NotEquals"})
	}
	if out.Direction = canonical(sa.Direction, directions); out.Direction == "" {
		return out, badRequest("The scale action direction '%s' is not valid: use Increase, Decrease or None.", sa.Direction)
	}
	if out.Type = canonical(sa.Type, scaleTypes); out.Type == "" {
		return out, badRequest("The scale action type '%s' is not valid: use one of %s.", sa.Type, strings.Join(scaleTypes, ", "))
	}
	v := strings.TrimSpace(string(sa.Value))
	if v == "" {
		v = "1"
	}
	n, err := strconv.Atoi(v)
	minValue := 1
	if out.Type == "ExactCount" {
		minValue = 0
	}
	if err != nil || n < minValue {
		return out, badRequest("The scale action value '%s' is not valid: it must be an integer of %d or greater.", sa.Value, minValue)
	}
	if out.Type == "ExactCount" && (n < p.Min || n > p.Max) {
		return out, badRequest("The scale action value '%d' (ExactCount) must be between the profile's minimum '%d' and maximum '%d' capacity.", n, p.Min, p.Max)
	}
	if out.Type == "ChangeCount" && n > p.Max-p.Min && p.Max > p.Min {
		return out, badRequest("The scale action value '%d' must be less than or equal to the difference between the maximum capacity '%d' and the minimum capacity '%d'.", n, p.Max, p.Min)
	}
	if out.Type == "ServiceAllowedNextValue" {
		out.Type, n = "ChangeCount", 1
	}
	out.Value = n
	if out.Cooldown, err = parseDurationIn(sa.Cooldown, "cooldown", time.Minute, 7*24*time.Hour); err != nil {
		return out, err
	}
	return out, nil
}

// autoscaleModel implements arm.Model for autoscale settings.
type autoscaleModel struct{ s *server }

var (
	_ arm.Model  = autoscaleModel{}
	_ arm.Merger = autoscaleModel{}
)

// New implements arm.Model.
func (autoscaleModel) New() arm.Object { return &AutoscaleSettingResource{} }

// Prepare validates the setting (ParseSetting), checks that its target is
// a scale set that exists and has no other autoscale setting, and fills
// properties.name, targetResourceLocation and the default of enabled.
func (m autoscaleModel) Prepare(ctx context.Context, tx *arm.Tx, obj, _ arm.Object) error {
	a := obj.(*AutoscaleSettingResource)
	p := &a.Properties
	ps, err := ParseSetting(a)
	if err != nil {
		return err
	}
	kv, ok, err := arm.ReadTop(ctx, tx, ps.Target)
	if err != nil {
		return err
	}
	if !ok {
		return resource.NotFound("ResourceNotFound", "The target resource '%s' of the autoscale setting could not be found.", p.TargetResourceURI)
	}
	var target struct {
		ID       string `json:"id"`
		Location string `json:"location"`
	}
	if err := json.Unmarshal(kv.Value, &target); err != nil {
		return fmt.Errorf("insights: decode target: %w", err)
	}
	p.TargetResourceURI = target.ID
	p.TargetResourceLocation = target.Location
	p.Name = a.Name
	if p.Enabled == nil {
		t := true
		p.Enabled = &t
	}
	if p.Notifications == nil {
		p.Notifications = []Notification{}
	}
	for i := range p.Profiles {
		if p.Profiles[i].Rules == nil {
			p.Profiles[i].Rules = []Rule{}
		}
	}
	// One autoscale setting per target, as in Azure: two would fight.
	id, _ := resource.ParseID(a.ID)
	others, err := m.s.ListObjects(ctx, tx, m.s.kind, id.Subscription, "")
	if err != nil {
		return err
	}
	for _, o := range others {
		other := o.(*AutoscaleSettingResource)
		if !strings.EqualFold(other.ID, a.ID) && strings.EqualFold(other.Properties.TargetResourceURI, target.ID) {
			return badRequest("The target resource '%s' already has the autoscale setting '%s'; a resource can have only one.", target.ID, other.ID)
		}
	}
	return nil
}

// References implements arm.Model: none are indexed, so deleting the
// target scale set is not refused (in Azure the setting outlives it and
// scales nothing).
func (autoscaleModel) References(arm.Object) []resource.Ref { return nil }

// Release implements arm.Model.
func (autoscaleModel) Release(context.Context, *arm.Tx, arm.Object) error { return nil }

// Render implements arm.Model.
func (autoscaleModel) Render(context.Context, arm.Reader, arm.Object) error { return nil }

// autoscalePatch is the body of a PATCH: tags and any properties given.
type autoscalePatch struct {
	Tags       *map[string]string `json:"tags"`
	Properties *struct {
		Profiles                  *[]Profile        `json:"profiles"`
		Notifications             *[]Notification   `json:"notifications"`
		Enabled                   *bool             `json:"enabled"`
		PredictiveAutoscalePolicy *PredictivePolicy `json:"predictiveAutoscalePolicy"`
		TargetResourceURI         *string           `json:"targetResourceUri"`
	} `json:"properties"`
}

// Merge implements arm.Merger: the properties a PATCH names replace the
// stored ones; the result is validated like a PUT.
func (autoscaleModel) Merge(obj arm.Object, body []byte) error {
	var p autoscalePatch
	if err := arm.DecodeBody(body, &p); err != nil {
		return err
	}
	a := obj.(*AutoscaleSettingResource)
	if p.Tags != nil {
		a.Tags = *p.Tags
	}
	if pp := p.Properties; pp != nil {
		if pp.Profiles != nil {
			a.Properties.Profiles = *pp.Profiles
		}
		if pp.Notifications != nil {
			a.Properties.Notifications = *pp.Notifications
		}
		if pp.Enabled != nil {
			a.Properties.Enabled = pp.Enabled
		}
		if pp.PredictiveAutoscalePolicy != nil {
			a.Properties.PredictiveAutoscalePolicy = pp.PredictiveAutoscalePolicy
		}
		if pp.TargetResourceURI != nil {
			a.Properties.TargetResourceURI = *pp.TargetResourceURI
		}
	}
	return nil
}

// autoscaleName is Azure's naming rule for autoscale settings: 1 to 260
// characters, none of < > % & : \ ? / # and no control characters.
func autoscaleName(name string) error {
	if name == "" || len(name) > 260 || strings.ContainsAny(name, "<>%&:\\?/#") ||
		strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return resource.BadRequest("InvalidResourceName",
			"The autoscale setting name '%s' is invalid: use 1 to 260 characters, none of <>%%&:\\?/# or control characters.", name)
	}
	return nil
}

// deleteAutoscale answers DELETE as Azure does for autoscale settings:
// synchronous, 200 when deleted, 204 when there was nothing.
func (s *server) deleteAutoscale(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, existed, err := s.Remove(ctx, s.kind, s.kind.ID(r), r.HTTP.Header.Get("If-Match"))
	if err != nil {
		return nil, err
	}
	if !existed {
		return arm.NoContent(http.StatusNoContent), nil
	}
	return arm.NoContent(http.StatusOK), nil
}
