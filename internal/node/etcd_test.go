package node_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"nimbus/internal/auth"
	"nimbus/internal/node"
	"nimbus/internal/store"
	"nimbus/internal/store/etcd"
	"nimbus/internal/store/etcd/etcdtest"
)

// TestStoreOnEtcdSurvivesRestart runs the API on an etcd store (as serve
// --store etcd does): a resource group and a load balancer created through
// the API are still there after the node stops, etcd is killed and both
// start again, and the state lives in etcd under the prefix, not in a
// nimbus.db.
func TestStoreOnEtcdSurvivesRestart(t *testing.T) {
	const prefix = "/nimbus-node-test/"
	srv := etcdtest.Start(t)
	dir := t.TempDir()
	openStore := func(ctx context.Context, log *slog.Logger) (store.Store, error) {
		return etcd.Open(ctx, etcd.Config{Endpoints: []string{srv.Endpoint}, Prefix: prefix, Logger: log})
	}
	start := func() (*node.Node, func(method, path, body string) (int, []byte)) {
		t.Helper()
		n, err := node.Start(t.Context(), node.Config{DataDir: dir, Listen: "127.0.0.1:0", OpenStore: openStore})
		if err != nil {
			t.Fatal(err)
		}
		pool, err := auth.CertPool(dir)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := n.Issuer.Mint("", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 20 * time.Second}
		do := func(method, path, body string) (int, []byte) {
			t.Helper()
			req, err := http.NewRequest(method, n.Endpoint.Endpoint+path, bytes.NewReader([]byte(body)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+tok)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return resp.StatusCode, b
		}
		return n, do
	}

	n, do := start()
	sub := n.Endpoint.SubscriptionID
	rg := "/subscriptions/" + sub + "/resourcegroups/rg-etcd"
	lb := "/subscriptions/" + sub + "/resourceGroups/rg-etcd/providers/Microsoft.Network/loadBalancers/lb-etcd"
	if st, b := do("PUT", rg+"?api-version=2021-04-01", `{"location":"eastus"}`); st != http.StatusCreated {
		t.Fatalf("PUT resource group: %d %s", st, b)
	}
	if st, b := do("PUT", lb+"?api-version=2025-01-01", `{"location":"eastus","sku":{"name":"Standard"},
		"properties":{"backendAddressPools":[{"name":"be"}]}}`); st != http.StatusCreated && st != http.StatusOK {
		t.Fatalf("PUT load balancer: %d %s", st, b)
	}
	if err := n.Stop(); err != nil {
		t.Fatal(err)
	}
	srv.Kill()
	srv.Restart()

	n, do = start()
	defer n.Stop()
	if n.Endpoint.SubscriptionID != sub {
		t.Fatalf("subscription %s after restart; want %s", n.Endpoint.SubscriptionID, sub)
	}
	if st, b := do("GET", rg+"?api-version=2021-04-01", ""); st != http.StatusOK {
		t.Errorf("GET resource group after restart: %d %s", st, b)
	}
	st, b := do("GET", lb+"?api-version=2025-01-01", "")
	if st != http.StatusOK {
		t.Fatalf("GET load balancer after restart: %d %s", st, b)
	}
	var got struct {
		Name       string `json:"name"`
		Properties struct {
			ProvisioningState string `json:"provisioningState"`
			Pools             []struct {
				Name string `json:"name"`
			} `json:"backendAddressPools"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	if got.Name != "lb-etcd" || len(got.Properties.Pools) != 1 || got.Properties.Pools[0].Name != "be" {
		t.Errorf("load balancer after restart = %s", b)
	}

	// The state is in etcd, under the prefix; no bbolt file was made.
	if _, err := os.Stat(filepath.Join(dir, node.StoreFile)); !os.IsNotExist(err) {
		t.Errorf("%s exists (%v): the node opened bolt", node.StoreFile, err)
	}
	cfg, err := srv.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	resp, err := cli.Get(t.Context(), "", clientv3.WithFromKey(), clientv3.WithKeysOnly())
	if err != nil {
		t.Fatal(err)
	}
	var inPrefix, outside int
	for _, kv := range resp.Kvs {
		if bytes.HasPrefix(kv.Key, []byte(prefix)) {
			inPrefix++
		} else {
			outside++
			t.Errorf("etcd key %q outside the prefix %s", kv.Key, prefix)
		}
	}
	if inPrefix == 0 {
		t.Errorf("no etcd keys under %s", prefix)
	}
}
