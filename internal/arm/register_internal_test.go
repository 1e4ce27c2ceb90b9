package arm

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestRegisterNamespace checks the registration API a resource provider
// uses: its namespace is listed (sorted among Resource Manager's own), its
// kinds appear in its metadata, and operation status URLs accept its
// api-versions, including one that neither Resource Manager nor any other
// namespace has. Nothing is registered through package state: a second
// server does not see the first one's namespace.
func TestRegisterNamespace(t *testing.T) {
	f := newOpsFixture(t)
	const only = "2031-02-03-preview" // no family but Nimbus.Test has it
	vs := NewVersions(only)
	f.s.RegisterNamespace("Nimbus.Test", vs)
	f.s.RegisterKind(&Kind{Type: "Nimbus.Test/gadgets", Versions: vs, Model: widgetModel{}})

	st, _, body := f.do(t, http.MethodGet, "/subscriptions/"+f.sub+"/providers?api-version=2021-04-01", "")
	if st != http.StatusOK {
		t.Fatalf("list providers: %d %s", st, body)
	}
	var list struct {
		Value []Provider `json:"value"`
	}
	if err := json.Unmarshal([]byte(body), &list); err != nil {
		t.Fatal(err)
	}
	var names []string
	var test *Provider
	for i, p := range list.Value {
		names = append(names, p.Namespace)
		if p.Namespace == "Nimbus.Test" {
			test = &list.Value[i]
		}
	}
	if got := strings.Join(names, ","); got != "Microsoft.Resources,Nimbus.Test" {
		t.Fatalf("namespaces %s, want Microsoft.Resources,Nimbus.Test", got)
	}
	var types []string
	for _, rt := range test.ResourceTypes {
		types = append(types, rt.ResourceType)
	}
	if !strings.Contains(strings.Join(types, ","), "gadgets") {
		t.Fatalf("Nimbus.Test types %v lack gadgets", types)
	}

	// An operation of the new namespace, polled with its own api-version.
	st, h, body := f.do(t, http.MethodPut, "/subscriptions/"+f.sub+"/resourcegroups/rg?api-version=2021-04-01", `{"location":"eastus"}`)
	if st != http.StatusCreated {
		t.Fatalf("group: %d %s", st, body)
	}
	st, h, body = f.do(t, http.MethodPut, "/subscriptions/"+f.sub+"/resourceGroups/rg/providers/Nimbus.Test/gadgets/g1?api-version="+only, `{"location":"eastus"}`)
	if st != http.StatusCreated {
		t.Fatalf("put gadget: %d %s", st, body)
	}
	async := h.Get("Azure-AsyncOperation")
	if !strings.Contains(async, "api-version="+only) {
		t.Fatalf("Azure-AsyncOperation %q does not echo api-version %s", async, only)
	}
	if st, _, body = f.do(t, http.MethodGet, async, ""); st != http.StatusOK {
		t.Fatalf("operation status with the namespace's api-version: %d %s", st, body)
	}
	bad := strings.Replace(async, only, "2031-02-04-preview", 1)
	if st, _, body = f.do(t, http.MethodGet, bad, ""); st != http.StatusBadRequest || !strings.Contains(body, "NoRegisteredProviderFound") {
		t.Fatalf("unknown api-version on an operation URL: %d %s", st, body)
	}

	other := newOpsFixture(t)
	if other.s.Provider(other.sub, "Nimbus.Test") != nil {
		t.Fatal("a second server sees the first one's namespace")
	}
}
