// Package deploytest deploys templates on a whole running nimbus (process
// driver, userspace proxy) and checks that traffic reaches the instances
// through the load balancer: the az vmss create body and the seed scenario.
package deploytest

// Address plan: public IPs come from nimbus's default pool 127.77.0.0/16
// (loopback); instances' customer addresses are 10.0.0.0/24, mapped by the
// process driver to provider addresses on loopback. Traffic goes only to
// loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"nimbus/internal/node"
	"nimbus/internal/system"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// nimbus is a running system and an HTTPS client for its API.
type nimbus struct {
	t      *testing.T
	sys    *system.System
	client *http.Client
	base   string
	sub    string
	token  string
}

func start(t *testing.T) *nimbus {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	sys, err := system.Start(context.Background(), system.Options{
		Node:          node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0"},
		Driver:        system.Process,
		Dataplane:     system.Proxy,
		WorkloadEnv:   map[string]string{workload.ReexecEnv: "1"},
		Resync:        200 * time.Millisecond,
		ProbeInterval: 300 * time.Millisecond,
		RepairGrace:   time.Second,
		MetricsListen: "off",
	})
	if err != nil {
		t.Fatalf("start nimbus: %v", err)
	}
	ep := sys.Node.Endpoint
	pem, err := os.ReadFile(ep.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	tok, _, err := sys.Node.Issuer.Mint(ep.Audience, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	n := &nimbus{t: t, sys: sys, base: ep.Endpoint, sub: ep.SubscriptionID, token: tok,
		client: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}}
	t.Cleanup(func() {
		// Delete the group (and so the scale sets) so no instance outlives the test.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if st, _, _ := n.call(http.MethodDelete, "/subscriptions/"+n.sub+"/resourcegroups/rg?api-version=2021-04-01", nil); st == http.StatusAccepted {
			n.poll(ctx, "group deleted", func() (bool, string) {
				st, _, _ := n.call(http.MethodGet, "/subscriptions/"+n.sub+"/resourcegroups/rg?api-version=2021-04-01", nil)
				return st == http.StatusNotFound, fmt.Sprint(st)
			})
		}
		if err := sys.Stop(); err != nil {
			t.Errorf("stop nimbus: %v", err)
		}
	})
	if st, _, b := n.call(http.MethodPut, "/subscriptions/"+n.sub+"/resourcegroups/rg?api-version=2021-04-01", map[string]any{"location": "eastus"}); st != http.StatusCreated {
		t.Fatalf("create group: %d %s", st, b)
	}
	return n
}

// call sends one ARM request.
func (n *nimbus) call(method, path string, body any) (int, http.Header, []byte) {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			n.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, n.base+path, rd)
	if err != nil {
		n.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+n.token)
	req.Header.Set("Content-Type", "application/json")
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

// poll checks cond every 10 ms until it holds or ctx ends.
func (n *nimbus) poll(ctx context.Context, what string, cond func() (bool, string)) {
	n.t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	last := ""
	for {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		select {
		case <-ctx.Done():
			n.t.Fatalf("timed out waiting for %s; last state: %s", what, last)
		case <-tick.C:
		}
	}
}

// deploy PUTs a deployment and waits for it to end; it returns the
// deployment and the time from the PUT to its terminal state.
func (n *nimbus) deploy(ctx context.Context, name string, body map[string]any) (map[string]any, time.Duration) {
	n.t.Helper()
	path := "/subscriptions/" + n.sub + "/resourceGroups/rg/providers/Microsoft.Resources/deployments/" + name + "?api-version=2019-10-01"
	start := time.Now()
	if st, _, b := n.call(http.MethodPut, path, body); st != http.StatusCreated {
		n.t.Fatalf("PUT deployment: %d %s", st, b)
	}
	var d map[string]any
	n.poll(ctx, "deployment "+name, func() (bool, string) {
		st, _, b := n.call(http.MethodGet, path, nil)
		if st != http.StatusOK || json.Unmarshal(b, &d) != nil {
			return false, string(b)
		}
		state, _ := d["properties"].(map[string]any)["provisioningState"].(string)
		return state != "Accepted" && state != "Running", state
	})
	took := time.Since(start)
	if p := d["properties"].(map[string]any); p["provisioningState"] != "Succeeded" {
		n.t.Fatalf("deployment %s: %v", name, p)
	}
	return d, took
}

// banner reads the SSH-style banner of a NAT port.
func banner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// hitHTTP returns the name of the instance answering GET / at addr.
func hitHTTP(addr string) (string, error) {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := c.Get("http://" + addr + "/")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var r workload.EchoReply
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return "", err
	}
	return r.Name, nil
}

// readTestdata reads a file of the template package's testdata.
func readTestdata(t *testing.T, name string) map[string]any {
	t.Helper()
	b, err := os.ReadFile("../testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestAzVMSSCreateBody deploys the body az vmss create sends, with three
// instances of nimbus's echo image, and waits for the NAT pool's ports to
// answer.
func TestAzVMSSCreateBody(t *testing.T) {
	n := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	body := readTestdata(t, "az-vmss-create.json")
	js, _ := json.Marshal(body)
	if err := json.Unmarshal([]byte(strings.ReplaceAll(string(js), "00000000-0000-0000-0000-000000000001", n.sub)), &body); err != nil {
		t.Fatal(err)
	}
	for _, r := range body["properties"].(map[string]any)["template"].(map[string]any)["resources"].([]any) {
		rm := r.(map[string]any)
		switch rm["type"] {
		case "Microsoft.Compute/virtualMachineScaleSets":
			rm["sku"].(map[string]any)["capacity"] = 3
			sp := rm["properties"].(map[string]any)["virtualMachineProfile"].(map[string]any)["storageProfile"].(map[string]any)
			sp["imageReference"] = map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}
		case "Microsoft.Network/loadBalancers":
			// Azure's default for a load balancer without a sku at this
			// api-version, matching the public IP beside it (see the report
			// on nimbus's LB sku default).
			rm["sku"] = map[string]any{"name": "Basic"}
		}
	}
	start := time.Now()
	_, took := n.deploy(ctx, "vmss_deploy", body)
	t.Logf("az vmss create template (3 instances): PUT to Succeeded in %v", took.Round(time.Millisecond))
	st, _, b := n.call(http.MethodGet, "/subscriptions/"+n.sub+"/resourceGroups/rg/providers/Microsoft.Network/publicIPAddresses/vmss1LBPublicIP?api-version=2022-07-01", nil)
	var pip struct {
		Properties struct{ IPAddress string } `json:"properties"`
	}
	if st != http.StatusOK || json.Unmarshal(b, &pip) != nil || pip.Properties.IPAddress == "" {
		t.Fatalf("public IP: %d %s", st, b)
	}
	seen := map[string]bool{}
	n.poll(ctx, "3 instances answering on the NAT pool", func() (bool, string) {
		for port := 50000; port < 50006; port++ {
			if line, err := banner(fmt.Sprintf("%s:%d", pip.Properties.IPAddress, port)); err == nil && strings.HasPrefix(line, "SSH-2.0-nimbus vmss1_") {
				seen[line] = true
			}
		}
		return len(seen) == 3, fmt.Sprint(seen)
	})
	t.Logf("az vmss create template (3 instances): PUT to traffic on every NAT port in %v", time.Since(start).Round(time.Millisecond))
}

// TestSeedScenario deploys the seed scenario: a scale set behind a Standard
// load balancer with a NAT pool, an HTTP probe used as the scale set's
// health probe, and an outbound rule with disableOutboundSnat on the rules.
func TestSeedScenario(t *testing.T) {
	n := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	tmpl := readTestdata(t, "seed-scenario.json")
	body := map[string]any{"properties": map[string]any{"mode": "Incremental", "template": tmpl,
		"parameters": map[string]any{"adminPassword": map[string]any{"value": "Secr3t-Passw0rd!"}}}}
	start := time.Now()
	d, took := n.deploy(ctx, "seed", body)
	t.Logf("seed scenario (3 instances): PUT to Succeeded in %v", took.Round(time.Millisecond))
	outs := d["properties"].(map[string]any)["outputs"].(map[string]any)
	vip, _ := outs["frontendIP"].(map[string]any)["value"].(string)
	if net.ParseIP(vip) == nil || outs["lbSku"].(map[string]any)["value"] != "Standard" {
		t.Fatalf("outputs = %v", outs)
	}
	seen := map[string]int{}
	n.poll(ctx, "HTTP through the frontend reaching 3 instances", func() (bool, string) {
		for range 12 {
			if name, err := hitHTTP(vip + ":80"); err == nil {
				seen[name]++
			}
		}
		return len(seen) == 3, fmt.Sprint(seen)
	})
	t.Logf("seed scenario (3 instances): PUT to traffic on all 3 instances in %v", time.Since(start).Round(time.Millisecond))
	line, err := banner(vip + ":50000")
	if err != nil || !strings.HasPrefix(line, "SSH-2.0-nimbus web_") {
		t.Errorf("NAT port 50000: %q %v", line, err)
	}
}
