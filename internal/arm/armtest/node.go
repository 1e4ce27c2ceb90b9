// Package armtest runs a real nimbus node for API tests: an HTTPS listener
// on 127.0.0.1 with a bolt store in a temporary data dir, every resource
// provider registered as nimbus serve does, a real token, raw-request and
// Azure SDK helpers, the az CLI (when installed) logged in against it, and
// Env, a node with a group, a virtual network and public IPs ready for load
// balancer and scale-set tests. No traffic leaves loopback.
package armtest

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

// Node is a running nimbus node for tests: a real HTTPS listener on
// 127.0.0.1, a bolt store in a temporary data dir, and a real token.
type Node struct {
	*node.Node
	T       testing.TB
	Dir     string
	Base    string
	Sub     string
	Token   string
	Client  *http.Client
	Options *azarm.ClientOptions
	Cred    azcore.TokenCredential
}

// StaticCred is an azcore.TokenCredential returning a fixed token.
type StaticCred struct{ Token string }

func (c StaticCred) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: c.Token, ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// Start starts a node in a fresh data dir (or dir, if given) and stops it at cleanup.
func Start(t testing.TB, dir ...string) *Node {
	t.Helper()
	d := t.TempDir()
	if len(dir) > 0 {
		d = dir[0]
	}
	return StartWith(t, node.Config{DataDir: d})
}

// StartWith is Start with cfg (for a Runtime, say); an empty DataDir is a
// fresh temporary one, and the node always listens on 127.0.0.1:0.
func StartWith(t testing.TB, cfg node.Config) *Node {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	d := cfg.DataDir
	cfg.Listen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.Start(ctx, cfg)
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
	tn := &Node{Node: n, T: t, Dir: d, Base: n.Endpoint.Endpoint, Sub: n.Endpoint.SubscriptionID, Token: tok, Client: hc,
		Cred: StaticCred{tok}}
	tn.Options = &azarm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: tn.Base, Audience: auth.DefaultAudience},
		}},
		Transport: hc,
	}}
	return tn
}

// Shutdown stops the node and waits for it (for restart tests).
func (n *Node) Shutdown() {
	n.T.Helper()
	if err := n.Stop(); err != nil {
		n.T.Fatalf("stop: %v", err)
	}
}

// Do sends an ARM request with the node's token (unless headers set
// Authorization) and returns the status, headers and body. path may be
// relative to the endpoint or absolute.
func (n *Node) Do(method, path string, body any, headers ...string) (int, http.Header, []byte) {
	n.T.Helper()
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
			n.T.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	u := path
	if !strings.HasPrefix(u, "https://") {
		u = n.Base + path
	}
	req, err := http.NewRequest(method, u, rd)
	if err != nil {
		n.T.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.Token)
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
	resp, err := n.Client.Do(req)
	if err != nil {
		n.T.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		n.T.Fatal(err)
	}
	return resp.StatusCode, resp.Header, b
}

// ErrCode returns the ARM error code of a response body ("" if none).
func ErrCode(b []byte) string {
	var e struct {
		Error struct {
			Code string `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(b, &e)
	return e.Error.Code
}

// Group creates resource group name (eastus) and fails the test on error.
func (n *Node) Group(name string) {
	n.T.Helper()
	st, _, b := n.Do(http.MethodPut, "/subscriptions/"+n.Sub+"/resourcegroups/"+name+"?api-version=2021-04-01", map[string]any{"location": "eastus"})
	if st != http.StatusCreated && st != http.StatusOK {
		n.T.Fatalf("create group %s: %d %s", name, st, b)
	}
}

// RGPath returns the path of a resource in group rg, e.g. rgPath("rg", "Microsoft.Network/publicIPAddresses/pip1").
func (n *Node) RGPath(rg, rest string) string {
	return "/subscriptions/" + n.Sub + "/resourceGroups/" + rg + "/providers/" + rest
}

// ResponseError returns err as *azcore.ResponseError or fails.
func ResponseError(t testing.TB, err error) *azcore.ResponseError {
	t.Helper()
	re, ok := err.(*azcore.ResponseError)
	if !ok {
		t.Fatalf("error %v (%T) is not a *azcore.ResponseError", err, err)
	}
	return re
}

// Ctx returns a context for one test, cancelled after 60 s or at its end.
func Ctx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}
