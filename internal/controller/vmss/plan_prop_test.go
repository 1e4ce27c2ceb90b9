package vmss

import (
	"maps"
	"reflect"
	"strconv"
	"testing"
	"time"

	"pgregory.net/rapid"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
)

// Property tests of PlanPass over random scale sets, instance records,
// health, driver states, memory and clocks (pgregory.net/rapid; failures
// shrink to a small input and print it).

// genInput draws one pass's input.
func genInput(t *rapid.T) Input {
	capacity := rapid.IntRange(0, 8).Draw(t, "capacity")
	var vm *resource.VirtualMachineScaleSet
	nat := rapid.Bool().Draw(t, "nat")
	if nat {
		vm = scaleSet(int64(capacity), lbID+"/inboundNatPools/ssh", lbID+"/inboundNatPools/rdp")
	} else {
		vm = scaleSet(int64(capacity))
	}
	for z := range rapid.IntRange(0, 3).Draw(t, "zones") {
		vm.Zones = append(vm.Zones, strconv.Itoa(z+1))
	}
	pct := func(label string) *int32 {
		if !rapid.Bool().Draw(t, label+"Set") {
			return nil
		}
		v := int32(rapid.IntRange(0, 100).Draw(t, label))
		return &v
	}
	if mode := rapid.SampledFrom([]string{"", resource.UpgradeManual, resource.UpgradeAutomatic, resource.UpgradeRolling}).Draw(t, "mode"); mode != "" {
		vm.Properties.UpgradePolicy = &resource.UpgradePolicy{Mode: mode}
		if mode == resource.UpgradeRolling && rapid.Bool().Draw(t, "rollingPolicy") {
			vm.Properties.UpgradePolicy.RollingUpgradePolicy = &resource.RollingPolicy{
				MaxBatchInstancePercent: pct("maxBatch"), MaxUnhealthyInstancePercent: pct("maxUnhealthy"),
				MaxUnhealthyUpgradedInstancePercent: pct("maxUnhealthyUpgraded"),
				PauseTimeBetweenBatches:             rapid.SampledFrom([]string{"", "PT0S", "PT5M"}).Draw(t, "pause")}
		}
	}
	if rapid.IntRange(0, 3).Draw(t, "repairsOff") < 3 {
		enabled := rapid.IntRange(0, 3).Draw(t, "repairsDisabled") < 3
		vm.Properties.AutomaticRepairsPolicy = &resource.AutomaticRepairsPolicy{Enabled: &enabled,
			GracePeriod:  rapid.SampledFrom([]string{"", "PT10M", "PT30S", "PT1H"}).Draw(t, "grace"),
			RepairAction: rapid.SampledFrom([]string{"", "Replace", "Restart", "Reimage"}).Draw(t, "action")}
	}
	if rule := rapid.SampledFrom([]string{"", ScaleInDefault, ScaleInNewestVM, ScaleInOldestVM}).Draw(t, "rule"); rule != "" {
		vm.Properties.ScaleInPolicy = &resource.ScaleInPolicy{Rules: []string{rule}}
	}

	now := t0.Add(time.Duration(rapid.IntRange(0, 200).Draw(t, "nowMinutes")) * time.Minute)
	// Times cluster around now and the ends of grace periods and pauses.
	// (rapid favours the first values of a list: they are mixed.)
	ago := []time.Duration{10 * time.Minute, 5 * time.Minute, time.Hour, 0, 30 * time.Second, 10*time.Minute - time.Second,
		2 * time.Hour, 29 * time.Second, time.Hour - time.Second, -time.Minute, 31 * time.Second, time.Second,
		10*time.Minute + time.Second, 30 * time.Minute, 2 * time.Minute}
	at := func(label string) time.Time { return now.Add(-rapid.SampledFrom(ago).Draw(t, label)) }
	in := Input{ScaleSet: vm, Now: now, Workloads: map[string]driver.Status{}, Memory: Memory{SeenRunning: map[string]bool{}}}
	if rapid.Bool().Draw(t, "probe") {
		in.Health = map[string]Health{}
	}
	if rapid.IntRange(0, 3).Draw(t, "testGrace") == 3 {
		in.RepairGrace = time.Duration(rapid.IntRange(1, 120).Draw(t, "testGraceSeconds")) * time.Second
	}
	if rapid.Bool().Draw(t, "rollingPaused") {
		in.Memory.RollingNotBefore = now.Add(rapid.SampledFrom([]time.Duration{time.Minute, 0, -time.Minute}).Draw(t, "rollingNotBefore"))
	}
	key := resource.NormalizeRefID(lbID + "/inboundNatPools/ssh")
	portEnd := 50000 + rapid.SampledFrom([]int{12, 5, 8, -1, 2}).Draw(t, "natPorts")
	if nat {
		lb := natLB(50000, int32(portEnd))
		rdpEnd := int32(51000 + rapid.SampledFrom([]int{12, 7, 3}).Draw(t, "rdpPorts"))
		rdp := lb.Properties.InboundNatPools[0]
		rdp.ID, rdp.Name = lbID+"/inboundNatPools/rdp", "rdp"
		rdp.Properties.FrontendPortRangeStart, rdp.Properties.FrontendPortRangeEnd = ptr(int32(51000)), &rdpEnd
		lb.Properties.InboundNatPools = append(lb.Properties.InboundNatPools, rdp)
		in.LoadBalancers = map[string]*resource.LoadBalancer{resource.NormalizeRefID(lbID): lb}
	}
	idNums := rapid.SliceOfNDistinct(rapid.IntRange(0, 20), 0, 12, rapid.ID[int]).Draw(t, "ids")
	maxID := -1
	for _, n := range idNums {
		maxID = max(maxID, n)
		id := strconv.Itoa(n)
		r := rec(vm, id)
		if rapid.Bool().Draw(t, "stale"+id) {
			stale(vm)(r)
		}
		r.Deleting = rapid.IntRange(0, 4).Draw(t, "deleting"+id) == 4
		r.ProtectFromScaleIn = rapid.IntRange(0, 2).Draw(t, "protect"+id) == 2
		r.ProtectFromScaleSetActions = rapid.IntRange(0, 3).Draw(t, "protectActions"+id) == 3
		r.Power = rapid.SampledFrom([]string{resource.PowerRunning, resource.PowerRunning, resource.PowerStopped, resource.PowerDeallocated}).Draw(t, "power"+id)
		r.Actual = rapid.SampledFrom([]string{"", resource.PowerRunning, resource.PowerStopped}).Draw(t, "actual"+id)
		r.ProvisioningState = rapid.SampledFrom([]string{resource.Succeeded, resource.Succeeded, resource.Creating, resource.Failed}).Draw(t, "state"+id)
		r.Generation = int64(rapid.IntRange(0, 2).Draw(t, "generation"+id))
		r.Applied = int64(rapid.IntRange(0, 2).Draw(t, "applied"+id))
		r.Created = at("created" + id)
		r.RepairGraceFrom = at("graceFrom" + id)
		if len(vm.Zones) > 0 {
			r.Zone = rapid.SampledFrom(vm.Zones).Draw(t, "zone"+id)
		}
		if rapid.IntRange(0, 3).Draw(t, "exited"+id) == 3 {
			r.Message = "workload exited: exit status 1"
		}
		if rapid.IntRange(0, 3).Draw(t, "healthy"+id) < 3 {
			r.UnhealthySince = at("unhealthySince" + id)
		}
		if nat && rapid.Bool().Draw(t, "hasPort"+id) {
			r.NATPorts = map[string]uint16{key: uint16(rapid.IntRange(50000, 50012).Draw(t, "port"+id))}
		}
		if in.Health != nil {
			if h := rapid.SampledFrom([]Health{HealthDown, HealthUp, HealthUnknown}).Draw(t, "health"+id); h != HealthUnknown {
				in.Health[id] = h
			}
		}
		switch rapid.IntRange(0, 3).Draw(t, "workload"+id) {
		case 1:
			in.Workloads[id] = running()
		case 2:
			in.Workloads[id] = driver.Status{State: driver.StateStopped}
		case 3:
			in.Workloads[id] = driver.Status{State: driver.StateExited, Message: "exit status 1"}
		}
		in.Memory.SeenRunning[id] = rapid.Bool().Draw(t, "seen"+id)
		in.Instances = append(in.Instances, r)
	}
	in.NextID = maxID + 1 + rapid.IntRange(0, 3).Draw(t, "idGap")
	return in
}

// facts are what the properties need to know of an input, computed here
// without PlanPass's code.
type facts struct {
	byID      map[string]*resource.Instance
	alive     int // records not being deleted
	protected int // of them, protected from scale-in
}

func factsOf(in Input) facts {
	f := facts{byID: map[string]*resource.Instance{}}
	for _, r := range in.Instances {
		f.byID[r.InstanceID] = r
		if !r.Deleting {
			f.alive++
			if r.ProtectFromScaleIn || r.ProtectFromScaleSetActions {
				f.protected++
			}
		}
	}
	return f
}

func replaced(p Plan) []string {
	var out []string
	for _, r := range p.Repairs {
		if r.replaces() {
			out = append(out, r.InstanceID)
		}
	}
	return out
}

// TestPropCapacityReached: after the plan, the instances not being deleted
// number the capacity, or the plan says why not (Err, Shortfall); and it
// creates only what is missing, with fresh ids from the counter.
func TestPropCapacityReached(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		p := PlanPass(in)
		f := factsOf(in)
		capacity := int(in.ScaleSet.Capacity())
		scaledIn := len(removalIDs(p, RemoveScaleIn))
		kept := f.alive - scaledIn - len(replaced(p))
		created := createdIDs(p)
		after := kept + len(created)
		switch {
		case p.Err != nil:
		case p.Shortfall != "":
			if kept <= capacity || scaledIn != f.alive-f.protected {
				t.Fatalf("shortfall %q with %d kept for capacity %d, %d of %d unprotected removed", p.Shortfall, kept, capacity, scaledIn, f.alive-f.protected)
			}
		case after != capacity:
			t.Fatalf("%d instances after the plan, capacity %d (kept %d, created %d)", after, capacity, kept, len(created))
		}
		if len(created) > 0 && kept >= capacity {
			t.Fatalf("created %v with %d kept for capacity %d", created, kept, capacity)
		}
		for i, id := range created {
			if want := strconv.Itoa(in.NextID + i); id != want {
				t.Fatalf("created ids %v, want consecutive from %d", created, in.NextID)
			}
		}
	})
}

// TestPropProtectedNeverScaledIn: protectFromScaleIn (or
// protectFromScaleSetActions) instances are never scale-in victims, and
// exactly the excess is removed while unprotected instances remain.
func TestPropProtectedNeverScaledIn(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		p := PlanPass(in)
		f := factsOf(in)
		victims := removalIDs(p, RemoveScaleIn)
		for _, id := range victims {
			r := f.byID[id]
			if r.ProtectFromScaleIn || r.ProtectFromScaleSetActions || r.Deleting {
				t.Fatalf("instance %s chosen for scale-in: %+v", id, r)
			}
		}
		excess := max(0, f.alive-int(in.ScaleSet.Capacity()))
		if want := min(excess, f.alive-f.protected); len(victims) != want {
			t.Fatalf("%d scale-in victims, want %d (excess %d, %d unprotected)", len(victims), want, excess, f.alive-f.protected)
		}
	})
}

// TestPropRollingBatchBounded: a rolling batch never exceeds
// maxBatchInstancePercent of the instances (at least 1); Manual upgrades
// nothing, Automatic every stale instance.
func TestPropRollingBatchBounded(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		p := PlanPass(in)
		f := factsOf(in)
		n := f.alive - len(removalIDs(p, RemoveScaleIn))
		hash := resource.ProfileHash(in.ScaleSet.Properties.VirtualMachineProfile)
		staleLeft := 0
		for _, r := range in.Instances {
			if !r.Deleting && r.ModelHash != hash && !contains(removalIDs(p, RemoveScaleIn), r.InstanceID) {
				staleLeft++
			}
		}
		mode := resource.UpgradeManual
		if up := in.ScaleSet.Properties.UpgradePolicy; up != nil && up.Mode != "" {
			mode = up.Mode
		}
		for _, u := range p.Upgrades {
			if r := f.byID[u.InstanceID]; r.ModelHash == hash || r.Deleting {
				t.Fatalf("upgrade of %s, which is current or deleting", u.InstanceID)
			}
		}
		switch mode {
		case resource.UpgradeManual:
			if len(p.Upgrades) != 0 {
				t.Fatalf("Manual mode upgraded %v", upgradeIDs(p))
			}
		case resource.UpgradeAutomatic:
			if len(p.Upgrades) != staleLeft {
				t.Fatalf("Automatic mode upgraded %d of %d stale", len(p.Upgrades), staleLeft)
			}
		case resource.UpgradeRolling:
			pct := 20
			if rp := in.ScaleSet.Properties.UpgradePolicy.RollingUpgradePolicy; rp != nil && rp.MaxBatchInstancePercent != nil && *rp.MaxBatchInstancePercent > 0 {
				pct = int(*rp.MaxBatchInstancePercent)
			}
			limit := max(1, n*pct/100)
			if len(p.Upgrades) > limit {
				t.Fatalf("rolling batch of %d, limit %d (%d%% of %d)", len(p.Upgrades), limit, pct, n)
			}
			if len(p.Upgrades) > 0 && (p.Rolling == nil || p.Rolling.Batch < 1 || in.Now.Before(in.Memory.RollingNotBefore)) {
				t.Fatalf("rolling batch %v started with state %+v, not before %v", upgradeIDs(p), p.Rolling, in.Memory.RollingNotBefore)
			}
		}
	})
}

// TestPropRepairsRespectGrace: a repair never touches an instance within
// its grace period, an unhealthy one only, never a protected one, and no
// more than RepairBatchSize at once.
func TestPropRepairsRespectGrace(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		p := PlanPass(in)
		f := factsOf(in)
		pol := in.ScaleSet.Properties.AutomaticRepairsPolicy
		grace := 10 * time.Minute
		if pol != nil && pol.GracePeriod != "" {
			grace, _ = ParseISODuration(pol.GracePeriod)
		}
		if in.RepairGrace > 0 {
			grace = in.RepairGrace
		}
		if len(p.Repairs) > 0 && (pol == nil || pol.Enabled == nil || !*pol.Enabled) {
			t.Fatalf("repairs %v with the policy off", repairIDs(p))
		}
		n := f.alive - len(removalIDs(p, RemoveScaleIn))
		if len(p.Repairs) > RepairBatchSize(n) {
			t.Fatalf("%d repairs, batch %d", len(p.Repairs), RepairBatchSize(n))
		}
		for _, rp := range p.Repairs {
			r := f.byID[rp.InstanceID]
			since := r.UnhealthySince
			if since.IsZero() {
				since = in.Now
			}
			from := since
			if r.RepairGraceFrom.After(from) {
				from = r.RepairGraceFrom
			}
			if in.Now.Sub(from) < grace {
				t.Fatalf("repair of %s within its grace: from %v, grace %v, now %v", r.InstanceID, from, grace, in.Now)
			}
			if !rp.GraceEnds.Equal(from.Add(grace)) || rp.GraceEnds.After(in.Now) {
				t.Fatalf("repair %+v: grace ends %v, want %v (now %v)", rp, rp.GraceEnds, from.Add(grace), in.Now)
			}
			down := r.Message != ""
			if in.Health != nil {
				down = in.Health[r.InstanceID] == HealthDown
			}
			if !down || r.ProtectFromScaleSetActions || r.Power != resource.PowerRunning || r.ProvisioningState != resource.Succeeded {
				t.Fatalf("repair of %s, which is not an unprotected, provisioned, running, unhealthy instance: %+v", r.InstanceID, r)
			}
		}
		for _, rp := range p.RepairsWaiting {
			if !rp.GraceEnds.After(in.Now) {
				t.Fatalf("waiting repair %+v whose grace ended (now %v)", rp, in.Now)
			}
		}
	})
}

// TestPropDeletingNeverStarted: no drive step (start, restart, stop,
// refresh) and no upgrade or NAT change for an instance being deleted or
// removed by this plan.
func TestPropDeletingNeverStarted(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		p := PlanPass(in)
		gone := map[string]bool{}
		for _, r := range in.Instances {
			if r.Deleting {
				gone[r.InstanceID] = true
			}
		}
		for _, r := range p.Removals {
			gone[r.InstanceID] = true
		}
		for _, id := range removalIDs(p, RemoveDeleted) {
			if !factsOf(in).byID[id].Deleting {
				t.Fatalf("removal of %s as deleted, which it is not", id)
			}
		}
		for _, d := range p.Drive {
			if gone[d.InstanceID] || contains(replaced(p), d.InstanceID) {
				t.Fatalf("drive %+v of a deleting or removed instance", d)
			}
		}
		for _, u := range p.Upgrades {
			if gone[u.InstanceID] {
				t.Fatalf("upgrade of deleting instance %s", u.InstanceID)
			}
		}
		for _, n := range p.NATPorts {
			if gone[n.InstanceID] || contains(replaced(p), n.InstanceID) {
				t.Fatalf("NAT ports for deleting instance %s", n.InstanceID)
			}
		}
	})
}

// TestPropDeterministic: the same input, in any instance order, gives the
// same plan, and PlanPass leaves its input as it was.
func TestPropDeterministic(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		before := copyRecords(in.Instances)
		p := PlanPass(in)
		if !reflect.DeepEqual(copyRecords(in.Instances), before) {
			t.Fatal("PlanPass modified its input records")
		}
		shuffled := in
		shuffled.Instances = rapid.Permutation(in.Instances).Draw(t, "order")
		if q := PlanPass(shuffled); !reflect.DeepEqual(p, q) {
			t.Fatalf("plans differ by instance order:\n%+v\n%+v", p, q)
		}
	})
}

func copyRecords(in []*resource.Instance) []resource.Instance {
	out := make([]resource.Instance, 0, len(in))
	for _, r := range in {
		c := *r
		c.NATPorts = maps.Clone(r.NATPorts)
		out = append(out, c)
	}
	return out
}

// TestPropPassesReachAFixedPoint runs passes against a simulated world
// (every driver call succeeds, the clock stands still): within a bounded
// number of passes a plan has nothing left to do, or fails; and a plan with
// nothing to do and no shortfall is Converged.
func TestPropPassesReachAFixedPoint(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		in := genInput(t)
		for pass := 0; ; pass++ {
			p := PlanPass(in)
			if p.Err != nil {
				return
			}
			if idlePlan(p) {
				if p.Shortfall == "" && !p.Converged {
					t.Fatalf("pass %d: nothing to do, no shortfall, but not converged: %+v", pass, in.Instances)
				}
				return
			}
			if pass == 30 {
				t.Fatalf("no fixed point after %d passes; last plan %+v", pass, p)
			}
			in = simulate(in, p)
		}
	})
}

func idlePlan(p Plan) bool {
	return len(p.Removals) == 0 && len(p.Upgrades) == 0 && len(p.HealthMarks) == 0 && len(p.Repairs) == 0 &&
		p.Create == nil && len(p.NATPorts) == 0 && len(p.Drive) == 0
}

// simulate is apply against a perfect world: it returns the input of the
// next pass after p, at the same clock.
func simulate(in Input, p Plan) Input {
	recs := map[string]*resource.Instance{}
	for _, r := range copyRecords(in.Instances) {
		recs[r.InstanceID] = &r
	}
	next := in
	next.Workloads = maps.Clone(in.Workloads)
	next.Memory.SeenRunning = maps.Clone(in.Memory.SeenRunning)
	if next.Memory.SeenRunning == nil {
		next.Memory.SeenRunning = map[string]bool{}
	}
	for _, r := range p.Removals {
		delete(recs, r.InstanceID)
		delete(next.Workloads, r.InstanceID)
	}
	if r := p.Rolling; r != nil && r.Batch > 0 {
		next.Memory.RollingNotBefore = r.NotBefore
	}
	for _, u := range p.Upgrades {
		u.edit(recs[u.InstanceID])
	}
	for _, m := range p.HealthMarks {
		m.edit(recs[m.InstanceID])
	}
	for _, r := range p.Repairs {
		if r.replaces() {
			delete(recs, r.InstanceID)
			delete(next.Workloads, r.InstanceID)
			continue
		}
		r.edit(recs[r.InstanceID])
	}
	if c := p.Create; c != nil {
		for _, r := range c.Instances {
			cp := *r
			recs[r.InstanceID] = &cp
		}
		next.NextID = c.FirstID + len(c.Instances)
	}
	for _, n := range p.NATPorts {
		n.edit(recs[n.InstanceID])
	}
	for _, id := range p.SeenRunning {
		next.Memory.SeenRunning[id] = true
	}
	for _, d := range p.Drive {
		r := recs[d.InstanceID]
		switch d.Action {
		case DriveRefresh:
			d.Status.edit(r)
		case DriveStop:
			d.Status.edit(r)
			next.Workloads[d.InstanceID] = driver.Status{State: driver.StateStopped}
		case DriveStart, DriveRestart:
			st := running()
			r.Applied, r.RepairGraceFrom = r.Generation, in.Now.UTC()
			runningStatus(r, st).edit(r)
			next.Workloads[d.InstanceID] = st
			next.Memory.SeenRunning[d.InstanceID] = true
		}
	}
	next.Instances = nil
	for _, r := range recs {
		next.Instances = append(next.Instances, r)
	}
	return next
}
