package insights_test

import (
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"
)

const asVersion = "?api-version=2015-04-01"

// templateBody reads a quickstart template's autoscaleSettings body with
// its target set to vmss.
func templateBody(t *testing.T, file, vmss string) string {
	t.Helper()
	b, err := os.ReadFile("testdata/" + file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(l, "//") {
			lines = append(lines, l)
		}
	}
	s := strings.ReplaceAll(strings.Join(lines, "\n"), "{{VMSS}}", vmss)
	return strings.ReplaceAll(s, "{{LOCATION}}", "eastus")
}

type setting struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Location   string `json:"location"`
	Properties struct {
		Enabled                bool   `json:"enabled"`
		Name                   string `json:"name"`
		TargetResourceURI      string `json:"targetResourceUri"`
		TargetResourceLocation string `json:"targetResourceLocation"`
		Profiles               []struct {
			Name     string            `json:"name"`
			Capacity map[string]string `json:"capacity"`
			Rules    []struct {
				MetricTrigger map[string]any `json:"metricTrigger"`
				ScaleAction   map[string]any `json:"scaleAction"`
			} `json:"rules"`
		} `json:"profiles"`
		Notifications []any `json:"notifications"`
	} `json:"properties"`
}

// TestQuickstartTemplatesDeploy PUTs the autoscaleSettings resources of
// vmss-ubuntu-autoscale and vmss-windows-autoscale and reads them back.
func TestQuickstartTemplatesDeploy(t *testing.T) {
	w := newWorld(t)
	for _, tc := range []struct{ file, name string }{
		{"vmss-ubuntu-autoscale.json", "autoscalewad"},
		{"vmss-windows-autoscale.json", "cpuautoscale"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := w.RGPath("rg", "microsoft.insights/autoscalesettings/"+tc.name) + asVersion
			st, _, b := w.Do(http.MethodPut, path, templateBody(t, tc.file, w.vmss))
			if st != http.StatusCreated {
				t.Fatalf("PUT: %d %s", st, b)
			}
			var got setting
			_, _, b = w.Do(http.MethodGet, path, nil)
			if err := json.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			p := got.Properties
			if got.Type != "Microsoft.Insights/autoscaleSettings" || got.Name != tc.name || !p.Enabled ||
				!strings.EqualFold(p.TargetResourceURI, w.vmss) || p.TargetResourceLocation != "eastus" ||
				len(p.Profiles) != 1 || len(p.Profiles[0].Rules) != 2 || p.Profiles[0].Capacity["maximum"] != "10" {
				t.Errorf("GET = %s", b)
			}
			if mt := p.Profiles[0].Rules[0].MetricTrigger; mt["metricName"] != "Percentage CPU" || mt["timeWindow"] != "PT5M" {
				t.Errorf("rule = %v", mt)
			}
			// A resource has one autoscale setting: delete it before the next.
			if st, _, b := w.Do(http.MethodDelete, path, nil); st != http.StatusOK {
				t.Fatalf("DELETE: %d %s", st, b)
			}
		})
	}
}

func TestAutoscaleLifecycle(t *testing.T) {
	w := newWorld(t)
	path := w.RGPath("rg", "Microsoft.Insights/autoscaleSettings/as1") + "?api-version=2022-10-01"
	body := templateBody(t, "vmss-windows-autoscale.json", w.vmss)
	if st, _, b := w.Do(http.MethodPut, path, body); st != http.StatusCreated {
		t.Fatalf("create: %d %s", st, b)
	}
	if st, _, b := w.Do(http.MethodPut, path, body); st != http.StatusOK {
		t.Fatalf("update: %d %s", st, b)
	}
	for _, list := range []string{
		w.RGPath("rg", "Microsoft.Insights/autoscaleSettings") + "?api-version=2022-10-01",
		"/subscriptions/" + w.Sub + "/providers/microsoft.insights/autoscalesettings?api-version=2015-04-01",
	} {
		var l struct{ Value []setting }
		_, _, b := w.Do(http.MethodGet, list, nil)
		json.Unmarshal(b, &l)
		if len(l.Value) != 1 || l.Value[0].Name != "as1" {
			t.Errorf("list %s = %s", list, b)
		}
	}
	// PATCH: disable and retag; the profiles stay.
	st, _, b := w.Do(http.MethodPatch, path, map[string]any{"tags": map[string]string{"k": "v"}, "properties": map[string]any{"enabled": false}})
	var got setting
	json.Unmarshal(b, &got)
	if st != http.StatusOK || got.Properties.Enabled || len(got.Properties.Profiles) != 1 {
		t.Errorf("PATCH: %d %s", st, b)
	}
	// A second setting for the same scale set is refused.
	other := w.RGPath("rg", "Microsoft.Insights/autoscaleSettings/as2") + asVersion
	if st, _, b := w.Do(http.MethodPut, other, body); st != http.StatusBadRequest || !strings.Contains(string(b), "already has the autoscale setting") {
		t.Errorf("second setting: %d %s", st, b)
	}
	if st, _, _ := w.Do(http.MethodDelete, path, nil); st != http.StatusOK {
		t.Errorf("DELETE = %d, want 200", st)
	}
	if st, _, _ := w.Do(http.MethodDelete, path, nil); st != http.StatusNoContent {
		t.Errorf("second DELETE = %d, want 204", st)
	}
	if st, _, b := w.Do(http.MethodGet, path, nil); st != http.StatusNotFound {
		t.Errorf("GET after delete: %d %s", st, b)
	}
}

func TestAutoscaleValidation(t *testing.T) {
	w := newWorld(t)
	base := func() map[string]any {
		var m map[string]any
		if err := json.Unmarshal([]byte(templateBody(t, "vmss-windows-autoscale.json", w.vmss)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	props := func(m map[string]any) map[string]any { return m["properties"].(map[string]any) }
	profile := func(m map[string]any) map[string]any { return props(m)["profiles"].([]any)[0].(map[string]any) }
	rule := func(m map[string]any, i int) map[string]any { return profile(m)["rules"].([]any)[i].(map[string]any) }
	trigger := func(m map[string]any) map[string]any { return rule(m, 0)["metricTrigger"].(map[string]any) }
	action := func(m map[string]any) map[string]any { return rule(m, 0)["scaleAction"].(map[string]any) }
	tests := []struct {
		name    string
		edit    func(m map[string]any)
		status  int
		code    string
		message string
	}{
		{"no target", func(m map[string]any) { delete(props(m), "targetResourceUri") }, 400, "UnsupportedRequestContent", "not well formed"},
		{"target not a scale set", func(m map[string]any) { props(m)["targetResourceUri"] = w.lb }, 400, "ResourceNotSupported", "is not supported"},
		{"target missing", func(m map[string]any) { props(m)["targetResourceUri"] = w.vmss + "x" }, 404, "ResourceNotFound", "could not be found"},
		{"no profiles", func(m map[string]any) { props(m)["profiles"] = []any{} }, 400, "BadRequest", "between 1 and 20"},
		{"min above default", func(m map[string]any) {
			profile(m)["capacity"] = map[string]any{"minimum": "6", "maximum": "10", "default": "1"}
		}, 400, "BadRequest", "greater than the default capacity of '1'"},
		{"min above max", func(m map[string]any) {
			profile(m)["capacity"] = map[string]any{"minimum": "6", "maximum": "3", "default": "6"}
		}, 400, "BadRequest", "greater than the maximum capacity"},
		{"capacity not a number", func(m map[string]any) {
			profile(m)["capacity"] = map[string]any{"minimum": "x", "maximum": "3", "default": "1"}
		}, 400, "BadRequest", "not a valid integer"},
		{"capacity as numbers", func(m map[string]any) {
			profile(m)["capacity"] = map[string]any{"minimum": 1, "maximum": 3, "default": 2}
		}, 201, "", ""},
		{"window too short", func(m map[string]any) { trigger(m)["timeWindow"] = "PT1M" }, 400, "BadRequest", "timeWindow 'PT1M' must be between PT5M and PT12H"},
		{"grain not a duration", func(m map[string]any) { trigger(m)["timeGrain"] = "1 minute" }, 400, "BadRequest", "not a valid ISO 8601"},
		{"bad operator", func(m map[string]any) { trigger(m)["operator"] = "Above" }, 400, "BadRequest", "operator 'Above'"},
		{"bad statistic", func(m map[string]any) { trigger(m)["statistic"] = "Median" }, 400, "BadRequest", "statistic 'Median'"},
		{"bad direction", func(m map[string]any) { action(m)["direction"] = "Up" }, 400, "BadRequest", "direction 'Up'"},
		{"bad type", func(m map[string]any) { action(m)["type"] = "Double" }, 400, "BadRequest", "type 'Double'"},
		{"value zero", func(m map[string]any) { action(m)["value"] = "0" }, 400, "BadRequest", "1 or greater"},
		{"value above the range", func(m map[string]any) { action(m)["value"] = "20" }, 400, "BadRequest", "difference between the maximum capacity"},
		{"cooldown too long", func(m map[string]any) { action(m)["cooldown"] = "P8D" }, 400, "BadRequest", "cooldown 'P8D'"},
		{"bad dimension operator", func(m map[string]any) {
			trigger(m)["dimensions"] = []any{map[string]any{"DimensionName": "VMName", "Operator": "Like", "Values": []string{"a"}}}
		}, 400, "BadRequest", "Equals or NotEquals"},
		{"fixed date ends before it starts", func(m map[string]any) {
			profile(m)["fixedDate"] = map[string]any{"timeZone": "Pacific Standard Time", "start": "2026-03-02T00:00:00", "end": "2026-03-01T00:00:00"}
		}, 400, "BadRequest", "must be after its start"},
		{"unknown time zone", func(m map[string]any) {
			profile(m)["recurrence"] = map[string]any{"frequency": "Week", "schedule": map[string]any{"timeZone": "Mars Standard Time", "days": []string{"Monday"}, "hours": []int{5}, "minutes": []int{0}}}
		}, 400, "BadRequest", "time zone 'Mars Standard Time'"},
		{"recurrence not weekly", func(m map[string]any) {
			profile(m)["recurrence"] = map[string]any{"frequency": "Day", "schedule": map[string]any{"timeZone": "UTC", "days": []string{"Monday"}, "hours": []int{5}, "minutes": []int{0}}}
		}, 400, "BadRequest", "must be 'Week'"},
		{"bad day", func(m map[string]any) {
			profile(m)["recurrence"] = map[string]any{"frequency": "Week", "schedule": map[string]any{"timeZone": "UTC", "days": []string{"Funday"}, "hours": []int{5}, "minutes": []int{0}}}
		}, 400, "BadRequest", "day 'Funday'"},
		{"recurrence in a Windows zone", func(m map[string]any) {
			profile(m)["recurrence"] = map[string]any{"frequency": "Week", "schedule": map[string]any{"timeZone": "W. Europe Standard Time", "days": []string{"saturday", "Sunday"}, "hours": []int{5}, "minutes": []int{30}}}
		}, 201, "", ""},
		{"notification operation", func(m map[string]any) { props(m)["notifications"] = []any{map[string]any{"operation": "Delete"}} }, 400, "BadRequest", "must be 'Scale'"},
		{"notifications stored", func(m map[string]any) {
			props(m)["notifications"] = []any{map[string]any{"operation": "Scale", "email": map[string]any{"customEmails": []string{"ops@example.com"}}, "webhooks": []any{}}}
		}, 201, "", ""},
		{"predictive enabled", func(m map[string]any) { props(m)["predictiveAutoscalePolicy"] = map[string]any{"scaleMode": "Enabled"} }, 400, "BadRequest", "Predictive autoscale"},
		{"bad name", nil, 400, "InvalidResourceName", "is invalid"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := base()
			name := "as-" + strings.ReplaceAll(tc.name, " ", "-")
			if tc.edit != nil {
				tc.edit(m)
			} else {
				name = "bad%26name"
			}
			path := w.RGPath("rg", "Microsoft.Insights/autoscaleSettings/"+name) + asVersion
			st, _, b := w.Do(http.MethodPut, path, m)
			if st != tc.status {
				t.Fatalf("PUT = %d %s, want %d", st, b, tc.status)
			}
			if st < 300 {
				if strings.Contains(tc.name, "notifications") && !strings.Contains(string(b), "ops@example.com") {
					t.Errorf("notifications not stored: %s", b)
				}
				w.Do(http.MethodDelete, path, nil)
				return
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			json.Unmarshal(b, &e)
			if e.Error.Code != tc.code || !strings.Contains(e.Error.Message, tc.message) {
				t.Errorf("error %s: %q, want %s containing %q", e.Error.Code, e.Error.Message, tc.code, tc.message)
			}
		})
	}
}
