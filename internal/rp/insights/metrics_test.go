package insights_test

import (
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/monitor"
	"nimbus/internal/rp/insights"
)

type metricsAnswer struct {
	Timespan, Interval, Namespace, Resourceregion string
	Value                                         []struct {
		ID, Type, Unit, ErrorCode string
		Name                      struct{ Value string }
		Timeseries                []struct {
			Metadatavalues []struct {
				Name  struct{ Value string }
				Value string
			}
			Data []map[string]any
		}
	}
}

// fill writes five minutes of samples ending at the current grain: web_0
// at 20 % CPU, web_1 at 80 %; 100 SYNs a minute on one LB frontend.
func (w *world) fill(now time.Time) time.Time {
	h := w.rt.hist
	start := h.GrainStart(now).Add(-5 * time.Minute)
	for m := range 5 {
		at := start.Add(time.Duration(m) * time.Minute)
		h.Add(at,
			monitor.Sample{Resource: w.vmss, Metric: monitor.PercentageCPU, Dims: []monitor.Dim{{Name: "VMName", Value: "web_0"}}, Value: 20},
			monitor.Sample{Resource: w.vmss, Metric: monitor.PercentageCPU, Dims: []monitor.Dim{{Name: "VMName", Value: "web_1"}}, Value: 80},
			monitor.Sample{Resource: w.lb, Metric: "SYNCount", Kind: monitor.Counter,
				Dims: []monitor.Dim{{Name: "FrontendIPAddress", Value: "127.77.0.1"}, {Name: "FrontendPort", Value: "80"}, {Name: "Direction", Value: "Inbound"}}, Value: 100})
	}
	return start
}

func (w *world) metrics(t *testing.T, resourceID string, q url.Values) (int, metricsAnswer, []byte) {
	t.Helper()
	q.Set("api-version", "2018-01-01")
	st, _, b := w.Do(http.MethodGet, resourceID+"/providers/Microsoft.Insights/metrics?"+q.Encode(), nil)
	var a metricsAnswer
	json.Unmarshal(b, &a)
	return st, a, b
}

func TestMetricsQuery(t *testing.T) {
	w := newWorld(t)
	start := w.fill(time.Now())
	span := start.Format(time.RFC3339) + "/" + start.Add(5*time.Minute).Format(time.RFC3339)

	t.Run("scale set average over the span", func(t *testing.T) {
		st, a, b := w.metrics(t, w.vmss, url.Values{"metricnames": {"Percentage CPU"}, "timespan": {span}, "interval": {"PT5M"}, "aggregation": {"average,maximum,count"}})
		if st != 200 || len(a.Value) != 1 || a.Namespace != "Microsoft.Compute/virtualMachineScaleSets" || a.Resourceregion != "eastus" || a.Interval != "PT5M" {
			t.Fatalf("%d %s", st, b)
		}
		v := a.Value[0]
		if v.Unit != "Percent" || v.Type != "Microsoft.Insights/metrics" || v.ErrorCode != "Success" || !strings.HasSuffix(v.ID, "/providers/Microsoft.Insights/metrics/Percentage CPU") {
			t.Errorf("metric = %s", b)
		}
		d := v.Timeseries[0].Data
		if len(d) != 1 || d[0]["average"] != 50.0 || d[0]["maximum"] != 80.0 || d[0]["count"] != 10.0 || d[0]["total"] != nil {
			t.Errorf("data = %v", d)
		}
	})
	t.Run("split by VMName", func(t *testing.T) {
		_, a, b := w.metrics(t, w.vmss, url.Values{"metricnames": {"Percentage CPU"}, "timespan": {span}, "interval": {"PT1M"}, "$filter": {"VMName eq '*'"}})
		ts := a.Value[0].Timeseries
		if len(ts) != 2 || ts[0].Metadatavalues[0].Name.Value != "VMName" || ts[0].Metadatavalues[0].Value != "web_0" || len(ts[0].Data) != 5 || ts[1].Data[4]["average"] != 80.0 {
			t.Errorf("split = %s", b)
		}
	})
	t.Run("instance", func(t *testing.T) {
		_, a, b := w.metrics(t, w.vmss+"/virtualMachines/1", url.Values{"metricnames": {"Percentage CPU"}, "timespan": {span}, "interval": {"PT5M"}})
		if a.Namespace != "Microsoft.Compute/virtualMachineScaleSets/virtualMachines" || a.Value[0].Timeseries[0].Data[0]["average"] != 80.0 {
			t.Errorf("instance = %s", b)
		}
		if st, _, _ := w.metrics(t, w.vmss+"/virtualMachines/7", url.Values{}); st != 404 {
			t.Errorf("missing instance = %d", st)
		}
	})
	t.Run("load balancer SYNCount total, double-encoded timespan", func(t *testing.T) {
		// az sends the timespan percent-encoded twice (%253A).
		raw := "metricnames=SYNCount&aggregation=total&interval=PT5M&timespan=" + url.QueryEscape(url.QueryEscape(span)) +
			"&%24filter=" + url.QueryEscape("FrontendPort eq '80' and Direction eq 'Inbound'") + "&api-version=2018-01-01"
		st, _, b := w.Do(http.MethodGet, w.lb+"/providers/Microsoft.Insights/metrics?"+raw, nil)
		var a metricsAnswer
		json.Unmarshal(b, &a)
		if st != 200 || len(a.Value) != 1 || a.Value[0].Unit != "Count" {
			t.Fatalf("%d %s", st, b)
		}
		ts := a.Value[0].Timeseries
		if len(ts) != 1 || len(ts[0].Metadatavalues) != 2 || ts[0].Data[0]["total"] != 500.0 {
			t.Errorf("SYNCount = %s", b)
		}
	})
	t.Run("no data: points without values", func(t *testing.T) {
		_, a, b := w.metrics(t, w.vmss, url.Values{"metricnames": {"Network In Total"}, "timespan": {span}})
		d := a.Value[0].Timeseries[0].Data
		if len(d) != 5 || len(d[0]) != 1 || d[0]["timeStamp"] == nil {
			t.Errorf("empty = %s", b)
		}
	})
	for _, tc := range []struct {
		name string
		q    url.Values
		msg  string
	}{
		{"unknown metric", url.Values{"metricnames": {"Disk Read Bytes"}}, "Failed to find metric configuration"},
		{"bad interval", url.Values{"interval": {"PT30S"}}, "Invalid interval"},
		{"bad timespan", url.Values{"timespan": {"yesterday"}}, "Invalid timespan"},
		{"bad aggregation", url.Values{"aggregation": {"median"}}, "Invalid aggregation"},
		{"bad filter", url.Values{"$filter": {"VMName = web_0"}}, "Invalid $filter"},
		{"unknown dimension", url.Values{"$filter": {"Color eq 'red'"}}, "has no dimension 'Color'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, b := w.metrics(t, w.vmss, tc.q)
			if st != 400 || armtest.ErrCode(b) != "BadRequest" || !strings.Contains(string(b), tc.msg) {
				t.Errorf("%d %s", st, b)
			}
		})
	}
}

func TestMetricDefinitions(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct {
		id, first, unit string
		n               int
		dims            bool
	}{
		{w.vmss, "Percentage CPU", "Percent", 4, true},
		{w.vmss + "/virtualMachines/0", "Percentage CPU", "Percent", 4, false},
		{w.lb, "VipAvailability", "Count", 8, true},
		{w.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1"), "", "", 0, false},
	} {
		st, _, b := w.Do(http.MethodGet, tc.id+"/providers/microsoft.insights/metricDefinitions?api-version=2018-01-01", nil)
		var l struct {
			Value []struct {
				Name                                     struct{ Value string }
				Unit, PrimaryAggregationType, ResourceID string
				MetricAvailabilities                     []struct{ TimeGrain, Retention string }
				Dimensions                               []struct{ Value string }
			}
		}
		json.Unmarshal(b, &l)
		if st != 200 || len(l.Value) != tc.n {
			t.Errorf("%s: %d, %d definitions: %s", tc.id, st, len(l.Value), b)
			continue
		}
		if tc.n == 0 {
			continue
		}
		d := l.Value[0]
		if d.Name.Value != tc.first || d.Unit != tc.unit || d.MetricAvailabilities[0].TimeGrain != "PT1M" || d.MetricAvailabilities[0].Retention != "PT6H" || (len(d.Dimensions) > 0) != tc.dims {
			t.Errorf("%s: %+v", tc.id, d)
		}
	}
	if st, _, _ := w.Do(http.MethodGet, w.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/nope")+"/providers/microsoft.insights/metricDefinitions?api-version=2018-01-01", nil); st != 404 {
		t.Errorf("missing scale set = %d", st)
	}
}

func TestActivityLog(t *testing.T) {
	w := newWorld(t)
	setting := w.RGPath("rg", "Microsoft.Insights/autoscaleSettings/as1")
	t0 := time.Now().UTC().Add(-time.Minute)
	w.rt.events = []insights.Event{
		{Time: t0, SettingID: setting, TargetID: w.vmss, Operation: insights.OpScaleUp, Status: "Succeeded", Level: "Informational", OldCount: 1, NewCount: 2, ID: "e1", Profile: "Profile1"},
		{Time: t0.Add(30 * time.Second), SettingID: setting, TargetID: w.vmss, Operation: insights.OpScaleDown, Status: "Succeeded", Level: "Informational", OldCount: 2, NewCount: 1, ID: "e2"},
	}
	filter := "eventTimestamp ge '" + t0.Add(time.Second).Format(time.RFC3339) + "' and resourceUri eq '" + setting + "'"
	st, _, b := w.Do(http.MethodGet, "/subscriptions/"+w.Sub+"/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter="+url.QueryEscape(filter), nil)
	var l struct {
		Value []struct {
			EventDataID   string
			OperationName struct{ Value string }
			Category      struct{ Value string }
			Properties    map[string]string
		}
	}
	json.Unmarshal(b, &l)
	if st != 200 || len(l.Value) != 1 || l.Value[0].EventDataID != "e2" || l.Value[0].OperationName.Value != insights.OpScaleDown ||
		l.Value[0].Category.Value != "Autoscale" || l.Value[0].Properties["NewInstancesCount"] != "1" {
		t.Errorf("%d %s", st, b)
	}
}

// loginAZLatest prepares an az configuration on the default profile
// ("latest"): Debian's az 2.45 has no monitor group under the
// 2020-09-01-hybrid profile armtest.LoginAZ uses, so monitor commands run
// from a second config dir like this one.
func loginAZLatest(t *testing.T, n *armtest.Node) []string {
	t.Helper()
	if _, err := os.Stat(armtest.AZBinary); err != nil {
		t.Skipf("az CLI not installed at %s: %v", armtest.AZBinary, err)
	}
	env := append(os.Environ(), "AZURE_CONFIG_DIR="+t.TempDir(), "AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_NO_COLOR=true", "AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE="+n.Endpoint.CAFile, "MSI_ENDPOINT="+n.Endpoint.MSIEndpoint)
	armtest.RunAZ(t, env, "cloud", "register", "-n", "NimbusLatest", "--endpoint-resource-manager", n.Base, "--profile", "latest")
	armtest.RunAZ(t, env, "cloud", "set", "-n", "NimbusLatest")
	armtest.RunAZ(t, env, "login", "--identity")
	return env
}

// TestAZMonitor runs az 2.45's monitor commands against the node.
func TestAZMonitor(t *testing.T) {
	w := newWorld(t)
	env := loginAZLatest(t, w.Node)
	w.fill(time.Now())
	out := armtest.RunAZ(t, env, "monitor", "metrics", "list", "--resource", w.vmss, "--metric", "Percentage CPU",
		"--interval", "PT1M", "--offset", "10m", "--aggregation", "Average", "Maximum", "-o", "json")
	var a metricsAnswer
	if err := json.Unmarshal(out, &a); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	found := false
	for _, p := range a.Value[0].Timeseries[0].Data {
		if p["average"] == 50.0 && p["maximum"] == 80.0 {
			found = true
		}
	}
	if !found {
		t.Errorf("az monitor metrics list: %s", out)
	}
	out = armtest.RunAZ(t, env, "monitor", "metrics", "list-definitions", "--resource", w.lb, "-o", "json")
	if !strings.Contains(string(out), "SnatConnectionCount") {
		t.Errorf("list-definitions: %s", out)
	}
	armtest.RunAZ(t, env, "monitor", "autoscale", "create", "-g", "rg", "--resource", w.vmss, "--name", "webscale",
		"--min-count", "1", "--max-count", "4", "--count", "2")
	armtest.RunAZ(t, env, "monitor", "autoscale", "rule", "create", "-g", "rg", "--autoscale-name", "webscale",
		"--condition", "Percentage CPU > 70 avg 5m", "--scale", "out", "1", "--cooldown", "1")
	armtest.RunAZ(t, env, "monitor", "autoscale", "rule", "create", "-g", "rg", "--autoscale-name", "webscale",
		"--condition", "Percentage CPU < 20 avg 10m", "--scale", "in", "1")
	out = armtest.RunAZ(t, env, "monitor", "autoscale", "show", "-g", "rg", "-n", "webscale", "-o", "json")
	var s setting
	if err := json.Unmarshal(out, &s); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	var got map[string]any
	json.Unmarshal(out, &got)
	profiles, _ := got["profiles"].([]any)
	if len(profiles) != 1 {
		t.Fatalf("az monitor autoscale show: %s", out)
	}
	p := profiles[0].(map[string]any)
	rules, _ := p["rules"].([]any)
	if len(rules) != 2 || p["capacity"].(map[string]any)["maximum"] != "4" {
		t.Errorf("profile = %s", out)
	}
	out = armtest.RunAZ(t, env, "monitor", "autoscale", "rule", "list", "-g", "rg", "--autoscale-name", "webscale", "-o", "json")
	// az prints durations as H:MM:SS.
	if !strings.Contains(string(out), "GreaterThan") || !strings.Contains(string(out), "0:10:00") {
		t.Errorf("rule list: %s", out)
	}
	armtest.RunAZ(t, env, "monitor", "autoscale", "update", "-g", "rg", "-n", "webscale", "--max-count", "5")
	setting := w.RGPath("rg", "microsoft.insights/autoscalesettings/webscale")
	w.rt.mu.Lock()
	w.rt.events = []insights.Event{{Time: time.Now().UTC().Add(-time.Minute), SettingID: setting, TargetID: w.vmss,
		Operation: insights.OpScaleUp, Status: "Succeeded", Level: "Informational", OldCount: 2, NewCount: 3, ID: "ev1"}}
	w.rt.mu.Unlock()
	out = armtest.RunAZ(t, env, "monitor", "activity-log", "list", "--resource-id", setting, "--offset", "1h", "-o", "json")
	if !strings.Contains(string(out), insights.OpScaleUp) || !strings.Contains(string(out), `"NewInstancesCount": "3"`) {
		t.Errorf("activity-log list: %s", out)
	}
	armtest.RunAZ(t, env, "monitor", "autoscale", "delete", "-g", "rg", "-n", "webscale")
	if _, stderr, err := armtest.TryAZ(t, env, "monitor", "autoscale", "show", "-g", "rg", "-n", "webscale"); err == nil {
		t.Errorf("show after delete succeeded: %s", stderr)
	}
}
