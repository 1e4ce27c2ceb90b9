package network_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/poll"
)

// lbExamplesDir holds the Azure spec examples of this provider (a copy of
// shared/conformance); the scale-set ones the scenario needs are the
// compute provider's (computeExamplesDir).
const (
	lbExamplesDir      = "testdata/arm-examples"
	computeExamplesDir = "../compute/testdata/arm-examples"
)

// lbExample is one spec example: its request parameters and responses.
type lbExample struct {
	Parameters map[string]json.RawMessage `json:"parameters"`
	Responses  map[string]struct {
		Body json.RawMessage `json:"body"`
	} `json:"responses"`
}

// loadExample reads an example with its ids rewritten to this node's
// subscription, group rg, vnet vn1/default and LB lb.
func loadExample(e *armtest.Env, t *testing.T, name string) lbExample {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(lbExamplesDir, name))
	if errors.Is(err, fs.ErrNotExist) {
		raw, err = os.ReadFile(filepath.Join(computeExamplesDir, name))
	}
	if err != nil {
		t.Fatalf("spec example %s: %v", name, err) // the examples live in the repository
	}
	s := strings.NewReplacer(
		"00000000-0000-0000-0000-000000000000", e.Sub, "/subscriptions/subid/", "/subscriptions/"+e.Sub+"/",
		"{subscription-id}", e.Sub,
		"/resourceGroups/rg1/", "/resourceGroups/rg/", "/resourceGroups/testrg/", "/resourceGroups/rg/",
		"/resourceGroups/myResourceGroup/", "/resourceGroups/rg/",
		"virtualNetworks/vnetlb", "virtualNetworks/vn1", "subnets/subnetlb", "subnets/default",
		"{existing-virtual-network-name}", "vn1", "{existing-subnet-name}", "default",
		"loadBalancers/lb1/frontendIPConfigurations/ip1", "loadBalancers/lb/frontendIPConfigurations/fe-lb",
		"loadBalancers/lb1/", "loadBalancers/lb/",
		"{existing-load-balancer-name}", "lb", "{existing-backend-address-pool-name}", "be-lb", "{existing-nat-pool-name}", "np",
		"{vmss-name}", "vmss1", "{your-username}", "azureuser", "{your-password}", "Secr3t!pass",
	).Replace(string(raw))
	var ex lbExample
	if err := json.Unmarshal([]byte(s), &ex); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ex
}

// lbMissingKeys lists the key paths of want that got lacks (values may differ).
func lbMissingKeys(want, got any, path string, skip map[string]bool, out *[]string) {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			*out = append(*out, path)
			return
		}
		for k, v := range w {
			if skip[k] {
				continue
			}
			gv, ok := g[k]
			if !ok {
				*out = append(*out, path+"."+k)
				continue
			}
			lbMissingKeys(v, gv, path+"."+k, skip, out)
		}
	case []any:
		g, ok := got.([]any)
		if !ok {
			*out = append(*out, path+"[]")
			return
		}
		for i := range w {
			if i < len(g) {
				lbMissingKeys(w[i], g[i], fmt.Sprintf("%s[%d]", path, i), skip, out)
			}
		}
	}
}

// sameShape fails when got lacks a field of the example response want.
func sameShape(t *testing.T, what string, want json.RawMessage, got []byte, skip ...string) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatalf("%s: example: %v", what, err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("%s: response %s: %v", what, got, err)
	}
	sk := map[string]bool{}
	for _, s := range skip {
		sk[s] = true
	}
	var missing []string
	lbMissingKeys(w, g, "", sk, &missing)
	if len(missing) > 0 {
		t.Errorf("%s: response lacks %v\nresponse: %s", what, missing, got)
	}
}

// waitOp polls an operation URL until it is no longer in progress.
func waitOp(e *armtest.Env, t *testing.T, h http.Header) {
	t.Helper()
	u := h.Get("Azure-AsyncOperation")
	if u == "" {
		t.Fatalf("no Azure-AsyncOperation header: %v", h)
	}
	poll.Until(t, 30*time.Second, "operation "+u+" to succeed", func() error {
		st, _, b := e.Do(http.MethodGet, u, nil)
		if st != 200 {
			t.Fatalf("operation status: %d %s", st, b)
		}
		var s struct{ Status string }
		_ = json.Unmarshal(b, &s)
		if s.Status != "Succeeded" && s.Status != "InProgress" {
			t.Fatalf("operation ended %s: %s", s.Status, b)
		}
		if s.Status != "Succeeded" {
			return fmt.Errorf("status %s", s.Status)
		}
		return nil
	})
}

// TestConformanceExamples sends the spec examples' request bodies (ids
// rewritten) and checks the answers carry every field of the examples'
// responses: ids, names, types, etags, provisioningState, back-references.
func TestConformanceExamples(t *testing.T) {
	e := armtest.NewEnv(t)
	lbPath := e.ID("Microsoft.Network/loadBalancers/lb")
	q := "?api-version=2025-01-01"

	create := loadExample(e, t, "LoadBalancerCreate.json")
	// The example has no sku (Azure's default, Basic); the IP-based pool
	// example below needs a Standard load balancer, in Azure as here.
	var lbBody map[string]any
	if err := json.Unmarshal(create.Parameters["parameters"], &lbBody); err != nil {
		t.Fatal(err)
	}
	lbBody["sku"] = map[string]any{"name": "Standard"}
	st, h, b := e.Do(http.MethodPut, lbPath+q, lbBody)
	if st != http.StatusCreated {
		t.Fatalf("create LB: %d %s", st, b)
	}
	if h.Get("Retry-After") == "" {
		t.Error("no Retry-After")
	}
	waitOp(e, t, h)
	sameShape(t, "LoadBalancers_CreateOrUpdate", create.Responses["201"].Body, b)

	get := loadExample(e, t, "LoadBalancerGet.json")
	st, _, b = e.Do(http.MethodGet, lbPath+q, nil)
	if st != 200 {
		t.Fatalf("get LB: %d %s", st, b)
	}
	sameShape(t, "LoadBalancers_Get", get.Responses["200"].Body, b)

	poolPut := loadExample(e, t, "LBBackendAddressPoolWithBackendAddressesPut.json")
	st, h, b = e.Do(http.MethodPut, lbPath+"/backendAddressPools/backend"+q, poolPut.Parameters["parameters"])
	if st != http.StatusCreated {
		t.Fatalf("pool PUT: %d %s", st, b)
	}
	waitOp(e, t, h)
	sameShape(t, "LoadBalancerBackendAddressPools_CreateOrUpdate", poolPut.Responses["201"].Body, b)
	poolGet := loadExample(e, t, "LoadBalancerBackendAddressPoolGet.json")
	st, _, b = e.Do(http.MethodGet, lbPath+"/backendAddressPools/backend"+q, nil)
	if st != 200 {
		t.Fatalf("pool GET: %d %s", st, b)
	}
	sameShape(t, "LoadBalancerBackendAddressPools_Get", poolGet.Responses["200"].Body, b)
	poolList := loadExample(e, t, "LoadBalancerBackendAddressPoolList.json")
	st, _, b = e.Do(http.MethodGet, lbPath+"/backendAddressPools"+q, nil)
	if st != 200 {
		t.Fatalf("pool list: %d %s", st, b)
	}
	sameShape(t, "LoadBalancerBackendAddressPools_List", poolList.Responses["200"].Body, b)

	natPut := loadExample(e, t, "InboundNatRuleCreate.json")
	st, h, b = e.Do(http.MethodPut, lbPath+"/inboundNatRules/natRule1.1"+q, natPut.Parameters["inboundNatRuleParameters"])
	if st != http.StatusCreated {
		t.Fatalf("NAT rule PUT: %d %s", st, b)
	}
	waitOp(e, t, h)
	// backendIPConfiguration is set from the NIC side (no instance here).
	sameShape(t, "InboundNatRules_CreateOrUpdate", natPut.Responses["201"].Body, b, "backendIPConfiguration")
	natGet := loadExample(e, t, "InboundNatRuleGet.json")
	st, _, b = e.Do(http.MethodGet, lbPath+"/inboundNatRules/natRule1.1"+q, nil)
	if st != 200 {
		t.Fatalf("NAT rule GET: %d %s", st, b)
	}
	sameShape(t, "InboundNatRules_Get", natGet.Responses["200"].Body, b, "backendIPConfiguration")

	// GET → add a NAT pool and the scale set's pool → PUT with the NAT rules
	// unchanged (allowed), as az does.
	st, _, b = e.Do(http.MethodGet, lbPath+q, nil)
	var lb map[string]any
	if err := json.Unmarshal(b, &lb); err != nil || st != 200 {
		t.Fatalf("GET: %d %v", st, err)
	}
	props := lb["properties"].(map[string]any)
	props["inboundNatPools"] = []any{map[string]any{"name": "np", "properties": map[string]any{
		"frontendIPConfiguration": map[string]any{"id": lbPath + "/frontendIPConfigurations/fe-lb"},
		"protocol":                "tcp", "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50119, "backendPort": 3389}}}
	st, h, b = e.Do(http.MethodPut, lbPath+q, lb)
	if st != 200 {
		t.Fatalf("add NAT pool with NAT rules unchanged: %d %s", st, b)
	}
	waitOp(e, t, h)
	if !strings.Contains(string(b), `"protocol":"Tcp"`) {
		t.Errorf("protocol not canonical: %s", b)
	}
	// Adding a NAT rule now is refused.
	st, _, b = e.Do(http.MethodPut, lbPath+"/inboundNatRules/extra"+q, natPut.Parameters["inboundNatRuleParameters"])
	if st != 400 || armtest.ErrCode(b) != "AddingOrUpdatingNatRulesWhenNatPoolIsPresentOnLoadbalancerIsNotSupported" {
		t.Errorf("NAT rule with NAT pool: %d %s", st, b)
	}

	vmssPath := e.ID("Microsoft.Compute/virtualMachineScaleSets/vmss1")
	vmssEx := loadExample(e, t, "VirtualMachineScaleSet_Create_WithAzureLoadBalancer.json")
	// nimbus runs only its own images (any other is refused with
	// PlatformImageNotFound): swap the example's Windows image for echo.
	var vmssBody map[string]any
	if err := json.Unmarshal(vmssEx.Parameters["parameters"], &vmssBody); err != nil {
		t.Fatal(err)
	}
	vmssBody["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["storageProfile"].(map[string]any)["imageReference"] =
		map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}
	st, h, b = e.Do(http.MethodPut, vmssPath+"?api-version=2025-04-01", vmssBody)
	if st != http.StatusCreated {
		t.Fatalf("VMSS PUT: %d %s", st, b)
	}
	waitOp(e, t, h)
	// windowsConfiguration is what Azure derives from a Windows image.
	sameShape(t, "VirtualMachineScaleSets_CreateOrUpdate", vmssEx.Responses["201"].Body, b, "windowsConfiguration")
	if strings.Contains(string(b), "Secr3t") {
		t.Error("adminPassword returned")
	}

	st, _, b = e.Do(http.MethodDelete, lbPath+q, nil)
	if st != 400 || armtest.ErrCode(b) != "LoadBalancerInUseByVirtualMachineScaleSet" {
		t.Errorf("delete LB in use: %d %s", st, b)
	}
	lb["properties"].(map[string]any)["inboundNatPools"] = []any{}
	st, _, b = e.Do(http.MethodPut, lbPath+q, lb)
	if st != 400 || armtest.ErrCode(b) != "InboundNatPoolInUseByVirtualMachineScaleSet" ||
		!strings.Contains(string(b), "Cannot remove inbound nat pool np from load balancer since it is in use by virtual machine scale set") {
		t.Errorf("remove NAT pool in use: %d %s", st, b)
	}

	st, h, b = e.Do(http.MethodDelete, vmssPath+"?api-version=2025-04-01&forceDeletion=true", nil)
	if st != http.StatusAccepted || h.Get("Location") == "" {
		t.Fatalf("VMSS delete: %d %s", st, b)
	}
	waitOp(e, t, h)
	st, h, b = e.Do(http.MethodDelete, lbPath+q, nil)
	if st != http.StatusAccepted {
		t.Fatalf("LB delete: %d %s", st, b)
	}
	waitOp(e, t, h)
	if st, _, _ := e.Do(http.MethodGet, lbPath+q, nil); st != 404 {
		t.Errorf("GET after delete: %d", st)
	}
	if st, _, _ := e.Do(http.MethodDelete, lbPath+q, nil); st != 204 {
		t.Errorf("second delete: %d", st)
	}
}

// TestLoadBalancerConcurrentIfMatch: many writers do GET → add a probe →
// PUT with If-Match; a 412 makes the writer start over. Every acknowledged
// probe must be in the final LB (no lost update).
func TestLoadBalancerConcurrentIfMatch(t *testing.T) {
	e := armtest.NewEnv(t)
	// Runs before the node's cleanup: idle keep-alive connections would
	// hold up its graceful shutdown.
	t.Cleanup(e.Client.CloseIdleConnections)
	lbPath := e.ID("Microsoft.Network/loadBalancers/lbc") + "?api-version=2025-01-01"
	e.MustPut(lbPath, map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{"frontendIPConfigurations": []any{map[string]any{"name": "fe",
			"properties": map[string]any{"publicIPAddress": map[string]any{"id": e.ID("Microsoft.Network/publicIPAddresses/pip1")}}}}}})
	const writers, each = 8, 4
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				name := fmt.Sprintf("p%d-%d", w, i)
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						errs <- fmt.Errorf("%s: too many 412s", name)
						return
					}
					st, _, b, err := try(e, http.MethodGet, lbPath, nil)
					if err != nil || st != 200 {
						errs <- fmt.Errorf("GET: %d %v %s", st, err, b)
						return
					}
					var lb map[string]any
					if err := json.Unmarshal(b, &lb); err != nil {
						errs <- err
						return
					}
					props := lb["properties"].(map[string]any)
					probes, _ := props["probes"].([]any)
					props["probes"] = append(probes, map[string]any{"name": name, "properties": map[string]any{"protocol": "Tcp", "port": 1000 + w*each + i}})
					st, _, b, err = try(e, http.MethodPut, lbPath, lb, "If-Match", lb["etag"].(string))
					if err != nil {
						errs <- err
						return
					}
					if st == http.StatusPreconditionFailed {
						continue
					}
					if st != 200 {
						errs <- fmt.Errorf("PUT %s: %d %s", name, st, b)
						return
					}
					mu.Lock()
					acked[name] = true
					mu.Unlock()
					break
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	_, _, b := e.Do(http.MethodGet, lbPath, nil)
	var final struct {
		Properties struct {
			Probes []struct{ Name string } `json:"probes"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &final); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	for _, p := range final.Properties.Probes {
		have[p.Name] = true
	}
	for name := range acked {
		if !have[name] {
			t.Errorf("acknowledged probe %s lost", name)
		}
	}
	if len(acked) != writers*each || len(have) != writers*each {
		t.Errorf("acked %d, present %d, want %d", len(acked), len(have), writers*each)
	}
}

// try is do without t: safe from other goroutines.
func try(e *armtest.Env, method, path string, body any, headers ...string) (int, http.Header, []byte, error) {
	var rd *strings.Reader
	if body != nil {
		js, err := json.Marshal(body)
		if err != nil {
			return 0, nil, nil, err
		}
		rd = strings.NewReader(string(js))
	}
	u := e.Base + path
	var req *http.Request
	var err error
	if rd != nil {
		req, err = http.NewRequest(method, u, rd)
	} else {
		req, err = http.NewRequest(method, u, nil)
	}
	if err != nil {
		return 0, nil, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+e.Token)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.Client.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, nil, nil, err
	}
	return resp.StatusCode, resp.Header, b, nil
}
