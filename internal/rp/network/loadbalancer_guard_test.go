package network_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/auth"
	"nimbus/internal/resource"
	"nimbus/internal/rp/compute"
	"nimbus/internal/rp/network"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// raceStore runs hook once, just before the first Txn that writes key, as
// if another API node committed a write between this node's validation and
// its commit.
type raceStore struct {
	store.Store
	key  string
	once sync.Once
	hook func()
}

func (r *raceStore) Txn(ctx context.Context, ops []store.Op) (int64, error) {
	for _, op := range ops {
		if op.Key == r.key && r.hook != nil {
			r.once.Do(r.hook)
		}
	}
	return r.Store.Txn(ctx, ops)
}

// guardFix is a server on a raceStore with group rg, vnet vn/default, LB
// lb (pool be, probe p1, rule r1 using both) and scale set vmss in pool be
// (no health probe).
type guardFix struct {
	t                    *testing.T
	inner                *bolt.Store
	rs                   *raceStore
	s                    *arm.Server
	tok                  string
	rg, lbPath, vmssPath string
	lbKey, vmssKey       string
}

func (g *guardFix) call(method, path string, body any) (int, []byte) {
	g.t.Helper()
	b, _ := json.Marshal(body)
	req := httptest.NewRequest(method, "https://127.0.0.1"+path, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+g.tok)
	w := httptest.NewRecorder()
	g.s.ServeHTTP(w, req)
	return w.Code, w.Body.Bytes()
}

func (g *guardFix) must(method, path string, body any) {
	g.t.Helper()
	if st, b := g.call(method, path, body); st >= 300 {
		g.t.Fatalf("%s %s: %d %s", method, path, st, b)
	}
}

func (g *guardFix) lbBody(withRule bool) map[string]any {
	props := map[string]any{
		"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{
			"subnet": map[string]any{"id": g.rg + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"}}}},
		"backendAddressPools": []any{map[string]any{"name": "be"}},
		"probes":              []any{map[string]any{"name": "p1", "properties": map[string]any{"protocol": "Tcp", "port": 80}}},
		"loadBalancingRules":  []any{},
	}
	if withRule {
		props["loadBalancingRules"] = []any{map[string]any{"name": "r1", "properties": map[string]any{
			"frontendIPConfiguration": map[string]any{"id": g.lbPath + "/frontendIPConfigurations/fe"},
			"backendAddressPool":      map[string]any{"id": g.lbPath + "/backendAddressPools/be"},
			"probe":                   map[string]any{"id": g.lbPath + "/probes/p1"},
			"protocol":                "Tcp", "frontendPort": 80, "backendPort": 80}}}
	}
	return map[string]any{"location": "eastus", "properties": props}
}

func (g *guardFix) vmssBody(probe bool) map[string]any {
	np := map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
		"ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
			"subnet":                          map[string]any{"id": g.rg + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"},
			"loadBalancerBackendAddressPools": []any{map[string]any{"id": g.lbPath + "/backendAddressPools/be"}}}}}}}}}
	if probe {
		np["healthProbe"] = map[string]any{"id": g.lbPath + "/probes/p1"}
	}
	return map[string]any{"location": "eastus", "sku": map[string]any{"name": "B1", "capacity": 1},
		"properties": map[string]any{"upgradePolicy": map[string]any{"mode": "Manual"}, "virtualMachineProfile": map[string]any{"networkProfile": np}}}
}

func newGuardFix(t *testing.T) *guardFix {
	ctx := context.Background()
	dir := t.TempDir()
	inner, err := bolt.Open(ctx, filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	id, err := auth.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	g := &guardFix{t: t, inner: inner, rs: &raceStore{Store: inner}}
	if g.s, err = arm.New(arm.Config{Store: g.rs, Tokens: iss, Identity: id}); err != nil {
		t.Fatal(err)
	}
	compute.Register(g.s, compute.Options{})
	network.Register(g.s, compute.Membership{})
	if err := g.s.EnsureSubscription(ctx); err != nil {
		t.Fatal(err)
	}
	if g.tok, _, err = iss.Mint("", time.Hour); err != nil {
		t.Fatal(err)
	}
	g.rg = "/subscriptions/" + id.SubscriptionID + "/resourceGroups/rg"
	g.lbPath = g.rg + "/providers/Microsoft.Network/loadBalancers/lb"
	g.vmssPath = g.rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss"
	lbID, _ := resource.ParseID(g.lbPath)
	vmssID, _ := resource.ParseID(g.vmssPath)
	g.lbKey, g.vmssKey = resource.Key(lbID), resource.Key(vmssID)
	g.must(http.MethodPut, g.rg+"?api-version=2021-04-01", map[string]any{"location": "eastus"})
	g.must(http.MethodPut, g.rg+"/providers/Microsoft.Network/virtualNetworks/vn?api-version=2025-01-01", map[string]any{"location": "eastus",
		"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}}}})
	g.must(http.MethodPut, g.lbPath+"?api-version=2025-01-01", g.lbBody(true))
	g.must(http.MethodPut, g.vmssPath+"?api-version=2025-04-01", g.vmssBody(false))
	return g
}

// rewrite replaces the stored value at key through the inner store (as
// another API node would), changed by edit.
func (g *guardFix) rewrite(key string, edit func(m map[string]any)) {
	ctx := context.Background()
	kv, err := g.inner.Get(ctx, key)
	if err != nil {
		g.t.Errorf("rewrite: %v", err)
		return
	}
	var m map[string]any
	if err := json.Unmarshal(kv.Value, &m); err != nil {
		g.t.Errorf("rewrite: %v", err)
		return
	}
	edit(m)
	b, _ := json.Marshal(m)
	if _, err := g.inner.Put(ctx, key, b, kv.Revision); err != nil {
		g.t.Errorf("rewrite: %v", err)
	}
}

// TestLBWriteGuardsScaleSet: a scale set that starts using a probe as its
// health probe between an LB write's validation and its commit cannot slip
// past CannotModifyRuleUsedByProbeUsedByVMSS: the LB write guards the
// scale sets it read with their revisions, conflicts, retries and is then
// refused. (Address plan: subnet 198.18.0.0/24; nothing is sent anywhere.)
func TestLBWriteGuardsScaleSet(t *testing.T) {
	g := newGuardFix(t)
	g.rs.key = g.lbKey
	g.rs.hook = func() {
		g.rewrite(g.vmssKey, func(m map[string]any) {
			np := m["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["networkProfile"].(map[string]any)
			np["healthProbe"] = map[string]any{"id": g.lbPath + "/probes/p1"}
		})
	}
	body := g.lbBody(true)
	rule := body["properties"].(map[string]any)["loadBalancingRules"].([]any)[0].(map[string]any)["properties"].(map[string]any)
	rule["backendPort"] = 8080
	st, b := g.call(http.MethodPut, g.lbPath+"?api-version=2025-01-01", body)
	if st != http.StatusBadRequest || !strings.Contains(string(b), "CannotModifyRuleUsedByProbeUsedByVMSS") {
		t.Fatalf("LB write racing a scale set: %d %s", st, b)
	}
	kv, err := g.inner.Get(context.Background(), g.lbKey)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kv.Value), `"backendPort":8080`) {
		t.Fatal("the refused LB change was written")
	}
}

// TestScaleSetWriteGuardsLB: the rule that makes a probe active is removed
// between a scale-set write's validation and its commit; the scale-set
// write conflicts on the LB it read, retries and is refused with
// CannotUseInactiveHealthProbe.
func TestScaleSetWriteGuardsLB(t *testing.T) {
	g := newGuardFix(t)
	g.rs.key = g.vmssKey
	g.rs.hook = func() {
		g.rewrite(g.lbKey, func(m map[string]any) {
			m["properties"].(map[string]any)["loadBalancingRules"] = []any{}
		})
	}
	st, b := g.call(http.MethodPut, g.vmssPath+"?api-version=2025-04-01", g.vmssBody(true))
	if st != http.StatusBadRequest || !strings.Contains(string(b), "CannotUseInactiveHealthProbe") {
		t.Fatalf("scale-set write racing an LB: %d %s", st, b)
	}
}
