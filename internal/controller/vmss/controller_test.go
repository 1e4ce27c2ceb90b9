package vmss

// Address plan: subnet 198.18.20.0/24 (instances get .4 upwards); the
// process driver's provider addresses come from 127.81.0.0/24. Nothing here
// sends traffic.

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"nimbus/internal/driver/process"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

const (
	sub    = "/subscriptions/s/resourceGroups/rg"
	vmssID = sub + "/providers/Microsoft.Compute/virtualMachineScaleSets/web"
	lbID   = sub + "/providers/Microsoft.Network/loadBalancers/lb"
	subnet = sub + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"
)

// fixedSubnet is the one subnet of these tests.
type fixedSubnet struct{}

func (fixedSubnet) SubnetPrefix(context.Context, string) (netip.Prefix, error) {
	return netip.MustParsePrefix("198.18.20.0/24"), nil
}

func put(t *testing.T, st store.Store, id string, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Put(context.Background(), resource.Key(mustParse(id)), b, store.AnyRevision); err != nil {
		t.Fatal(err)
	}
}

func scaleSet(capacity int64, natPools ...string) *resource.VirtualMachineScaleSet {
	var nat []resource.SubResource
	for _, p := range natPools {
		nat = append(nat, resource.SubResource{ID: p})
	}
	return &resource.VirtualMachineScaleSet{
		Envelope: resource.Envelope{ID: vmssID, Name: "web"}, SKU: &resource.VMSSSku{Name: "Standard_B1s", Capacity: &capacity},
		Properties: resource.VMSSProps{VirtualMachineProfile: &resource.VMProfile{
			StorageProfile: &resource.StorageProfile{ImageReference: &resource.ImageReference{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "latest"}},
			NetworkProfile: &resource.NetworkProfile{NetworkInterfaceConfigurations: []resource.NICConfig{{Name: "nic",
				Properties: resource.NICConfigProps{IPConfigurations: []resource.IPConfig{{Name: "ipc", Properties: resource.IPConfigProps{
					Subnet: &resource.SubResource{ID: subnet}, LoadBalancerInboundNatPools: nat}}}}}}},
		}},
	}
}

// start runs a controller over a fresh store with the process driver, whose
// workloads are /bin/false: every start really fails.
func start(t *testing.T) (store.Store, *Controller) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	d, err := process.New(ctx, process.Options{StateDir: t.TempDir(), Command: []string{"/bin/false"},
		Pool: netip.MustParsePrefix("127.81.0.0/24"), ReadyTimeout: 2 * time.Second})
	if err != nil {
		t.Skipf("process driver: %v", err)
	}
	c := New(Options{Store: st, Driver: d, Network: fixedSubnet{}, Resync: 100 * time.Millisecond})
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = d.Close(context.Background(), true)
		_ = st.Close()
	})
	return st, c
}

func TestWaitConvergedReportsFailedStart(t *testing.T) {
	st, c := start(t)
	put(t, st, vmssID, scaleSet(1))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.WaitConverged(ctx, vmssID)
	var re *resource.Error
	if !errors.As(err, &re) || re.Code != "VMScaleSetInstanceFailed" {
		t.Fatalf("WaitConverged = %v, want VMScaleSetInstanceFailed (not a hang)", err)
	}
}

func TestNATRangeTooSmallCreatesNothing(t *testing.T) {
	st, c := start(t)
	fe := lbID + "/frontendIPConfigurations/fe"
	start, end := int32(50000), int32(50001)
	put(t, st, lbID, &resource.LoadBalancer{Envelope: resource.Envelope{ID: lbID, Name: "lb"},
		Properties: resource.LoadBalancerProps{InboundNatPools: []resource.InboundNatPool{{ID: lbID + "/inboundNatPools/ssh", Name: "ssh",
			Properties: resource.NatPoolProps{FrontendIPConfiguration: &resource.SubResource{ID: fe}, Protocol: "Tcp",
				FrontendPortRangeStart: &start, FrontendPortRangeEnd: &end}}}}})
	put(t, st, vmssID, scaleSet(3, lbID+"/inboundNatPools/ssh"))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	err := c.WaitConverged(ctx, vmssID)
	var re *resource.Error
	if !errors.As(err, &re) || re.Code != "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts" {
		t.Fatalf("WaitConverged = %v, want InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts", err)
	}
	kvs, _, err := st.List(ctx, resource.InstancesPrefix(vmssID))
	if err != nil || len(kvs) != 0 {
		t.Fatalf("instances created despite the exhausted range: %d (%v)", len(kvs), err)
	}
}
