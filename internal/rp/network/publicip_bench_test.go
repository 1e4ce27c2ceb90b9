package network_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

// BenchmarkPublicIP measures the server side of GET and PUT (update) of a
// public IP address, calling the handler directly (token check, routing,
// store, JSON; no TLS or sockets). PUT includes the bolt fsync.
func BenchmarkPublicIP(b *testing.B) {
	n := armtest.Start(b)
	n.Group("rg")
	path := n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip") + "?api-version=2025-01-01"
	body := `{"location":"eastus","sku":{"name":"Standard"},"tags":{"a":"b"}}`
	if st, _, b2 := n.Do("PUT", path, body); st != 201 {
		b.Fatalf("create: %d %s", st, b2)
	}
	serve := func(method, body string, want int) {
		var req *http.Request
		if body == "" {
			req = httptest.NewRequest(method, path, nil)
		} else {
			req = httptest.NewRequest(method, path, strings.NewReader(body))
		}
		req.Header.Set("Authorization", "Bearer "+n.Token)
		rec := httptest.NewRecorder()
		n.Server.ServeHTTP(rec, req)
		if rec.Code != want {
			b.Fatalf("%s: %d %s", method, rec.Code, rec.Body)
		}
	}
	b.Run("GET", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve("GET", "", 200)
		}
	})
	b.Run("PUT", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			serve("PUT", body, 200)
		}
	})
}
