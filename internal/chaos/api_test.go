package chaos

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"nimbus/internal/cli"
)

// latencies records the duration of every API request while nimbus runs.
type latencies struct {
	mu   sync.Mutex
	ok   []time.Duration // requests answered (any status)
	errs int             // requests that got no answer
	slow []string        // requests over apiBound
}

func (l *latencies) add(what string, d time.Duration, answered bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if answered {
		l.ok = append(l.ok, d)
	} else {
		l.errs++
	}
	if d > apiBound {
		l.slow = append(l.slow, fmt.Sprintf("%s took %s", what, d.Round(time.Millisecond)))
	}
}

// summary is "n requests, p50, p99, max".
func (l *latencies) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ok) == 0 {
		return "no requests answered"
	}
	s := append([]time.Duration(nil), l.ok...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	q := func(p float64) time.Duration {
		return s[min(len(s)-1, int(p*float64(len(s))))].Round(100 * time.Microsecond)
	}
	return fmt.Sprintf("%d requests answered (p50 %s, p99 %s, max %s), %d unanswered (nimbus down or refusing)",
		len(s), q(0.50), q(0.99), s[len(s)-1].Round(100*time.Microsecond), l.errs)
}

// checkBound fails the test for every request that took longer than
// apiBound.
func (n *nimbus) checkAPIBound() {
	n.t.Helper()
	n.lat.mu.Lock()
	defer n.lat.mu.Unlock()
	for _, s := range n.lat.slow {
		n.t.Errorf("API request over %s: %s", apiBound, s)
	}
}

// do sends one timed API request. An answer of any status counts as
// answered; the returned error is the client's (an *cli.APIError for 4xx
// and 5xx).
func (n *nimbus) do(ctx context.Context, method, path, version string, body any) (*cli.Response, error) {
	return n.doWith(ctx, n.api, method, path, version, body)
}

// doFresh is do over a new connection.
func (n *nimbus) doFresh(ctx context.Context, method, path, version string, body any) (*cli.Response, error) {
	return n.doWith(ctx, n.fresh, method, path, version, body)
}

func (n *nimbus) doWith(ctx context.Context, c *cli.Client, method, path, version string, body any) (*cli.Response, error) {
	start := time.Now()
	resp, err := c.Do(ctx, method, path, version, body)
	var ae *cli.APIError
	n.lat.add(method+" "+path, time.Since(start), err == nil || errors.As(err, &ae))
	return resp, err
}

// must sends a request and fails the test unless it succeeds.
func (n *nimbus) must(ctx context.Context, method, path, version string, body any) *cli.Response {
	n.t.Helper()
	resp, err := n.do(ctx, method, path, version, body)
	if err != nil {
		n.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// put PUTs a resource and waits until its provisioning ends.
func (n *nimbus) put(ctx context.Context, path, version string, body any) {
	n.t.Helper()
	start := time.Now()
	// Not timed: a long-running operation waits for provisioning.
	_, err := n.api.Put(ctx, path, version, body, true)
	if err != nil {
		n.t.Fatalf("PUT %s: %v (after %s)", path, err, time.Since(start))
	}
}

// Paths of the scenarios' resources.
func (n *nimbus) group(rg string) string {
	return "/subscriptions/" + n.api.Subscription + "/resourceGroups/" + rg
}

func (n *nimbus) res(rg, typ, name string) string {
	return n.group(rg) + "/providers/" + typ + "/" + name
}

// lbSpec is one load balancer of a scenario: a public IP, a frontend, a
// pool, an HTTP probe of HealthPort, and one rule port → TrafficPort.
type lbSpec struct {
	rg, name string
	port     int
}

// setupNetwork creates group rg and the virtual network "vn" whose subnet
// "default" holds the instances.
func (n *nimbus) setupNetwork(ctx context.Context, rg string) {
	n.t.Helper()
	n.must(ctx, http.MethodPut, n.group(rg), cli.ResourcesAPIVersion, map[string]any{"location": "eastus"})
	n.put(ctx, n.res(rg, "Microsoft.Network/virtualNetworks", "vn"), cli.NetworkAPIVersion, map[string]any{
		"location": "eastus",
		"properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{subnet.String()}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": subnet.String()}}},
		}})
}

// createLB creates the public IP and load balancer of s and returns the
// frontend address "ip:port".
func (n *nimbus) createLB(ctx context.Context, s lbSpec) string {
	n.t.Helper()
	ip := n.createPublicIP(ctx, s.rg, s.name+"-ip")
	n.putLB(ctx, s)
	return fmt.Sprintf("%s:%d", ip, s.port)
}

// createPublicIP creates a static Standard public IP and returns its
// address.
func (n *nimbus) createPublicIP(ctx context.Context, rg, name string) string {
	n.t.Helper()
	path := n.res(rg, "Microsoft.Network/publicIPAddresses", name)
	n.put(ctx, path, cli.NetworkAPIVersion, map[string]any{
		"location": "eastus", "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{"publicIPAllocationMethod": "Static"}})
	v, err := n.api.Get(ctx, path, cli.NetworkAPIVersion)
	if err != nil {
		n.t.Fatal(err)
	}
	ip, _ := field(v, "properties", "ipAddress").(string)
	if ip == "" {
		n.t.Fatalf("public ip %s has no address: %v", name, v)
	}
	return ip
}

func (n *nimbus) putLB(ctx context.Context, s lbSpec) {
	n.t.Helper()
	if err := n.tryPutLB(ctx, s); err != nil {
		n.t.Fatalf("PUT load balancer %s: %v", s.name, err)
	}
}

// tryPutLB is putLB returning the PUT's (or its operation's) error.
func (n *nimbus) tryPutLB(ctx context.Context, s lbSpec) error {
	n.t.Helper()
	lb := n.res(s.rg, "Microsoft.Network/loadBalancers", s.name)
	ref := func(p string) map[string]any { return map[string]any{"id": lb + p} }
	_, err := n.api.Put(ctx, lb, cli.NetworkAPIVersion, map[string]any{
		"location": "eastus", "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{
			"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{
				"publicIPAddress": map[string]any{"id": n.res(s.rg, "Microsoft.Network/publicIPAddresses", s.name+"-ip")}}}},
			"backendAddressPools": []any{map[string]any{"name": "pool"}},
			"probes": []any{map[string]any{"name": "health", "properties": map[string]any{
				"protocol": "Http", "port": HealthPort, "requestPath": "/health", "intervalInSeconds": 5, "probeThreshold": 1}}},
			"loadBalancingRules": []any{map[string]any{"name": "web", "properties": map[string]any{
				"frontendIPConfiguration": ref("/frontendIPConfigurations/fe"),
				"backendAddressPool":      ref("/backendAddressPools/pool"),
				"probe":                   ref("/probes/health"),
				"protocol":                "Tcp", "frontendPort": s.port, "backendPort": TrafficPort}}},
		}}, true)
	return err
}

// vmssSpec is a scale set of backends behind one load balancer.
type vmssSpec struct {
	rg, name, lb string
	capacity     int
	repairs      bool
}

// createScaleSet creates a scale set of script instances that run the
// chaos Backend (this test binary) and waits for it to provision.
func (n *nimbus) createScaleSet(ctx context.Context, s vmssSpec) {
	n.t.Helper()
	script := fmt.Sprintf("exec env %s=1 %s=%s %s\n", BackendEnv, ControlDirEnv, shellQuote(n.ctl), shellQuote(n.backend))
	lb := n.res(s.rg, "Microsoft.Network/loadBalancers", s.lb)
	n.put(ctx, n.res(s.rg, "Microsoft.Compute/virtualMachineScaleSets", s.name), cli.ComputeAPIVersion, map[string]any{
		"location": "eastus",
		"sku":      map[string]any{"name": "Standard_B1s", "capacity": s.capacity},
		"properties": map[string]any{
			"upgradePolicy":          map[string]any{"mode": "Manual"},
			"automaticRepairsPolicy": map[string]any{"enabled": s.repairs, "gracePeriod": "PT10M"},
			"virtualMachineProfile": map[string]any{
				"osProfile": map[string]any{"computerNamePrefix": s.name, "adminUsername": "azureuser",
					"customData": base64.StdEncoding.EncodeToString([]byte(script))},
				"storageProfile": map[string]any{"imageReference": map[string]any{
					"publisher": "nimbus", "offer": "workloads", "sku": "script", "version": "latest"}},
				"networkProfile": map[string]any{
					"healthProbe": map[string]any{"id": lb + "/probes/health"},
					"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
						"primary": true,
						"ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
							"subnet":                          map[string]any{"id": n.res(s.rg, "Microsoft.Network/virtualNetworks", "vn") + "/subnets/default"},
							"loadBalancerBackendAddressPools": []any{map[string]any{"id": lb + "/backendAddressPools/pool"}},
						}}},
					}}},
				},
			},
		}})
}

// instance is a scale-set instance as the API lists it.
type instance struct {
	ID, Name, State string
}

// instances lists a scale set's instances.
func (n *nimbus) instances(ctx context.Context, rg, vmss string) ([]instance, error) {
	start := time.Now()
	list, err := n.api.List(ctx, n.res(rg, "Microsoft.Compute/virtualMachineScaleSets", vmss)+"/virtualMachines", cli.ComputeAPIVersion)
	var ae *cli.APIError
	n.lat.add("GET instances", time.Since(start), err == nil || errors.As(err, &ae))
	if err != nil {
		return nil, err
	}
	var out []instance
	for _, v := range list {
		in := instance{}
		in.ID, _ = field(v, "instanceId").(string)
		in.Name, _ = field(v, "name").(string)
		in.State, _ = field(v, "properties", "provisioningState").(string)
		out = append(out, in)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// field walks decoded JSON.
func field(v any, path ...string) any {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[k]
	}
	return v
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
