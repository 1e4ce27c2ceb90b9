package arm_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"nimbus/internal/arm/armtest"
)

func TestAZCLI(t *testing.T) {
	n := armtest.Start(t)
	env := armtest.LoginAZ(t, n)
	var g struct {
		Name, Location string
		Properties     struct{ ProvisioningState string }
	}
	if err := json.Unmarshal(armtest.RunAZ(t, env, "group", "create", "-n", "rg", "-l", "eastus", "-o", "json"), &g); err != nil ||
		g.Name != "rg" || g.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("group create: %v %+v", err, g)
	}
	var pip struct {
		PublicIP struct {
			Name, IPAddress, PublicIPAllocationMethod, ProvisioningState string
			SKU                                                          struct{ Name string }
		} `json:"publicIp"`
	}
	out := armtest.RunAZ(t, env, "network", "public-ip", "create", "-g", "rg", "-n", "pip1", "--sku", "Standard", "-o", "json")
	if err := json.Unmarshal(out, &pip); err != nil || pip.PublicIP.IPAddress != "127.77.0.1" ||
		pip.PublicIP.SKU.Name != "Standard" || pip.PublicIP.ProvisioningState != "Succeeded" || pip.PublicIP.PublicIPAllocationMethod != "Static" {
		t.Fatalf("public-ip create: %v %s", err, out)
	}
	out = armtest.RunAZ(t, env, "network", "public-ip", "list", "-g", "rg", "--query", "[].ipAddress", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "127.77.0.1" {
		t.Fatalf("public-ip list: %s", out)
	}
	_, stderr, err := armtest.TryAZ(t, env, "network", "public-ip", "create", "-g", "rg", "-n", "pip2", "--sku", "Standard", "--allocation-method", "Dynamic")
	if err == nil || !strings.Contains(stderr, "StandardSkuPublicIPAddressesMustBeStatic") {
		t.Fatalf("Standard Dynamic: %v %s", err, stderr)
	}
	armtest.RunAZ(t, env, "network", "vnet", "create", "-g", "rg", "-n", "vn", "--address-prefixes", "10.0.0.0/16",
		"--subnet-name", "default", "--subnet-prefixes", "10.0.0.0/24")
	out = armtest.RunAZ(t, env, "network", "vnet", "subnet", "show", "-g", "rg", "--vnet-name", "vn", "-n", "default", "--query", "addressPrefix", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "10.0.0.0/24" {
		t.Fatalf("subnet show: %s", out)
	}
	armtest.RunAZ(t, env, "network", "vnet", "subnet", "create", "-g", "rg", "--vnet-name", "vn", "-n", "web", "--address-prefixes", "10.0.1.0/24")
	out = armtest.RunAZ(t, env, "network", "vnet", "subnet", "list", "-g", "rg", "--vnet-name", "vn", "--query", "length(@)")
	if strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("subnet list: %s", out)
	}
	_, stderr, err = armtest.TryAZ(t, env, "network", "vnet", "subnet", "create", "-g", "rg", "--vnet-name", "vn", "-n", "out", "--address-prefixes", "10.9.0.0/24")
	if err == nil || !strings.Contains(stderr, "NetcfgSubnetRangeOutsideVnet") {
		t.Fatalf("subnet outside the network: %v %s", err, stderr)
	}
	if out := armtest.RunAZ(t, env, "network", "vnet", "list", "-o", "table"); !strings.Contains(string(out), "10.0.0.0/16") {
		t.Fatalf("vnet list table: %s", out)
	}
	armtest.RunAZ(t, env, "network", "vnet", "subnet", "delete", "-g", "rg", "--vnet-name", "vn", "-n", "web")
	out = armtest.RunAZ(t, env, "resource", "list", "-g", "rg", "--query", "length(@)")
	if strings.TrimSpace(string(out)) != "2" {
		t.Fatalf("resource list: %s", out)
	}
	armtest.RunAZ(t, env, "group", "delete", "-n", "rg", "--yes")
	out = armtest.RunAZ(t, env, "group", "exists", "-n", "rg")
	if strings.TrimSpace(string(out)) != "false" {
		t.Fatalf("group exists after delete: %s", out)
	}
}

// TestAZServicePrincipalLogin signs az in with the service principal through
// the ADFS-style authority the cloud metadata advertises.
func TestAZServicePrincipalLogin(t *testing.T) {
	if _, err := os.Stat(armtest.AZBinary); err != nil {
		t.Skipf("az CLI not installed at %s (apt-get install azure-cli): %v", armtest.AZBinary, err)
	}
	n := armtest.Start(t)
	env := append(os.Environ(), "AZURE_CONFIG_DIR="+t.TempDir(), "AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true", "REQUESTS_CA_BUNDLE="+n.Endpoint.CAFile)
	armtest.RunAZ(t, env, "cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", n.Base, "--profile", "2020-09-01-hybrid")
	armtest.RunAZ(t, env, "cloud", "set", "-n", "Nimbus")
	if _, stderr, err := armtest.TryAZ(t, env, "login", "--service-principal", "-u", "00000000-0000-0000-0000-00000000b001",
		"-p", "wrong-secret", "--tenant", n.Endpoint.TenantID); err == nil {
		t.Fatalf("login with a wrong secret succeeded: %s", stderr)
	}
	armtest.RunAZ(t, env, "login", "--service-principal", "-u", "00000000-0000-0000-0000-00000000b001",
		"-p", n.Endpoint.IdentityHeader, "--tenant", n.Endpoint.TenantID)
	out := armtest.RunAZ(t, env, "group", "create", "-n", "sp-rg", "-l", "westus", "--query", "properties.provisioningState", "-o", "tsv")
	if strings.TrimSpace(string(out)) != "Succeeded" {
		t.Fatalf("group create: %s", out)
	}
}
