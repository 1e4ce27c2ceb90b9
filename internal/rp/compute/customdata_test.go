package compute_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

// customData is stored and given to the instances but, as in Azure, never
// returned: not by GET or list of scale sets or their instances, not in
// PUT answers. Omitted from an update (as after a GET), it is kept.

const (
	scriptA = "ZWNobyBhCg==" // echo a
	scriptB = "ZWNobyBiCg==" // echo b
)

func TestCustomDataNeverReturned(t *testing.T) {
	e := armtest.NewEnv(t)
	ie := newInstEnv(t, e)
	vmss := e.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/web")
	const v = "?api-version=2023-09-01"
	noScript := func(what string, b []byte) {
		t.Helper()
		if strings.Contains(string(b), "customData") || strings.Contains(string(b), scriptA) || strings.Contains(string(b), scriptB) {
			t.Fatalf("%s returns customData: %s", what, b)
		}
	}
	stored := func() string {
		t.Helper()
		return instScaleSet(t, e.Node, "web").Properties.VirtualMachineProfile.OSProfile.CustomData
	}
	get := func() map[string]any {
		t.Helper()
		st, _, b := e.Do("GET", vmss+v, nil)
		if st != http.StatusOK {
			t.Fatalf("GET: %d %s", st, b)
		}
		noScript("GET", b)
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	put := func(m map[string]any) {
		t.Helper()
		st, _, b := e.Do("PUT", vmss+v, m)
		if st != http.StatusOK && st != http.StatusCreated {
			t.Fatalf("PUT: %d %s", st, b)
		}
		noScript("PUT answer", b)
	}
	osProfile := func(m map[string]any) map[string]any {
		return m["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["osProfile"].(map[string]any)
	}

	m := get()
	osProfile(m)["customData"] = scriptA
	put(m)
	if got := stored(); got != scriptA {
		t.Fatalf("stored customData %q, want %q", got, scriptA)
	}
	for _, p := range []string{
		vmss + v,
		e.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets") + v,
		"/subscriptions/" + e.Sub + "/providers/Microsoft.Compute/virtualMachineScaleSets" + v,
		"/subscriptions/" + e.Sub + "/providers/Microsoft.Compute/locations/eastus/virtualMachineScaleSets" + v,
		vmss + "/virtualMachines" + v,
		vmss + "/virtualMachines/0" + v,
		vmss + "/virtualMachines/0" + v + "&$expand=instanceView",
		"/subscriptions/" + e.Sub + "/resources?api-version=2021-04-01&$expand=properties",
	} {
		st, _, b := e.Do("GET", p, nil)
		if st != http.StatusOK {
			t.Fatalf("GET %s: %d %s", p, st, b)
		}
		noScript("GET "+p, b)
	}

	// Read-modify-write: the GET body (without customData) PUT back keeps it.
	m = get()
	m["tags"] = map[string]any{"t": "1"}
	put(m)
	if got := stored(); got != scriptA {
		t.Fatalf("after GET+PUT, stored customData %q, want %q", got, scriptA)
	}
	// A new value replaces it; a PATCH leaves it.
	m = get()
	osProfile(m)["customData"] = scriptB
	put(m)
	st, _, b := e.Do("PATCH", vmss+v, map[string]any{"tags": map[string]any{"t": "2"}})
	if st != http.StatusOK {
		t.Fatalf("PATCH: %d %s", st, b)
	}
	noScript("PATCH answer", b)
	if got := stored(); got != scriptB {
		t.Fatalf("stored customData %q, want %q", got, scriptB)
	}

	// The SDK sees no customData either.
	r, err := e.VMSS.Get(e.Ctx, "rg", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if op := r.Properties.VirtualMachineProfile.OSProfile; op == nil || op.CustomData != nil || op.AdminUsername == nil {
		t.Fatalf("SDK osProfile %+v", op)
	}
	vm, err := ie.vms.Get(e.Ctx, "rg", "web", "1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if op := vm.Properties.OSProfile; op == nil || op.CustomData != nil {
		t.Fatalf("SDK instance osProfile %+v", op)
	}

	// And az vmss show.
	env := armtest.LoginAZ(t, e.Node)
	out := armtest.RunAZ(t, env, "vmss", "show", "-g", "rg", "-n", "web", "--query", "virtualMachineProfile.osProfile", "-o", "json")
	var azos map[string]any
	if err := json.Unmarshal(out, &azos); err != nil || azos["adminUsername"] != "azureuser" || azos["customData"] != nil {
		t.Fatalf("az vmss show osProfile (customData must be null): %v %s", err, out)
	}
}
