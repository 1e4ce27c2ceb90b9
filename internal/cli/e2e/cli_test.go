// Package e2e runs the nimbus CLI verbs end to end against a whole
// in-process nimbus. It is a package of its own so the CLI's unit tests
// build without the server.
package e2e

// Address plan: public IPs come from 127.79.0.0/24 (loopback; userspace
// proxy engine); instances' customer addresses from 10.0.0.0/24, mapped by
// the process driver to provider addresses in 127.101.79.0/24. Both pools
// are this test's own, so nimbus tests of other packages running at the
// same time cannot collide with it. Traffic goes only to loopback.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"nimbus/internal/cli"
	"nimbus/internal/node"
	"nimbus/internal/poll"
	"nimbus/internal/system"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// cliEnv runs CLI verbs against a whole in-process nimbus.
type cliEnv struct {
	t   *testing.T
	ctx context.Context
	dir string
	sub string
}

func startNimbus(t *testing.T) *cliEnv {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	t.Cleanup(cancel)
	sys, err := system.Start(ctx, system.Options{
		Node:          node.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicPool: netip.MustParsePrefix("127.79.0.0/24")},
		Driver:        system.Process,
		Dataplane:     system.Proxy,
		ProviderPool:  netip.MustParsePrefix("127.101.79.0/24"),
		InternalPool:  netip.MustParsePrefix("127.116.0.0/16"), // its own: nimbus refuses pools another nimbus on the host uses
		WorkloadEnv:   map[string]string{workload.ReexecEnv: "1"},
		Resync:        200 * time.Millisecond,
		ProbeInterval: 300 * time.Millisecond,
		RepairGrace:   time.Second,
		MetricsListen: "off",
	})
	if err != nil {
		t.Fatalf("start nimbus: %v", err)
	}
	e := &cliEnv{t: t, ctx: ctx, dir: dir, sub: sys.Node.Endpoint.SubscriptionID}
	t.Cleanup(func() {
		// Delete the scale sets so no instance outlives the test, then stop.
		for _, name := range []string{"web"} {
			_, _ = e.try("vmss", "delete", "-g", "rg", "-n", name)
		}
		if err := sys.Stop(); err != nil {
			t.Logf("stop: %v", err)
		}
	})
	return e
}

// try runs one command line with the data directory of the test's nimbus.
func (e *cliEnv) try(args ...string) (string, error) {
	var out, errOut bytes.Buffer
	err := cli.Run(e.ctx, append(args, "--data-dir", e.dir), &out, &errOut)
	return out.String(), err
}

// run runs a command line that must succeed.
func (e *cliEnv) run(args ...string) string {
	e.t.Helper()
	out, err := e.try(args...)
	if err != nil {
		e.t.Fatalf("nimbus %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// json runs a command line and decodes its JSON output.
func (e *cliEnv) json(args ...string) any {
	e.t.Helper()
	out := e.run(args...)
	var v any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		e.t.Fatalf("nimbus %s: output is not JSON: %v\n%s", strings.Join(args, " "), err, out)
	}
	return v
}

// fails runs a command line that must fail with exit code and code/text in its message.
func (e *cliEnv) fails(exit int, want string, args ...string) error {
	e.t.Helper()
	_, err := e.try(args...)
	code := 0
	if err != nil {
		code = 1 // what cmd/nimbus exits with for errors without an exit code
	}
	var ec interface{ ExitCode() int }
	if errors.As(err, &ec) {
		code = ec.ExitCode()
	}
	if code != exit || !strings.Contains(err.Error(), want) {
		e.t.Fatalf("nimbus %s: err = %v, want exit %d with %q", strings.Join(args, " "), err, exit, want)
	}
	return err
}

// in returns e reporting to subtest t.
func (e *cliEnv) in(t *testing.T) *cliEnv {
	c := *e
	c.t = t
	return &c
}

func (e *cliEnv) waitFor(what string, timeout time.Duration, cond func() (bool, string)) {
	e.t.Helper()
	poll.Until(e.t, timeout, what, func() error {
		if ok, state := cond(); !ok {
			return fmt.Errorf("state: %s", state)
		}
		return nil
	})
}

// field returns m[key] when v is a JSON object, else nil.
func field(v any, key string) any {
	m, _ := v.(map[string]any)
	return m[key]
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func banner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// TestCLIEndToEnd drives every resource family through the CLI verbs
// against a real nimbus (API, controllers, process driver, proxy engine).
func TestCLIEndToEnd(t *testing.T) {
	e := startNimbus(t)

	t.Run("group", func(t *testing.T) {
		e := e.in(t)
		g := e.json("group", "create", "-n", "rg", "-l", "eastus")
		if field(g, "location") != "eastus" || field(field(g, "properties"), "provisioningState") != "Succeeded" {
			t.Fatalf("group = %v", g)
		}
		if out := e.run("group", "exists", "-n", "rg"); out != "true\n" {
			t.Errorf("exists = %q", out)
		}
		if out := e.run("group", "exists", "-n", "nope"); out != "false\n" {
			t.Errorf("exists nope = %q", out)
		}
		if out := e.run("group", "list", "-o", "table"); !strings.Contains(out, "rg    eastus    Succeeded") {
			t.Errorf("table:\n%s", out)
		}
	})

	t.Run("vnet and subnets", func(t *testing.T) {
		e := e.in(t)
		v := e.json("network", "vnet", "create", "-g", "rg", "-n", "vn", "--subnet-name", "default")
		if field(field(v, "newVNet"), "name") != "vn" {
			t.Fatalf("vnet = %v", v)
		}
		e.run("network", "vnet", "subnet", "create", "-g", "rg", "--vnet-name", "vn", "-n", "s2", "--address-prefixes", "10.0.1.0/24")
		if out := e.run("network", "vnet", "subnet", "list", "-g", "rg", "--vnet-name", "vn", "--query", "[].name", "-o", "tsv"); out != "default\ns2\n" {
			t.Errorf("subnets = %q", out)
		}
		if out := e.run("network", "vnet", "subnet", "show", "-g", "rg", "--vnet-name", "vn", "-n", "s2", "--query", "addressPrefix", "-o", "tsv"); out != "10.0.1.0/24\n" {
			t.Errorf("subnet prefix = %q", out)
		}
		e.run("network", "vnet", "subnet", "delete", "-g", "rg", "--vnet-name", "vn", "-n", "s2")
		if out := e.run("network", "vnet", "list", "-g", "rg", "--query", "[0].subnets[].name", "-o", "tsv"); out != "default\n" {
			t.Errorf("after delete = %q", out)
		}
	})

	lb := func(args ...string) []string {
		return append(append([]string{"network", "lb"}, args...), "-g", "rg", "--lb-name", "lb1")
	}
	t.Run("public ip and load balancer", func(t *testing.T) {
		e := e.in(t)
		p := e.json("network", "public-ip", "create", "-g", "rg", "-n", "pip1")
		ip, _ := field(field(p, "publicIp"), "ipAddress").(string)
		if a, err := netip.ParseAddr(ip); err != nil || !netip.MustParsePrefix("127.79.0.0/24").Contains(a) {
			t.Fatalf("public ip = %v", p)
		}
		if out := e.run("network", "public-ip", "show", "-g", "rg", "-n", "pip1", "--query", "[sku.name, publicIPAllocationMethod]", "-o", "tsv"); out != "Standard\nStatic\n" {
			t.Errorf("pip = %q", out)
		}
		l := e.json("network", "lb", "create", "-g", "rg", "-n", "lb1", "--public-ip-address", "pip1")
		lbp := field(l, "loadBalancer")
		if n := field(asList(field(lbp, "frontendIPConfigurations"))[0], "name"); n != "LoadBalancerFrontEnd" {
			t.Errorf("frontend = %v", n)
		}
		if n := field(asList(field(lbp, "backendAddressPools"))[0], "name"); n != "lb1bepool" {
			t.Errorf("pool = %v", n)
		}

		probe := e.json(lb("probe", "create", "-n", "tcp80", "--protocol", "tcp", "--port", "80")...)
		if field(probe, "protocol") != "Tcp" || field(probe, "port") != 80.0 {
			t.Errorf("probe = %v", probe)
		}
		rule := e.json(lb("rule", "create", "-n", "http", "--protocol", "Tcp", "--frontend-port", "80", "--backend-port", "80", "--probe-name", "tcp80")...)
		if id, _ := field(field(rule, "frontendIPConfiguration"), "id").(string); !strings.HasSuffix(id, "/frontendIPConfigurations/LoadBalancerFrontEnd") {
			t.Errorf("rule frontend = %v", rule)
		}
		if id, _ := field(field(rule, "backendAddressPool"), "id").(string); !strings.HasSuffix(id, "/backendAddressPools/lb1bepool") {
			t.Errorf("rule pool = %v", rule)
		}
		if out := e.run(lb("rule", "update", "-n", "http", "--idle-timeout", "10", "--set", "enableTcpReset=true", "--query", "{i:idleTimeoutInMinutes, r:enableTcpReset, d:loadDistribution}", "-o", "tsv")...); out != "10\tTrue\tDefault\n" {
			t.Errorf("rule update = %q", out)
		}
		e.fails(cli.ExitUsage, "argument --protocol: invalid choice: 'Icmp'", lb("probe", "create", "-n", "bad", "--protocol", "Icmp", "--port", "1")...)
		e.fails(cli.ExitUsage, "argument --floating-ip: invalid value 'maybe'", lb("rule", "update", "-n", "http", "--floating-ip", "maybe")...)
		e.fails(cli.ExitError, "Property 'nope' does not exist", lb("rule", "show", "-n", "nope")...)

		e.run(lb("inbound-nat-rule", "create", "-n", "ssh0", "--protocol", "Tcp", "--frontend-port", "6000", "--backend-port", "22")...)
		if out := e.run(lb("inbound-nat-rule", "list", "--query", "[].{n:name, f:frontendPort, b:backendPort}", "-o", "tsv")...); out != "ssh0\t6000\t22\n" {
			t.Errorf("nat rules = %q", out)
		}
		e.run(lb("inbound-nat-rule", "delete", "-n", "ssh0")...)

		// Outbound rule on the rule's frontend: Azure wants the rule's SNAT off (R4).
		e.fails(cli.ExitError, "LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule",
			lb("outbound-rule", "create", "-n", "out", "--frontend-ip-configs", "LoadBalancerFrontEnd", "--address-pool", "lb1bepool", "--protocol", "All", "--outbound-ports", "1024")...)
		e.run(lb("rule", "update", "-n", "http", "--disable-outbound-snat", "true")...)
		o := e.json(lb("outbound-rule", "create", "-n", "out", "--frontend-ip-configs", "LoadBalancerFrontEnd", "--address-pool", "lb1bepool", "--protocol", "All", "--outbound-ports", "1024")...)
		if field(o, "allocatedOutboundPorts") != 1024.0 || len(asList(field(o, "frontendIPConfigurations"))) != 1 {
			t.Errorf("outbound rule = %v", o)
		}

		e.run("network", "public-ip", "create", "-g", "rg", "-n", "pip2")
		e.run(lb("frontend-ip", "create", "-n", "fe2", "--public-ip-address", "pip2")...)
		e.run(lb("address-pool", "create", "-n", "pool2")...)
		if out := e.run(lb("address-pool", "list", "--query", "[].name", "-o", "tsv")...); out != "lb1bepool\npool2\n" {
			t.Errorf("pools = %q", out)
		}
		e.run(lb("address-pool", "delete", "-n", "pool2")...)
		e.run(lb("frontend-ip", "delete", "-n", "fe2")...)
		if out := e.run(lb("frontend-ip", "list", "--query", "length(@)")...); out != "1\n" {
			t.Errorf("frontends = %q", out)
		}
		if out := e.run("network", "lb", "update", "-g", "rg", "-n", "lb1", "--set", "tags.env=test", "--query", "tags.env", "-o", "tsv"); out != "test\n" {
			t.Errorf("lb update = %q", out)
		}
		if out := e.run("network", "lb", "list", "-g", "rg", "-o", "table"); !strings.Contains(out, "lb1") || !strings.HasPrefix(out, "Location  Name") {
			t.Errorf("lb table:\n%s", out)
		}
		e.run("network", "lb", "delete", "-g", "rg", "-n", "lb1")
		e.fails(cli.ExitError, "(ResourceNotFound)", "network", "lb", "show", "-g", "rg", "-n", "lb1")
	})

	t.Run("vmss with the default load balancer", func(t *testing.T) {
		e := e.in(t)
		v := e.json("vmss", "create", "-g", "rg", "-n", "web", "--image", "nimbus:workloads:echo:latest", "--instance-count", "2", "--upgrade-policy-mode", "Automatic")
		nics := asList(field(field(field(field(v, "vmss"), "virtualMachineProfile"), "networkProfile"), "networkInterfaceConfigurations"))
		ipc := asList(field(field(nics[0], "properties"), "ipConfigurations"))
		if sn, _ := field(field(field(ipc[0], "properties"), "subnet"), "id").(string); !strings.HasSuffix(sn, "/virtualNetworks/vn/subnets/default") {
			t.Errorf("vmss did not reuse the group's subnet: %v", sn)
		}
		nat := e.run("network", "lb", "show", "-g", "rg", "-n", "webLB", "--query",
			"inboundNatPools[].[name, protocol, frontendPortRangeStart, frontendPortRangeEnd, backendPort]", "-o", "tsv")
		if nat != "webLBNatPool\tTcp\t50000\t50119\t22\n" {
			t.Errorf("NAT pool = %q", nat)
		}
		rule := e.run("network", "lb", "rule", "show", "-g", "rg", "--lb-name", "webLB", "-n", "LBRule", "--query", "[protocol, frontendPort, backendPort, idleTimeoutInMinutes, probe]", "-o", "json")
		if strings.Join(strings.Fields(rule), "") != `["Tcp",80,80,5,null]` {
			t.Errorf("LBRule = %s", rule)
		}
		if out := e.run("vmss", "list", "-g", "rg", "-o", "table"); !strings.Contains(out, "web   rg             eastus") {
			t.Errorf("vmss table:\n%s", out)
		}

		conn := func(want int) map[string]any {
			var m map[string]any
			e.waitFor("NAT ports of the instances", 90*time.Second, func() (bool, string) {
				out, err := e.try("vmss", "list-instance-connection-info", "-g", "rg", "-n", "web")
				if err != nil {
					return false, err.Error()
				}
				m = nil
				_ = json.Unmarshal([]byte(out), &m)
				return len(m) == want, out
			})
			return m
		}
		m := conn(2)
		for inst, addr := range m {
			id := strings.TrimPrefix(inst, "instance ")
			e.waitFor("banner of "+inst, 30*time.Second, func() (bool, string) {
				b, err := banner(addr.(string))
				if err != nil {
					return false, err.Error()
				}
				return strings.Contains(b, "web_"+id), b
			})
		}

		if out := e.run("vmss", "scale", "-g", "rg", "-n", "web", "--new-capacity", "3", "--query", "sku.capacity"); out != "3\n" {
			t.Errorf("scale = %q", out)
		}
		conn(3)

		// The documented way to change a rule whose probe is the scale set's health probe (R1).
		e.run("network", "lb", "probe", "create", "-g", "rg", "--lb-name", "webLB", "-n", "http", "--protocol", "Http", "--port", "80", "--path", "/")
		e.run("network", "lb", "rule", "update", "-g", "rg", "--lb-name", "webLB", "-n", "LBRule", "--probe-name", "http")
		probeID := "/subscriptions/" + e.sub + "/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/webLB/probes/http"
		e.run("vmss", "update", "-g", "rg", "-n", "web", "--set", "virtualMachineProfile.networkProfile.healthProbe.id="+probeID)
		err := e.fails(cli.ExitError, "(CannotModifyRuleUsedByProbeUsedByVMSS)", "network", "lb", "rule", "update", "-g", "rg", "--lb-name", "webLB", "-n", "LBRule", "--backend-port", "8080")
		if !strings.Contains(err.Error(), "\nCode: CannotModifyRuleUsedByProbeUsedByVMSS\nMessage: Load balancer rule ") {
			t.Errorf("error format:\n%s", err)
		}
		if out := e.run("vmss", "update", "-g", "rg", "-n", "web", "--remove", "virtualMachineProfile.networkProfile.healthProbe", "--query", "virtualMachineProfile.networkProfile.healthProbe"); out != "" {
			t.Errorf("health probe still set: %q", out)
		}
		if out := e.run("network", "lb", "rule", "update", "-g", "rg", "--lb-name", "webLB", "-n", "LBRule", "--backend-port", "8080", "--query", "backendPort"); out != "8080\n" {
			t.Errorf("backend port = %q", out)
		}

		// Instance actions.
		e.run("vmss", "stop", "-g", "rg", "-n", "web", "--instance-ids", "0")
		e.waitFor("instance 0 stopped", 30*time.Second, func() (bool, string) {
			out := e.run("vmss", "get-instance-view", "-g", "rg", "-n", "web", "--instance-id", "0", "--query", "statuses[?starts_with(code, 'PowerState')].code", "-o", "tsv")
			return out == "PowerState/stopped\n", out
		})
		e.run("vmss", "start", "-g", "rg", "-n", "web")
		e.run("vmss", "restart", "-g", "rg", "-n", "web", "--instance-ids", "0", "1")
		e.run("vmss", "update-instances", "-g", "rg", "-n", "web", "--instance-ids", "*")
		e.run("vmss", "reimage", "-g", "rg", "-n", "web", "--instance-ids", "1")
		e.run("vmss", "delete-instances", "-g", "rg", "-n", "web", "--instance-ids", "2")
		if out := e.run("vmss", "list-instances", "-g", "rg", "-n", "web", "--query", "sort([].instanceId)", "-o", "tsv"); out != "0\n1\n" {
			t.Errorf("instances = %q", out)
		}
		if out := e.run("vmss", "show", "-g", "rg", "-n", "web", "--instance-id", "1", "--query", "name", "-o", "tsv"); out != "web_1\n" {
			t.Errorf("instance = %q", out)
		}
		e.fails(cli.ExitError, "(ResourceNotFound)", "vmss", "show", "-g", "rg", "-n", "nope")
		e.run("vmss", "delete", "-g", "rg", "-n", "web")
		if out := e.run("vmss", "list", "-g", "rg"); strings.TrimSpace(out) != "[]" {
			t.Errorf("after delete: %s", out)
		}
	})

	t.Run("group delete", func(t *testing.T) {
		e := e.in(t)
		e.fails(cli.ExitError, "Use --yes", "group", "delete", "-n", "rg")
		e.run("group", "delete", "-n", "rg", "--yes")
		if out := e.run("group", "exists", "-n", "rg"); out != "false\n" {
			t.Errorf("exists after delete = %q", out)
		}
	})
}

// TestClientAPI uses the client as the demo does, from Go: create a scale
// set with az's defaults and read the NAT ports of its instances.
func TestClientAPI(t *testing.T) {
	e := startNimbus(t)
	c, err := cli.NewClient(e.ctx, cli.Config{DataDir: e.dir})
	if err != nil {
		t.Fatal(err)
	}
	c.FirstPoll = 20 * time.Millisecond
	if _, err := c.Put(e.ctx, c.GroupPath("rg"), cli.ResourcesAPIVersion, map[string]any{"location": "westus"}, true); err != nil {
		t.Fatal(err)
	}
	loc, err := c.GroupLocation(e.ctx, "rg")
	if err != nil || loc != "westus" {
		t.Fatalf("location %q, %v", loc, err)
	}
	v, err := c.CreateVMSS(e.ctx, &cli.VMSSCreate{RG: "rg", Name: "web", Location: loc, Image: "echo", InstanceCount: 2}, false)
	if err != nil {
		t.Fatal(err)
	}
	if field(field(v, "sku"), "capacity") != 2.0 {
		t.Errorf("scale set = %v", v)
	}
	lb, err := c.Get(e.ctx, c.ResourcePath("rg", "Microsoft.Network/loadBalancers", "webLB"), cli.NetworkAPIVersion)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(asList(field(field(lb, "properties"), "loadBalancingRules"))); n != 1 {
		t.Errorf("rules = %d", n)
	}
	e.waitFor("two NAT ports", 90*time.Second, func() (bool, string) {
		m, err := c.ConnectionInfo(e.ctx, "rg", "web")
		if err != nil {
			return false, err.Error()
		}
		b, _ := json.Marshal(m)
		return len(m) == 2, string(b)
	})
	_, err = c.Get(e.ctx, c.ResourcePath("rg", "Microsoft.Compute/virtualMachineScaleSets", "nope"), cli.ComputeAPIVersion)
	var ae *cli.APIError
	if !errors.As(err, &ae) || ae.Status != 404 || ae.Code != "ResourceNotFound" {
		t.Errorf("err = %v", err)
	}
	if _, err := c.Post(e.ctx, c.ResourcePath("rg", "Microsoft.Compute/virtualMachineScaleSets", "web")+"/restart", cli.ComputeAPIVersion, cli.InstanceIDsBody(nil), true); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(e.ctx, c.ResourcePath("rg", "Microsoft.Compute/virtualMachineScaleSets", "web"), cli.ComputeAPIVersion, true); err != nil {
		t.Fatal(err)
	}
}
