package arm_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// azBinary is where Debian's azure-cli package installs az.
const azBinary = "/usr/bin/az"

// loginAZ prepares an isolated az configuration for node n following
// arm-clients.md §0 (temporary AZURE_CONFIG_DIR, REQUESTS_CA_BUNDLE = the
// node's CA, MSI_ENDPOINT = its managed-identity endpoint, a cloud registered
// with the 2020-09-01-hybrid profile, az login --identity) and returns the
// environment to pass to runAZ. It skips the test when az is not installed.
func loginAZ(t *testing.T, n *testNode) []string {
	t.Helper()
	if _, err := os.Stat(azBinary); err != nil {
		t.Skipf("az CLI not installed at %s (apt-get install azure-cli): %v", azBinary, err)
	}
	env := append(os.Environ(),
		"AZURE_CONFIG_DIR="+t.TempDir(),
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_NO_COLOR=true",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE="+n.Endpoint.CAFile,
		"MSI_ENDPOINT="+n.Endpoint.MSIEndpoint,
	)
	runAZ(t, env, "cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", n.base, "--profile", "2020-09-01-hybrid")
	runAZ(t, env, "cloud", "set", "-n", "Nimbus")
	out := runAZ(t, env, "login", "--identity")
	if !strings.Contains(string(out), n.sub) {
		t.Fatalf("az login did not list subscription %s: %s", n.sub, out)
	}
	return env
}

// runAZ runs az with env and args and returns its standard output; a
// failure fails the test with az's standard error.
func runAZ(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	out, stderr, err := tryAZ(t, env, args...)
	if err != nil {
		t.Fatalf("az %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// tryAZ runs az and returns stdout, stderr and the exit error (bounded by two minutes).
func tryAZ(t *testing.T, env []string, args ...string) ([]byte, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, azBinary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

func TestAZCLI(t *testing.T) {
	n := startTestNode(t)
	env := loginAZ(t, n)
	var g struct {
		Name, Location string
		Properties     struct{ ProvisioningState string }
	}
	if err := json.Unmarshal(runAZ(t, env, "group", "create", "-n", "rg", "-l", "eastus", "-o", "json"), &g); err != nil ||
		g.Name != "rg" || g.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("group create: %v %+v", err, g)
	}
	var pip struct {
		PublicIP struct {
			Name, IPAddress, PublicIPAllocationMethod, ProvisioningState string
			SKU                                                          struct{ Name string }
		} `json:"publicIp"`
	}
	out := runAZ(t, env, "network", "public-ip", "create", "-g", "rg", "-n", "pip1", "--sku", "Standard", "-o", "json")
	if err := json.Unmarshal(out, &pip); err != nil || pip.PublicIP.IPAddress != "127.77.0.1" ||
		pip.PublicIP.SKU.Name != "Standard" || pip.PublicIP.ProvisioningState != "Succeeded" || pip.PublicIP.PublicIPAllocationMethod != "Static" {
		t.Fatalf("public-ip create: %v %s", err, out)
	}
	out = runAZ(t, env, "network", "public-ip", "list", "-g", "rg", "--query", "[].ipAddress", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "127.77.0.1" {
		t.Fatalf("public-ip list: %s", out)
	}
	_, stderr, err := tryAZ(t, env, "network", "public-ip", "create", "-g", "rg", "-n", "pip2", "--sku", "Standard", "--allocation-method", "Dynamic")
	if err == nil || !strings.Contains(stderr, "StandardSkuPublicIPAddressesMustBeStatic") {
		t.Fatalf("Standard Dynamic: %v %s", err, stderr)
	}
	runAZ(t, env, "network", "vnet", "create", "-g", "rg", "-n", "vn", "--address-prefixes", "10.0.0.0/16",
		"--subnet-name", "default", "--subnet-prefixes", "10.0.0.0/24")
	out = runAZ(t, env, "network", "vnet", "subnet", "show", "-g", "rg", "--vnet-name", "vn", "-n", "default", "--query", "addressPrefix", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "10.0.0.0/24" {
		t.Fatalf("subnet show: %s", out)
	}
	runAZ(t, env, "network", "vnet", "subnet", "create", "-g", "rg", "--vnet-name", "vn", "-n", "web", "--address-prefixes", "10.0.1.0/24")
	out = runAZ(t, env, "network", "vnet", "subnet", "list", "-g", "rg", "--vnet-name", "vn", "--query", "length(@)")
	if strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("subnet list: %s", out)
	}
	_, stderr, err = tryAZ(t, env, "network", "vnet", "subnet", "create", "-g", "rg", "--vnet-name", "vn", "-n", "out", "--address-prefixes", "10.9.0.0/24")
	if err == nil || !strings.Contains(stderr, "NetcfgSubnetRangeOutsideVnet") {
		t.Fatalf("subnet outside the network: %v %s", err, stderr)
	}
	if out := runAZ(t, env, "network", "vnet", "list", "-o", "table"); !strings.Contains(string(out), "10.0.0.0/16") {
		t.Fatalf("vnet list table: %s", out)
	}
	runAZ(t, env, "network", "vnet", "subnet", "delete", "-g", "rg", "--vnet-name", "vn", "-n", "web")
	out = runAZ(t, env, "resource", "list", "-g", "rg", "--query", "length(@)")
	if strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("resource list: %s", out)
	}
	runAZ(t, env, "group", "delete", "-n", "rg", "--yes")
	out = runAZ(t, env, "group", "exists", "-n", "rg")
	if strings.TrimSpace(string(out)) != "false" {
		t.Fatalf("group exists after delete: %s", out)
	}
}

// TestAZServicePrincipalLogin signs az in with the service principal through
// the ADFS-style authority the cloud metadata advertises.
func TestAZServicePrincipalLogin(t *testing.T) {
	if _, err := os.Stat(azBinary); err != nil {
		t.Skipf("az CLI not installed at %s (apt-get install azure-cli): %v", azBinary, err)
	}
	n := startTestNode(t)
	env := append(os.Environ(), "AZURE_CONFIG_DIR="+t.TempDir(), "AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true", "REQUESTS_CA_BUNDLE="+n.Endpoint.CAFile)
	runAZ(t, env, "cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", n.base, "--profile", "2020-09-01-hybrid")
	runAZ(t, env, "cloud", "set", "-n", "Nimbus")
	if _, stderr, err := tryAZ(t, env, "login", "--service-principal", "-u", "00000000-0000-0000-0000-00000000b001",
		"-p", "wrong-secret", "--tenant", n.Endpoint.TenantID); err == nil {
		t.Fatalf("login with a wrong secret succeeded: %s", stderr)
	}
	runAZ(t, env, "login", "--service-principal", "-u", "00000000-0000-0000-0000-00000000b001",
		"-p", n.Endpoint.IdentityHeader, "--tenant", n.Endpoint.TenantID)
	out := runAZ(t, env, "group", "create", "-n", "sp-rg", "-l", "westus", "--query", "properties.provisioningState", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "Succeeded" {
		t.Fatalf("group create: %s", out)
	}
}
