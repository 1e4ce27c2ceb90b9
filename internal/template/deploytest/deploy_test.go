// Package deploytest deploys templates on a whole running nimbus (process
// driver, userspace proxy) and checks that traffic reaches the instances
// through the load balancer: the az vmss create body and the seed scenario.
package deploytest

// Address plan: public IPs come from one loopback /24 per test in
// 127.78.0.0/16; instances' customer addresses are 10.0.0.0/24, mapped by the
// process driver to provider addresses on loopback. Traffic goes only to
// loopback.

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"nimbus/internal/node"
	"nimbus/internal/poll"
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

// start starts a nimbus whose public IPs come from publicPool (a loopback
// prefix of its own, so tests and other nimbus instances do not share
// frontends) with an empty group rg.
func start(t *testing.T, publicPool string) *nimbus {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	sys, err := system.Start(context.Background(), system.Options{
		Node:      node.Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", PublicPool: netip.MustParsePrefix(publicPool)},
		Driver:    system.Process,
		Dataplane: system.Proxy,
		// Pools of its own: nimbus refuses to start in pools another
		// nimbus on the host (another test package) is using.
		ProviderPool:  netip.MustParsePrefix("127.112.0.0/16"),
		InternalPool:  netip.MustParsePrefix("127.113.0.0/16"),
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
		// Delete the scale sets and wait until their instances are gone (the
		// process driver keeps instances across restarts), then stop.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_, _, b := n.call(http.MethodGet, "/subscriptions/"+n.sub+"/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets?api-version=2020-06-01", nil)
		var list struct{ Value []struct{ ID string } }
		_ = json.Unmarshal(b, &list)
		for _, v := range list.Value {
			n.call(http.MethodDelete, v.ID+"?api-version=2020-06-01", nil)
			if err := sys.VMSS.WaitConverged(ctx, v.ID); err != nil {
				t.Errorf("delete %s: %v", v.ID, err)
			}
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

// poll waits with poll.Until, until ctx's deadline, for cond to report
// that it holds; cond also returns the state it saw, for the failure.
func (n *nimbus) poll(ctx context.Context, what string, cond func() (bool, string)) {
	n.t.Helper()
	deadline, ok := ctx.Deadline()
	if !ok {
		n.t.Fatalf("waiting for %s: ctx has no deadline", what)
	}
	poll.Until(n.t, time.Until(deadline), what, func() error {
		if ok, state := cond(); !ok {
			return fmt.Errorf("state %s", state)
		}
		return nil
	})
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
	n := start(t, "127.78.31.0/24")
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
	n := start(t, "127.78.32.0/24")
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

// az runs az 2.45 with env and returns its standard output.
func az(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/usr/bin/az", args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("az %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	return stdout.Bytes()
}

// azLogin prepares an isolated az configuration for n (arm-clients.md §0).
func azLogin(t *testing.T, n *nimbus) []string {
	t.Helper()
	if _, err := os.Stat("/usr/bin/az"); errors.Is(err, fs.ErrNotExist) {
		t.Skipf("az CLI not installed (apt-get install azure-cli): %v", err)
	} else if err != nil {
		t.Fatal(err)
	}
	ep := n.sys.Node.Endpoint
	env := append(os.Environ(),
		"AZURE_CONFIG_DIR="+t.TempDir(),
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE="+ep.CAFile,
		"MSI_ENDPOINT="+ep.MSIEndpoint,
	)
	az(t, env, "cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", ep.Endpoint, "--profile", "2020-09-01-hybrid")
	az(t, env, "cloud", "set", "-n", "Nimbus")
	az(t, env, "login", "--identity")
	return env
}

// TestAZCreateFlow is the az walk-through: a load balancer from
// az network lb create (a template deployment), a probe, a rule and a NAT
// pool, a scale set on it from az vmss create --lb (another deployment),
// a scale-out, the connection info, and traffic through the frontend.
func TestAZCreateFlow(t *testing.T) {
	n := start(t, "127.78.33.0/24")
	env := azLogin(t, n)
	az(t, env, "network", "lb", "create", "-g", "rg", "-n", "lb1", "--public-ip-address", "pip1")
	az(t, env, "network", "lb", "probe", "create", "-g", "rg", "--lb-name", "lb1", "-n", "http", "--protocol", "http", "--port", "80", "--path", "/health")
	az(t, env, "network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb1", "-n", "http", "--protocol", "tcp",
		"--frontend-port", "80", "--backend-port", "80", "--frontend-ip-name", "LoadBalancerFrontEnd", "--backend-pool-name", "lb1bepool", "--probe-name", "http")
	az(t, env, "network", "lb", "inbound-nat-pool", "create", "-g", "rg", "--lb-name", "lb1", "-n", "ssh", "--protocol", "tcp",
		"--frontend-port-range-start", "50000", "--frontend-port-range-end", "50119", "--backend-port", "22", "--frontend-ip-name", "LoadBalancerFrontEnd")
	az(t, env, "vmss", "create", "-g", "rg", "-n", "vmss1", "--image", "nimbus:workloads:echo:latest",
		"--lb", "lb1", "--backend-pool-name", "lb1bepool", "--admin-username", "azureuser", "--admin-password", "Secr3t-Passw0rd!", "--instance-count", "3")
	info := az(t, env, "vmss", "list-instance-connection-info", "-g", "rg", "-n", "vmss1", "-o", "json")
	var conn map[string]string
	if err := json.Unmarshal(info, &conn); err != nil || len(conn) != 3 {
		t.Fatalf("list-instance-connection-info: %v %s", err, info)
	}
	ip := strings.TrimSpace(string(az(t, env, "network", "public-ip", "list", "-g", "rg", "--query", "[?name=='pip1'].ipAddress", "-o", "tsv")))
	seen := map[string]int{}
	if !reachesAll(ip+":80", 3, 20*time.Second, seen) {
		_, _, health := n.call(http.MethodPost, "/subscriptions/"+n.sub+"/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/loadBalancingRules/http/health?api-version=2024-05-01", nil)
		t.Fatalf("HTTP through lb1 reached %v; rule health %s", seen, health)
	}
	for inst, addr := range conn {
		line, err := banner(addr)
		if err != nil || !strings.HasPrefix(line, "SSH-2.0-nimbus vmss1_") {
			t.Errorf("%s at %s: %q %v", inst, addr, line, err)
		}
	}
	// az 2.45's vmss scale PUTs only {location, sku}; Azure keeps the rest
	// of the model. --no-wait and a check, so that a server that drops the
	// model is reported instead of hanging az.
	vmssPath := "/subscriptions/" + n.sub + "/resourceGroups/rg/providers/Microsoft.Compute/virtualMachineScaleSets/vmss1?api-version=2020-06-01"
	az(t, env, "vmss", "scale", "-g", "rg", "-n", "vmss1", "--new-capacity", "4", "--no-wait")
	if _, _, b := n.call(http.MethodGet, vmssPath, nil); !strings.Contains(string(b), `"virtualMachineProfile"`) {
		t.Fatalf("az vmss scale (which PUTs only {location, sku}) dropped the scale set's virtualMachineProfile; the model after the scale was %s", b)
	}
	if !reachesAll(ip+":80", 4, 20*time.Second, seen) {
		t.Fatalf("after az vmss scale, HTTP through lb1 reached %v", seen)
	}
}

// reachesAll sends requests to addr (at most 2000, for at most timeout)
// until want distinct instances answered; seen counts the answers.
func reachesAll(addr string, want int, timeout time.Duration, seen map[string]int) bool {
	deadline := time.Now().Add(timeout)
	for i := 0; i < 2000 && time.Now().Before(deadline); i++ {
		if name, err := hitHTTP(addr); err == nil {
			seen[name]++
		}
		if len(seen) >= want {
			return true
		}
	}
	return false
}

// TestAZVMSSCreateStandardLB: az vmss create with a new Standard load
// balancer, which az builds with a network security group (stored, not
// enforced by nimbus) and a NAT pool, and traffic reaching the instances.
func TestAZVMSSCreateStandardLB(t *testing.T) {
	n := start(t, "127.78.34.0/24")
	env := azLogin(t, n)
	az(t, env, "vmss", "create", "-g", "rg", "-n", "std", "--image", "nimbus:workloads:echo:latest", "--lb-sku", "Standard",
		"--admin-username", "azureuser", "--admin-password", "Secr3t-Passw0rd!", "--instance-count", "2")
	// az 2.45's list-instance-connection-info crashes on a Standard LB's NAT
	// rule v2 before sending anything (Debian's hybrid-profile network model
	// lacks loadBalancerBackendAddresses), so check the instances and the
	// traffic through the LBRule (80 → 80) that az made instead.
	var vms []map[string]any
	if err := json.Unmarshal(az(t, env, "vmss", "list-instances", "-g", "rg", "-n", "std", "-o", "json"), &vms); err != nil || len(vms) != 2 {
		t.Fatalf("az vmss list-instances: %v, %d instances", err, len(vms))
	}
	ip := strings.TrimSpace(string(az(t, env, "network", "public-ip", "list", "-g", "rg", "--query", "[?name=='stdLBPublicIP'].ipAddress", "-o", "tsv")))
	seen := map[string]int{}
	if !reachesAll(ip+":80", 2, 20*time.Second, seen) {
		t.Fatalf("HTTP through the Standard LB reached %v", seen)
	}
}
