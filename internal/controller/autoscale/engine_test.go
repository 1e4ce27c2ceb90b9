package autoscale_test

// The node listens on 127.0.0.1; no instance runs (no controllers): the
// test checks the engine's API calls and its activity log.

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"nimbus/internal/controller/autoscale"
	"nimbus/internal/monitor"
	"nimbus/internal/node"
	"nimbus/internal/rp/insights"
)

type client struct {
	t   *testing.T
	n   *node.Node
	tok string
}

func (c client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	req := httptest.NewRequest(method, "https://nimbus.test"+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+c.tok)
	rec := httptest.NewRecorder()
	c.n.Server.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

func TestEngineScalesThroughTheAPI(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Stop()
	tok, _, _ := n.Issuer.Mint("", time.Hour)
	c := client{t, n, tok}
	sub := n.Identity.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourceGroups/rg"
	must := func(st int, b []byte) {
		t.Helper()
		if st >= 300 {
			t.Fatalf("%d %s", st, b)
		}
	}
	must(c.do(http.MethodPut, rg+"?api-version=2021-04-01", map[string]any{"location": "eastus"}))
	must(c.do(http.MethodPut, rg+"/providers/Microsoft.Network/virtualNetworks/vn1?api-version=2025-01-01", map[string]any{
		"location": "eastus", "properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}}}}))
	vmss := rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	must(c.do(http.MethodPut, vmss+"?api-version=2024-07-01", map[string]any{
		"location": "eastus", "sku": map[string]any{"name": "Standard_B1s", "capacity": 1},
		"properties": map[string]any{"upgradePolicy": map[string]any{"mode": "Manual"}, "virtualMachineProfile": map[string]any{
			"osProfile":      map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Secr3t!pass"},
			"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
				"primary": true, "ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
					"subnet": map[string]any{"id": rg + "/providers/Microsoft.Network/virtualNetworks/vn1/subnets/default"}}}}}}}}}}}))
	rule := func(dir, op string, th int) map[string]any {
		return map[string]any{
			"metricTrigger": map[string]any{"metricName": "Percentage CPU", "metricResourceUri": vmss, "timeGrain": "PT1M", "statistic": "Average",
				"timeWindow": "PT5M", "timeAggregation": "Average", "operator": op, "threshold": th},
			"scaleAction": map[string]any{"direction": dir, "type": "ChangeCount", "value": "1", "cooldown": "PT1M"}}
	}
	setting := rg + "/providers/Microsoft.Insights/autoscaleSettings/as"
	must(c.do(http.MethodPut, setting+"?api-version=2022-10-01", map[string]any{"location": "eastus", "properties": map[string]any{
		"targetResourceUri": vmss, "enabled": true, "profiles": []any{map[string]any{"name": "p",
			"capacity": map[string]any{"minimum": "1", "maximum": "3", "default": "1"},
			"rules":    []any{rule("Increase", "GreaterThan", 70), rule("Decrease", "LessThan", 20)}}}}}))

	// Compressed time: a minute is one second of history.
	h := monitor.NewHistory(monitor.Options{Grain: time.Second})
	now := time.Now()
	clock := func() time.Time { return now }
	var logs bytes.Buffer
	e := autoscale.New(autoscale.Options{Server: n.Server, History: h, Now: clock, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	hot := func(v float64) {
		for s := 1; s <= 5; s++ {
			h.Add(h.GrainStart(now).Add(-time.Duration(s)*time.Second), monitor.Sample{Resource: vmss, Metric: monitor.PercentageCPU,
				Dims: []monitor.Dim{{Name: monitor.VMName, Value: "web_0"}}, Value: v})
		}
	}
	capacity := func() int {
		_, b := c.do(http.MethodGet, vmss+"?api-version=2024-07-01", nil)
		var v struct{ SKU struct{ Capacity int } }
		json.Unmarshal(b, &v)
		return v.SKU.Capacity
	}
	hot(95)
	if err := e.Pass(ctx); err != nil {
		t.Fatal(err)
	}
	if got := capacity(); got != 2 {
		t.Fatalf("capacity after a hot window = %d, want 2", got)
	}
	// Within the cooldown (one compressed minute) nothing happens.
	now = now.Add(500 * time.Millisecond)
	e.Pass(ctx)
	if got := capacity(); got != 2 {
		t.Fatalf("capacity during the cooldown = %d, want 2", got)
	}
	now = now.Add(time.Second)
	hot(95)
	e.Pass(ctx)
	if got := capacity(); got != 3 {
		t.Fatalf("capacity = %d, want 3", got)
	}
	// Cold: it scales in, once per cooldown. Fresh history at 5 %.
	h = monitor.NewHistory(monitor.Options{Grain: time.Second})
	e = autoscale.New(autoscale.Options{Server: n.Server, History: h, Now: clock})
	hot(5)
	e.Pass(ctx)
	if got := capacity(); got != 2 {
		t.Fatalf("capacity after a cold window = %d, want 2", got)
	}
	ev := e.ActivityLog()
	if len(ev) != 1 || ev[0].Operation != insights.OpScaleDown || ev[0].OldCount != 3 || ev[0].NewCount != 2 || ev[0].Status != "Succeeded" ||
		!strings.Contains(ev[0].Description, "from 3 instances count to 2") {
		t.Errorf("activity = %+v", ev)
	}
	if !strings.Contains(logs.String(), "msg=autoscale") || !strings.Contains(logs.String(), "to=3") {
		t.Errorf("log lines: %s", logs.String())
	}
	// Disabled: nothing, however hot.
	must(c.do(http.MethodPatch, setting+"?api-version=2022-10-01", map[string]any{"properties": map[string]any{"enabled": false}}))
	now = now.Add(10 * time.Second)
	hot(99)
	e.Pass(ctx)
	if got := capacity(); got != 2 {
		t.Errorf("a disabled setting scaled to %d", got)
	}
}
