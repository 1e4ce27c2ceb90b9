package vmss

// Tests of the apply step (and of whole passes: read, PlanPass, apply)
// against a real bolt store, with a small in-memory driver that logs its
// calls, and once with the real process driver. Address plan as in
// controller_test.go: instances get 198.18.20.4 upwards; the process driver
// maps them to 127.81.1.0/24.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/driver/drivertest"
	"nimbus/internal/driver/process"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
	"nimbus/internal/workload"
)

// fakeDriver is an in-memory Driver. Start records a running workload
// reachable at its private address, Stop marks it stopped, Destroy forgets
// it; every call but Inspect is logged as "op instanceId".
type fakeDriver struct {
	mu        sync.Mutex
	ws        map[string]driver.Status
	calls     []string
	failStart error                          // when set, Start fails with it
	specs     map[string]driver.InstanceSpec // instance id -> last spec started
}

var _ Driver = (*fakeDriver)(nil)

func newFakeDriver() *fakeDriver { return &fakeDriver{ws: map[string]driver.Status{}} }

func (d *fakeDriver) log(op, key string) {
	d.calls = append(d.calls, op+" "+key[strings.LastIndex(key, "/")+1:])
}

func (d *fakeDriver) Start(_ context.Context, spec driver.InstanceSpec) (driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log("start", spec.Key)
	if d.specs == nil {
		d.specs = map[string]driver.InstanceSpec{}
	}
	d.specs[spec.InstanceID] = spec
	if d.failStart != nil {
		return driver.Status{}, d.failStart
	}
	st := driver.Status{Key: spec.Key, State: driver.StateRunning, ProviderIP: spec.PrivateIP, PrivateIP: spec.PrivateIP}
	d.ws[spec.Key] = st
	return st, nil
}

func (d *fakeDriver) Stop(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log("stop", key)
	if st, ok := d.ws[key]; ok {
		st.State = driver.StateStopped
		d.ws[key] = st
	}
	return nil
}

func (d *fakeDriver) Destroy(_ context.Context, key string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.log("destroy", key)
	delete(d.ws, key)
	return nil
}

func (d *fakeDriver) Inspect(_ context.Context, key string) (driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if st, ok := d.ws[key]; ok {
		return st, nil
	}
	return driver.Status{}, fmt.Errorf("fake: inspect %s: %w", key, driver.ErrNotFound)
}

// exit makes instance id's workload exit on its own.
func (d *fakeDriver) exit(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	key := strings.ToLower(vmssID) + "/" + id
	st := d.ws[key]
	st.State, st.Message = driver.StateExited, "exit status 3"
	d.ws[key] = st
}

// take returns the calls logged since the last take, sorted (drive steps
// run in parallel).
func (d *fakeDriver) take() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := d.calls
	d.calls = nil
	sort.Strings(out)
	return out
}

// fakeHealth answers the health probe: instances whose id is in down are
// down, the others up.
type fakeHealth struct {
	mu   sync.Mutex
	down map[string]bool
}

func (h *fakeHealth) BackendHealth(probeID, backendID string) (up, known bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	rest, _ := strings.CutPrefix(backendID, strings.ToLower(vmssID)+"/virtualmachines/")
	id, _, _ := strings.Cut(rest, "/")
	return !h.down[id], true
}

func (h *fakeHealth) set(id string, down bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.down[id] = down
}

// env is a controller over a bolt store and a fake driver, with a clock the
// test moves; passes run by hand (no Run loop).
type env struct {
	st     store.Store
	d      *fakeDriver
	health *fakeHealth
	c      *Controller
	mu     sync.Mutex
	now    time.Time
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := bolt.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	e := &env{st: st, d: newFakeDriver(), health: &fakeHealth{down: map[string]bool{}}, now: t0}
	e.c = e.controller()
	return e
}

// controller returns a new controller over e's store and driver: a fresh
// Memory, as after a nimbus restart.
func (e *env) controller() *Controller {
	return New(Options{Store: e.st, Driver: e.d, Network: fixedSubnet{}, Health: e.health, Now: e.clock})
}

func (e *env) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

func (e *env) pass(t *testing.T) error {
	t.Helper()
	return e.c.ReconcileAll(context.Background())
}

func (e *env) mustPass(t *testing.T) {
	t.Helper()
	if err := e.pass(t); err != nil {
		t.Fatalf("pass: %v", err)
	}
}

// records returns the stored instance records by id.
func (e *env) records(t *testing.T) map[string]*resource.Instance {
	t.Helper()
	kvs, _, err := e.st.List(context.Background(), resource.InstancesPrefix(vmssID))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*resource.Instance{}
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			t.Fatal(err)
		}
		out[in.InstanceID] = in
	}
	return out
}

func (e *env) revision(t *testing.T) int64 {
	t.Helper()
	rev, err := e.st.Revision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

// edit changes one stored record as the instance API would.
func (e *env) edit(t *testing.T, id string, f func(*resource.Instance)) {
	t.Helper()
	kv, err := e.st.Get(context.Background(), resource.InstanceKey(vmssID, id))
	if err != nil {
		t.Fatal(err)
	}
	in, err := resource.DecodeInstance(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	f(in)
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Put(context.Background(), kv.Key, b, kv.Revision); err != nil {
		t.Fatal(err)
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (e *env) converged(t *testing.T) bool {
	t.Helper()
	ok, err := e.c.converged(context.Background(), vmssID)
	if err != nil {
		t.Fatalf("converged: %v", err)
	}
	return ok
}

func TestApplyScaleOutInAndTeardown(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	put(t, e.st, vmssID, scaleSet(3))
	e.mustPass(t)

	recs := e.records(t)
	if got := keys(recs); !reflect.DeepEqual(got, []string{"0", "1", "2"}) {
		t.Fatalf("records %v, want 0 1 2", got)
	}
	vmids := map[string]bool{}
	for id, in := range recs {
		if in.ProvisioningState != resource.Succeeded || in.Actual != resource.PowerRunning || in.Applied != in.Generation {
			t.Errorf("instance %s not settled: %+v", id, in)
		}
		if in.VMID == "" || vmids[in.VMID] {
			t.Errorf("instance %s: VMID %q missing or shared", id, in.VMID)
		}
		vmids[in.VMID] = true
		if in.ProviderIP != in.PrivateIP {
			t.Errorf("instance %s: provider ip %q, want the driver's answer %q", id, in.ProviderIP, in.PrivateIP)
		}
		if !in.RepairGraceFrom.Equal(t0) || !in.Created.Equal(t0) {
			t.Errorf("instance %s: created %v, grace from %v; want the pass's clock", id, in.Created, in.RepairGraceFrom)
		}
	}
	if ips := []string{recs["0"].PrivateIP, recs["1"].PrivateIP, recs["2"].PrivateIP}; !reflect.DeepEqual(ips, []string{"198.18.20.4", "198.18.20.5", "198.18.20.6"}) {
		t.Errorf("private ips %v", ips)
	}
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"start 0", "start 1", "start 2"}) {
		t.Errorf("driver calls %v", calls)
	}
	if !e.converged(t) {
		t.Fatal("not converged after the first pass")
	}

	// A pass over a converged scale set writes nothing and calls nothing.
	rev := e.revision(t)
	e.mustPass(t)
	if got := e.revision(t); got != rev {
		t.Errorf("a converged pass wrote to the store: revision %d -> %d", rev, got)
	}
	if calls := e.d.take(); len(calls) != 0 {
		t.Errorf("a converged pass called the driver: %v", calls)
	}

	// Scale in to 1: the highest ids go, with their addresses.
	put(t, e.st, vmssID, scaleSet(1))
	e.mustPass(t)
	if got := keys(e.records(t)); !reflect.DeepEqual(got, []string{"0"}) {
		t.Fatalf("records after scale-in %v, want 0", got)
	}
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 1", "destroy 2"}) {
		t.Errorf("driver calls %v", calls)
	}
	for _, ip := range []string{"198.18.20.5", "198.18.20.6"} {
		if _, err := e.st.Get(ctx, ipam.PrivateKey(subnet, netip.MustParseAddr(ip))); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("address %s of a removed instance still allocated (%v)", ip, err)
		}
	}
	if _, err := e.st.Get(ctx, ipam.PrivateKey(subnet, netip.MustParseAddr("198.18.20.4"))); err != nil {
		t.Errorf("address of the survivor released: %v", err)
	}

	// Scale out again: ids are never reused.
	put(t, e.st, vmssID, scaleSet(2))
	e.mustPass(t)
	if got := keys(e.records(t)); !reflect.DeepEqual(got, []string{"0", "3"}) {
		t.Fatalf("records after scale-out %v, want 0 3", got)
	}
	e.d.take()

	// The scale set goes: every instance, its addresses and its counter.
	if _, err := e.st.Delete(ctx, resource.Key(mustParse(vmssID)), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	e.mustPass(t)
	kvs, _, err := e.st.List(ctx, resource.InstancePrefix)
	if err != nil || len(kvs) != 0 {
		t.Fatalf("left after teardown: %d keys (%v)", len(kvs), err)
	}
	kvs, _, err = e.st.List(ctx, ipam.SubnetPrefix(subnet))
	if err != nil || len(kvs) != 0 {
		t.Fatalf("addresses left after teardown: %d (%v)", len(kvs), err)
	}
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "destroy 3"}) {
		t.Errorf("driver calls %v", calls)
	}
}

// TestApplyStopsBetweenSteps: a pass that stops after creating records,
// before any workload starts (a crash), is finished by the next pass; and a
// stale plan applied again fails on its first write instead of undoing
// anything.
func TestApplyStopsBetweenSteps(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	put(t, e.st, vmssID, scaleSet(2))

	snap := e.read(t)
	plan := PlanPass(snap.input)
	if plan.Create == nil || len(plan.Drive) != 2 {
		t.Fatalf("plan %+v, want a create and two starts", plan)
	}
	crashed := plan
	crashed.Drive = nil
	if err := e.c.apply(ctx, snap, crashed); err != nil {
		t.Fatal(err)
	}
	for id, in := range e.records(t) {
		if in.ProvisioningState != resource.Creating {
			t.Fatalf("instance %s: %s before any start", id, in.ProvisioningState)
		}
	}
	if e.converged(t) {
		t.Fatal("converged without workloads")
	}

	// Applying the same (now stale) plan again conflicts on the counter:
	// nothing is created twice.
	if err := e.c.apply(ctx, snap, plan); !errors.As(err, new(*store.ConflictError)) {
		t.Fatalf("re-applied stale plan: %v, want a store conflict", err)
	}
	if n := len(e.records(t)); n != 2 {
		t.Fatalf("%d records after the stale plan, want 2", n)
	}

	e.mustPass(t)
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"start 0", "start 1"}) {
		t.Errorf("driver calls %v", calls)
	}
	if !e.converged(t) {
		t.Fatalf("not converged after the next pass: %+v", e.records(t))
	}
}

func (e *env) read(t *testing.T) snapshot {
	t.Helper()
	ctx := context.Background()
	kv, err := e.st.Get(ctx, resource.Key(mustParse(vmssID)))
	if err != nil {
		t.Fatal(err)
	}
	vm, err := resource.DecodeScaleSet(kv.Value)
	if err != nil {
		t.Fatal(err)
	}
	kvs, _, err := e.st.List(ctx, resource.InstancesPrefix(vmssID))
	if err != nil {
		t.Fatal(err)
	}
	counter, err := e.st.Get(ctx, resource.InstanceCounterKey(vmssID))
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	snap, err := e.c.read(ctx, strings.ToLower(vmssID), vm, kvs, counter)
	if err != nil {
		t.Fatal(err)
	}
	return snap
}

func TestApplyFailedStart(t *testing.T) {
	e := newEnv(t)
	e.d.failStart = errors.New("no such image")
	put(t, e.st, vmssID, scaleSet(1))
	e.mustPass(t)
	in := e.records(t)["0"]
	if in.ProvisioningState != resource.Failed || in.Message != "no such image" || in.Applied != in.Generation {
		t.Fatalf("record after a failed start: %+v", in)
	}
	var re *resource.Error
	if _, err := e.c.converged(context.Background(), vmssID); !errors.As(err, &re) || re.Code != "VMScaleSetInstanceFailed" {
		t.Fatalf("converged: %v, want VMScaleSetInstanceFailed", err)
	}
	// The next pass tries again, and succeeds.
	e.d.take()
	e.d.failStart = nil
	e.mustPass(t)
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"start 0"}) {
		t.Errorf("driver calls %v", calls)
	}
	if !e.converged(t) {
		t.Fatalf("not converged after the retry: %+v", e.records(t)["0"])
	}
}

// TestApplyRestartsInstancesThatDiedWhileDown: a workload found exited by a
// controller that never saw it running is restarted; one that exits under
// a controller's eyes stays down with the reason in its record.
func TestApplyRestartsInstancesThatDiedWhileDown(t *testing.T) {
	e := newEnv(t)
	put(t, e.st, vmssID, scaleSet(2))
	e.mustPass(t)
	e.d.take()

	e.d.exit("0")
	e.mustPass(t)
	if calls := e.d.take(); len(calls) != 0 {
		t.Fatalf("a workload that exited under our eyes was touched: %v", calls)
	}
	if in := e.records(t)["0"]; in.Message != "workload exited: exit status 3" || in.Actual != resource.PowerRunning {
		t.Fatalf("record of the exited workload: %+v", in)
	}

	// nimbus restarts; instance 1 died while it was down.
	e.d.exit("1")
	e.c = e.controller()
	e.mustPass(t)
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "destroy 1", "start 0", "start 1"}) {
		t.Fatalf("driver calls %v, want both restarted (neither was seen running)", calls)
	}
	for id, in := range e.records(t) {
		if in.Message != "" || in.Actual != resource.PowerRunning {
			t.Errorf("instance %s after the restart: %+v", id, in)
		}
	}
}

func TestApplyPowerStates(t *testing.T) {
	e := newEnv(t)
	put(t, e.st, vmssID, scaleSet(1))
	e.mustPass(t)
	e.d.take()

	e.edit(t, "0", func(in *resource.Instance) { in.Power = resource.PowerDeallocated })
	e.mustPass(t)
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"stop 0"}) {
		t.Fatalf("driver calls %v", calls)
	}
	if in := e.records(t)["0"]; in.Actual != resource.PowerDeallocated || !e.converged(t) {
		t.Fatalf("deallocated instance: %+v", in)
	}

	// The API's restart: running again, next generation.
	e.edit(t, "0", func(in *resource.Instance) { in.Power, in.Generation = resource.PowerRunning, in.Generation+1 })
	e.advance(time.Minute)
	e.mustPass(t)
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "start 0"}) {
		t.Fatalf("driver calls %v", calls)
	}
	in := e.records(t)["0"]
	if in.Actual != resource.PowerRunning || in.Applied != 1 || !in.RepairGraceFrom.Equal(t0.Add(time.Minute)) {
		t.Fatalf("restarted instance: %+v", in)
	}
}

func TestApplyRollingUpgrade(t *testing.T) {
	e := newEnv(t)
	fifty := int32(50)
	rolling := func(vm *resource.VirtualMachineScaleSet) *resource.VirtualMachineScaleSet {
		vm.Properties.UpgradePolicy = &resource.UpgradePolicy{Mode: resource.UpgradeRolling, RollingUpgradePolicy: &resource.RollingPolicy{
			MaxBatchInstancePercent: &fifty, PauseTimeBetweenBatches: "PT1M"}}
		return vm
	}
	put(t, e.st, vmssID, rolling(scaleSet(4)))
	e.mustPass(t)
	e.d.take()

	vm := rolling(scaleSet(4))
	vm.Properties.VirtualMachineProfile.StorageProfile.ImageReference.SKU = "script"
	put(t, e.st, vmssID, vm)
	hash := resource.ProfileHash(vm.Properties.VirtualMachineProfile)
	upgraded := func() []string {
		var out []string
		for id, in := range e.records(t) {
			if in.ModelHash == hash {
				out = append(out, id)
			}
		}
		sort.Strings(out)
		return out
	}

	e.mustPass(t)
	if got := upgraded(); !reflect.DeepEqual(got, []string{"0", "1"}) {
		t.Fatalf("first batch %v, want 0 1", got)
	}
	if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "destroy 1", "start 0", "start 1"}) {
		t.Fatalf("driver calls %v: the new image needs a restart", calls)
	}
	e.advance(30 * time.Second)
	e.mustPass(t)
	if got := upgraded(); len(got) != 2 {
		t.Fatalf("a batch started within pauseTimeBetweenBatches: %v", got)
	}
	e.advance(30 * time.Second)
	e.mustPass(t)
	if got := upgraded(); !reflect.DeepEqual(got, []string{"0", "1", "2", "3"}) {
		t.Fatalf("second batch: upgraded %v", got)
	}
}

func withProbe(vm *resource.VirtualMachineScaleSet) *resource.VirtualMachineScaleSet {
	vm.Properties.VirtualMachineProfile.NetworkProfile.HealthProbe = &resource.SubResource{ID: lbID + "/probes/p"}
	return vm
}

func TestApplyRollingUpgradeStopsWhenUnhealthy(t *testing.T) {
	e := newEnv(t)
	policy := &resource.UpgradePolicy{Mode: resource.UpgradeRolling}
	vm := withProbe(scaleSet(4))
	vm.Properties.UpgradePolicy = policy
	put(t, e.st, vmssID, vm)
	e.mustPass(t)

	vm = withProbe(scaleSet(4))
	vm.Properties.UpgradePolicy = policy
	vm.Properties.VirtualMachineProfile.OSProfile = &resource.OSProfile{CustomData: "ZWNobyBoaQo="}
	put(t, e.st, vmssID, vm)
	e.health.set("2", true)
	e.health.set("3", true)
	err := e.pass(t)
	var re *resource.Error
	if !errors.As(err, &re) || re.Code != "MaxUnhealthyInstancePercentExceededInRollingUpgrade" {
		t.Fatalf("pass: %v, want MaxUnhealthyInstancePercentExceededInRollingUpgrade", err)
	}
	if !errors.As(e.c.LastError(vmssID), &re) {
		t.Fatalf("LastError = %v", e.c.LastError(vmssID))
	}
	for id, in := range e.records(t) {
		if in.ModelHash == resource.ProfileHash(vm.Properties.VirtualMachineProfile) {
			t.Errorf("instance %s upgraded despite the unhealthy limit", id)
		}
	}
}

func TestApplyAutomaticRepairs(t *testing.T) {
	enabled := true
	for _, action := range []string{"Replace", "Restart"} {
		t.Run(action, func(t *testing.T) {
			e := newEnv(t)
			vm := withProbe(scaleSet(2))
			vm.Properties.AutomaticRepairsPolicy = &resource.AutomaticRepairsPolicy{Enabled: &enabled, GracePeriod: "PT10M", RepairAction: action}
			put(t, e.st, vmssID, vm)
			e.mustPass(t)
			e.d.take()

			e.health.set("0", true)
			e.advance(time.Minute)
			e.mustPass(t)
			if in := e.records(t)["0"]; !in.UnhealthySince.Equal(t0.Add(time.Minute)) {
				t.Fatalf("unhealthy since %v, want the pass's clock", in.UnhealthySince)
			}
			e.advance(10*time.Minute - time.Second)
			e.mustPass(t)
			if calls := e.d.take(); len(calls) != 0 {
				t.Fatalf("repaired within the grace period: %v", calls)
			}
			e.advance(time.Second)
			e.mustPass(t)
			recs := e.records(t)
			switch action {
			case "Replace":
				if got := keys(recs); !reflect.DeepEqual(got, []string{"1", "2"}) {
					t.Fatalf("records after the replace %v, want 1 2", got)
				}
				if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "start 2"}) {
					t.Fatalf("driver calls %v", calls)
				}
			case "Restart":
				in := recs["0"]
				if in.Repairs != 1 || in.Generation != 1 || in.Applied != 1 || !in.UnhealthySince.IsZero() || !in.RepairGraceFrom.Equal(e.clock()) {
					t.Fatalf("record after the restart: %+v", in)
				}
				if calls := e.d.take(); !reflect.DeepEqual(calls, []string{"destroy 0", "start 0"}) {
					t.Fatalf("driver calls %v", calls)
				}
			}
		})
	}
}

func TestApplyNATPorts(t *testing.T) {
	e := newEnv(t)
	pool := lbID + "/inboundNatPools/ssh"
	put(t, e.st, lbID, natLB(50000, 50009))
	put(t, e.st, vmssID, scaleSet(3, pool))
	e.mustPass(t)
	key := resource.NormalizeRefID(pool)
	got := map[string]uint16{}
	for id, in := range e.records(t) {
		got[id] = in.NATPorts[key]
	}
	// 50001 is the load-balancing rule's frontend port.
	if want := map[string]uint16{"0": 50000, "1": 50002, "2": 50003}; !reflect.DeepEqual(got, want) {
		t.Fatalf("NAT ports %v, want %v", got, want)
	}
	// Scale-in: survivors keep their ports.
	put(t, e.st, vmssID, scaleSet(2, pool))
	e.mustPass(t)
	put(t, e.st, vmssID, scaleSet(3, pool))
	e.mustPass(t)
	got = map[string]uint16{}
	for id, in := range e.records(t) {
		got[id] = in.NATPorts[key]
	}
	if want := map[string]uint16{"0": 50000, "1": 50002, "3": 50003}; !reflect.DeepEqual(got, want) {
		t.Fatalf("NAT ports %v, want %v", got, want)
	}
}

// TestApplyWithProcessDriver runs passes with the real process driver and
// the echo image (this test binary re-executed as the workload).
func TestApplyWithProcessDriver(t *testing.T) {
	if reason := drivertest.LowPortsSkipReason(); reason != "" {
		t.Skip(reason)
	}
	ctx := context.Background()
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := process.New(ctx, process.Options{StateDir: t.TempDir(), Env: map[string]string{workload.ReexecEnv: "1"},
		Pool: netip.MustParsePrefix("127.81.1.0/24"), StopTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close(context.Background(), true)
	c := New(Options{Store: st, Driver: d, Network: fixedSubnet{}})
	put(t, st, vmssID, scaleSet(2))
	if err := c.ReconcileAll(ctx); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.converged(ctx, vmssID); !ok || err != nil {
		t.Fatalf("converged = %v, %v", ok, err)
	}
	for _, id := range []string{"0", "1"} {
		s, err := d.Inspect(ctx, strings.ToLower(vmssID)+"/"+id)
		if err != nil || s.State != driver.StateRunning || !netip.MustParsePrefix("127.81.1.0/24").Contains(s.ProviderIP) {
			t.Fatalf("workload %s: %+v, %v", id, s, err)
		}
	}
	put(t, st, vmssID, scaleSet(1))
	if err := c.ReconcileAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Inspect(ctx, strings.ToLower(vmssID)+"/1"); !errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("scaled-in workload: %v, want destroyed", err)
	}
	if s, err := d.Inspect(ctx, strings.ToLower(vmssID)+"/0"); err != nil || s.State != driver.StateRunning {
		t.Fatalf("surviving workload: %+v, %v", s, err)
	}
}
