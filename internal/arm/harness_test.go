package arm_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"nimbus/internal/auth"
	"nimbus/internal/node"
)

// testNode is a running nimbus node for tests: a real HTTPS listener on
// 127.0.0.1, a bolt store in a temporary data dir, and a real token.
type testNode struct {
	*node.Node
	t       testing.TB
	dir     string
	base    string
	sub     string
	token   string
	client  *http.Client
	options *azarm.ClientOptions
	cred    azcore.TokenCredential
}

// staticCred is an azcore.TokenCredential returning a fixed token.
type staticCred struct{ token string }

func (c staticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// startTestNode starts a node in a fresh data dir (or dir, if given) and stops it at cleanup.
func startTestNode(t testing.TB, dir ...string) *testNode {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Start(ctx, node.Config{DataDir: d, Listen: "127.0.0.1:0"})
	if err != nil {
		cancel()
		t.Fatalf("start node: %v", err)
	}
	var hc *http.Client
	t.Cleanup(func() {
		if hc != nil {
			hc.CloseIdleConnections()
		}
		cancel()
		if err := n.Wait(); err != nil {
			t.Errorf("node stopped with error: %v", err)
		}
	})
	pool, err := auth.CertPool(d)
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := n.Issuer.Mint("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	hc = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 30 * time.Second}
	tn := &testNode{Node: n, t: t, dir: d, base: n.Endpoint.Endpoint, sub: n.Endpoint.SubscriptionID, token: tok, client: hc,
		cred: staticCred{tok}}
	tn.options = &azarm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: tn.base, Audience: auth.DefaultAudience},
		}},
		Transport: hc,
	}}
	return tn
}

// stop stops the node and waits for it (for restart tests).
func (n *testNode) stop() {
	n.t.Helper()
	if err := n.Stop(); err != nil {
		n.t.Fatalf("stop: %v", err)
	}
}

// do sends an ARM request with the node's token (unless headers set
// Authorization) and returns the status, headers and body. path may be
// relative to the endpoint or absolute.
func (n *testNode) do(method, path string, body any, headers ...string) (int, http.Header, []byte) {
	n.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = n.base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
			continue
		}
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := n.client.Do(req)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// errCode returns the ARM error code of a response body ("" if none).
func errCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// group creates resource group name (eastus) and fails the test on error.
func (n *testNode) group(name string) {
	n.t.Helper()
	st, _, b := n.do(http.MethodPut, "/subscriptions/"+n.sub+"/resourcegroups/"+name+"?api-version=2021-04-01", map[string]any{"location": "eastus"})
	if st != http.StatusCreated && st != http.StatusOK {
		n.t.Fatalf("create group %s: %d %s", name, st, b)
	}
}

// rgPath returns the path of a resource in group rg, e.g. rgPath("rg", "Microsoft.Network/publicIPAddresses/pip1").
func (n *testNode) rgPath(rg, rest string) string {
	return "/subscriptions/" + n.sub + "/resourceGroups/" + rg + "/providers/" + rest
}

// responseError returns err as *azcore.ResponseError or fails.
func responseError(t testing.TB, err error) *azcore.ResponseError {
	t.Helper()
	re, ok := err.(*azcore.ResponseError)
	if !ok {
		t.Fatalf("error %v (%T) is not a *azcore.ResponseError", err, err)
	}
	return re
}
