package arm_test

import (
	"encoding/json"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

// FuzzServeHTTP sends arbitrary methods, paths and bodies through the whole
// handler (with a valid token) and checks the ARM contract: never a 5xx,
// and every error is an ARM error envelope with a code.
func FuzzServeHTTP(f *testing.F) {
	n := armtest.Start(f)
	n.Group("rg")
	sub := "/subscriptions/" + n.Sub
	pip := sub + "/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/p"
	vn := sub + "/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/v"
	lb := sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb"
	for _, s := range []struct{ method, path, body string }{
		{"PUT", pip + "?api-version=2025-01-01", `{"location":"eastus","sku":{"name":"Standard"}}`},
		{"PUT", vn + "?api-version=2025-01-01", `{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`},
		{"PUT", vn + "/subnets/b?api-version=2025-01-01", `{"properties":{"addressPrefix":"10.0.1.0/24"}}`},
		{"PATCH", pip + "?api-version=2025-01-01", `{"tags":{"a":"b"}}`},
		{"DELETE", vn + "/subnets/a?api-version=2025-01-01", ``},
		{"GET", sub + "/resources?api-version=2021-04-01&$filter=name eq 'p'", ``},
		{"GET", sub + "/resourcegroups?api-version=2021-04-01&$skiptoken=1", ``},
		{"PUT", sub + "/resourcegroups/rg2?api-version=2021-04-01", `{"location":"westus"}`},
		{"DELETE", sub + "/resourcegroups/rg2?api-version=2021-04-01", ``},
		{"GET", sub + "/providers/Microsoft.Network?api-version=2019-10-01", ``},
		{"GET", "/subscriptions?api-version=2016-06-01", ``},
		{"PUT", lb + "?api-version=2025-01-01", `{"location":"eastus","sku":{"name":"Standard"},"properties":{` +
			`"frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"` + pip + `"}}}],` +
			`"backendAddressPools":[{"name":"be"}],"probes":[{"name":"pr","properties":{"protocol":"Tcp","port":80}}],` +
			`"loadBalancingRules":[{"name":"r","properties":{"frontendIPConfiguration":{"id":"` + lb + `/frontendIPConfigurations/fe"},` +
			`"backendAddressPool":{"id":"` + lb + `/backendAddressPools/be"},"probe":{"id":"` + lb + `/probes/pr"},` +
			`"protocol":"Tcp","frontendPort":80,"backendPort":80}}]}}`},
		{"PUT", lb + "/backendAddressPools/be2?api-version=2025-01-01", `{"properties":{}}`},
	} {
		f.Add(s.method, s.path, s.body)
	}
	f.Fuzz(func(t *testing.T, method, path, body string) {
		switch method {
		case "GET", "PUT", "PATCH", "DELETE", "POST", "HEAD":
		default:
			return
		}
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(u.Path, "/") {
			return
		}
		req := httptest.NewRequest(method, "https://127.0.0.1/", strings.NewReader(body))
		req.URL.Path, req.URL.RawPath, req.URL.RawQuery = u.Path, u.RawPath, u.RawQuery
		req.Header.Set("Authorization", "Bearer "+n.Token)
		rec := httptest.NewRecorder()
		n.Server.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 400 && method != "HEAD" {
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error.Code == "" {
				t.Fatalf("%s %s: %d without an ARM error body: %s", method, path, rec.Code, rec.Body)
			}
		}
		if rec.Code < 300 && rec.Body.Len() > 0 && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: invalid JSON %s", method, path, rec.Body)
		}
	})
}
