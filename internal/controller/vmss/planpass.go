package vmss

import (
	"fmt"
	"maps"
	"sort"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// PlanPass and its phases: each decides from the planner's working copies
// of the records and appends its steps to the plan.

// PlanPass computes one pass over one scale set. It is deterministic: the
// same Input (in any instance order) gives the same Plan.
func PlanPass(in Input) Plan {
	p := &planner{in: in, now: in.Now.UTC(), recs: map[string]*resource.Instance{}}
	p.run()
	return p.plan
}

// planner holds a pass's working copies of the instance records: each step
// planned is applied to them (with the same edit apply uses), so later
// phases decide from the records as the earlier phases leave them.
type planner struct {
	in   Input
	now  time.Time
	plan Plan
	recs map[string]*resource.Instance // instance id -> working copy
}

func (p *planner) run() {
	all := make([]*resource.Instance, 0, len(p.in.Instances))
	for _, in := range p.in.Instances {
		if in == nil {
			continue
		}
		c := *in
		c.NATPorts = maps.Clone(in.NATPorts)
		all = append(all, &c)
		p.recs[c.InstanceID] = &c
	}
	sort.SliceStable(all, func(i, j int) bool { return resource.LessInstanceID(all[i].InstanceID, all[j].InstanceID) })

	vm := p.in.ScaleSet
	if vm == nil {
		for _, in := range all {
			p.plan.Removals = append(p.plan.Removals, Removal{InstanceID: in.InstanceID, Reason: RemoveScaleSetGone})
		}
		p.plan.DeleteCounter = true
		p.plan.Converged = len(all) == 0
		return
	}

	// 1. Finish removals first so their addresses and ports are free.
	var alive []*resource.Instance
	for _, in := range all {
		if in.Deleting {
			p.plan.Removals = append(p.plan.Removals, Removal{InstanceID: in.InstanceID, Reason: RemoveDeleted})
			continue
		}
		alive = append(alive, in)
	}

	// 2. Scale in.
	capacity := int(vm.Capacity())
	if len(alive) > capacity {
		victims := scaleInVictims(vm, alive, len(alive)-capacity)
		for _, in := range alive {
			if victims[in.InstanceID] {
				in.Deleting, in.ProvisioningState = true, resource.Deleting
				p.plan.Removals = append(p.plan.Removals, Removal{InstanceID: in.InstanceID, Reason: RemoveScaleIn})
			}
		}
		alive = filterAlive(alive)
	}

	// 3. Upgrades of existing instances (Automatic, Rolling), then repairs.
	hash := resource.ProfileHash(vm.Properties.VirtualMachineProfile)
	if err := p.upgrade(vm, hash, alive); err != nil {
		p.plan.Err = err
		return
	}
	p.repair(vm, alive)
	alive = filterAlive(alive)
	if len(alive) > capacity {
		p.plan.Shortfall = fmt.Sprintf("%d instances are protected from scale-in: %d stay for a capacity of %d", protectedCount(alive), len(alive), capacity)
	}

	// 4. Scale out, unless a NAT pool's range cannot serve the new count
	// (Azure refuses the scale-out; nothing is created).
	if len(alive) < capacity {
		if err := p.checkNATRanges(vm, capacity); err != nil {
			p.plan.Err = err
			return
		}
		created, err := p.create(vm, hash, capacity-len(alive))
		if err != nil {
			p.plan.Err = err
			return
		}
		alive = append(alive, created...)
	}

	// 5. NAT pool ports for everyone who uses a pool.
	if err := p.assignNATPorts(alive); err != nil {
		p.plan.Err = err
		return
	}

	// 6. Drive the workloads.
	for _, in := range alive {
		p.drive(in)
	}

	p.plan.Converged = p.idle() && settledOK(vm.ID, vm.Capacity(), all)
}

// idle reports whether the plan has no step for the world.
func (p *planner) idle() bool {
	q := &p.plan
	return len(q.Removals) == 0 && len(q.Upgrades) == 0 && len(q.HealthMarks) == 0 && len(q.Repairs) == 0 &&
		q.Create == nil && len(q.NATPorts) == 0 && len(q.Drive) == 0 && q.Err == nil
}

func settledOK(vmssID string, want int64, insts []*resource.Instance) bool {
	ok, err := settled(vmssID, want, insts)
	return ok && err == nil
}

// settled is WaitConverged's condition on a scale set's records: exactly
// want of them, none being deleted, every one provisioned, on its applied
// generation and, if asked to run, running or known dead (a Message). An
// instance that failed to start (and is not being deleted) is an error
// with Azure's code.
func settled(vmssID string, want int64, insts []*resource.Instance) (bool, error) {
	n := int64(0)
	for _, in := range insts {
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

func filterAlive(in []*resource.Instance) []*resource.Instance {
	out := in[:0:0]
	for _, r := range in {
		if !r.Deleting {
			out = append(out, r)
		}
	}
	return out
}

func protectedCount(in []*resource.Instance) int {
	n := 0
	for _, r := range in {
		if r.ProtectFromScaleIn || r.ProtectFromScaleSetActions {
			n++
		}
	}
	return n
}

// scaleInVictims picks n instances to remove by the scale set's scale-in
// policy (SelectForScaleIn).
func scaleInVictims(vm *resource.VirtualMachineScaleSet, alive []*resource.Instance, n int) map[string]bool {
	rule := ScaleInDefault
	if p := vm.Properties.ScaleInPolicy; p != nil && len(p.Rules) > 0 {
		rule = p.Rules[0]
	}
	cands := make([]ScaleInCandidate, 0, len(alive))
	for _, in := range alive {
		cands = append(cands, ScaleInCandidate{
			InstanceID: in.InstanceID, Created: in.Created, Zone: in.Zone,
			Protected: in.ProtectFromScaleIn || in.ProtectFromScaleSetActions,
		})
	}
	out := map[string]bool{}
	for _, id := range SelectForScaleIn(cands, n, rule) {
		out[id] = true
	}
	return out
}

// healthy reports an instance's health by the scale set's health probe:
// up, and whether the answer is known. Without probe answers (Input.Health
// nil), a running instance counts as healthy unless its workload exited.
func (p *planner) healthy(in *resource.Instance) (up, known bool) {
	if p.in.Health == nil {
		return in.Message == "", true
	}
	switch p.in.Health[in.InstanceID] {
	case HealthUp:
		return true, true
	case HealthDown:
		return false, true
	}
	return false, false
}

// upgrade moves instances to the current model as upgradePolicy.mode says:
// Manual leaves them (manualupgrade does it), Automatic upgrades all at
// once, Rolling in batches that wait for the previous batch to be healthy
// and for pauseTimeBetweenBatches. A rolling upgrade whose unhealthy
// instances exceed maxUnhealthyInstancePercent (or, among upgraded ones,
// maxUnhealthyUpgradedInstancePercent) fails the pass.
func (p *planner) upgrade(vm *resource.VirtualMachineScaleSet, hash string, alive []*resource.Instance) error {
	mode := resource.UpgradeManual
	var rp *resource.RollingPolicy
	if up := vm.Properties.UpgradePolicy; up != nil {
		if up.Mode != "" {
			mode = up.Mode
		}
		rp = up.RollingUpgradePolicy
	}
	var stale []*resource.Instance
	for _, in := range alive {
		if in.ModelHash != hash {
			stale = append(stale, in)
		}
	}
	if len(stale) == 0 || strings.EqualFold(mode, resource.UpgradeManual) {
		return nil
	}
	if strings.EqualFold(mode, resource.UpgradeRolling) {
		pct, maxUnhealthy, maxUnhealthyUpgraded := int32(20), int32(20), int32(20)
		pause := time.Duration(0)
		if rp != nil {
			pct = deref32(rp.MaxBatchInstancePercent, 20)
			maxUnhealthy = deref32(rp.MaxUnhealthyInstancePercent, 20)
			maxUnhealthyUpgraded = deref32(rp.MaxUnhealthyUpgradedInstancePercent, 20)
			pause, _ = ParseISODuration(rp.PauseTimeBetweenBatches)
		}
		r := &Rolling{BatchSize: BatchSize(len(alive), int(pct))}
		p.plan.Rolling = r
		if p.in.Now.Before(p.in.Memory.RollingNotBefore) {
			r.Wait = RollingPaused
			return nil
		}
		unhealthy, unhealthyUpgraded, upgraded, pending := 0, 0, 0, 0
		for _, in := range alive {
			up, known := p.healthy(in)
			if in.ModelHash == hash {
				upgraded++
				if in.Generation != in.Applied || in.ProvisioningState != resource.Succeeded || !known {
					pending++
				} else if !up {
					unhealthyUpgraded++
				}
			} else if known && !up {
				unhealthy++
			}
		}
		if pending > 0 {
			r.Wait = RollingPending
			return nil
		}
		if UnhealthyPercentExceeded(unhealthyUpgraded, len(alive), int(maxUnhealthyUpgraded)) ||
			UnhealthyPercentExceeded(unhealthy, len(alive), int(maxUnhealthy)) {
			return &resource.Error{Status: 409, Code: "MaxUnhealthyInstancePercentExceededInRollingUpgrade",
				Message: fmt.Sprintf("Rolling Upgrade failed: unhealthy instances exceed the policy (%d%% before, %d%% after a batch).", maxUnhealthy, maxUnhealthyUpgraded)}
		}
		stale = stale[:min(len(stale), r.BatchSize)]
		r.Batch = (upgraded+r.BatchSize-1)/r.BatchSize + 1
		r.NotBefore = p.in.Now.Add(pause)
	}
	for _, in := range stale {
		c := *in
		if err := resource.ApplyModel(&c, vm.Properties.VirtualMachineProfile); err != nil {
			return err
		}
		u := Upgrade{InstanceID: in.InstanceID, Model: c.Model, ModelHash: c.ModelHash, Generation: c.Generation}
		u.edit(in)
		p.plan.Upgrades = append(p.plan.Upgrades, u)
	}
	return nil
}

func deref32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// repair applies automaticRepairsPolicy: an instance whose health probe has
// said "down" for longer than the grace period (counted from its creation or
// last state change) is replaced, restarted or reimaged, at most
// RepairBatchSize at a time. Instances protected from scale-set actions are
// skipped. Health marks are kept whether or not repairs are enabled or
// suspended (Input.RepairsSuspended).
func (p *planner) repair(vm *resource.VirtualMachineScaleSet, alive []*resource.Instance) {
	pol := vm.Properties.AutomaticRepairsPolicy
	enabled := pol != nil && pol.Enabled != nil && *pol.Enabled && !p.in.RepairsSuspended
	grace := 10 * time.Minute
	action := "Replace"
	if pol != nil {
		if d, err := ParseISODuration(pol.GracePeriod); err == nil && pol.GracePeriod != "" {
			grace = d
		}
		if pol.RepairAction != "" {
			action = pol.RepairAction
		}
	}
	if p.in.RepairGrace > 0 {
		grace = p.in.RepairGrace
	}
	budget := RepairBatchSize(len(alive))
	for _, in := range alive {
		if in.Power != resource.PowerRunning || in.ProvisioningState != resource.Succeeded {
			continue
		}
		up, known := p.healthy(in)
		if !known || up {
			if !in.UnhealthySince.IsZero() {
				m := HealthMark{InstanceID: in.InstanceID}
				m.edit(in)
				p.plan.HealthMarks = append(p.plan.HealthMarks, m)
			}
			continue
		}
		if in.UnhealthySince.IsZero() {
			m := HealthMark{InstanceID: in.InstanceID, UnhealthySince: p.now}
			m.edit(in)
			p.plan.HealthMarks = append(p.plan.HealthMarks, m)
		}
		if !enabled || in.ProtectFromScaleSetActions || budget == 0 {
			continue
		}
		from := in.UnhealthySince
		if in.RepairGraceFrom.After(from) {
			from = in.RepairGraceFrom
		}
		r := Repair{InstanceID: in.InstanceID, Action: action, UnhealthySince: in.UnhealthySince, GraceEnds: from.Add(grace)}
		if p.now.Sub(from) < grace {
			p.plan.RepairsWaiting = append(p.plan.RepairsWaiting, r)
			continue
		}
		budget--
		if r.replaces() {
			in.Deleting, in.ProvisioningState = true, resource.Deleting
		} else {
			r.Generation, r.Repairs, r.GraceFrom = in.Generation+1, in.Repairs+1, p.now
			r.edit(in)
		}
		p.plan.Repairs = append(p.plan.Repairs, r)
	}
}

// create plans n new instance records: ids from the scale set's counter,
// names and computer names from them, zones round-robin, the current model.
func (p *planner) create(vm *resource.VirtualMachineScaleSet, hash string, n int) ([]*resource.Instance, error) {
	first := p.in.NextID
	prefix := vm.Name
	if vp := vm.Properties.VirtualMachineProfile; vp != nil && vp.OSProfile != nil && vp.OSProfile.ComputerNamePrefix != "" {
		prefix = vp.OSProfile.ComputerNamePrefix
	}
	model, err := resource.CloneProfile(vm.Properties.VirtualMachineProfile)
	if err != nil {
		return nil, err
	}
	_, ipc := resource.PrimaryIPConfig(model)
	c := &Creation{FirstID: first}
	work := make([]*resource.Instance, 0, n)
	for i := 0; i < n; i++ {
		id := strconv.Itoa(first + i)
		in := &resource.Instance{
			ScaleSetID: vm.ID, InstanceID: id, Name: vm.Name + "_" + id,
			ComputerName: fmt.Sprintf("%s%06s", prefix, strconv.FormatInt(int64(first+i), 36)),
			Location:     vm.Location, Created: p.now,
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
		c.Instances = append(c.Instances, in)
		w := *in
		work = append(work, &w)
		p.recs[id] = &w
	}
	p.plan.Create = c
	return work, nil
}

// lb returns a load balancer of the input by id.
func (p *planner) lb(lbID string) (*resource.LoadBalancer, error) {
	if lb := p.in.LoadBalancers[resource.NormalizeRefID(lbID)]; lb != nil {
		return lb, nil
	}
	return nil, fmt.Errorf("load balancer %s: %w", lbID, store.ErrNotFound)
}

// natPoolRange returns a NAT pool's (or v2 NAT rule's) frontend port range
// and the frontend ports other rules on the same frontend use.
func (p *planner) natPoolRange(poolID string) (start, end uint16, reserved map[uint16]bool, err error) {
	lbID, coll, name, ok := resource.ParseLBChildID(poolID)
	if !ok {
		return 0, 0, nil, fmt.Errorf("nat pool id %q: not a load balancer child", poolID)
	}
	lb, err := p.lb(lbID)
	if err != nil {
		return 0, 0, nil, err
	}
	return natPoolPorts(lb, coll, name)
}

// checkNATRanges fails with InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts
// when a NAT pool the model uses has fewer ports than capacity instances
// need (ports other rules use on its frontend do not count).
func (p *planner) checkNATRanges(vm *resource.VirtualMachineScaleSet, capacity int) error {
	_, ipc := resource.PrimaryIPConfig(vm.Properties.VirtualMachineProfile)
	if ipc == nil {
		return nil
	}
	for _, np := range ipc.Properties.LoadBalancerInboundNatPools {
		start, end, reserved, err := p.natPoolRange(resource.NormalizeRefID(np.ID))
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
				Message: fmt.Sprintf("The frontend port range %d-%d of inbound NAT pool %s is smaller than the %d ports requested by scale set %s.", start, end, np.ID, capacity, vm.ID)}
		}
	}
	return nil
}

// assignNATPorts gives every instance a port of each NAT pool its applied
// model uses (AssignNATPorts), and of each NAT rule v2 whose backend pool
// it is in; ports of pools it no longer uses are dropped. Pools are done in
// id order, so the same pool fails first every time.
func (p *planner) assignNATPorts(alive []*resource.Instance) error {
	// pools maps a NAT pool id, or a NAT rule v2 id, to the instances that
	// need a port from it.
	pools := map[string][]*resource.Instance{}
	for _, in := range alive {
		_, ipc := resource.PrimaryIPConfig(in.Model)
		if ipc == nil {
			continue
		}
		for _, np := range ipc.Properties.LoadBalancerInboundNatPools {
			id := resource.NormalizeRefID(np.ID)
			pools[id] = append(pools[id], in)
		}
		for _, bp := range ipc.Properties.LoadBalancerBackendAddressPools {
			lbID, _, _, ok := resource.ParseLBChildID(bp.ID)
			if !ok {
				continue
			}
			lb, err := p.lb(lbID)
			if err != nil {
				return err
			}
			for _, r := range lb.Properties.InboundNatRules {
				if r.IsV2() && r.Properties.BackendAddressPool != nil && resource.SameID(r.Properties.BackendAddressPool.ID, bp.ID) {
					id := resource.NormalizeRefID(r.ID)
					pools[id] = append(pools[id], in)
				}
			}
		}
	}
	want := map[string]map[string]uint16{} // instance id -> pool -> port
	poolIDs := make([]string, 0, len(pools))
	for id := range pools {
		poolIDs = append(poolIDs, id)
	}
	sort.Strings(poolIDs)
	for _, poolID := range poolIDs {
		members := pools[poolID]
		start, end, reserved, err := p.natPoolRange(poolID)
		if err != nil {
			return err
		}
		current := map[string]uint16{}
		ids := make([]string, 0, len(members))
		for _, in := range members {
			ids = append(ids, in.InstanceID)
			if port, ok := in.NATPorts[poolID]; ok {
				current[in.InstanceID] = port
			}
		}
		got, err := AssignNATPorts(start, end, current, ids, reserved)
		if err != nil {
			return &resource.Error{Status: 400, Code: "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts",
				Message: fmt.Sprintf("Inbound NAT pool %s has frontend port range %d-%d, smaller than the %d ports requested by the scale set instances.", poolID, start, end, len(ids))}
		}
		for _, in := range members {
			if want[in.InstanceID] == nil {
				want[in.InstanceID] = map[string]uint16{}
			}
			want[in.InstanceID][poolID] = got[in.InstanceID]
		}
	}
	for _, in := range alive {
		w := want[in.InstanceID]
		if natPortsEqual(in.NATPorts, w) {
			continue
		}
		n := NATPorts{InstanceID: in.InstanceID, Ports: w}
		n.edit(in)
		p.plan.NATPorts = append(p.plan.NATPorts, n)
	}
	return nil
}

// natPortsEqual compares two NATPorts maps, nil and empty alike.
func natPortsEqual(a, b map[string]uint16) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// drive plans what makes an instance's workload match its record: a
// running instance runs the record's generation of its model (restarted
// when the generation moved or it died while nimbus was down, started when
// the driver has none or it was stopped); a stopped or deallocated one is
// stopped. Records whose status would change are refreshed.
func (p *planner) drive(in *resource.Instance) {
	st, present := p.in.Workloads[in.InstanceID]
	d := Drive{InstanceID: in.InstanceID}
	switch in.Power {
	case resource.PowerRunning:
		switch {
		case present && in.Generation != in.Applied:
			d.Action, d.Reason, d.Detail = DriveRestart, ReasonNewGeneration, st.Message
		case present && st.State == driver.StateExited && !p.in.Memory.SeenRunning[in.InstanceID]:
			d.Action, d.Reason, d.Detail = DriveRestart, ReasonDiedWhileDown, st.Message
		case !present:
			d.Action, d.Reason = DriveStart, ReasonNoWorkload
		case st.State == driver.StateStopped:
			d.Action, d.Reason, d.Detail = DriveStart, ReasonStopped, st.Message
		default:
			if st.State == driver.StateRunning && !p.in.Memory.SeenRunning[in.InstanceID] {
				p.plan.SeenRunning = append(p.plan.SeenRunning, in.InstanceID)
			}
			d.Status = runningStatus(in, st)
			if d.Status == statusOf(in) {
				return
			}
			d.Action = DriveRefresh
		}
	case resource.PowerStopped, resource.PowerDeallocated:
		d.Status = statusOf(in)
		d.Status.Actual, d.Status.Message = in.Power, ""
		d.Status.Applied = in.Generation
		d.Status.ProvisioningState = resource.Succeeded
		switch {
		case present && st.State == driver.StateRunning:
			d.Action = DriveStop
		case d.Status != statusOf(in):
			d.Action = DriveRefresh
		default:
			return
		}
	default:
		return
	}
	if d.Action == DriveRefresh || d.Action == DriveStop {
		d.Status.edit(in)
	}
	p.plan.Drive = append(p.plan.Drive, d)
}
