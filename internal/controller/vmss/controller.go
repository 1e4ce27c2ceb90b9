package vmss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"nimbus/internal/driver"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Network tells the controller a subnet's prefix; addresses are allocated
// through internal/ipam in the same store transaction as the instance
// records that hold them.
type Network interface {
	SubnetPrefix(ctx context.Context, subnetID string) (netip.Prefix, error)
}

// HealthSource answers the health probe's view of one backend ipconfig id:
// up, and whether the prober has an answer yet.
type HealthSource interface {
	BackendHealth(probeID, backendID string) (up, known bool)
}

// Options configure a Controller. Store, Driver and Network are required.
type Options struct {
	Store   store.Store
	Driver  driver.Driver
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
		err = c.reconcile(ctx, vm, kv.Revision, byVMSS[lid], counters[lid])
		c.finishPass(lid, err)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", vm.ID, err))
		}
	}
	for lid, kvs := range byVMSS {
		if seen[lid] {
			continue
		}
		err := c.teardown(ctx, kvs)
		if err == nil {
			if ckv, ok := counters[lid]; ok {
				_, err = c.opt.Store.Delete(ctx, ckv.Key, ckv.Revision)
			}
		}
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
	n := int64(0)
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			continue
		}
		if in.ProvisioningState == resource.Failed && !in.Deleting {
			return false, &resource.Error{Status: 400, Code: "VMScaleSetInstanceFailed",
				Message: fmt.Sprintf("Instance %s of scale set %s failed to start: %s", in.Name, vmssID, in.Message)}
		}
		if in.Deleting || in.ProvisioningState != resource.Succeeded || in.Generation != in.Applied {
			return false, nil
		}
		if in.Power == resource.PowerRunning && in.Actual != resource.PowerRunning && in.Message == "" {
			return false, nil
		}
		n++
	}
	return n == want, nil
}

func mustParse(s string) resource.ID {
	id, _ := resource.ParseID(s)
	return id
}

// reconcile drives one scale set towards its model.
func (c *Controller) reconcile(ctx context.Context, vm *resource.VirtualMachineScaleSet, rev int64, kvs []store.KV, counter store.KV) error {
	insts := make([]*instanceKV, 0, len(kvs))
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			return fmt.Errorf("decode instance %s: %w", kv.Key, err)
		}
		insts = append(insts, &instanceKV{in: in, rev: kv.Revision})
	}
	sort.Slice(insts, func(i, j int) bool { return resource.LessInstanceID(insts[i].in.InstanceID, insts[j].in.InstanceID) })

	// 1. Finish removals first so their addresses and ports are free.
	alive := insts[:0:0]
	for _, ik := range insts {
		if ik.in.Deleting {
			if err := c.remove(ctx, ik); err != nil {
				return err
			}
			continue
		}
		alive = append(alive, ik)
	}

	// 2. Scale in.
	capacity := int(vm.Capacity())
	if len(alive) > capacity {
		victims := c.scaleInVictims(vm, alive, len(alive)-capacity)
		for _, ik := range alive {
			if victims[ik.in.InstanceID] {
				ik.in.Deleting = true
				ik.in.ProvisioningState = resource.Deleting
				if err := c.save(ctx, ik); err != nil {
					return err
				}
				if err := c.remove(ctx, ik); err != nil {
					return err
				}
			}
		}
		alive = filterAlive(alive)
	}

	// 3. Upgrades of existing instances (Automatic, Rolling), then repairs.
	hash := resource.ProfileHash(vm.Properties.VirtualMachineProfile)
	if err := c.upgrade(ctx, vm, hash, alive); err != nil {
		return err
	}
	if err := c.repair(ctx, vm, alive); err != nil {
		return err
	}
	alive = filterAlive(alive)

	// 4. Scale out, unless a NAT pool's range cannot serve the new count
	// (Azure refuses the scale-out; nothing is created).
	if len(alive) < capacity {
		if err := c.checkNATRanges(ctx, vm, capacity); err != nil {
			return err
		}
		created, err := c.create(ctx, vm, hash, capacity-len(alive), counter)
		if err != nil {
			return err
		}
		alive = append(alive, created...)
	}

	// 5. NAT pool ports for everyone who uses a pool.
	if err := c.assignNATPorts(ctx, alive); err != nil {
		return err
	}

	// 6. Drive the workloads.
	return c.drive(ctx, vm, alive)
}

type instanceKV struct {
	in  *resource.Instance
	rev int64
}

func filterAlive(in []*instanceKV) []*instanceKV {
	out := in[:0:0]
	for _, ik := range in {
		if !ik.in.Deleting {
			out = append(out, ik)
		}
	}
	return out
}

// save writes an instance record with its expected revision.
func (c *Controller) save(ctx context.Context, ik *instanceKV) error {
	b, err := json.Marshal(ik.in)
	if err != nil {
		return fmt.Errorf("encode instance: %w", err)
	}
	rev, err := c.opt.Store.Put(ctx, resource.InstanceKey(ik.in.ScaleSetID, ik.in.InstanceID), b, ik.rev)
	if err != nil {
		return fmt.Errorf("save instance %s: %w", ik.in.Name, err)
	}
	ik.rev = rev
	return nil
}

func (c *Controller) scaleInVictims(vm *resource.VirtualMachineScaleSet, alive []*instanceKV, n int) map[string]bool {
	rule := ScaleInDefault
	if p := vm.Properties.ScaleInPolicy; p != nil && len(p.Rules) > 0 {
		rule = p.Rules[0]
	}
	cands := make([]ScaleInCandidate, 0, len(alive))
	for _, ik := range alive {
		cands = append(cands, ScaleInCandidate{
			InstanceID: ik.in.InstanceID, Created: ik.in.Created, Zone: ik.in.Zone,
			Protected: ik.in.ProtectFromScaleIn || ik.in.ProtectFromScaleSetActions,
		})
	}
	out := map[string]bool{}
	for _, id := range SelectForScaleIn(cands, n, rule) {
		out[id] = true
	}
	return out
}

// create makes n new instance records (ids from the scale set's counter,
// private IPs from the subnet) and saves them; workloads start in drive.
func (c *Controller) create(ctx context.Context, vm *resource.VirtualMachineScaleSet, hash string, n int, counter store.KV) ([]*instanceKV, error) {
	var ctr resource.InstanceCounter
	if counter.Key != "" {
		if err := json.Unmarshal(counter.Value, &ctr); err != nil {
			return nil, fmt.Errorf("decode instance counter: %w", err)
		}
	}
	first := ctr.Next
	ctr.Next += n
	cb, _ := json.Marshal(ctr)
	expected := store.MustNotExist
	if counter.Key != "" {
		expected = counter.Revision
	}
	// One transaction: the id counter, the addresses and the records. A
	// crash leaves all of it or none of it, and a concurrent writer makes it
	// conflict (the next pass tries again).
	tx := ipam.NewStage(c.opt.Store)
	tx.Put(resource.InstanceCounterKey(vm.ID), cb, expected)
	prefix := vm.Name
	if vp := vm.Properties.VirtualMachineProfile; vp != nil && vp.OSProfile != nil && vp.OSProfile.ComputerNamePrefix != "" {
		prefix = vp.OSProfile.ComputerNamePrefix
	}
	model, err := resource.CloneProfile(vm.Properties.VirtualMachineProfile)
	if err != nil {
		return nil, err
	}
	_, ipc := resource.PrimaryIPConfig(model)
	out := make([]*instanceKV, 0, n)
	for i := 0; i < n; i++ {
		id := strconv.Itoa(first + i)
		in := &resource.Instance{
			ScaleSetID: vm.ID, InstanceID: id, Name: vm.Name + "_" + id,
			ComputerName: fmt.Sprintf("%s%06s", prefix, strconv.FormatInt(int64(first+i), 36)),
			VMID:         uuid.NewString(), Location: vm.Location, Created: c.opt.Now().UTC(),
			Model: model, ModelHash: hash, Power: resource.PowerRunning,
			ProvisioningState: resource.Creating,
		}
		in.RepairGraceFrom = in.Created
		if len(vm.Zones) > 0 {
			in.Zone = vm.Zones[(first+i)%len(vm.Zones)]
		}
		if ipc != nil && ipc.Properties.Subnet != nil {
			in.Subnet = ipc.Properties.Subnet.ID
		}
		out = append(out, &instanceKV{in: in, rev: store.MustNotExist})
	}
	if ipc != nil && ipc.Properties.Subnet != nil {
		pfx, err := c.opt.Network.SubnetPrefix(ctx, ipc.Properties.Subnet.ID)
		if err != nil {
			return nil, fmt.Errorf("subnet of %s: %w", vm.Name, err)
		}
		for _, ik := range out {
			addr, err := ipam.AllocatePrivate(ctx, tx, ik.in.Subnet, pfx, ik.in.ID(), netip.Addr{})
			if err != nil {
				return nil, fmt.Errorf("allocate private ip for %s: %w", ik.in.Name, err)
			}
			ik.in.PrivateIP = addr.String()
		}
	}
	if ipc != nil && ipc.Properties.PublicIPAddressConfiguration != nil && c.opt.PublicPool.IsValid() {
		for _, ik := range out {
			addr, err := ipam.AllocatePublic(ctx, tx, c.opt.PublicPool, ik.in.ID())
			if err != nil {
				return nil, fmt.Errorf("allocate public ip for %s: %w", ik.in.Name, err)
			}
			ik.in.PublicIP = addr.String()
		}
	}
	for _, ik := range out {
		b, err := json.Marshal(ik.in)
		if err != nil {
			return nil, fmt.Errorf("encode instance: %w", err)
		}
		tx.Put(resource.InstanceKey(vm.ID, ik.in.InstanceID), b, store.MustNotExist)
	}
	rev, err := tx.Commit(ctx)
	if err != nil {
		return nil, fmt.Errorf("save %d new instances of %s: %w", n, vm.Name, err)
	}
	for _, ik := range out {
		ik.rev = rev
	}
	c.log.Info("scaled out", "resource", vm.ID, "count", n)
	return out, nil
}

// remove stops an instance for good, releases its addresses and deletes
// its record.
func (c *Controller) remove(ctx context.Context, ik *instanceKV) error {
	in := ik.in
	if err := c.opt.Driver.Destroy(ctx, driverKey(in)); err != nil {
		return fmt.Errorf("destroy %s: %w", in.Name, err)
	}
	// Addresses are released with the record, in one transaction.
	tx := ipam.NewStage(c.opt.Store)
	if addr, err := netip.ParseAddr(in.PrivateIP); err == nil && in.Subnet != "" {
		if _, err := tx.Get(ctx, ipam.PrivateKey(in.Subnet, addr)); err == nil {
			ipam.ReleasePrivate(tx, in.Subnet, addr)
		}
	}
	if addr, err := netip.ParseAddr(in.PublicIP); err == nil {
		if _, err := tx.Get(ctx, ipam.PublicKey(addr)); err == nil {
			ipam.ReleasePublic(tx, addr)
		}
	}
	tx.Delete(resource.InstanceKey(in.ScaleSetID, in.InstanceID), ik.rev)
	if _, err := tx.Commit(ctx); err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("delete instance record %s: %w", in.Name, err)
	}
	ik.in.Deleting = true
	c.log.Info("instance removed", "resource", in.ID())
	return nil
}

// teardown removes every instance of a deleted scale set.
func (c *Controller) teardown(ctx context.Context, kvs []store.KV) error {
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			continue
		}
		if err := c.remove(ctx, &instanceKV{in: in, rev: kv.Revision}); err != nil {
			return err
		}
	}
	return nil
}

// driverKey is the driver's key of an instance.
func driverKey(in *resource.Instance) string {
	return strings.ToLower(in.ScaleSetID) + "/" + in.InstanceID
}

// assignNATPorts gives every instance a port of each NAT pool its model uses
// and saves records whose ports changed.
func (c *Controller) assignNATPorts(ctx context.Context, alive []*instanceKV) error {
	// pools maps a NAT pool id, or a NAT rule v2 id, to the instances that
	// need a port from it: NAT pools named by the instance's model, and v2
	// rules whose backend pool the instance is in.
	pools := map[string][]*instanceKV{}
	lbs := map[string]*resource.LoadBalancer{}
	for _, ik := range alive {
		_, ipc := resource.PrimaryIPConfig(ik.in.Model)
		if ipc == nil {
			continue
		}
		for _, p := range ipc.Properties.LoadBalancerInboundNatPools {
			lp := resource.NormalizeRefID(p.ID)
			pools[lp] = append(pools[lp], ik)
		}
		for _, p := range ipc.Properties.LoadBalancerBackendAddressPools {
			lbID, _, _, ok := resource.ParseLBChildID(p.ID)
			if !ok {
				continue
			}
			lb, err := c.loadLB(ctx, lbs, lbID)
			if err != nil {
				return err
			}
			for _, r := range lb.Properties.InboundNatRules {
				if r.IsV2() && r.Properties.BackendAddressPool != nil && resource.SameID(r.Properties.BackendAddressPool.ID, p.ID) {
					id := resource.NormalizeRefID(r.ID)
					pools[id] = append(pools[id], ik)
				}
			}
		}
	}
	changed := map[*instanceKV]bool{}
	for poolID, members := range pools {
		start, end, reserved, err := c.natPoolRange(ctx, lbs, poolID)
		if err != nil {
			return err
		}
		current := map[string]uint16{}
		ids := make([]string, 0, len(members))
		for _, ik := range members {
			ids = append(ids, ik.in.InstanceID)
			if p, ok := ik.in.NATPorts[poolID]; ok {
				current[ik.in.InstanceID] = p
			}
		}
		got, err := AssignNATPorts(start, end, current, ids, reserved)
		if err != nil {
			return &resource.Error{Status: 400, Code: "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts",
				Message: fmt.Sprintf("Inbound NAT pool %s has frontend port range %d-%d, smaller than the %d ports requested by the scale set instances.", poolID, start, end, len(ids))}
		}
		for _, ik := range members {
			if ik.in.NATPorts[poolID] != got[ik.in.InstanceID] {
				if ik.in.NATPorts == nil {
					ik.in.NATPorts = map[string]uint16{}
				}
				ik.in.NATPorts[poolID] = got[ik.in.InstanceID]
				changed[ik] = true
			}
		}
	}
	for _, ik := range alive {
		for poolID := range ik.in.NATPorts {
			if !containsIK(pools[poolID], ik) {
				delete(ik.in.NATPorts, poolID)
				changed[ik] = true
			}
		}
	}
	for ik := range changed {
		if err := c.save(ctx, ik); err != nil {
			return err
		}
	}
	return nil
}

func containsIK(list []*instanceKV, ik *instanceKV) bool {
	for _, x := range list {
		if x == ik {
			return true
		}
	}
	return false
}

// checkNATRanges fails with InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts
// when a NAT pool the model uses has fewer ports than capacity instances
// need (ports other rules use on its frontend do not count).
func (c *Controller) checkNATRanges(ctx context.Context, vm *resource.VirtualMachineScaleSet, capacity int) error {
	_, ipc := resource.PrimaryIPConfig(vm.Properties.VirtualMachineProfile)
	if ipc == nil {
		return nil
	}
	lbs := map[string]*resource.LoadBalancer{}
	for _, p := range ipc.Properties.LoadBalancerInboundNatPools {
		start, end, reserved, err := c.natPoolRange(ctx, lbs, resource.NormalizeRefID(p.ID))
		if err != nil {
			return err
		}
		free := 0
		for port := int(start); port <= int(end); port++ {
			if !reserved[uint16(port)] {
				free++
			}
		}
		if free < capacity {
			return &resource.Error{Status: 400, Code: "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts",
				Message: fmt.Sprintf("The frontend port range %d-%d of inbound NAT pool %s is smaller than the %d ports requested by scale set %s.", start, end, p.ID, capacity, vm.ID)}
		}
	}
	return nil
}

// loadLB reads a load balancer once per pass (cache keyed by normalized id).
func (c *Controller) loadLB(ctx context.Context, cache map[string]*resource.LoadBalancer, lbID string) (*resource.LoadBalancer, error) {
	key := resource.NormalizeRefID(lbID)
	if lb, ok := cache[key]; ok {
		return lb, nil
	}
	kv, err := c.opt.Store.Get(ctx, resource.Key(mustParse(lbID)))
	if err != nil {
		return nil, fmt.Errorf("load balancer %s: %w", lbID, err)
	}
	lb, err := resource.DecodeLoadBalancer(kv.Value)
	if err != nil {
		return nil, fmt.Errorf("decode load balancer %s: %w", lbID, err)
	}
	cache[key] = lb
	return lb, nil
}

// natPoolRange reads a NAT pool's (or v2 NAT rule's) frontend port range
// from its load balancer, and the frontend ports other rules on the same
// frontend use.
func (c *Controller) natPoolRange(ctx context.Context, cache map[string]*resource.LoadBalancer, poolID string) (start, end uint16, reserved map[uint16]bool, err error) {
	lbID, coll, name, ok := resource.ParseLBChildID(poolID)
	if !ok {
		return 0, 0, nil, fmt.Errorf("nat pool id %q: not a load balancer child", poolID)
	}
	lb, err := c.loadLB(ctx, cache, lbID)
	if err != nil {
		return 0, 0, nil, err
	}
	return natPoolPorts(lb, coll, name)
}
