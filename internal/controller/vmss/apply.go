package vmss

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"nimbus/internal/driver"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/workload"
)

// This file is the I/O half of a pass: apply carries out a Plan against the
// store and the driver. Every step is one store write with the record's
// expected revision (or one transaction), or one idempotent driver call, so
// a step is safe to retry and a pass that stops between steps converges on
// the next pass; a write conflict ends the pass and the next one re-reads.

// snapshot is what a pass read about one scale set: the plan's Input and
// what apply needs besides, the records' revisions and the counter.
type snapshot struct {
	lid     string // lower-case scale set id
	input   Input
	revs    map[string]int64 // instance id -> record revision
	counter store.KV         // the InstanceCounter; zero Key when there is none
}

type instanceKV struct {
	in  *resource.Instance
	rev int64
}

// applier carries out one plan; work holds the records as the applied
// steps left them (with their revisions).
type applier struct {
	c    *Controller
	snap snapshot
	work map[string]*instanceKV
}

// apply carries out plan, read from snap, phase by phase, and returns the
// first error: a step's, or the plan's own Err once the steps before it are
// done.
func (c *Controller) apply(ctx context.Context, snap snapshot, plan Plan) error {
	a := &applier{c: c, snap: snap, work: map[string]*instanceKV{}}
	for _, in := range snap.input.Instances {
		cp := *in
		a.work[in.InstanceID] = &instanceKV{in: &cp, rev: snap.revs[in.InstanceID]}
	}
	for _, r := range plan.Removals {
		ik := a.work[r.InstanceID]
		if r.marks() {
			ik.in.Deleting, ik.in.ProvisioningState = true, resource.Deleting
			if err := c.save(ctx, ik); err != nil {
				return err
			}
		}
		if err := c.remove(ctx, ik); err != nil {
			return err
		}
	}
	if r := plan.Rolling; r != nil && r.Batch > 0 {
		c.mu.Lock()
		c.rolling[snap.lid] = r.NotBefore
		c.mu.Unlock()
	}
	for _, u := range plan.Upgrades {
		if err := a.edit(ctx, u.InstanceID, u.edit); err != nil {
			return err
		}
	}
	for _, m := range plan.HealthMarks {
		if err := a.edit(ctx, m.InstanceID, m.edit); err != nil {
			return err
		}
	}
	for _, r := range plan.Repairs {
		ik := a.work[r.InstanceID]
		c.log.Info("repairing instance", "resource", ik.in.ID(), "action", r.Action)
		if !r.replaces() {
			if err := a.edit(ctx, r.InstanceID, r.edit); err != nil {
				return err
			}
			continue
		}
		// Replace: delete it; scale-out creates a fresh instance.
		ik.in.Deleting, ik.in.ProvisioningState = true, resource.Deleting
		if err := c.save(ctx, ik); err != nil {
			return err
		}
		if err := c.remove(ctx, ik); err != nil {
			return err
		}
	}
	if plan.Create != nil {
		if err := a.create(ctx, plan.Create); err != nil {
			return err
		}
	}
	for _, n := range plan.NATPorts {
		if err := a.edit(ctx, n.InstanceID, n.edit); err != nil {
			return err
		}
	}
	for _, id := range plan.SeenRunning {
		c.markSeenRunning(driverKey(a.work[id].in))
	}
	if err := a.drive(ctx, plan.Drive); err != nil {
		return err
	}
	if plan.DeleteCounter && snap.counter.Key != "" {
		if _, err := c.opt.Store.Delete(ctx, snap.counter.Key, snap.counter.Revision); err != nil {
			return fmt.Errorf("delete instance counter of %s: %w", snap.lid, err)
		}
	}
	return plan.Err
}

// edit changes one record with f and saves it.
func (a *applier) edit(ctx context.Context, id string, f func(*resource.Instance)) error {
	ik := a.work[id]
	f(ik.in)
	return a.c.save(ctx, ik)
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

// create saves the planned new records, with a VMID each and addresses
// from the subnet (and the public pool when the model asks for public IPs),
// and moves the scale set's counter past them: one transaction, so a crash
// leaves all of it or none of it, and a concurrent writer makes it conflict
// (the next pass tries again).
func (a *applier) create(ctx context.Context, cr *Creation) error {
	c, vm := a.c, a.snap.input.ScaleSet
	cb, err := json.Marshal(resource.InstanceCounter{Next: cr.FirstID + len(cr.Instances)})
	if err != nil {
		return fmt.Errorf("encode instance counter: %w", err)
	}
	expected := store.MustNotExist
	if a.snap.counter.Key != "" {
		expected = a.snap.counter.Revision
	}
	tx := ipam.NewStage(c.opt.Store)
	tx.Put(resource.InstanceCounterKey(vm.ID), cb, expected)
	out := make([]*instanceKV, 0, len(cr.Instances))
	for _, in := range cr.Instances {
		cp := *in
		cp.VMID = uuid.NewString()
		out = append(out, &instanceKV{in: &cp, rev: store.MustNotExist})
	}
	_, ipc := resource.PrimaryIPConfig(vm.Properties.VirtualMachineProfile)
	if ipc != nil && ipc.Properties.Subnet != nil {
		pfx, err := c.opt.Network.SubnetPrefix(ctx, ipc.Properties.Subnet.ID)
		if err != nil {
			return fmt.Errorf("subnet of %s: %w", vm.Name, err)
		}
		for _, ik := range out {
			addr, err := ipam.AllocatePrivate(ctx, tx, ik.in.Subnet, pfx, ik.in.ID(), netip.Addr{})
			if err != nil {
				return fmt.Errorf("allocate private ip for %s: %w", ik.in.Name, err)
			}
			ik.in.PrivateIP = addr.String()
		}
	}
	if ipc != nil && ipc.Properties.PublicIPAddressConfiguration != nil && c.opt.PublicPool.IsValid() {
		for _, ik := range out {
			addr, err := ipam.AllocatePublic(ctx, tx, c.opt.PublicPool, ik.in.ID())
			if err != nil {
				return fmt.Errorf("allocate public ip for %s: %w", ik.in.Name, err)
			}
			ik.in.PublicIP = addr.String()
		}
	}
	for _, ik := range out {
		b, err := json.Marshal(ik.in)
		if err != nil {
			return fmt.Errorf("encode instance: %w", err)
		}
		tx.Put(resource.InstanceKey(vm.ID, ik.in.InstanceID), b, store.MustNotExist)
	}
	rev, err := tx.Commit(ctx)
	if err != nil {
		return fmt.Errorf("save %d new instances of %s: %w", len(out), vm.Name, err)
	}
	for _, ik := range out {
		ik.rev = rev
		a.work[ik.in.InstanceID] = ik
	}
	c.log.Info("scaled out", "resource", vm.ID, "count", len(out))
	return nil
}

// remove stops an instance for good, releases its addresses and deletes
// its record. A record already gone counts as removed.
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

// driverKey is the driver's key of an instance.
func driverKey(in *resource.Instance) string {
	return strings.ToLower(in.ScaleSetID) + "/" + in.InstanceID
}

// drive carries out the drive steps, at most StartConcurrency at once; the
// first error cancels the others.
func (a *applier) drive(ctx context.Context, steps []Drive) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(a.c.opt.StartConcurrency)
	for _, d := range steps {
		ik := a.work[d.InstanceID]
		g.Go(func() error { return a.c.driveOne(gctx, ik, d, a.snap.input.Now.UTC()) })
	}
	return g.Wait()
}

// driveOne carries out one drive step and saves the record if its status
// changed. A start that fails marks the record Failed with the error as its
// Message (WaitConverged reports it); the next pass tries again.
func (c *Controller) driveOne(ctx context.Context, ik *instanceKV, d Drive, now time.Time) error {
	in := ik.in
	key := driverKey(in)
	before := *in
	switch d.Action {
	case DriveRefresh:
		d.Status.edit(in)
	case DriveStop:
		if err := c.opt.Driver.Stop(ctx, key); err != nil {
			return fmt.Errorf("stop %s: %w", in.Name, err)
		}
		d.Status.edit(in)
	case DriveStart, DriveRestart:
		if d.Action == DriveRestart {
			if d.Reason == ReasonDiedWhileDown {
				c.log.Info("restarting instance that stopped while nimbus was down", "resource", in.ID(), "reason", d.Detail)
			}
			if err := c.opt.Driver.Destroy(ctx, key); err != nil {
				return fmt.Errorf("restart %s: %w", in.Name, err)
			}
		}
		spec, err := c.spec(ctx, in)
		if err != nil {
			in.ProvisioningState, in.Message = resource.Failed, err.Error()
			return c.saveIfChanged(ctx, ik, before)
		}
		st, err := c.opt.Driver.Start(ctx, spec)
		if err != nil {
			in.ProvisioningState, in.Message = resource.Failed, err.Error()
			in.Applied = in.Generation
			return c.saveIfChanged(ctx, ik, before)
		}
		in.Applied = in.Generation
		in.RepairGraceFrom = now
		runningStatus(in, st).edit(in)
		if st.State == driver.StateRunning {
			c.markSeenRunning(key)
		}
	}
	return c.saveIfChanged(ctx, ik, before)
}

func (c *Controller) saveIfChanged(ctx context.Context, ik *instanceKV, before resource.Instance) error {
	if statusOf(&before) == statusOf(ik.in) && before.RepairGraceFrom.Equal(ik.in.RepairGraceFrom) &&
		before.Workload == ik.in.Workload && before.Ports == ik.in.Ports {
		return nil
	}
	return c.save(ctx, ik)
}

// spec builds the driver's view of an instance from its applied model.
func (c *Controller) spec(ctx context.Context, in *resource.Instance) (driver.InstanceSpec, error) {
	spec := driver.InstanceSpec{
		Key: driverKey(in), Name: in.Name, InstanceID: in.InstanceID, ComputerName: in.ComputerName,
		Env: map[string]string{"NIMBUS_SCALE_SET": in.ScaleSetID},
	}
	if err := c.mapWorkload(ctx, in, &spec); err != nil {
		return spec, err
	}
	if in.PrivateIP != "" {
		addr, err := netip.ParseAddr(in.PrivateIP)
		if err != nil {
			return spec, fmt.Errorf("instance %s private ip: %w", in.Name, err)
		}
		spec.PrivateIP = addr
		pfx, err := c.opt.Network.SubnetPrefix(ctx, in.Subnet)
		if err != nil {
			return spec, fmt.Errorf("instance %s subnet: %w", in.Name, err)
		}
		spec.Subnet = pfx
		spec.Gateway = pfx.Masked().Addr().Next()
	}
	return spec, nil
}

// mapWorkload sets the nimbus workload spec runs for the instance's image
// (Options.Images): the mapped image, customData and extension commands
// when the map entry runs them, and for the echo workload every port the
// instance's load balancers send to. It records the choice on in.
func (c *Controller) mapWorkload(ctx context.Context, in *resource.Instance, spec *driver.InstanceSpec) error {
	e, err := c.opt.Images.Map(workload.ImageRefOf(in.Model))
	if err != nil {
		return fmt.Errorf("instance %s: %w", in.Name, err)
	}
	spec.Image = e.Image()
	in.Workload, in.Ports = e.Name+" ("+string(e.Workload)+")", ""
	if e.RunsCustomData() && in.Model.OSProfile != nil {
		spec.CustomData = in.Model.OSProfile.CustomData
	}
	if e.RunsExtensions() {
		if cmds := workload.ExtensionCommands(in.Model); len(cmds) > 0 {
			b, err := json.Marshal(cmds)
			if err != nil {
				return fmt.Errorf("instance %s extensions: %w", in.Name, err)
			}
			spec.Env[workload.EnvCommands] = string(b)
		}
	}
	if e.Workload != workload.KindEcho {
		return nil
	}
	u := (&resource.VirtualMachineScaleSet{Properties: resource.VMSSProps{VirtualMachineProfile: in.Model}}).Uses()
	var lbs []*resource.LoadBalancer
	for _, id := range u.LoadBalancerIDs() {
		pid, err := resource.ParseID(id)
		if err != nil {
			continue
		}
		kv, err := c.opt.Store.Get(ctx, resource.Key(pid))
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("instance %s load balancer: %w", in.Name, err)
		}
		lb, err := resource.DecodeLoadBalancer(kv.Value)
		if err != nil {
			return fmt.Errorf("instance %s load balancer: %w", in.Name, err)
		}
		lbs = append(lbs, lb)
	}
	var ports []workload.Port
	for _, p := range resource.BackendPorts(lbs, u.Pools, u.NatPools, in.PrimaryIPConfigID(), u.HealthProbe) {
		ports = append(ports, workload.Port{Protocol: p.Protocol, Number: p.Port})
	}
	if len(ports) > 0 {
		in.Ports = workload.FormatPorts(ports)
		spec.Env[workload.EnvPorts] = in.Ports
	}
	return nil
}

func (c *Controller) markSeenRunning(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seenRunning[key] = true
}
