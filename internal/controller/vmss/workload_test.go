package vmss

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"testing"
	"time"

	"nimbus/internal/store"

	"nimbus/internal/resource"
	"nimbus/internal/workload"
)

func i32(n int32) *int32 { return &n }

// TestMappedWorkload: a marketplace image runs as the echo workload of the
// image map, serving every port its load balancer sends to (rules, their
// probes, the health probe, NAT pools); customData and extensions are
// passed only when the map entry runs them.
func TestMappedWorkload(t *testing.T) {
	pool, natPool := lbID+"/backendAddressPools/be", lbID+"/inboundNatPools/rdp"
	lb := &resource.LoadBalancer{Envelope: resource.Envelope{ID: lbID, Name: "lb"}, Properties: resource.LoadBalancerProps{
		BackendAddressPools: []resource.BackendAddressPool{{ID: pool, Name: "be"}},
		Probes: []resource.Probe{
			{ID: lbID + "/probes/https", Name: "https", Properties: resource.ProbeProps{Protocol: "Https", Port: i32(443)}},
			{ID: lbID + "/probes/tcp9000", Name: "tcp9000", Properties: resource.ProbeProps{Protocol: "Tcp", Port: i32(9000)}},
		},
		LoadBalancingRules: []resource.LoadBalancingRule{
			{ID: lbID + "/loadBalancingRules/web", Name: "web", Properties: resource.RuleProps{Protocol: "Tcp", FrontendPort: i32(443), BackendPort: i32(8443),
				BackendAddressPool: &resource.SubResource{ID: pool}, Probe: &resource.SubResource{ID: lbID + "/probes/https"}}},
			{ID: lbID + "/loadBalancingRules/dns", Name: "dns", Properties: resource.RuleProps{Protocol: "All", FrontendPort: i32(53), BackendPort: i32(53),
				BackendAddressPool: &resource.SubResource{ID: pool}}},
			{ID: lbID + "/loadBalancingRules/other", Name: "other", Properties: resource.RuleProps{Protocol: "Tcp", FrontendPort: i32(81), BackendPort: i32(81),
				BackendAddressPool: &resource.SubResource{ID: lbID + "/backendAddressPools/elsewhere"}}},
		},
		InboundNatPools: []resource.InboundNatPool{{ID: natPool, Name: "rdp", Properties: resource.NatPoolProps{Protocol: "Tcp", BackendPort: i32(3389)}}},
	}}
	ubuntu := &resource.ImageReference{Publisher: "Canonical", Offer: "0001-com-ubuntu-server-jammy", SKU: "22_04-lts-gen2", Version: "latest"}
	ext := []byte(`{"extensions": [{"name": "cs", "properties": {"publisher": "Microsoft.Azure.Extensions", "type": "CustomScript",
		"typeHandlerVersion": "2.1", "settings": {"commandToExecute": "echo from-extension"}}}]}`)
	script := base64.StdEncoding.EncodeToString([]byte("echo hi\n"))
	model := func() *resource.VirtualMachineScaleSet {
		v := scaleSet(1, natPool)
		vp := v.Properties.VirtualMachineProfile
		vp.StorageProfile.ImageReference = ubuntu
		vp.OSProfile = &resource.OSProfile{CustomData: script}
		vp.ExtensionProfile = ext
		vp.NetworkProfile.HealthProbe = &resource.SubResource{ID: lbID + "/probes/tcp9000"}
		ipc := &vp.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0].Properties
		ipc.LoadBalancerBackendAddressPools = []resource.SubResource{{ID: pool}}
		return v
	}
	tests := []struct {
		name      string
		images    *workload.ImageMap
		wantEntry string
		wantCD    string
		wantCmds  string
	}{
		{"default map", nil, "linux (echo)", "", ""},
		{"map running customData and extensions", &workload.ImageMap{Images: []workload.ImageEntry{
			{Name: "ubuntu", Match: workload.ImageMatch{Publisher: "Canonical"}, Workload: workload.KindEcho, CustomData: workload.Run, Extensions: workload.Run}}},
			"ubuntu (echo)", script, `["echo from-extension"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			e.c = New(Options{Store: e.st, Driver: e.d, Network: fixedSubnet{}, Health: e.health, Now: e.clock, Images: tt.images})
			put(t, e.st, lbID, lb)
			put(t, e.st, vmssID, model())
			e.mustPass(t)
			spec, ok := e.d.specs["0"]
			if !ok {
				t.Fatalf("instance 0 not started: %v", e.d.take())
			}
			if spec.Image.Publisher != "nimbus" || spec.Image.SKU != "echo" {
				t.Errorf("spec image %+v; want nimbus's echo", spec.Image)
			}
			// The rule "other" sends to another pool: not port 81.
			const wantPorts = "tcp/3389,tcp/443,tcp/53,tcp/8443,tcp/9000,udp/53"
			if got := spec.Env[workload.EnvPorts]; got != wantPorts {
				t.Errorf("ports %q; want %s", got, wantPorts)
			}
			if spec.CustomData != tt.wantCD || spec.Env[workload.EnvCommands] != tt.wantCmds {
				t.Errorf("customData %q, commands %q; want %q, %q", spec.CustomData, spec.Env[workload.EnvCommands], tt.wantCD, tt.wantCmds)
			}
			in := e.records(t)["0"]
			if in.Workload != tt.wantEntry || in.Ports != spec.Env[workload.EnvPorts] {
				t.Errorf("record says workload %q ports %q; want %q and the spec's ports", in.Workload, in.Ports, tt.wantEntry)
			}
		})
	}
}

// TestRepairsSuspended: the controller reads the scale set's state and
// repairs nothing while a user has suspended automatic repairs; after a
// resume the instance past its grace is repaired.
func TestRepairsSuspended(t *testing.T) {
	e := newEnv(t)
	enabled := true
	v := scaleSet(1)
	v.Properties.AutomaticRepairsPolicy = &resource.AutomaticRepairsPolicy{Enabled: &enabled, GracePeriod: "PT10M", RepairAction: "Restart"}
	v.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = &resource.SubResource{ID: lbID + "/probes/p"}
	put(t, e.st, vmssID, v)
	e.mustPass(t)
	e.mustPass(t)
	e.health.set("0", true)
	e.mustPass(t) // marked unhealthy
	setState := func(st *resource.ScaleSetState) {
		t.Helper()
		b, _ := json.Marshal(st)
		if _, err := e.st.Put(context.Background(), resource.ScaleSetStateKey(vmssID), b, store.AnyRevision); err != nil {
			t.Fatal(err)
		}
	}
	setState(&resource.ScaleSetState{Suspended: []string{resource.ServiceAutomaticRepairs}})
	e.advance(time.Hour)
	e.mustPass(t)
	if g := e.records(t)["0"].Generation; g != 0 {
		t.Fatalf("suspended repairs restarted the instance (generation %d)", g)
	}
	setState(&resource.ScaleSetState{})
	e.mustPass(t)
	if g := e.records(t)["0"].Generation; g != 1 {
		t.Fatalf("resumed repairs: generation %d; want the instance restarted once", g)
	}
}
