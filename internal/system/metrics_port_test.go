package system

import (
	"crypto/tls"
	"net"
	"net/http"
	"strings"
	"testing"

	"nimbus/internal/auth"
)

// TestBusyMetricsPort: with the metrics port held by another program,
// nimbus still starts and serves the API, and says why there are no
// metrics where a user looks (Options, GET /nimbus/info).
func TestBusyMetricsPort(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	s := startSystemMode(t, t.TempDir(), Process, func(o *Options) { o.MetricsListen = held.Addr().String() })
	defer s.Stop()
	if s.MetricsAddr != "" || !strings.Contains(s.MetricsErr, held.Addr().String()) || !strings.Contains(s.MetricsErr, "--metrics-listen") {
		t.Fatalf("MetricsAddr %q, MetricsErr %q: want the busy port and the flag named", s.MetricsAddr, s.MetricsErr)
	}
	info, ok := (&sysRuntime{s: s}).Info().(Info)
	if !ok || info.MetricsErr != s.MetricsErr {
		t.Fatalf("/nimbus/info reports %+v", info)
	}
	// The API answers (unauthenticated metadata endpoint: no token needed).
	pool, err := auth.CertPool(s.Node.Endpoint.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := c.Get(s.Node.Endpoint.Endpoint + "/metadata/endpoints?api-version=2015-01-01")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata endpoint: %d", resp.StatusCode)
	}
}
