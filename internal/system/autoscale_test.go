package system

// Autoscale end to end, with real load and compressed time. Address plan
// as in e2e_test.go: public pool 127.78.1.0/24 (loopback, userspace
// engine), instances 10.0.0.0/24 mapped into 127.80.0.0/22. The client
// loop sends traffic to the loopback frontend only.

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"

	"nimbus/internal/rp/insights"
	"nimbus/internal/sdktest"
)

// timeScale compresses Azure minutes to 2 s: a PT5M window is 10 s, a PT1M
// cooldown 2 s, the engine evaluates every second.
const timeScale = 30

// newScaledEnv is newEnv with compressed metrics and autoscale time.
func newScaledEnv(t *testing.T) *env {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	e := &env{t: t, dir: t.TempDir(), rg: "rg"}
	e.sys = startSystemMode(t, e.dir, Process, func(o *Options) { o.TimeScale = timeScale })
	ep := e.sys.Node.Endpoint
	opts, err := sdktest.Options(ep.Endpoint, ep.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	e.sub, e.opts = ep.SubscriptionID, opts
	e.cred = sdktest.Credential{Minter: e.sys.Node.Issuer, Audience: ep.Audience}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		c := e.vmss()
		for pager := c.NewListPager(e.rg, nil); pager.More(); {
			page, err := pager.NextPage(ctx)
			if err != nil {
				break
			}
			for _, v := range page.Value {
				if p, err := c.BeginDelete(ctx, e.rg, *v.Name, nil); err == nil {
					_, _ = p.PollUntilDone(ctx, sdktest.Poll)
				}
				_ = e.sys.VMSS.WaitConverged(ctx, *v.ID)
			}
		}
		_ = e.sys.Stop()
	})
	return e
}

// api sends an authenticated GET or PUT to the node and decodes the answer.
func (e *env) api(method, path string, body any, out any) int {
	e.t.Helper()
	ep := e.sys.Node.Endpoint
	pem, err := os.ReadFile(ep.CAFile)
	if err != nil {
		e.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer hc.CloseIdleConnections()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = strings.NewReader(string(b))
	}
	req, _ := http.NewRequest(method, ep.Endpoint+path, rd)
	tok, _, _ := e.sys.Node.Issuer.Mint("", time.Hour)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	if resp.StatusCode >= 300 {
		e.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

// putAutoscale creates an autoscale setting with one profile.
func (e *env) putAutoscale(name, target string, min, max int, rules ...map[string]any) {
	e.t.Helper()
	st := e.api(http.MethodPut, e.id("Microsoft.Insights/autoscaleSettings", name)+"?api-version=2022-10-01", map[string]any{
		"location": "eastus", "properties": map[string]any{"targetResourceUri": target, "enabled": true,
			"profiles": []any{map[string]any{"name": "load", "rules": rules,
				"capacity": map[string]any{"minimum": fmt.Sprint(min), "maximum": fmt.Sprint(max), "default": fmt.Sprint(min)}}}}}, nil)
	if st != http.StatusCreated {
		e.t.Fatalf("create autoscale setting %s: %d", name, st)
	}
}

func scaleRule(metric, resourceID, statistic, aggregation, op string, threshold float64, dir string) map[string]any {
	return map[string]any{
		"metricTrigger": map[string]any{"metricName": metric, "metricResourceUri": resourceID, "timeGrain": "PT1M",
			"statistic": statistic, "timeWindow": "PT5M", "timeAggregation": aggregation, "operator": op, "threshold": threshold},
		"scaleAction": map[string]any{"direction": dir, "type": "ChangeCount", "value": "1", "cooldown": "PT1M"}}
}

func (e *env) capacity(ctx context.Context, name string) int64 {
	v, err := e.vmss().Get(ctx, e.rg, name, nil)
	if err != nil || v.SKU == nil || v.SKU.Capacity == nil {
		return -1
	}
	return *v.SKU.Capacity
}

// TestAutoscaleCPU: instances of the script image burn a core for 25 s;
// the scale set grows to its maximum, then shrinks back when the load
// stops, and the activity log and metrics API show both.
func TestAutoscaleCPU(t *testing.T) {
	e := newScaledEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	e.setup(ctx)
	burn := "sh -c 'while :; do :; done' & pid=$!\nsleep 25\nkill $pid\n"
	model := e.scaleSet(1)
	vp := model.Properties.VirtualMachineProfile
	vp.StorageProfile.ImageReference.SKU = to.Ptr("script")
	vp.OSProfile.CustomData = to.Ptr(base64.StdEncoding.EncodeToString([]byte(burn)))
	vp.NetworkProfile.HealthProbe = nil
	ipc := vp.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
	ipc.LoadBalancerBackendAddressPools, ipc.LoadBalancerInboundNatPools = nil, nil
	start := time.Now()
	p, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "burn", model, nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	vmss := e.id("Microsoft.Compute/virtualMachineScaleSets", "burn")
	// Out above 40 %, in below 10 % (a shared machine may give a busy
	// loop less than a whole core).
	e.putAutoscale("burn-cpu", vmss, 1, 2,
		scaleRule("Percentage CPU", vmss, "Average", "Average", "GreaterThan", 40, "Increase"),
		scaleRule("Percentage CPU", vmss, "Average", "Average", "LessThan", 10, "Decrease"))
	// Window (10 s) + evaluation interval (1 s) + cooldown (2 s) + slack.
	waitFor(t, "the scale set to grow to 2 under load", 40*time.Second, func() (bool, string) {
		c := e.capacity(ctx, "burn")
		return c == 2, fmt.Sprint("capacity ", c)
	})
	t.Logf("scaled out %v after the create", time.Since(start).Round(time.Second))
	// The metrics API reports the load, per instance.
	var m struct {
		Value []struct {
			Timeseries []struct {
				Metadatavalues []struct{ Value string }
				Data           []struct{ Maximum *float64 }
			}
		}
	}
	q := url.Values{"api-version": {"2018-01-01"}, "metricnames": {"Percentage CPU"}, "aggregation": {"Maximum"},
		"interval": {"PT1M"}, "timespan": {"PT10M"}, "$filter": {"VMName eq '*'"}}
	e.api(http.MethodGet, vmss+"/providers/Microsoft.Insights/metrics?"+q.Encode(), nil, &m)
	peak := 0.0
	for _, ts := range m.Value[0].Timeseries {
		for _, d := range ts.Data {
			if d.Maximum != nil {
				peak = max(peak, *d.Maximum)
			}
		}
	}
	if peak < 40 {
		t.Errorf("the metrics API shows a peak of %.1f %% CPU: %+v", peak, m)
	}
	// The load stops after 25 s: back to 1 within the window and cooldown.
	waitFor(t, "the scale set to shrink to 1 when the load stops", 75*time.Second, func() (bool, string) {
		c := e.capacity(ctx, "burn")
		return c == 1, fmt.Sprint("capacity ", c)
	})
	t.Logf("scaled in %v after the create", time.Since(start).Round(time.Second))
	var log struct {
		Value []struct {
			OperationName struct{ Value string }
			Status        struct{ Value string }
			Properties    map[string]string
		}
	}
	e.api(http.MethodGet, "/subscriptions/"+e.sub+"/providers/Microsoft.Insights/eventtypes/management/values?api-version=2015-04-01&$filter="+
		url.QueryEscape("resourceUri eq '"+e.id("Microsoft.Insights/autoscaleSettings", "burn-cpu")+"'"), nil, &log)
	ops := map[string]int{}
	for _, v := range log.Value {
		if v.Status.Value == "Succeeded" && strings.Contains(v.Properties["Description"], "Percentage CPU") {
			ops[v.OperationName.Value]++
		}
	}
	if ops[insights.OpScaleUp] < 1 || ops[insights.OpScaleDown] < 1 {
		t.Errorf("activity log = %+v", log)
	}
}

// TestAutoscaleSYNCount: a rule on the load balancer's SYNCount grows the
// scale set behind it while a bounded client loop opens connections.
func TestAutoscaleSYNCount(t *testing.T) {
	e := newScaledEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	vip := e.setup(ctx)
	p, err := e.vmss().BeginCreateOrUpdate(ctx, e.rg, "web", e.scaleSet(1), nil)
	if err == nil {
		_, err = p.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("create scale set: %v", err)
	}
	waitFor(t, "the instance to answer through the frontend", 30*time.Second, func() (bool, string) {
		_, err := hit(vip + ":80")
		return err == nil, fmt.Sprint(err)
	})
	lb := e.id("Microsoft.Network/loadBalancers", "lb")
	vmss := e.id("Microsoft.Compute/virtualMachineScaleSets", "web")
	// More than 50 new connections in the window (totalled per grain).
	e.putAutoscale("web-syn", vmss, 1, 2, scaleRule("SYNCount", lb, "Sum", "Total", "GreaterThan", 50, "Increase"))
	if c := e.capacity(ctx, "web"); c != 1 {
		t.Fatalf("capacity before traffic = %d", c)
	}
	// The client loop: connections to the loopback frontend, at most one
	// every 20 ms, until the scale set grows or 40 s pass.
	done := make(chan struct{})
	go func() {
		defer close(done)
		deadline := time.Now().Add(40 * time.Second)
		for time.Now().Before(deadline) && ctx.Err() == nil {
			if c, err := net.DialTimeout("tcp", vip+":80", time.Second); err == nil {
				c.Close()
			}
			time.Sleep(20 * time.Millisecond)
			if e.sys.Autoscale != nil && len(e.sys.Autoscale.ActivityLog()) > 0 {
				return
			}
		}
	}()
	waitFor(t, "the scale set to grow on SYNCount", 45*time.Second, func() (bool, string) {
		c := e.capacity(ctx, "web")
		return c == 2, fmt.Sprint("capacity ", c)
	})
	<-done
	ev := e.sys.Autoscale.ActivityLog()
	if len(ev) == 0 || ev[0].Operation != insights.OpScaleUp || !strings.Contains(ev[0].Description, "SYNCount") {
		t.Errorf("activity = %+v", ev)
	}
}
