package network_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"

	"nimbus/internal/arm/armtest"
)

// TestAZLoadBalancerAndScaleSet drives the LB and scale-set endpoints with
// Debian's az CLI (hybrid profile, arm-clients.md §0). The LB and scale set
// are created with the SDK first: `az network lb create` needs template
// deployments.
func TestAZLoadBalancerAndScaleSet(t *testing.T) {
	e := armtest.NewEnv(t)
	env := armtest.LoginAZ(t, e.Node)
	if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
		t.Fatal(err)
	}
	if _, err := e.PutVMSS(t, "vmss1", e.VMSSBody("lb1", true, armcompute.UpgradeModeManual), nil); err != nil {
		t.Fatal(err)
	}

	var lbs []struct {
		Name                string
		ProvisioningState   string
		Probes              []struct{ Name string }
		LoadBalancingRules  []struct{ Name string }
		InboundNatPools     []any
		BackendAddressPools []struct {
			Name               string
			LoadBalancingRules []struct{ ID string }
		}
	}
	out := armtest.RunAZ(t, env, "network", "lb", "list", "-g", "rg", "-o", "json")
	if err := json.Unmarshal(out, &lbs); err != nil || len(lbs) != 1 || lbs[0].Name != "lb1" || lbs[0].ProvisioningState != "Succeeded" ||
		len(lbs[0].Probes) != 1 || lbs[0].InboundNatPools == nil || len(lbs[0].BackendAddressPools[0].LoadBalancingRules) != 1 {
		t.Fatalf("lb list: %v %s", err, out)
	}

	// az network lb probe create: GET → PUT whole LB → poll → GET.
	armtest.RunAZ(t, env, "network", "lb", "probe", "create", "-g", "rg", "--lb-name", "lb1", "-n", "p2", "--protocol", "tcp", "--port", "9000")
	p2, err := e.Probes.Get(e.Ctx, "rg", "lb1", "p2", nil)
	if err != nil || *p2.Properties.Port != 9000 || *p2.Properties.IntervalInSeconds != 15 {
		t.Fatalf("probe p2: %v", err)
	}

	// A rule on the outbound rule's frontend must disable implicit SNAT.
	_, stderr, err := armtest.TryAZ(t, env, "network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb1", "-n", "r2", "--protocol", "tcp",
		"--frontend-port", "8081", "--backend-port", "9001", "--frontend-ip-name", "fe", "--backend-pool-name", "be", "--probe-name", "p2")
	if err == nil || !strings.Contains(stderr, "LoadBalancingRuleMustDisableSNATSinceSameFrontendIPConfigurationIsReferencedByOutboundRule") {
		t.Fatalf("rule without disable-outbound-snat: %v %s", err, stderr)
	}
	armtest.RunAZ(t, env, "network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb1", "-n", "r2", "--protocol", "tcp",
		"--frontend-port", "8081", "--backend-port", "9001", "--frontend-ip-name", "fe", "--backend-pool-name", "be", "--probe-name", "p2",
		"--disable-outbound-snat", "true")
	r2, err := e.Rules.Get(e.Ctx, "rg", "lb1", "r2", nil)
	if err != nil || *r2.Properties.BackendPort != 9001 || !*r2.Properties.DisableOutboundSnat {
		t.Fatalf("rule r2: %v", err)
	}
	probe, err := e.Probes.Get(e.Ctx, "rg", "lb1", "p2", nil)
	if err != nil || len(probe.Properties.LoadBalancingRules) != 1 {
		t.Fatalf("probe p2 back-reference: %v", err)
	}
	// The same backend port and pool again is refused (floating IP off).
	_, stderr, err = armtest.TryAZ(t, env, "network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb1", "-n", "r3", "--protocol", "tcp",
		"--frontend-port", "8082", "--backend-port", "9001", "--frontend-ip-name", "fe", "--backend-pool-name", "be",
		"--disable-outbound-snat", "true")
	if err == nil || !strings.Contains(stderr, "RulesUseSameBackendPortProtocolAndPool") {
		t.Fatalf("duplicate backend port: %v %s", err, stderr)
	}

	var v struct {
		Name, ProvisioningState string
		Sku                     struct{ Capacity int }
		UpgradePolicy           struct{ Mode string }
		VirtualMachineProfile   struct {
			OsProfile      map[string]any
			NetworkProfile struct{ HealthProbe struct{ ID string } }
		}
	}
	out = armtest.RunAZ(t, env, "vmss", "show", "-g", "rg", "-n", "vmss1", "-o", "json")
	if err := json.Unmarshal(out, &v); err != nil || v.Name != "vmss1" || v.ProvisioningState != "Succeeded" || v.Sku.Capacity != 2 ||
		v.UpgradePolicy.Mode != "Manual" || !strings.HasSuffix(v.VirtualMachineProfile.NetworkProfile.HealthProbe.ID, "/probes/p1") {
		t.Fatalf("vmss show: %v %s", err, out)
	}
	if pw := v.VirtualMachineProfile.OsProfile["adminPassword"]; pw != nil || strings.Contains(string(out), "Secr3t") {
		t.Fatalf("vmss show returned the password: %s", out)
	}
	// az vmss scale: GET → PUT whole VMSS with the new capacity.
	armtest.RunAZ(t, env, "vmss", "scale", "-g", "rg", "-n", "vmss1", "--new-capacity", "3")
	got, err := e.VMSS.Get(e.Ctx, "rg", "vmss1", nil)
	if err != nil || *got.SKU.Capacity != 3 {
		t.Fatalf("after az vmss scale: %v", err)
	}
}
