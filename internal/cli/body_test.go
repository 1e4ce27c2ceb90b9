package cli

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/spf13/cobra"
)

const lbID = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/vmss1LB"

// TestNewLBBody checks the load balancer `vmss create --lb` makes against
// what az 2.45's template builder makes for the same flags
// (azure-behavior.md §1.8).
func TestNewLBBody(t *testing.T) {
	tests := []struct {
		name      string
		sku       string
		count     int
		over      bool
		wantEnd   int
		wantRules int
	}{
		{"default 2 instances", "Standard", 2, true, 50119, 1},
		{"70 instances overprovisioned", "Standard", 70, true, 50139, 1},
		{"70 instances without overprovisioning", "Standard", 70, false, 50119, 1},
		{"200 instances without overprovisioning", "Standard", 200, false, 50199, 1},
		{"basic has no LBRule", "Basic", 2, true, 50119, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := NewLBBody(lbID, "eastus", tt.sku, "/pip", "vmss1LBBEPool", "vmss1LBNatPool", 22, tt.count, tt.over)
			wantFE := map[string]any{"id": lbID + "/frontendIPConfigurations/loadBalancerFrontEnd"}
			p := b["properties"].(map[string]any)
			nat := p["inboundNatPools"].([]any)[0].(map[string]any)
			wantNat := map[string]any{
				"name": "vmss1LBNatPool",
				"properties": map[string]any{
					"frontendIPConfiguration": wantFE, "protocol": "Tcp",
					"frontendPortRangeStart": 50000, "frontendPortRangeEnd": tt.wantEnd, "backendPort": 22,
				},
			}
			if !reflect.DeepEqual(nat, wantNat) {
				t.Errorf("NAT pool = %v, want %v", nat, wantNat)
			}
			fe := p["frontendIPConfigurations"].([]any)[0].(map[string]any)
			if fe["name"] != "loadBalancerFrontEnd" || !reflect.DeepEqual(fe["properties"], map[string]any{"publicIPAddress": map[string]any{"id": "/pip"}}) {
				t.Errorf("frontend = %v", fe)
			}
			if got := p["backendAddressPools"].([]any)[0].(map[string]any)["name"]; got != "vmss1LBBEPool" {
				t.Errorf("pool = %v", got)
			}
			rules := p["loadBalancingRules"].([]any)
			if len(rules) != tt.wantRules {
				t.Fatalf("rules = %v", rules)
			}
			if tt.wantRules == 1 {
				want := map[string]any{"name": "LBRule", "properties": map[string]any{
					"frontendIPConfiguration": wantFE,
					"backendAddressPool":      map[string]any{"id": lbID + "/backendAddressPools/vmss1LBBEPool"},
					"protocol":                "Tcp", "frontendPort": 80, "backendPort": 80,
					"enableFloatingIP": false, "idleTimeoutInMinutes": 5,
				}}
				if !reflect.DeepEqual(rules[0], want) {
					t.Errorf("LBRule = %v, want %v", rules[0], want)
				}
			}
			if b["sku"].(map[string]any)["name"] != tt.sku {
				t.Errorf("sku = %v", b["sku"])
			}
		})
	}
}

// TestVMSSCreateFlags parses `vmss create` command lines and checks the
// defaults az uses and the scale set body built from them.
func TestVMSSCreateFlags(t *testing.T) {
	dir := t.TempDir()
	script := filepath.Join(dir, "init.sh")
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho hi\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		args  []string
		check func(t *testing.T, o *VMSSCreate, lb string, body map[string]any)
	}{
		{
			name: "defaults",
			args: []string{"-g", "rg", "-n", "web-scale-set", "--image", "nimbus:workloads:echo:latest"},
			check: func(t *testing.T, o *VMSSCreate, lb string, body map[string]any) {
				want := VMSSCreate{RG: "rg", Name: "web-scale-set", Location: "eastus", Image: "nimbus:workloads:echo:latest", VMSku: "Standard_DS1_v2",
					InstanceCount: 2, UpgradePolicyMode: "Manual", OrchestrationMode: "Uniform", AdminUsername: defaultAdmin(),
					VNetAddressPrefix: "10.0.0.0/16", LBSku: "Standard", BackendPort: 22}
				if !reflect.DeepEqual(*o, want) || lb != "" {
					t.Errorf("options = %+v, lb %q\nwant %+v", *o, lb, want)
				}
				ipc := map[string]any{
					"subnet":                          map[string]any{"id": "/subnet"},
					"loadBalancerBackendAddressPools": []any{map[string]any{"id": lbID + "/backendAddressPools/p"}},
					"loadBalancerInboundNatPools":     []any{map[string]any{"id": lbID + "/inboundNatPools/n"}},
				}
				wantBody := map[string]any{
					"location": "eastus",
					"sku":      map[string]any{"name": "Standard_DS1_v2", "tier": "Standard", "capacity": 2},
					"properties": map[string]any{
						"overprovision":     true,
						"upgradePolicy":     map[string]any{"mode": "Manual"},
						"orchestrationMode": "Uniform",
						"virtualMachineProfile": map[string]any{
							"storageProfile": map[string]any{
								"imageReference": map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"},
								"osDisk":         map[string]any{"createOption": "FromImage", "caching": "ReadWrite"},
							},
							"osProfile": map[string]any{"computerNamePrefix": "webscale", "adminUsername": defaultAdmin(),
								"linuxConfiguration": map[string]any{"disablePasswordAuthentication": true}},
							"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
								"name": "webscaleNic",
								"properties": map[string]any{"primary": true, "ipConfigurations": []any{map[string]any{
									"name": "webscaleIPConfig", "properties": ipc,
								}}},
							}}},
						},
					},
				}
				if !reflect.DeepEqual(body, wantBody) {
					t.Errorf("body =\n%s\nwant\n%s", canon(t, body), canon(t, wantBody))
				}
			},
		},
		{
			name: "flags: alias image, custom data file, probe, no LB, counts",
			args: []string{"-g", "rg", "-n", "v", "--image", "echo", "--instance-count", "5", "--disable-overprovision",
				"--upgrade-policy-mode", "automatic", "--custom-data", script, "--computer-name-prefix", "web",
				"--admin-username", "ops", "--lb", "", "--tags", "a=b", "c=d", "--vnet-name", "vn", "--subnet", "sn"},
			check: func(t *testing.T, o *VMSSCreate, lb string, body map[string]any) {
				if lb != "" || o.InstanceCount != 5 || !o.DisableOverprovision || o.VNetName != "vn" || o.Subnet != "sn" {
					t.Errorf("options = %+v", *o)
				}
				if !reflect.DeepEqual(o.Tags, []string{"a=b", "c=d"}) {
					t.Errorf("tags = %v", o.Tags)
				}
				p := body["properties"].(map[string]any)
				vmp := p["virtualMachineProfile"].(map[string]any)
				osp := vmp["osProfile"].(map[string]any)
				if osp["customData"] != base64.StdEncoding.EncodeToString([]byte("#!/bin/sh\necho hi\n")) ||
					osp["computerNamePrefix"] != "web" || osp["adminUsername"] != "ops" {
					t.Errorf("osProfile = %v", osp)
				}
				if p["upgradePolicy"].(map[string]any)["mode"] != "Automatic" || p["overprovision"] != false {
					t.Errorf("properties = %v", p)
				}
				if img := vmp["storageProfile"].(map[string]any)["imageReference"].(map[string]any); img["sku"] != "echo" {
					t.Errorf("image = %v", img)
				}
				if !reflect.DeepEqual(body["tags"], map[string]any{"a": "b", "c": "d"}) {
					t.Errorf("tags = %v", body["tags"])
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := &VMSSCreate{}
			var lb string
			cmd := &cobra.Command{Use: "create", RunE: func(*cobra.Command, []string) error { return nil }}
			vmssCreateFlags(cmd, o, &lb)
			finalize(cmd)
			cmd.SetArgs(tt.args)
			if err := cmd.Execute(); err != nil {
				t.Fatal(err)
			}
			o.Location = "eastus"
			body, err := o.Body("/subnet", []string{lbID + "/backendAddressPools/p"}, []string{lbID + "/inboundNatPools/n"}, "")
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, o, lb, body)
		})
	}
}

func TestDefaults(t *testing.T) {
	t.Run("subnet prefix", func(t *testing.T) {
		tests := []struct {
			count int
			over  bool
			want  string
		}{
			{2, true, "10.0.0.0/24"}, {169, true, "10.0.0.0/24"}, {170, true, "10.0.0.0/23"}, {253, false, "10.0.0.0/24"}, {254, false, "10.0.0.0/23"},
		}
		for _, tt := range tests {
			if got, err := defaultSubnetPrefix("10.0.0.0/16", tt.count, tt.over); err != nil || got != tt.want {
				t.Errorf("defaultSubnetPrefix(%d, %v) = %q, %v; want %q", tt.count, tt.over, got, err, tt.want)
			}
		}
	})
	t.Run("public ip", func(t *testing.T) {
		b, err := publicIPBody("", "standard", "", "ipv4", "MyLabel", 4, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]any{"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{
			"publicIPAllocationMethod": "Static", "publicIPAddressVersion": "IPv4", "idleTimeoutInMinutes": 4,
			"dnsSettings": map[string]any{"domainNameLabel": "mylabel"}}}
		if !reflect.DeepEqual(b, want) {
			t.Errorf("body = %v", b)
		}
		if b, _ := publicIPBody("", "Basic", "", "IPv4", "", 4, nil, nil); b["properties"].(map[string]any)["publicIPAllocationMethod"] != "Dynamic" {
			t.Errorf("basic allocation = %v", b)
		}
	})
	t.Run("vnet", func(t *testing.T) {
		b := vnetBody("eastus", nil, "default", nil, nil)
		want := map[string]any{"location": "eastus", "properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16"}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "10.0.0.0/24"}}},
		}}
		if !reflect.DeepEqual(b, want) {
			t.Errorf("body = %v", b)
		}
	})
	t.Run("images", func(t *testing.T) {
		for in, want := range map[string]string{
			"echo":                           "nimbus:workloads:echo:latest",
			"nimbus:workloads:script:latest": "nimbus:workloads:script:latest",
		} {
			ref, err := imageReference(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ref["publisher"].(string) + ":" + ref["offer"].(string) + ":" + ref["sku"].(string) + ":" + ref["version"].(string); got != want {
				t.Errorf("imageReference(%q) = %s", in, got)
			}
		}
		if _, err := imageReference("UbuntuLTS"); err == nil {
			t.Error("UbuntuLTS accepted")
		}
	})
	t.Run("instance ids", func(t *testing.T) {
		if got := canon(t, InstanceIDsBody(nil)); got != `{"instanceIds":["*"]}` {
			t.Errorf("default = %s", got)
		}
		if got := canon(t, InstanceIDsBody([]string{"0", "3"})); got != `{"instanceIds":["0","3"]}` {
			t.Errorf("ids = %s", got)
		}
	})
}
