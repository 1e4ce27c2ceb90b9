package arm

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

	"nimbus/internal/auth"
	"nimbus/internal/resource"
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

// TestLBWriteGuardsScaleSet: a scale set that starts using a probe as its
// health probe between an LB write's validation and its commit cannot slip
// past CannotModifyRuleUsedByProbeUsedByVMSS: the LB write guards the
// scale sets it read with their revisions, conflicts, retries and is then
// refused. (Address plan: subnet 198.18.0.0/24; nothing is sent anywhere.)
func TestLBWriteGuardsScaleSet(t *testing.T) {
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
	rs := &raceStore{Store: inner}
	s, err := New(Config{Store: rs, Tokens: iss, Identity: id})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.EnsureSubscription(ctx); err != nil {
		t.Fatal(err)
	}
	tok, _, err := iss.Mint("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any) (int, []byte) {
		t.Helper()
		b, _ := json.Marshal(body)
		req := httptest.NewRequest(method, "https://127.0.0.1"+path, bytes.NewReader(b))
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		s.ServeHTTP(w, req)
		return w.Code, w.Body.Bytes()
	}
	rg := "/subscriptions/" + id.SubscriptionID + "/resourceGroups/rg"
	must := func(method, path string, body any) {
		t.Helper()
		if st, b := call(method, path, body); st >= 300 {
			t.Fatalf("%s %s: %d %s", method, path, st, b)
		}
	}
	must(http.MethodPut, rg+"?api-version=2021-04-01", map[string]any{"location": "eastus"})
	must(http.MethodPut, rg+"/providers/Microsoft.Network/virtualNetworks/vn?api-version=2025-01-01", map[string]any{"location": "eastus",
		"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
			"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/24"}}}}})
	lbPath := rg + "/providers/Microsoft.Network/loadBalancers/lb"
	lbBody := func(backendPort int) map[string]any {
		return map[string]any{"location": "eastus", "properties": map[string]any{
			"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{
				"subnet": map[string]any{"id": rg + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"}}}},
			"backendAddressPools": []any{map[string]any{"name": "be"}},
			"probes":              []any{map[string]any{"name": "p1", "properties": map[string]any{"protocol": "Tcp", "port": 80}}},
			"loadBalancingRules": []any{map[string]any{"name": "r1", "properties": map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lbPath + "/frontendIPConfigurations/fe"},
				"backendAddressPool":      map[string]any{"id": lbPath + "/backendAddressPools/be"},
				"probe":                   map[string]any{"id": lbPath + "/probes/p1"},
				"protocol":                "Tcp", "frontendPort": 80, "backendPort": backendPort}}},
		}}
	}
	must(http.MethodPut, lbPath+"?api-version=2025-01-01", lbBody(80))
	vmssPath := rg + "/providers/Microsoft.Compute/virtualMachineScaleSets/vmss"
	must(http.MethodPut, vmssPath+"?api-version=2025-04-01", map[string]any{"location": "eastus", "sku": map[string]any{"name": "B1", "capacity": 1},
		"properties": map[string]any{"upgradePolicy": map[string]any{"mode": "Manual"}, "virtualMachineProfile": map[string]any{
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
				"ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
					"subnet":                          map[string]any{"id": rg + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"},
					"loadBalancerBackendAddressPools": []any{map[string]any{"id": lbPath + "/backendAddressPools/be"}}}}}}}}}}}})

	// The concurrent writer: another node attaches the health probe.
	lbID, _ := resource.ParseID(lbPath)
	vmssID, _ := resource.ParseID(vmssPath)
	rs.key = resource.Key(lbID)
	rs.hook = func() {
		kv, err := inner.Get(ctx, resource.Key(vmssID))
		if err != nil {
			t.Errorf("hook: %v", err)
			return
		}
		v, err := resource.DecodeScaleSet(kv.Value)
		if err != nil {
			t.Errorf("hook: %v", err)
			return
		}
		v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = &resource.SubResource{ID: lbPath + "/probes/p1"}
		b, _ := json.Marshal(v)
		if _, err := inner.Put(ctx, kv.Key, b, kv.Revision); err != nil {
			t.Errorf("hook: %v", err)
		}
	}
	st, b := call(http.MethodPut, lbPath+"?api-version=2025-01-01", lbBody(8080))
	if st != http.StatusBadRequest || !strings.Contains(string(b), "CannotModifyRuleUsedByProbeUsedByVMSS") {
		t.Fatalf("LB write racing a scale set: %d %s", st, b)
	}
	kv, err := inner.Get(ctx, resource.Key(lbID))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(kv.Value), `"backendPort":8080`) {
		t.Fatal("the refused LB change was written")
	}
}
