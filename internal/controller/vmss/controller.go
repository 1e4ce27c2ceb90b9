package vmss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/workload"
)

// Network tells the controller a subnet's prefix; addresses are allocated
// through internal/ipam in the same store transaction as the instance
// records that hold them.
type Network interface {
	SubnetPrefix(ctx context.Context, subnetID string) (netip.Prefix, error)
}

// Driver is what the controller needs of an instance driver; every
// driver.Driver has it. Stop and Destroy of an unknown key succeed, Start is
// idempotent per key, Inspect of an unknown key returns driver.ErrNotFound.
type Driver interface {
	Start(ctx context.Context, spec driver.InstanceSpec) (driver.Status, error)
	Stop(ctx context.Context, key string) error
	Destroy(ctx context.Context, key string) error
	Inspect(ctx context.Context, key string) (driver.Status, error)
}

var _ Driver = driver.Driver(nil)

// HealthSource answers the health probe's view of one backend ipconfig id:
// up, and whether the prober has an answer yet.
type HealthSource interface {
	BackendHealth(probeID, backendID string) (up, known bool)
}

// Options configure a Controller. Store, Driver and Network are required.
type Options struct {
	Store   store.Store
	Driver  Driver
	Network Network
	// PublicPool is where instance-level public IPs come from (zero: none
	// can be allocated).
	PublicPool netip.Prefix
	// Health feeds automatic repairs and rolling upgrades; nil means every
	// instance counts as healthy.
	Health HealthSource
	Logger *slog.Logger
	// Resync is the period of a full reconcile even without store events
	// (default 1 s): it notices workloads that exited and repair deadlines.
	Resync time.Duration
	// StartConcurrency bounds parallel workload starts (default 32).
	StartConcurrency int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Images maps scale sets' images to nimbus workloads (nil:
	// workload.DefaultImageMap). The API validates images with the same map.
	Images *workload.ImageMap
	// RepairGrace, when positive, replaces every automaticRepairsPolicy
	// gracePeriod. The API keeps Azure's 10-minute minimum; this exists for
	// tests and demos only (`nimbus serve --test-repair-grace`).
	RepairGrace time.Duration
}

// Controller reconciles scale sets into instances. Run it with Run; it is
// safe to call Kick and WaitConverged from other goroutines.
type Controller struct {
	opt  Options
	log  *slog.Logger
	kick chan struct{}

	mu        sync.Mutex
	waiters   map[string][]chan struct{} // lower vmss id -> woken after each pass
	lastError map[string]error           // lower vmss id -> last reconcile error
	rolling   map[string]time.Time       // lower vmss id -> no new rolling batch before
	// rolling and seenRunning are what passes remember (read hands them
	// to PlanPass as Memory; apply updates them).
	//
	// seenRunning holds the driver keys of instances this controller has
	// seen running. An instance found exited that was never seen running
	// died while nimbus was down (a crash, a host reboot): it is restarted,
	// as Azure restarts VMs after host maintenance. One that exits under
	// our eyes stays down for the health probe and automatic repairs.
	seenRunning map[string]bool
}

// New returns a Controller.
func New(opt Options) *Controller {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Resync <= 0 {
		opt.Resync = time.Second
	}
	if opt.StartConcurrency <= 0 {
		opt.StartConcurrency = 32
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Images == nil {
		opt.Images = workload.DefaultImageMap()
	}
	return &Controller{
		opt: opt, log: opt.Logger.With("controller", "vmss"), kick: make(chan struct{}, 1),
		waiters: map[string][]chan struct{}{}, lastError: map[string]error{}, rolling: map[string]time.Time{},
		seenRunning: map[string]bool{},
	}
}

// Kick asks for a reconcile pass soon.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends: after every store change under the
// resource and instance prefixes, and every Resync period.
func (c *Controller) Run(ctx context.Context) error {
	return store.Loop(ctx, c.opt.Store, []string{resource.ResourcePrefix + "/", resource.InstancePrefix}, c.opt.Resync,
		c.kick, c.ReconcileAll, func(err error) { c.log.Warn("reconcile failed", "err", err) })
}

// ReconcileAll runs one pass over every scale set and every set of instance
// records (records whose scale set is gone are torn down).
func (c *Controller) ReconcileAll(ctx context.Context) error {
	sets, _, err := c.opt.Store.List(ctx, resource.SubscriptionsPrefix)
	if err != nil {
		return fmt.Errorf("list scale sets: %w", err)
	}
	insts, _, err := c.opt.Store.List(ctx, resource.InstancePrefix)
	if err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	byVMSS := map[string][]store.KV{}
	counters := map[string]store.KV{}
	for _, kv := range insts {
		vm, id, ok := resource.SplitInstanceKey(kv.Key)
		switch {
		case !ok:
		case id == "":
			counters[vm] = kv
		default:
			byVMSS[vm] = append(byVMSS[vm], kv)
		}
	}
	seen := map[string]bool{}
	var errs []error
	for _, kv := range sets {
		if !strings.Contains(kv.Key, "/providers/microsoft.compute/virtualmachinescalesets/") {
			continue
		}
		vm, err := resource.DecodeScaleSet(kv.Value)
		if err != nil {
			continue
		}
		lid := strings.ToLower(vm.ID)
		seen[lid] = true
		err = c.reconcile(ctx, lid, vm, byVMSS[lid], counters[lid])
		c.finishPass(lid, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", vm.ID, err))
		}
	}
	for lid, kvs := range byVMSS {
		if seen[lid] {
			continue
		}
		err := c.reconcile(ctx, lid, nil, kvs, counters[lid])
		c.finishPass(lid, err)
		if err != nil {
			errs = append(errs, err)
		}
	}
	for lid, ckv := range counters {
		if !seen[lid] && len(byVMSS[lid]) == 0 {
			_, _ = c.opt.Store.Delete(ctx, ckv.Key, ckv.Revision)
		}
	}
	c.wakeAll()
	return errors.Join(errs...)
}

// wakeAll ends the wait of everyone waiting for a pass: scale sets this
// pass did not touch (gone, with no instances left) are trivially done.
func (c *Controller) wakeAll() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for lid, chs := range c.waiters {
		for _, ch := range chs {
			close(ch)
		}
		delete(c.waiters, lid)
	}
}

func (c *Controller) finishPass(lid string, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err != nil {
		c.lastError[lid] = err
	} else {
		delete(c.lastError, lid)
	}
	for _, ch := range c.waiters[lid] {
		close(ch)
	}
	delete(c.waiters, lid)
}

// LastError returns the last reconcile error of a scale set (nil if none).
func (c *Controller) LastError(vmssID string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastError[strings.ToLower(vmssID)]
}

// pass waits for the end of the next reconcile pass of vmssID; with kick it
// asks for one at once, else it waits for the next store event or resync.
func (c *Controller) pass(ctx context.Context, vmssID string, kick bool) error {
	ch := make(chan struct{})
	c.mu.Lock()
	lid := strings.ToLower(vmssID)
	c.waiters[lid] = append(c.waiters[lid], ch)
	c.mu.Unlock()
	if kick {
		c.Kick()
	}
	select {
	case <-ch:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// WaitConverged blocks until the scale set vmssID has exactly its capacity
// of instances, all provisioned and in their desired power state, or gone
// entirely if the scale set was deleted. It returns the error that stops
// progress — an instance that failed to start, an exhausted NAT pool range,
// with Azure's code where there is one — or ctx's.
func (c *Controller) WaitConverged(ctx context.Context, vmssID string) error {
	for first := true; ; first = false {
		if err := c.pass(ctx, vmssID, first); err != nil {
			return err
		}
		done, err := c.converged(ctx, vmssID)
		if done || err != nil {
			return err
		}
		if err := c.LastError(vmssID); err != nil {
			var re *resource.Error
			if errors.As(err, &re) {
				return re
			}
			return &resource.Error{Status: 400, Code: "VMScaleSetOperationFailed", Message: err.Error()}
		}
	}
}

func (c *Controller) converged(ctx context.Context, vmssID string) (bool, error) {
	kvs, _, err := c.opt.Store.List(ctx, resource.InstancesPrefix(vmssID))
	if err != nil {
		return false, err
	}
	want := int64(-1)
	if kv, err := c.opt.Store.Get(ctx, resource.Key(mustParse(vmssID))); err == nil {
		if vm, err := resource.DecodeScaleSet(kv.Value); err == nil {
			want = vm.Capacity()
		}
	} else if !errors.Is(err, store.ErrNotFound) {
		return false, err
	}
	if want < 0 {
		return len(kvs) == 0, nil
	}
	insts := make([]*resource.Instance, 0, len(kvs))
	for _, kv := range kvs {
		if in, err := resource.DecodeInstance(kv.Value); err == nil {
			insts = append(insts, in)
		}
	}
	return settled(vmssID, want, insts)
}

func mustParse(s string) resource.ID {
	id, _ := resource.ParseID(s)
	return id
}

// reconcile runs one pass over one scale set (vm nil: it is gone and its
// instances are torn down): read, PlanPass, apply.
func (c *Controller) reconcile(ctx context.Context, lid string, vm *resource.VirtualMachineScaleSet, kvs []store.KV, counter store.KV) error {
	snap, err := c.read(ctx, lid, vm, kvs, counter)
	if err != nil {
		return err
	}
	return c.apply(ctx, snap, PlanPass(snap.input))
}

// read gathers a pass's Input for one scale set: its records (a record
// that does not decode fails the pass, or is skipped when the scale set is
// gone), its counter, the driver's state of every record not being deleted,
// their health by the scale set's health probe, the load balancers their
// models and the scale set's model refer to, and the controller's memory.
func (c *Controller) read(ctx context.Context, lid string, vm *resource.VirtualMachineScaleSet, kvs []store.KV, counter store.KV) (snapshot, error) {
	s := snapshot{lid: lid, revs: map[string]int64{}, counter: counter}
	in := Input{ScaleSet: vm, Now: c.opt.Now(), RepairGrace: c.opt.RepairGrace}
	for _, kv := range kvs {
		rec, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			if vm == nil {
				continue
			}
			return s, fmt.Errorf("decode instance %s: %w", kv.Key, err)
		}
		in.Instances = append(in.Instances, rec)
		s.revs[rec.InstanceID] = kv.Revision
	}
	s.input = in
	if vm == nil {
		return s, nil
	}
	if counter.Key != "" {
		var ctr resource.InstanceCounter
		if err := json.Unmarshal(counter.Value, &ctr); err != nil {
			return s, fmt.Errorf("decode instance counter: %w", err)
		}
		in.NextID = ctr.Next
	}
	switch kv, err := c.opt.Store.Get(ctx, resource.ScaleSetStateKey(vm.ID)); {
	case err == nil:
		st, err := resource.DecodeScaleSetState(kv.Value)
		if err != nil {
			return s, fmt.Errorf("decode scale set state: %w", err)
		}
		in.RepairsSuspended = st.IsSuspended(resource.ServiceAutomaticRepairs)
	case !errors.Is(err, store.ErrNotFound):
		return s, fmt.Errorf("read scale set state: %w", err)
	}
	probe := healthProbe(vm)
	if probe != "" && c.opt.Health != nil {
		in.Health = map[string]Health{}
	}
	in.Workloads = map[string]driver.Status{}
	in.Memory.SeenRunning = map[string]bool{}
	lbIDs := lbRefs(nil, vm.Properties.VirtualMachineProfile)
	for _, rec := range in.Instances {
		if rec.Deleting {
			continue
		}
		key := driverKey(rec)
		st, err := c.opt.Driver.Inspect(ctx, key)
		switch {
		case err == nil:
			in.Workloads[rec.InstanceID] = st
		case !errors.Is(err, driver.ErrNotFound):
			return s, fmt.Errorf("inspect %s: %w", rec.Name, err)
		}
		if in.Health != nil {
			up, known := c.opt.Health.BackendHealth(probe, resource.NormalizeRefID(rec.PrimaryIPConfigID()))
			switch {
			case !known:
			case up:
				in.Health[rec.InstanceID] = HealthUp
			default:
				in.Health[rec.InstanceID] = HealthDown
			}
		}
		lbIDs = lbRefs(lbIDs, rec.Model)
	}
	in.LoadBalancers = map[string]*resource.LoadBalancer{}
	for _, id := range lbIDs {
		key := resource.NormalizeRefID(id)
		if _, ok := in.LoadBalancers[key]; ok {
			continue
		}
		kv, err := c.opt.Store.Get(ctx, resource.Key(mustParse(id)))
		if errors.Is(err, store.ErrNotFound) {
			continue // the plan fails where it needs it
		}
		if err != nil {
			return s, fmt.Errorf("load balancer %s: %w", id, err)
		}
		lb, err := resource.DecodeLoadBalancer(kv.Value)
		if err != nil {
			return s, fmt.Errorf("decode load balancer %s: %w", id, err)
		}
		in.LoadBalancers[key] = lb
	}
	c.mu.Lock()
	for _, rec := range in.Instances {
		if c.seenRunning[driverKey(rec)] {
			in.Memory.SeenRunning[rec.InstanceID] = true
		}
	}
	in.Memory.RollingNotBefore = c.rolling[lid]
	c.mu.Unlock()
	s.input = in
	return s, nil
}

// lbRefs appends the ids of the load balancers whose NAT pools and backend
// pools the primary ipconfig of p lists.
func lbRefs(ids []string, p *resource.VMProfile) []string {
	_, ipc := resource.PrimaryIPConfig(p)
	if ipc == nil {
		return ids
	}
	for _, refs := range [][]resource.SubResource{ipc.Properties.LoadBalancerInboundNatPools, ipc.Properties.LoadBalancerBackendAddressPools} {
		for _, r := range refs {
			if lbID, _, _, ok := resource.ParseLBChildID(r.ID); ok {
				ids = append(ids, lbID)
			}
		}
	}
	return ids
}

// healthProbe returns the scale set's health probe id (normalized), or "".
func healthProbe(vm *resource.VirtualMachineScaleSet) string {
	if np := vm.NetworkProfile(); np != nil && np.HealthProbe != nil {
		return resource.NormalizeRefID(np.HealthProbe.ID)
	}
	return ""
}
