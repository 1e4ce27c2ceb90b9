package insights

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/monitor"
	"nimbus/internal/resource"
)

// target is a resource the metrics API answers for.
type target struct {
	id        resource.ID
	namespace string
	defs      []monitor.Definition
	// series is the resource whose history holds the data (an instance's
	// data is its scale set's, split by VMName); where selects it.
	series string
	where  []monitor.Cond
	// split is false for instances: their definitions have no dimensions.
	dims     bool
	location string
}

// Routes of the metrics API, per resource type: scale sets, their
// instances and load balancers, then any other resource (no metrics).
var metricScopes = []string{
	"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}",
	"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}/virtualMachines/{instance}",
	"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{name}",
	"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ns}/{type}/{name}",
}

func (s *server) registerMetrics() {
	for _, scope := range metricScopes {
		s.Handle(http.MethodGet, scope+"/providers/Microsoft.Insights/metricDefinitions", Versions, s.getDefinitions)
		s.Handle(http.MethodGet, scope+"/providers/Microsoft.Insights/metrics", Versions, s.getMetrics)
	}
}

// resolve finds the resource a metrics request names and what it offers.
func (s *server) resolve(ctx context.Context, r *arm.Request) (*target, error) {
	segs := r.Segments
	i := len(segs) - 3 // .../providers/Microsoft.Insights/{metrics|metricDefinitions}
	id, err := resource.ParseID("/" + strings.Join(segs[:i], "/"))
	if err != nil {
		return nil, err
	}
	rd := arm.StoreReader{Store: s.Store()}
	kv, ok, err := arm.ReadTop(ctx, rd, id.Top().String())
	if err != nil {
		return nil, err
	}
	if !ok {
		if gerr := s.RequireGroup(ctx, rd, id.Subscription, id.ResourceGroup); gerr != nil {
			return nil, gerr
		}
		return nil, resource.ResourceNotFoundError(id)
	}
	var top struct {
		ID       string `json:"id"`
		Location string `json:"location"`
	}
	if err := json.Unmarshal(kv.Value, &top); err != nil {
		return nil, err
	}
	t := &target{id: id, location: top.Location, series: top.ID, dims: true}
	typ := id.Type()
	switch {
	case strings.EqualFold(typ, monitor.ScaleSetNamespace):
		t.namespace, t.defs = monitor.ScaleSetNamespace, monitor.ScaleSetMetrics
	case strings.EqualFold(typ, resource.InstanceType):
		if _, err := rd.Get(ctx, resource.InstanceKey(top.ID, id.Name())); arm.IsNotFound(err) {
			return nil, resource.ResourceNotFoundError(id)
		} else if err != nil {
			return nil, err
		}
		t.namespace, t.defs, t.dims = resource.InstanceType, monitor.ScaleSetMetrics, false
		t.where = []monitor.Cond{{Name: monitor.VMName, Values: []string{id.Top().Name() + "_" + id.Name()}}}
	case strings.EqualFold(typ, monitor.LoadBalancerNamespace):
		t.namespace, t.defs = monitor.LoadBalancerNamespace, monitor.LoadBalancerMetrics
	case len(id.Types) == 1:
		t.namespace = id.Namespace + "/" + id.Types[0]
	default:
		return nil, resource.NotFound("InvalidResourceType", "The resource type '%s' has no metrics.", typ)
	}
	return t, nil
}

// localized is Azure's {value, localizedValue} pair.
type localized struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

func loc(s string) localized { return localized{s, s} }

// metricDefinition is one entry of metricDefinitions.
type metricDefinition struct {
	ID                        string               `json:"id"`
	ResourceID                string               `json:"resourceId"`
	Namespace                 string               `json:"namespace"`
	Category                  string               `json:"category"`
	Name                      localized            `json:"name"`
	DisplayDescription        string               `json:"displayDescription"`
	IsDimensionRequired       bool                 `json:"isDimensionRequired"`
	Unit                      string               `json:"unit"`
	PrimaryAggregationType    string               `json:"primaryAggregationType"`
	SupportedAggregationTypes []string             `json:"supportedAggregationTypes"`
	MetricAvailabilities      []metricAvailability `json:"metricAvailabilities"`
	Dimensions                []localized          `json:"dimensions,omitempty"`
}

type metricAvailability struct {
	TimeGrain string `json:"timeGrain"`
	Retention string `json:"retention"`
}

// timeGrains are the aggregation intervals the definitions list (Azure's).
var timeGrains = []time.Duration{time.Minute, 5 * time.Minute, 15 * time.Minute, 30 * time.Minute, time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour}

func (s *server) getDefinitions(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	t, err := s.resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	h := s.history()
	// Retention in Azure time: the history keeps Retention/Grain minutes.
	retention := FormatDuration(time.Duration(h.Retention()/h.Grain()) * time.Minute)
	id := t.id.String()
	out := []metricDefinition{}
	for _, d := range t.defs {
		md := metricDefinition{ID: id + "/providers/microsoft.insights/metricdefinitions/" + d.Name, ResourceID: id,
			Namespace: t.namespace, Category: category(d), Name: loc(d.Name), DisplayDescription: d.Description,
			Unit: d.Unit, PrimaryAggregationType: d.Primary, SupportedAggregationTypes: monitor.Aggregations}
		for _, g := range timeGrains {
			md.MetricAvailabilities = append(md.MetricAvailabilities, metricAvailability{TimeGrain: FormatDuration(g), Retention: retention})
		}
		if t.dims {
			for _, dim := range d.Dimensions {
				md.Dimensions = append(md.Dimensions, loc(dim))
			}
		}
		out = append(out, md)
	}
	return arm.JSON(http.StatusOK, map[string]any{"value": out}), nil
}

func category(d monitor.Definition) string {
	switch d.Name {
	case monitor.PercentageCPU:
		return "Compute"
	case monitor.NetworkInTotal, monitor.NetworkOutTotal:
		return "Network"
	case monitor.AvailableMemoryBytes:
		return "Memory"
	}
	return "Load balancer"
}

// metricsResponse is Azure's Response of the metrics API.
type metricsResponse struct {
	Cost           int      `json:"cost"`
	Timespan       string   `json:"timespan"`
	Interval       string   `json:"interval,omitempty"`
	Value          []metric `json:"value"`
	Namespace      string   `json:"namespace"`
	ResourceRegion string   `json:"resourceregion"`
}

type metric struct {
	ID                 string       `json:"id"`
	Type               string       `json:"type"`
	Name               localized    `json:"name"`
	DisplayDescription string       `json:"displayDescription"`
	Unit               string       `json:"unit"`
	Timeseries         []timeseries `json:"timeseries"`
	ErrorCode          string       `json:"errorCode"`
}

type timeseries struct {
	Metadatavalues []metadataValue `json:"metadatavalues"`
	Data           []dataPoint     `json:"data"`
}

type metadataValue struct {
	Name  localized `json:"name"`
	Value string    `json:"value"`
}

// dataPoint is one point; aggregations not asked for, or without data,
// are absent.
type dataPoint struct {
	TimeStamp string   `json:"timeStamp"`
	Average   *float64 `json:"average,omitempty"`
	Minimum   *float64 `json:"minimum,omitempty"`
	Maximum   *float64 `json:"maximum,omitempty"`
	Total     *float64 `json:"total,omitempty"`
	Count     *float64 `json:"count,omitempty"`
}

// queryParam returns a query parameter, decoded once more when it is
// still percent-encoded: az double-encodes (timespan ...T10%253A00...).
func queryParam(r *arm.Request, name string) string {
	v := r.Query(name)
	if strings.Contains(v, "%") {
		if u, err := url.QueryUnescape(v); err == nil {
			return u
		}
	}
	return v
}

func (s *server) getMetrics(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	t, err := s.resolve(ctx, r)
	if err != nil {
		return nil, err
	}
	h := s.history()
	now := s.Now()
	start, end, err := parseTimespan(queryParam(r, "timespan"), now, h.Grain())
	if err != nil {
		return nil, err
	}
	step, interval := 1, "PT1M"
	switch iv := queryParam(r, "interval"); {
	case iv == "":
	case strings.EqualFold(iv, "FULL"):
		step, interval = int(max(end.Sub(start)/h.Grain(), 1))+1, "FULL"
	default:
		d, err := ParseDuration(iv)
		if err != nil || d < time.Minute || d%time.Minute != 0 {
			return nil, resource.BadRequest("BadRequest", "Invalid interval '%s': use a whole number of minutes in ISO 8601, such as PT1M, PT5M, PT1H, or FULL.", iv)
		}
		step, interval = int(d/time.Minute), FormatDuration(d)
	}
	aggs, err := parseAggregations(queryParam(r, "aggregation"))
	if err != nil {
		return nil, err
	}
	where, split, err := parseFilter(queryParam(r, "$filter"))
	if err != nil {
		return nil, err
	}
	if !t.dims && (len(where) > 0 || len(split) > 0) {
		return nil, resource.BadRequest("BadRequest", "Metrics of '%s' have no dimensions to filter by.", t.namespace)
	}
	names := splitNames(queryParam(r, "metricnames"))
	var defs []monitor.Definition
	if len(names) == 0 && len(t.defs) > 0 {
		defs = t.defs[:1]
	}
	for _, n := range names {
		d, ok := monitor.Lookup(t.defs, n)
		if !ok {
			valid := make([]string, len(t.defs))
			for i, d := range t.defs {
				valid[i] = d.Name
			}
			return nil, resource.BadRequest("BadRequest",
				"Failed to find metric configuration for provider: %s, resource Type: %s, metric: %s, Valid metrics: %s",
				t.id.Namespace, strings.TrimPrefix(t.namespace, t.id.Namespace+"/"), n, strings.Join(valid, ","))
		}
		defs = append(defs, d)
	}
	resp := metricsResponse{Timespan: start.Format(time.RFC3339) + "/" + end.Format(time.RFC3339), Interval: interval,
		Namespace: t.namespace, ResourceRegion: t.location, Value: []metric{}}
	for _, d := range defs {
		for _, sd := range split {
			if !slices.ContainsFunc(d.Dimensions, func(x string) bool { return strings.EqualFold(x, sd) }) {
				return nil, resource.BadRequest("BadRequest", "The metric '%s' has no dimension '%s'; its dimensions are %s.", d.Name, sd, strings.Join(d.Dimensions, ", "))
			}
		}
		want := aggs
		if len(want) == 0 {
			want = []string{d.Primary}
		}
		q := monitor.Query{Resource: t.series, Metric: d.Name, Start: start, End: end, Step: step,
			Where: append(slices.Clone(t.where), where...), Split: canonicalDims(d, split), MaxPoints: 100_000}
		m := metric{ID: t.id.String() + "/providers/Microsoft.Insights/metrics/" + d.Name, Type: "Microsoft.Insights/metrics",
			Name: loc(d.Name), DisplayDescription: d.Description, Unit: d.Unit, ErrorCode: "Success", Timeseries: []timeseries{}}
		res := h.Query(q)
		if res == nil && len(q.Split) == 0 {
			res = []monitor.Result{{Points: emptyPoints(h, start, end, step)}}
		}
		for _, rs := range res {
			ts := timeseries{Metadatavalues: []metadataValue{}, Data: make([]dataPoint, 0, len(rs.Points))}
			for _, dv := range rs.Dims {
				ts.Metadatavalues = append(ts.Metadatavalues, metadataValue{Name: loc(dv.Name), Value: dv.Value})
			}
			for _, p := range rs.Points {
				ts.Data = append(ts.Data, point(p, want))
			}
			m.Timeseries = append(m.Timeseries, ts)
		}
		resp.Value = append(resp.Value, m)
	}
	return arm.JSON(http.StatusOK, resp), nil
}

// emptyPoints are the points of a query without data: timestamps only.
func emptyPoints(h *monitor.History, start, end time.Time, step int) []monitor.Point {
	var out []monitor.Point
	g := h.Grain() * time.Duration(step)
	for t := h.GrainStart(start); t.Before(end) && len(out) < 100_000; t = t.Add(g) {
		out = append(out, monitor.Point{Time: t})
	}
	return out
}

// canonicalDims spells split dimensions as the definition does.
func canonicalDims(d monitor.Definition, split []string) []string {
	out := make([]string, 0, len(split))
	for _, s := range split {
		for _, x := range d.Dimensions {
			if strings.EqualFold(x, s) {
				out = append(out, x)
			}
		}
	}
	return out
}

func point(p monitor.Point, aggs []string) dataPoint {
	dp := dataPoint{TimeStamp: p.Time.UTC().Format(time.RFC3339)}
	a := p.Agg
	if a.Count == 0 {
		return dp
	}
	f := func(v float64) *float64 { return &v }
	for _, name := range aggs {
		switch name {
		case monitor.AggAverage:
			dp.Average = f(a.Average())
		case monitor.AggMinimum:
			dp.Minimum = f(a.Min)
		case monitor.AggMaximum:
			dp.Maximum = f(a.Max)
		case monitor.AggTotal:
			dp.Total = f(a.Sum)
		case monitor.AggCount:
			dp.Count = f(float64(a.Count))
		}
	}
	return dp
}

// parseTimespan parses Azure's timespan: start/end, start/duration or a
// duration ending now (default PT1H). Durations are Azure time: a minute
// is one grain of the history.
func parseTimespan(s string, now time.Time, grain time.Duration) (time.Time, time.Time, error) {
	scale := func(d time.Duration) time.Duration {
		return time.Duration(float64(d) / float64(time.Minute) * float64(grain))
	}
	bad := resource.BadRequest("BadRequest", "Invalid timespan '%s': use startDateTime/endDateTime in ISO 8601, or startDateTime/duration, or a duration such as PT1H.", s)
	if strings.TrimSpace(s) == "" {
		return now.Add(-scale(time.Hour)).UTC(), now.UTC(), nil
	}
	a, b, two := strings.Cut(strings.TrimSpace(s), "/")
	if !two {
		d, err := ParseDuration(a)
		if err != nil || d <= 0 {
			return time.Time{}, time.Time{}, bad
		}
		return now.Add(-scale(d)).UTC(), now.UTC(), nil
	}
	// Times without an offset are UTC (az sends them so).
	start, err := parseLocalTime(a, time.UTC)
	if err != nil {
		return time.Time{}, time.Time{}, bad
	}
	end, err := parseLocalTime(b, time.UTC)
	if err != nil {
		d, derr := ParseDuration(b)
		if derr != nil {
			return time.Time{}, time.Time{}, bad
		}
		end = start.Add(scale(d))
	}
	if !end.After(start) {
		return time.Time{}, time.Time{}, resource.BadRequest("BadRequest", "Invalid timespan '%s': the end must be after the start.", s)
	}
	return start.UTC(), end.UTC(), nil
}

func parseAggregations(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		c := canonical(a, monitor.Aggregations)
		if c == "" {
			return nil, resource.BadRequest("BadRequest", "Invalid aggregation '%s': use %s.", a, strings.Join(monitor.Aggregations, ", "))
		}
		if c != monitor.AggNone && !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out, nil
}

// splitNames splits metricnames on commas; "%2" stands for a comma inside
// a name, as Azure documents.
func splitNames(s string) []string {
	var out []string
	for _, n := range strings.Split(s, ",") {
		if n = strings.TrimSpace(strings.ReplaceAll(n, "%2", ",")); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// parseFilter parses a metrics $filter: clauses joined by "and", each a
// comparison `Dim eq 'value'` or `Dim ne 'value'`, or comparisons of one
// dimension joined by "or" (optionally in parentheses). A dimension named
// with eq splits the result by its values; 'eq *' splits without
// selecting.
func parseFilter(s string) (where []monitor.Cond, split []string, err error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil, nil
	}
	bad := func() error {
		return resource.BadRequest("BadRequest", "Invalid $filter '%s': use clauses such as \"Dimension eq 'value'\" joined by and/or.", s)
	}
	for _, clause := range splitWord(s, "and") {
		clause = strings.TrimSpace(clause)
		for strings.HasPrefix(clause, "(") && strings.HasSuffix(clause, ")") {
			clause = strings.TrimSpace(clause[1 : len(clause)-1])
		}
		var c monitor.Cond
		star := false
		for _, atom := range splitWord(clause, "or") {
			f := strings.Fields(strings.Trim(strings.TrimSpace(atom), "()"))
			if len(f) < 3 {
				return nil, nil, bad()
			}
			name, op := f[0], strings.ToLower(f[1])
			val := strings.Join(f[2:], " ")
			if len(val) < 2 || val[0] != '\'' || val[len(val)-1] != '\'' || (op != "eq" && op != "ne") {
				return nil, nil, bad()
			}
			val = strings.ReplaceAll(val[1:len(val)-1], "''", "'")
			if c.Name != "" && !strings.EqualFold(c.Name, name) {
				return nil, nil, bad()
			}
			c.Name = name
			if op == "ne" {
				c.Not = true
			}
			if val == "*" && op == "eq" {
				star = true
				continue
			}
			c.Values = append(c.Values, val)
		}
		if !c.Not && !slices.ContainsFunc(split, func(x string) bool { return strings.EqualFold(x, c.Name) }) {
			split = append(split, c.Name)
		}
		if !star || len(c.Values) > 0 {
			where = append(where, c)
		}
	}
	return where, split, nil
}

// splitWord splits s around the keyword word (case-insensitive, surrounded
// by spaces) outside quotes and parentheses.
func splitWord(s, word string) []string {
	var out []string
	depth, quoted, last := 0, false, 0
	lw := " " + word + " "
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			quoted = !quoted
		case quoted:
		case c == '(':
			depth++
		case c == ')':
			depth--
		case depth == 0 && i+len(lw) <= len(s) && strings.EqualFold(s[i:i+len(lw)], lw):
			out = append(out, s[last:i])
			last = i + len(lw)
			i = last - 1
		}
	}
	return append(out, s[last:])
}
