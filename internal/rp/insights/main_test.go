package insights_test

// Address plan: virtual network vn1 198.18.0.0/16, subnet default
// 198.18.0.0/24; no instance runs (the node has no controllers), metric
// data is written into the runtime's history by the tests. Requests go to
// the node on 127.0.0.1 only.

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
	"nimbus/internal/auth"
	"nimbus/internal/monitor"
	"nimbus/internal/node"
	"nimbus/internal/resource"
	"nimbus/internal/rp/insights"
	"nimbus/internal/store"
)

// fakeRuntime is an arm.Runtime with a metrics history and an activity log.
type fakeRuntime struct {
	hist   *monitor.History
	mu     sync.Mutex
	events []insights.Event
}

var (
	_ insights.MetricsSource  = (*fakeRuntime)(nil)
	_ insights.ActivitySource = (*fakeRuntime)(nil)
)

func (*fakeRuntime) WaitScaleSet(context.Context, string) error { return nil }
func (*fakeRuntime) BackendHealth(string, string) (bool, bool, string) {
	return false, false, ""
}
func (*fakeRuntime) Info() any                          { return nil }
func (r *fakeRuntime) MetricsHistory() *monitor.History { return r.hist }
func (r *fakeRuntime) ActivityLog() []insights.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]insights.Event(nil), r.events...)
}

// start runs a node whose runtime is rt, as armtest.Start does.
func start(t *testing.T, rt arm.Runtime) *armtest.Node {
	t.Helper()
	d := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Start(ctx, node.Config{DataDir: d, Listen: "127.0.0.1:0", Runtime: rt})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	pool, err := auth.CertPool(d)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.Issuer.Mint("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	t.Cleanup(func() {
		hc.CloseIdleConnections()
		cancel()
		if err := n.Wait(); err != nil {
			t.Errorf("node: %v", err)
		}
	})
	return &armtest.Node{Node: n, T: t, Dir: d, Base: n.Endpoint.Endpoint, Sub: n.Endpoint.SubscriptionID, Token: tok, Client: hc,
		Cred: armtest.StaticCred{Token: tok}}
}

// world is a node with group rg, vnet vn1, scale set web (2 instance
// records) and load balancer lb.
type world struct {
	*armtest.Node
	rt        *fakeRuntime
	vmss, lb  string
	vmssLower string
}

func newWorld(t *testing.T) *world {
	t.Helper()
	rt := &fakeRuntime{hist: monitor.NewHistory(monitor.Options{})}
	n := start(t, rt)
	w := &world{Node: n, rt: rt}
	n.Group("rg")
	n.MustPut(n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1")+"?api-version=2025-01-01", map[string]any{
		"location": "eastus",
		"properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}},
		},
	})
	w.vmss = n.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/web")
	n.MustPut(w.vmss+"?api-version=2024-07-01", vmssBody(n, 2))
	w.lb = n.RGPath("rg", "Microsoft.Network/loadBalancers/lb")
	n.MustPut(w.lb+"?api-version=2025-01-01", map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"}})
	var v struct {
		ID string `json:"id"`
	}
	_, _, b := n.Do(http.MethodGet, w.vmss+"?api-version=2024-07-01", nil)
	json.Unmarshal(b, &v)
	w.vmssLower = strings.ToLower(v.ID)
	for _, id := range []string{"0", "1"} {
		in := resource.Instance{ScaleSetID: v.ID, InstanceID: id, Name: "web_" + id}
		js, _ := json.Marshal(in)
		if _, err := n.Store.Txn(context.Background(), []store.Op{{Key: resource.InstanceKey(v.ID, id), Value: js, Expected: store.MustNotExist}}); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func vmssBody(n *armtest.Node, capacity int) map[string]any {
	return map[string]any{
		"location": "eastus",
		"sku":      map[string]any{"name": "Standard_B1s", "capacity": capacity},
		"properties": map[string]any{
			"upgradePolicy": map[string]any{"mode": "Manual"},
			"virtualMachineProfile": map[string]any{
				"osProfile": map[string]any{"computerNamePrefix": "web", "adminUsername": "azureuser", "adminPassword": "Secr3t!pass"},
				"storageProfile": map[string]any{"imageReference": map[string]any{
					"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}},
				"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
					"name": "nic", "properties": map[string]any{"primary": true, "ipConfigurations": []any{map[string]any{
						"name": "ipc", "properties": map[string]any{"subnet": map[string]any{
							"id": n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1/subnets/default")}}}}}}}},
			},
		},
	}
}
