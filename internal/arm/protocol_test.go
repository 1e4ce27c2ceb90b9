package arm_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

const pipAPI = "?api-version=2025-01-01"

func TestAuthentication(t *testing.T) {
	n := armtest.Start(t)
	expired, _, err := n.Issuer.Mint("", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other := armtest.Start(t)
	foreign := other.Token
	path := "/subscriptions?api-version=2016-06-01"
	for _, tc := range []struct {
		name, auth, code string
	}{
		{"missing", "", "AuthenticationFailed"},
		{"not bearer", "Basic dXNlcjpwYXNz", "AuthenticationFailed"},
		{"garbage", "Bearer not-a-jwt", "InvalidAuthenticationToken"},
		{"expired", "Bearer " + expired, "InvalidAuthenticationToken"},
		{"other server's key", "Bearer " + foreign, "InvalidAuthenticationToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, h, b := n.Do(http.MethodGet, path, nil, "Authorization", tc.auth)
			if st != http.StatusUnauthorized || armtest.ErrCode(b) != tc.code || !strings.HasPrefix(h.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("got %d %q %s", st, h.Get("WWW-Authenticate"), b)
			}
		})
	}
	st, _, b := n.Do(http.MethodGet, path, nil)
	if st != http.StatusOK {
		t.Fatalf("valid token: %d %s", st, b)
	}
	var subs struct {
		Value []resource.Subscription `json:"value"`
	}
	if err := json.Unmarshal(b, &subs); err != nil || len(subs.Value) != 1 || subs.Value[0].State != "Enabled" ||
		subs.Value[0].TenantID != n.Endpoint.TenantID || subs.Value[0].SubscriptionID != n.Sub {
		t.Fatalf("subscriptions: %v %s", err, b)
	}
}

func TestRoutingAndValidation(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	pip := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/Pip1")
	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		code, contains           string
	}{
		{"missing api-version", "GET", "/subscriptions/" + n.Sub + "/resourcegroups/rg", "", 400, "MissingApiVersionParameter", ""},
		{"unknown group api-version", "GET", "/subscriptions/" + n.Sub + "/resourcegroups/rg?api-version=2099-01-01", "", 400, "InvalidApiVersionParameter", ""},
		{"unknown network api-version", "GET", pip + "?api-version=2099-01-01", "", 400, "NoRegisteredProviderFound", ""},
		{"case-insensitive segments", "PUT", strings.ToUpper(pip[:len(pip)-4]) + "Pip1" + pipAPI, `{"location":"eastus"}`, 201, "", `"name":"Pip1"`},
		{"names keep their first case", "PUT", "/subscriptions/" + n.Sub + "/RESOURCEGROUPS/RG/providers/Microsoft.Network/publicIPAddresses/PIP1" + pipAPI, `{"location":"eastus"}`, 200, "", `"id":"` + pip + `"`},
		{"double slashes", "GET", "//subscriptions/" + n.Sub + "//resourceGroups/rg/providers/Microsoft.Network//publicIPAddresses/Pip1" + pipAPI, "", 200, "", `"name":"Pip1"`},
		{"lower-case type", "GET", strings.ToLower(pip) + pipAPI, "", 200, "", `"ipTags":[]`},
		{"malformed json", "PUT", pip + pipAPI, `{"location":`, 400, "InvalidRequestContent", ""},
		{"syntax error", "PUT", pip + pipAPI, `{"location" "x"}`, 400, "InvalidRequestContent", "offset"},
		{"wrong type names field", "PUT", pip + pipAPI, `{"location":"eastus","properties":{"idleTimeoutInMinutes":"ten"}}`, 400, "InvalidRequestContent", "properties.idleTimeoutInMinutes"},
		{"wrong type top level", "PUT", pip + pipAPI, `{"location":5}`, 400, "InvalidRequestContent", "'location'"},
		{"empty body", "PUT", pip + pipAPI, ``, 400, "InvalidRequestContent", ""},
		{"trailing data", "PUT", pip + pipAPI, `{"location":"eastus"} {}`, 400, "InvalidRequestContent", ""},
		{"unknown properties ignored", "PUT", pip + pipAPI, `{"location":"eastus","futureThing":{"x":1},"properties":{"newField":true}}`, 200, "", ""},
		{"unknown route", "GET", "/subscriptions/" + n.Sub + "/resourceGroups/rg/providers/Microsoft.Network/teleporters/x" + pipAPI, "", 404, "InvalidResourceType", ""},
		{"unknown top route", "GET", "/nothing/here?api-version=2021-04-01", "", 404, "NotFound", ""},
		{"wrong method", "POST", pip + pipAPI, `{}`, 405, "HttpMethodNotAllowed", ""},
		{"missing group", "PUT", n.RGPath("nope", "Microsoft.Network/publicIPAddresses/x") + pipAPI, `{"location":"eastus"}`, 404, "ResourceGroupNotFound", ""},
		{"missing resource", "GET", n.RGPath("rg", "Microsoft.Network/publicIPAddresses/none") + pipAPI, "", 404, "ResourceNotFound", ""},
		{"dangling nsg", "PUT", n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn2") + pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.0.0.0/24","networkSecurityGroup":{"id":"` + n.RGPath("rg", "Microsoft.Network/networkSecurityGroups/nsg") + `"}}}]}}`, 400, "InvalidResourceReference", "properties.subnets[0].properties.networkSecurityGroup.id"},
		{"wrong-type nsg", "PUT", n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn2") + pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.0.0.0/24","networkSecurityGroup":{"id":"` + pip + `"}}}]}}`, 400, "InvalidJsonReferenceWrongType", ""},
		{"malformed prefix reference", "PUT", pip + pipAPI, `{"location":"eastus","properties":{"publicIPPrefix":{"id":"prefix1"}}}`, 400, "LinkedInvalidPropertyId", "properties.publicIPPrefix.id"},
		{"empty collections", "PUT", n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn") + pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]}}}`, 201, "", `"subnets":[]`},
		{"bad skiptoken", "GET", "/subscriptions/" + n.Sub + "/resourcegroups?api-version=2021-04-01&$skiptoken=zz", "", 400, "InvalidSkipToken", ""},
		{"bad filter", "GET", "/subscriptions/" + n.Sub + "/resources?api-version=2021-04-01&$filter=" + url.QueryEscape("name gt 'a'"), "", 400, "InvalidFilterInQueryString", ""},
		{"unknown namespace", "GET", "/subscriptions/" + n.Sub + "/providers/Microsoft.Nothing?api-version=2019-10-01", "", 404, "InvalidResourceNamespace", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" || tc.method == "PUT" {
				body = tc.body
			}
			st, h, b := n.Do(tc.method, tc.path, body)
			if st != tc.status || armtest.ErrCode(b) != tc.code || !strings.Contains(string(b), tc.contains) {
				t.Fatalf("got %d %s, want %d %q containing %q", st, b, tc.status, tc.code, tc.contains)
			}
			if ct := h.Get("Content-Type"); len(b) > 0 && ct != "application/json; charset=utf-8" {
				t.Fatalf("content type %q", ct)
			}
		})
	}
}

func TestLROProtocol(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	pip := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/p")
	st, h, b := n.Do("PUT", pip+"?api-version=2022-07-01", `{"location":"eastus"}`)
	if st != http.StatusCreated || h.Get("Retry-After") != "1" {
		t.Fatalf("put: %d %v %s", st, h, b)
	}
	async := h.Get("Azure-AsyncOperation")
	u, err := url.Parse(async)
	if err != nil || !u.IsAbs() || u.Scheme != "https" || u.Query().Get("api-version") != "2022-07-01" {
		t.Fatalf("Azure-AsyncOperation %q", async)
	}
	st, _, b = n.Do("GET", async, nil)
	var op struct {
		Name, Status string
		StartTime    time.Time
		EndTime      *time.Time
	}
	if err := json.Unmarshal(b, &op); st != 200 || err != nil || op.Status != "Succeeded" || op.Name == "" || op.StartTime.IsZero() || op.EndTime == nil {
		t.Fatalf("operation: %d %s", st, b)
	}
	st, h, _ = n.Do("DELETE", pip+"?api-version=2022-07-01", nil)
	loc := h.Get("Location")
	if st != http.StatusAccepted || loc == "" || h.Get("Azure-AsyncOperation") == "" || h.Get("Retry-After") != "1" {
		t.Fatalf("delete: %d %v", st, h)
	}
	if st, _, b := n.Do("GET", loc, nil); st != http.StatusNoContent {
		t.Fatalf("operation result: %d %s", st, b)
	}
	if st, _, _ := n.Do("DELETE", pip+"?api-version=2022-07-01", nil); st != http.StatusNoContent {
		t.Fatalf("delete missing: %d", st)
	}
	// Operations survive a restart.
	n.Shutdown()
	n2 := armtest.Start(t, n.Dir)
	n2.Token = n.Token
	async = strings.Replace(async, n.Base, n2.Base, 1)
	if st, _, b := n2.Do("GET", async, nil); st != 200 || !strings.Contains(string(b), `"Succeeded"`) {
		t.Fatalf("operation after restart: %d %s", st, b)
	}
	if st, _, b := n2.Do("GET", "/subscriptions/"+n.Sub+"/providers/Microsoft.Network/locations/eastus/operations/nope?api-version=2022-07-01", nil); st != 404 || armtest.ErrCode(b) != "OperationNotFound" {
		t.Fatalf("missing operation: %d %s", st, b)
	}
}

func TestIfMatch(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	pip := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/p") + pipAPI
	if st, _, b := n.Do("PUT", pip, `{"location":"eastus"}`, "If-Match", "*"); st != 412 || armtest.ErrCode(b) != "PreconditionFailed" {
		t.Fatalf("If-Match * on missing: %d %s", st, b)
	}
	st, _, b := n.Do("PUT", pip, `{"location":"eastus"}`, "If-None-Match", "*")
	if st != 201 {
		t.Fatalf("If-None-Match * create: %d %s", st, b)
	}
	var p resource.PublicIPAddress
	if err := json.Unmarshal(b, &p); err != nil || !strings.HasPrefix(p.Etag, `W/"`) {
		t.Fatalf("etag %q %v", p.Etag, err)
	}
	for _, tc := range []struct {
		name, header, value string
		status              int
	}{
		{"If-None-Match * on existing", "If-None-Match", "*", 412},
		{"stale If-Match", "If-Match", `W/"00000000-0000-0000-0000-000000000000"`, 412},
		{"matching If-Match", "If-Match", p.Etag, 200},
		{"old etag after update", "If-Match", p.Etag, 412},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, _, b := n.Do("PUT", pip, `{"location":"eastus","tags":{"x":"y"}}`, tc.header, tc.value)
			if st != tc.status || (tc.status == 412 && armtest.ErrCode(b) != "PreconditionFailed") {
				t.Fatalf("got %d %s, want %d", st, b, tc.status)
			}
		})
	}
	if st, _, b := n.Do("DELETE", pip, nil, "If-Match", p.Etag); st != 412 {
		t.Fatalf("delete with stale etag: %d %s", st, b)
	}
}

// TestConcurrentIfMatchWriters runs writers that each read the address,
// add their tag and write back with If-Match, retrying on 412: every
// increment must survive (no lost update).
func TestConcurrentIfMatchWriters(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	pip := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/p") + pipAPI
	if st, _, b := n.Do("PUT", pip, `{"location":"eastus","tags":{}}`); st != 201 {
		t.Fatalf("create: %d %s", st, b)
	}
	const writers, each = 6, 5
	var wg sync.WaitGroup
	var mu sync.Mutex
	conflicts := 0
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				for attempt := 0; ; attempt++ {
					if attempt > 200 {
						t.Errorf("writer %d: too many attempts", w)
						return
					}
					_, _, b := n.Do("GET", pip, nil)
					var p resource.PublicIPAddress
					if err := json.Unmarshal(b, &p); err != nil {
						t.Error(err)
						return
					}
					if p.Tags == nil {
						p.Tags = map[string]string{}
					}
					p.Tags[fmt.Sprintf("w%d-%d", w, i)] = "1"
					st, _, rb := n.Do("PUT", pip, p, "If-Match", p.Etag)
					if st == 412 {
						mu.Lock()
						conflicts++
						mu.Unlock()
						continue
					}
					if st != 200 {
						t.Errorf("put: %d %s", st, rb)
						return
					}
					break
				}
			}
		}()
	}
	wg.Wait()
	_, _, b := n.Do("GET", pip, nil)
	var p resource.PublicIPAddress
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if len(p.Tags) != writers*each {
		t.Fatalf("%d tags survived, want %d (lost updates)", len(p.Tags), writers*each)
	}
	t.Logf("%d writers x %d updates, %d precondition failures retried", writers, each, conflicts)
}

func TestManagedIdentityAndMetadata(t *testing.T) {
	n := armtest.Start(t)
	form := url.Values{"resource": {"https://management.core.windows.net/"}}.Encode()
	for _, tc := range []struct {
		name, method, path, body string
		headers                  []string
		status                   int
	}{
		{"az legacy POST", "POST", "/msi/token", form, []string{"Metadata", "true", "Content-Type", "application/x-www-form-urlencoded"}, 200},
		{"azidentity GET", "GET", "/msi/token?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.core.windows.net%2F", "", []string{"X-Identity-Header", n.Endpoint.IdentityHeader}, 200},
		{"wrong identity header", "GET", "/msi/token?api-version=2019-08-01&resource=x", "", []string{"X-Identity-Header", "wrong"}, 401},
		{"no header", "POST", "/msi/token", form, []string{"Content-Type", "application/x-www-form-urlencoded"}, 400},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := append([]string{"Authorization", ""}, tc.headers...)
			var body any
			if tc.body != "" {
				body = tc.body
			}
			st, _, b := n.Do(tc.method, tc.path, body, hs...)
			if st != tc.status {
				t.Fatalf("got %d %s", st, b)
			}
			if st != 200 {
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
				TokenType   string `json:"token_type"`
				ExpiresOn   string `json:"expires_on"`
				ExpiresIn   string `json:"expires_in"`
				Resource    string `json:"resource"`
			}
			if err := json.Unmarshal(b, &tok); err != nil || tok.TokenType != "Bearer" || tok.ExpiresOn == "" || tok.ExpiresIn == "" || tok.Resource == "" {
				t.Fatalf("token response %s", b)
			}
			c, err := n.Issuer.Verify(tok.AccessToken)
			if err != nil || c.TenantID != n.Endpoint.TenantID || c.ObjectID == "" {
				t.Fatalf("minted token: %v", err)
			}
			if st, _, _ := n.Do("GET", "/subscriptions?api-version=2019-11-01", nil, "Authorization", "Bearer "+tok.AccessToken); st != 200 {
				t.Fatalf("token rejected by ARM: %d", st)
			}
		})
	}
	// A non-loopback peer is refused (the request is handed to the handler
	// directly; no packet leaves the host).
	req := httptest.NewRequest("POST", "/msi/token", strings.NewReader(form))
	req.RemoteAddr = "198.18.0.10:40000"
	req.Header.Set("Metadata", "true")
	rec := httptest.NewRecorder()
	n.Server.ServeHTTP(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("remote MSI: %d %s", rec.Code, rec.Body)
	}
	st, _, b := n.Do("GET", "//metadata/endpoints?api-version=2015-01-01", nil, "Authorization", "")
	var md struct {
		Authentication struct {
			LoginEndpoint string   `json:"loginEndpoint"`
			Audiences     []string `json:"audiences"`
		} `json:"authentication"`
	}
	if err := json.Unmarshal(b, &md); st != 200 || err != nil || md.Authentication.LoginEndpoint == "" || len(md.Authentication.Audiences) == 0 {
		t.Fatalf("metadata: %d %s", st, b)
	}
}

func TestPaging(t *testing.T) {
	n := armtest.Start(t)
	const groups = 130
	for i := range groups {
		n.Group(fmt.Sprintf("g%03d", i))
	}
	next := "/subscriptions/" + n.Sub + "/resourcegroups?api-version=2021-04-01"
	seen, pages := 0, 0
	for next != "" {
		st, _, b := n.Do("GET", next, nil)
		var page struct {
			Value    []json.RawMessage `json:"value"`
			NextLink string            `json:"nextLink"`
		}
		if err := json.Unmarshal(b, &page); st != 200 || err != nil {
			t.Fatalf("page: %d %s", st, b)
		}
		if page.NextLink != "" && !strings.HasPrefix(page.NextLink, "https://") {
			t.Fatalf("nextLink not absolute: %q", page.NextLink)
		}
		seen += len(page.Value)
		pages++
		next = page.NextLink
	}
	if seen != groups || pages != 2 {
		t.Fatalf("saw %d groups in %d pages", seen, pages)
	}
}

// TestReferencesAndGroupDelete checks in-use refusals and back-references
// through the reference index (as a load balancer frontend would write it),
// and that deleting a group deletes and releases everything inside.
func TestReferencesAndGroupDelete(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	n.Group("rg")
	pip := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip")
	vn := n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn")
	if st, _, b := n.Do("PUT", pip+pipAPI, `{"location":"eastus","sku":{"name":"Standard"}}`); st != 201 {
		t.Fatalf("pip: %d %s", st, b)
	}
	if st, _, b := n.Do("PUT", vn+pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"s1","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`); st != 201 {
		t.Fatalf("vnet: %d %s", st, b)
	}
	fe := n.RGPath("rg", "Microsoft.Network/loadBalancers/lb/frontendIPConfigurations/fe")
	for _, target := range []string{pip, vn + "/subnets/s1"} {
		b, _ := json.Marshal(resource.Ref{Source: fe, Target: target})
		if _, err := n.Store.Put(ctx, resource.RefKey(target, fe), b, store.AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	_, _, b := n.Do("GET", pip+pipAPI, nil)
	if !strings.Contains(string(b), `"ipConfiguration":{"id":"`+fe+`"}`) {
		t.Fatalf("pip back-reference missing: %s", b)
	}
	_, _, b = n.Do("GET", vn+"/subnets/s1"+pipAPI, nil)
	if !strings.Contains(string(b), `"ipConfigurations":[{"id":"`+fe+`"}]`) {
		t.Fatalf("subnet back-reference missing: %s", b)
	}
	for _, tc := range []struct {
		name, method, path, body, code string
	}{
		{"delete pip in use", "DELETE", pip + pipAPI, "", "InUsePublicIpAddressCannotBeDeleted"},
		{"delete subnet in use", "DELETE", vn + "/subnets/s1" + pipAPI, "", "InUseSubnetCannotBeDeleted"},
		{"drop subnet in use from vnet", "PUT", vn + pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[]}}`, "InUseSubnetCannotBeDeleted"},
		{"re-address subnet in use", "PUT", vn + pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"s1","properties":{"addressPrefix":"10.0.1.0/24"}}]}}`, "InUseSubnetCannotBeUpdated"},
		{"delete vnet in use", "DELETE", vn + pipAPI, "", "InUseSubnetCannotBeDeleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body any
			if tc.body != "" {
				body = tc.body
			}
			if st, _, b := n.Do(tc.method, tc.path, body); st != 400 || armtest.ErrCode(b) != tc.code {
				t.Fatalf("got %d %s, want 400 %s", st, b, tc.code)
			}
		})
	}
	// A referrer inside the group does not block the group's deletion: put
	// the referring "load balancer" in the group, then delete the group.
	lbKey := resource.Key(resource.NewID(n.Sub, "rg", "Microsoft.Network/loadBalancers", "lb"))
	if _, err := n.Store.Put(ctx, lbKey, []byte(`{"id":"`+n.RGPath("rg", "Microsoft.Network/loadBalancers/lb")+`"}`), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	// The framework only knows the references of registered kinds, so drop the
	// hand-written index entries the way the LB kind's References would.
	for _, target := range []string{pip, vn + "/subnets/s1"} {
		if _, err := n.Store.Delete(ctx, resource.RefKey(target, fe), store.AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	// An allocation left in the subnet by something in the group is released with the network.
	tx := arm.NewTx(n.Store)
	if _, err := ipam.AllocatePrivate(ctx, tx, vn+"/subnets/s1", netip.MustParsePrefix("10.0.0.0/24"), fe, netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, n.Store); err != nil {
		t.Fatal(err)
	}
	st, h, b := n.Do("DELETE", "/subscriptions/"+n.Sub+"/resourcegroups/rg?api-version=2021-04-01", nil)
	if st != 202 {
		t.Fatalf("delete group: %d %s", st, b)
	}
	if st, _, _ := n.Do("GET", h.Get("Location"), nil); st != 204 {
		t.Fatalf("group delete result: %d", st)
	}
	for _, prefix := range []string{"/arm/subscriptions/" + strings.ToLower(n.Sub) + "/resourcegroups/rg", "/ipam/", "/ref"} {
		kvs, _, err := n.Store.List(ctx, prefix)
		if err != nil || len(kvs) != 0 {
			t.Fatalf("left under %s: %d keys %v", prefix, len(kvs), err)
		}
	}
}

func TestProvidersAndResourcesList(t *testing.T) {
	n := armtest.Start(t)
	n.Group("rg")
	n.Group("other")
	for _, p := range []string{n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip1"), n.RGPath("other", "Microsoft.Network/publicIPAddresses/pip1")} {
		if st, _, b := n.Do("PUT", p+pipAPI, `{"location":"eastus","tags":{"t":"v"}}`); st != 201 {
			t.Fatalf("%d %s", st, b)
		}
	}
	filter := url.QueryEscape("resourceGroup eq 'rg' and name eq 'pip1' and resourceType eq 'Microsoft.Network/publicIPAddresses'")
	st, _, b := n.Do("GET", "/subscriptions/"+n.Sub+"/resources?api-version=2019-10-01&$filter="+filter+"&$expand=createdTime,changedTime,provisioningState", nil)
	var list struct {
		Value []struct {
			ID, Name, Type, Location, ProvisioningState string
		} `json:"value"`
	}
	if err := json.Unmarshal(b, &list); st != 200 || err != nil || len(list.Value) != 1 ||
		list.Value[0].ID != n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip1") || list.Value[0].ProvisioningState != "Succeeded" {
		t.Fatalf("filtered resources: %d %s", st, b)
	}
	_, _, b = n.Do("GET", "/subscriptions/"+n.Sub+"/resourceGroups/other/resources?api-version=2019-10-01", nil)
	if err := json.Unmarshal(b, &list); err != nil || len(list.Value) != 1 {
		t.Fatalf("group resources: %s", b)
	}
	st, _, b = n.Do("GET", "/subscriptions/"+n.Sub+"/providers/microsoft.network?api-version=2019-10-01", nil)
	var prov struct {
		Namespace     string
		ResourceTypes []struct {
			ResourceType string
			APIVersions  []string
		}
	}
	if err := json.Unmarshal(b, &prov); st != 200 || err != nil || prov.Namespace != "Microsoft.Network" {
		t.Fatalf("provider: %d %s", st, b)
	}
	found := map[string]bool{}
	for _, rt := range prov.ResourceTypes {
		found[rt.ResourceType] = len(rt.APIVersions) > 0
	}
	for _, want := range []string{"publicIPAddresses", "virtualNetworks", "virtualNetworks/subnets"} {
		if !found[want] {
			t.Errorf("provider lacks %s: %s", want, b)
		}
	}
}

func TestVNetAddressAvailabilityAndUsages(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	n.Group("rg")
	vn := n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn")
	if st, _, b := n.Do("PUT", vn+pipAPI, `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"s","properties":{"addressPrefix":"10.0.0.0/29"}}]}}`); st != 201 {
		t.Fatalf("vnet: %d %s", st, b)
	}
	tx := arm.NewTx(n.Store)
	if _, err := ipam.AllocatePrivate(ctx, tx, vn+"/subnets/s", netip.MustParsePrefix("10.0.0.0/29"), "owner", netip.Addr{}); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, n.Store); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		ip, want string
		status   int
	}{
		{"10.0.0.4", `{"available":false,"availableIPAddresses":["10.0.0.5","10.0.0.6"]}`, 200},
		{"10.0.0.5", `{"available":true,"availableIPAddresses":[]}`, 200},
		{"10.0.0.3", `{"available":false,"availableIPAddresses":["10.0.0.5","10.0.0.6"]}`, 200},
		{"10.0.9.9", "PrivateIPAddressNotInAnySubnet", 400},
		{"nope", "InvalidParameter", 400},
	} {
		t.Run(tc.ip, func(t *testing.T) {
			st, _, b := n.Do("GET", vn+"/CheckIPAddressAvailability"+pipAPI+"&ipAddress="+tc.ip, nil)
			if st != tc.status || (st == 200 && string(b) != tc.want) || (st != 200 && armtest.ErrCode(b) != tc.want) {
				t.Fatalf("got %d %s, want %d %s", st, b, tc.status, tc.want)
			}
		})
	}
	st, _, b := n.Do("GET", vn+"/usages"+pipAPI, nil)
	if st != 200 || !strings.Contains(string(b), `"currentValue":1,"limit":3`) {
		t.Fatalf("usages: %d %s", st, b)
	}
}
