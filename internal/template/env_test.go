package template

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// Test address plan: none. The engine does no I/O; fakeEnv keeps resources
// in memory.

// testScope is the scope of every test deployment.
var testScope = Scope{
	TenantID:                "00000000-0000-0000-0000-0000000000aa",
	SubscriptionID:          "00000000-0000-0000-0000-000000000001",
	SubscriptionDisplayName: "nimbus",
	ResourceGroup:           "rg",
	Location:                "eastus",
	DeploymentName:          "dep1",
}

const rgID = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg"

// fakeEnv records puts. It answers GetResource from what was put, fails
// the ids in fail, and, when gate > 0, holds every put until gate puts are
// in flight at once (proving parallelism without timing).
type fakeEnv struct {
	mu       sync.Mutex
	puts     []Resource
	store    map[string]map[string]any
	fail     map[string]*Error
	inflight int
	maxIn    int
	gate     int
	gateCh   chan struct{}
	gateOpen bool
	gets     []string
}

func newFakeEnv() *fakeEnv {
	return &fakeEnv{store: map[string]map[string]any{}, fail: map[string]*Error{}, gateCh: make(chan struct{})}
}

func (f *fakeEnv) PutResource(ctx context.Context, r Resource) (PutResult, error) {
	f.mu.Lock()
	f.puts = append(f.puts, r)
	f.inflight++
	if f.inflight > f.maxIn {
		f.maxIn = f.inflight
	}
	if f.gate > 0 && f.maxIn == f.gate && !f.gateOpen {
		f.gateOpen = true
		close(f.gateCh)
	}
	gate := f.gate
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		f.inflight--
		f.mu.Unlock()
	}()
	if gate > 0 {
		select {
		case <-f.gateCh:
		case <-ctx.Done():
			return PutResult{}, ctx.Err()
		case <-time.After(10 * time.Second):
			return PutResult{}, fmt.Errorf("gate: only %d puts in flight, want %d", f.maxIn, gate)
		}
	}
	if e, ok := f.fail[strings.ToLower(r.ID)]; ok {
		return PutResult{}, e
	}
	body := deepCopy(r.Body).(map[string]any)
	body["id"] = r.ID
	body["name"] = r.Name[strings.LastIndex(r.Name, "/")+1:]
	body["type"] = r.Type
	props, _ := body["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
		body["properties"] = props
	}
	props["provisioningState"] = "Succeeded"
	if strings.EqualFold(r.Type, "Microsoft.Network/publicIPAddresses") {
		props["ipAddress"] = "198.18.0.10"
		if dns, ok := props["dnsSettings"].(map[string]any); ok {
			dns["fqdn"] = fmt.Sprintf("%v.eastus.cloudapp.azure.com", dns["domainNameLabel"])
		}
	}
	f.mu.Lock()
	_, existed := f.store[strings.ToLower(r.ID)]
	f.store[strings.ToLower(r.ID)] = body
	f.mu.Unlock()
	if existed {
		return PutResult{StatusCode: http.StatusOK, Body: body}, nil
	}
	return PutResult{StatusCode: http.StatusCreated, Body: body}, nil
}

func (f *fakeEnv) GetResource(_ context.Context, id, apiVersion string) (map[string]any, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gets = append(f.gets, id+"?"+apiVersion)
	b, ok := f.store[strings.ToLower(id)]
	if !ok {
		return nil, &Error{Code: "ResourceNotFound", Message: fmt.Sprintf("The Resource '%s' was not found.", id), StatusCode: http.StatusNotFound}
	}
	return deepCopy(b).(map[string]any), nil
}

func (f *fakeEnv) Providers(_ context.Context, ns, typ string) (Provider, error) {
	versions := map[string][]string{
		"microsoft.compute/virtualmachinescalesets": {"2020-06-01", "2019-07-01"},
		"microsoft.network/loadbalancers":           {"2018-11-01"},
		"microsoft.network/publicipaddresses":       {"2018-11-01"},
		"microsoft.network/virtualnetworks":         {"2018-11-01"},
	}
	v, ok := versions[strings.ToLower(ns+"/"+typ)]
	if !ok {
		return Provider{}, fmt.Errorf("no provider %s/%s", ns, typ)
	}
	return Provider{Namespace: ns, ResourceType: typ, Locations: []string{"eastus"}, APIVersions: v}, nil
}

func (f *fakeEnv) putIDs() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.puts))
	for i, p := range f.puts {
		out[i] = p.ID
	}
	return out
}

func (f *fakeEnv) put(t *testing.T, id string) Resource {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.puts {
		if strings.EqualFold(p.ID, id) {
			return p
		}
	}
	t.Fatalf("no put of %s; puts: %v", id, f.putIDsLocked())
	return Resource{}
}

func (f *fakeEnv) putIDsLocked() []string {
	out := make([]string, len(f.puts))
	for i, p := range f.puts {
		out[i] = p.ID
	}
	return out
}
