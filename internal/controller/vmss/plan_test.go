package vmss

import (
	"errors"
	"net/netip"
	"reflect"
	"strconv"
	"testing"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// t0 is when the instances of these tests were created; the plans run an
// hour later (now) unless a case says otherwise.
var (
	t0  = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	now = t0.Add(time.Hour)
)

// rec returns a settled record of vm's current model: running, provisioned,
// on its applied generation.
func rec(vm *resource.VirtualMachineScaleSet, id string, edits ...func(*resource.Instance)) *resource.Instance {
	m, err := resource.CloneProfile(vm.Properties.VirtualMachineProfile)
	if err != nil {
		panic(err)
	}
	in := &resource.Instance{ScaleSetID: vm.ID, InstanceID: id, Name: vm.Name + "_" + id, Model: m,
		ModelHash: resource.ProfileHash(vm.Properties.VirtualMachineProfile), Subnet: subnet,
		Power: resource.PowerRunning, Actual: resource.PowerRunning, ProvisioningState: resource.Succeeded,
		Created: t0, RepairGraceFrom: t0, ProviderIP: "127.81.0.4"}
	for _, e := range edits {
		e(in)
	}
	return in
}

// settledInput is the input of a pass over recs whose workloads all run
// and were seen running.
func settledInput(vm *resource.VirtualMachineScaleSet, recs ...*resource.Instance) Input {
	in := Input{ScaleSet: vm, Instances: recs, NextID: len(recs), Now: now,
		Workloads: map[string]driver.Status{}, Memory: Memory{SeenRunning: map[string]bool{}}}
	for _, r := range recs {
		in.Workloads[r.InstanceID] = running()
		in.Memory.SeenRunning[r.InstanceID] = true
	}
	return in
}

func running() driver.Status {
	return driver.Status{State: driver.StateRunning, ProviderIP: mustAddr("127.81.0.4")}
}

func ids[T any](steps []T, id func(T) string) []string {
	var out []string
	for _, s := range steps {
		out = append(out, id(s))
	}
	return out
}

func removalIDs(p Plan, reason RemoveReason) []string {
	var out []string
	for _, r := range p.Removals {
		if r.Reason == reason {
			out = append(out, r.InstanceID)
		}
	}
	return out
}

func upgradeIDs(p Plan) []string {
	return ids(p.Upgrades, func(u Upgrade) string { return u.InstanceID })
}
func repairIDs(p Plan) []string { return ids(p.Repairs, func(r Repair) string { return r.InstanceID }) }
func driveOf(p Plan, id string) (Drive, bool) {
	for _, d := range p.Drive {
		if d.InstanceID == id {
			return d, true
		}
	}
	return Drive{}, false
}

func createdIDs(p Plan) []string {
	if p.Create == nil {
		return nil
	}
	return ids(p.Create.Instances, func(in *resource.Instance) string { return in.InstanceID })
}

func TestPlanSettledIsConverged(t *testing.T) {
	vm := scaleSet(2)
	got := PlanPass(settledInput(vm, rec(vm, "0"), rec(vm, "1")))
	if !reflect.DeepEqual(got, Plan{Converged: true}) {
		t.Fatalf("plan of a settled scale set = %+v, want only Converged", got)
	}
}

func TestPlanGoneScaleSet(t *testing.T) {
	vm := scaleSet(2)
	got := PlanPass(Input{Instances: []*resource.Instance{rec(vm, "10"), rec(vm, "2", func(in *resource.Instance) { in.Deleting = true })}})
	want := Plan{Removals: []Removal{{"2", RemoveScaleSetGone}, {"10", RemoveScaleSetGone}}, DeleteCounter: true}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if got := PlanPass(Input{}); !got.Converged || !got.DeleteCounter || len(got.Removals) != 0 {
		t.Fatalf("gone scale set without instances: %+v, want converged", got)
	}
}

func TestPlanScaleIn(t *testing.T) {
	protect := func(in *resource.Instance) { in.ProtectFromScaleIn = true }
	created := func(m int) func(*resource.Instance) {
		return func(in *resource.Instance) { in.Created = t0.Add(time.Duration(m) * time.Minute) }
	}
	tests := []struct {
		name      string
		capacity  int64
		rule      string
		recs      func(vm *resource.VirtualMachineScaleSet) []*resource.Instance
		deleted   []string
		scaleIn   []string
		shortfall bool
	}{
		{name: "default takes the highest ids, in id order", capacity: 2, recs: func(vm *resource.VirtualMachineScaleSet) []*resource.Instance {
			return []*resource.Instance{rec(vm, "0"), rec(vm, "10"), rec(vm, "9"), rec(vm, "2")}
		}, scaleIn: []string{"9", "10"}},
		{name: "deleting records are removed first and do not count", capacity: 2, recs: func(vm *resource.VirtualMachineScaleSet) []*resource.Instance {
			return []*resource.Instance{rec(vm, "0"), rec(vm, "1"), rec(vm, "2", func(in *resource.Instance) { in.Deleting = true })}
		}, deleted: []string{"2"}},
		{name: "protected newest survives NewestVM", capacity: 2, rule: ScaleInNewestVM, recs: func(vm *resource.VirtualMachineScaleSet) []*resource.Instance {
			return []*resource.Instance{rec(vm, "0", created(0)), rec(vm, "1", created(1)), rec(vm, "2", created(2)),
				rec(vm, "3", created(3)), rec(vm, "4", created(4), protect)}
		}, scaleIn: []string{"1", "2", "3"}},
		{name: "scale-set actions protection implies scale-in protection", capacity: 1, recs: func(vm *resource.VirtualMachineScaleSet) []*resource.Instance {
			return []*resource.Instance{rec(vm, "0"), rec(vm, "1", func(in *resource.Instance) { in.ProtectFromScaleSetActions = true })}
		}, scaleIn: []string{"0"}},
		{name: "too many protected: shortfall", capacity: 1, recs: func(vm *resource.VirtualMachineScaleSet) []*resource.Instance {
			return []*resource.Instance{rec(vm, "0", protect), rec(vm, "1", protect), rec(vm, "2")}
		}, scaleIn: []string{"2"}, shortfall: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := scaleSet(tt.capacity)
			if tt.rule != "" {
				vm.Properties.ScaleInPolicy = &resource.ScaleInPolicy{Rules: []string{tt.rule}}
			}
			got := PlanPass(settledInput(vm, tt.recs(vm)...))
			if d := removalIDs(got, RemoveDeleted); !reflect.DeepEqual(d, tt.deleted) {
				t.Errorf("deleted removals = %v, want %v", d, tt.deleted)
			}
			if s := removalIDs(got, RemoveScaleIn); !reflect.DeepEqual(s, tt.scaleIn) {
				t.Errorf("scale-in removals = %v, want %v", s, tt.scaleIn)
			}
			if (got.Shortfall != "") != tt.shortfall {
				t.Errorf("shortfall = %q, want set: %v", got.Shortfall, tt.shortfall)
			}
			if got.Create != nil || got.Err != nil {
				t.Errorf("scale-in also planned create %+v, err %v", got.Create, got.Err)
			}
			for _, d := range got.Drive {
				if contains(tt.scaleIn, d.InstanceID) || contains(tt.deleted, d.InstanceID) {
					t.Errorf("removed instance %s is driven: %+v", d.InstanceID, d)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func TestPlanScaleOut(t *testing.T) {
	vm := scaleSet(3)
	vm.Location = "westeurope"
	vm.Zones = []string{"1", "2"}
	vm.Properties.VirtualMachineProfile.OSProfile = &resource.OSProfile{ComputerNamePrefix: "web-"}
	in := settledInput(vm, rec(vm, "0"))
	in.NextID = 35 // ids are never reused
	got := PlanPass(in)
	if got.Create == nil || got.Create.FirstID != 35 || !reflect.DeepEqual(createdIDs(got), []string{"35", "36"}) {
		t.Fatalf("create = %+v, want ids 35 and 36", got.Create)
	}
	first := got.Create.Instances[0]
	want := &resource.Instance{ScaleSetID: vm.ID, InstanceID: "35", Name: "web_35", ComputerName: "web-00000z",
		Location: "westeurope", Zone: "2", Created: now, RepairGraceFrom: now, Model: first.Model,
		ModelHash: resource.ProfileHash(vm.Properties.VirtualMachineProfile), Power: resource.PowerRunning,
		ProvisioningState: resource.Creating, Subnet: subnet}
	if !reflect.DeepEqual(first, want) {
		t.Fatalf("new record\n got %+v\nwant %+v", first, want)
	}
	if got.Create.Instances[1].Zone != "1" {
		t.Errorf("zones are not round-robin by id: %q", got.Create.Instances[1].Zone)
	}
	if first.Model == vm.Properties.VirtualMachineProfile || !reflect.DeepEqual(first.Model, vm.Properties.VirtualMachineProfile) {
		t.Error("a new record's model must be a copy of the scale set's model")
	}
	for _, id := range []string{"35", "36"} {
		d, ok := driveOf(got, id)
		if !ok || d.Action != DriveStart || d.Reason != ReasonNoWorkload {
			t.Errorf("new instance %s: drive %+v, want a start", id, d)
		}
	}
	if _, ok := driveOf(got, "0"); ok {
		t.Error("a settled instance is driven")
	}
	if got.Converged {
		t.Error("a scale-out plan is converged")
	}
}

// staleModel returns a record on an older model of vm (another image).
func stale(vm *resource.VirtualMachineScaleSet) func(*resource.Instance) {
	return func(in *resource.Instance) {
		old, _ := resource.CloneProfile(vm.Properties.VirtualMachineProfile)
		old.StorageProfile.ImageReference.SKU = "script"
		in.Model, in.ModelHash = old, resource.ProfileHash(old)
	}
}

func TestPlanUpgrade(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	tests := []struct {
		name     string
		capacity int64
		policy   *resource.UpgradePolicy
		health   map[string]Health // nil: no probe
		memory   Memory
		upgraded []string // already on the latest model
		pending  []string // on the latest model but not started yet
		want     []string
		batch    int
		wait     string
		errCode  string
	}{
		{name: "manual leaves stale instances", capacity: 3, policy: nil},
		{name: "manual explicit", capacity: 3, policy: &resource.UpgradePolicy{Mode: "manual"}},
		{name: "automatic upgrades all", capacity: 3, policy: &resource.UpgradePolicy{Mode: resource.UpgradeAutomatic},
			want: []string{"0", "1", "2"}},
		{name: "rolling default 20 percent is one of five", capacity: 5, policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling},
			want: []string{"0"}, batch: 1},
		{name: "rolling 50 percent of four", capacity: 4, policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling,
			RollingUpgradePolicy: &resource.RollingPolicy{MaxBatchInstancePercent: i32(50)}}, want: []string{"0", "1"}, batch: 1},
		{name: "rolling second batch", capacity: 4, upgraded: []string{"0", "1"}, policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling,
			RollingUpgradePolicy: &resource.RollingPolicy{MaxBatchInstancePercent: i32(50)}}, want: []string{"2", "3"}, batch: 2},
		{name: "rolling waits for the pause", capacity: 4, memory: Memory{RollingNotBefore: now.Add(time.Second)},
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling}, wait: RollingPaused},
		{name: "rolling waits for the previous batch to start", capacity: 4, upgraded: []string{"0"}, pending: []string{"0"},
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling}, wait: RollingPending},
		{name: "rolling waits for the previous batch's health", capacity: 4, upgraded: []string{"0"},
			health: map[string]Health{"1": HealthUp, "2": HealthUp, "3": HealthUp}, // "0" unknown
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling}, wait: RollingPending},
		{name: "rolling unhealthy over the limit fails", capacity: 4,
			health: map[string]Health{"0": HealthDown, "1": HealthDown, "2": HealthUp, "3": HealthUp},
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling}, errCode: "MaxUnhealthyInstancePercentExceededInRollingUpgrade"},
		{name: "rolling unhealthy within a raised limit", capacity: 4,
			health: map[string]Health{"0": HealthDown, "1": HealthDown, "2": HealthUp, "3": HealthUp},
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling, RollingUpgradePolicy: &resource.RollingPolicy{
				MaxUnhealthyInstancePercent: i32(50)}}, want: []string{"0"}, batch: 1},
		{name: "rolling unhealthy upgraded over the limit fails", capacity: 4, upgraded: []string{"0", "1"},
			health: map[string]Health{"0": HealthDown, "1": HealthDown, "2": HealthUp, "3": HealthUp},
			policy: &resource.UpgradePolicy{Mode: resource.UpgradeRolling, RollingUpgradePolicy: &resource.RollingPolicy{
				MaxUnhealthyInstancePercent: i32(100)}}, errCode: "MaxUnhealthyInstancePercentExceededInRollingUpgrade"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := scaleSet(tt.capacity)
			vm.Properties.UpgradePolicy = tt.policy
			var recs []*resource.Instance
			for i := range int(tt.capacity) {
				id := itoa(i)
				r := rec(vm, id, stale(vm))
				if contains(tt.upgraded, id) {
					r = rec(vm, id)
				}
				if contains(tt.pending, id) {
					r.Generation = 1
				}
				recs = append(recs, r)
			}
			in := settledInput(vm, recs...)
			in.Health, in.Memory.RollingNotBefore = tt.health, tt.memory.RollingNotBefore
			got := PlanPass(in)
			if tt.errCode != "" {
				var re *resource.Error
				if !errors.As(got.Err, &re) || re.Code != tt.errCode {
					t.Fatalf("err = %v, want %s", got.Err, tt.errCode)
				}
				if len(got.Upgrades) != 0 || len(got.Drive) != 0 || got.Create != nil {
					t.Fatalf("a failed rolling upgrade planned steps after the failure: %+v", got)
				}
				return
			}
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			if u := upgradeIDs(got); !reflect.DeepEqual(u, tt.want) {
				t.Fatalf("upgrades = %v, want %v", u, tt.want)
			}
			rolling := tt.policy != nil && tt.policy.Mode == resource.UpgradeRolling
			if (got.Rolling != nil) != rolling {
				t.Fatalf("rolling = %+v, want one: %v", got.Rolling, rolling)
			}
			if rolling {
				if got.Rolling.Batch != tt.batch || got.Rolling.Wait != tt.wait {
					t.Errorf("rolling = %+v, want batch %d wait %q", got.Rolling, tt.batch, tt.wait)
				}
				if (tt.batch > 0) != !got.Rolling.NotBefore.IsZero() {
					t.Errorf("rolling NotBefore = %v with batch %d", got.Rolling.NotBefore, tt.batch)
				}
			}
			hash := resource.ProfileHash(vm.Properties.VirtualMachineProfile)
			for _, u := range got.Upgrades {
				// The image changed: a new generation, which the drive
				// phase restarts.
				if u.ModelHash != hash || u.Generation != 1 || !reflect.DeepEqual(u.Model, vm.Properties.VirtualMachineProfile) {
					t.Errorf("upgrade %+v: want the current model at generation 1", u)
				}
				if d, ok := driveOf(got, u.InstanceID); !ok || d.Action != DriveRestart || d.Reason != ReasonNewGeneration {
					t.Errorf("upgraded %s: drive %+v, want a restart", u.InstanceID, d)
				}
			}
		})
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

func TestPlanUpgradeNetworkOnlyKeepsGeneration(t *testing.T) {
	vm := scaleSet(1)
	vm.Properties.UpgradePolicy = &resource.UpgradePolicy{Mode: resource.UpgradeAutomatic}
	r := rec(vm, "0")
	vm2 := scaleSet(1, lbID+"/inboundNatPools/ssh")
	vm2.Properties.UpgradePolicy = vm.Properties.UpgradePolicy
	in := settledInput(vm2, r)
	in.LoadBalancers = map[string]*resource.LoadBalancer{resource.NormalizeRefID(lbID): natLB(50000, 50009)}
	got := PlanPass(in)
	if len(got.Upgrades) != 1 || got.Upgrades[0].Generation != 0 {
		t.Fatalf("upgrades = %+v, want one in place (network change only)", got.Upgrades)
	}
	if _, ok := driveOf(got, "0"); ok {
		t.Error("a network-only upgrade restarts the workload")
	}
	if len(got.NATPorts) != 1 || got.NATPorts[0].Ports[resource.NormalizeRefID(lbID+"/inboundNatPools/ssh")] != 50000 {
		t.Errorf("NAT ports after the upgrade = %+v, want 50000 of the new pool", got.NATPorts)
	}
}

func TestPlanRepair(t *testing.T) {
	enabled := true
	policy := func(action, grace string) *resource.AutomaticRepairsPolicy {
		return &resource.AutomaticRepairsPolicy{Enabled: &enabled, RepairAction: action, GracePeriod: grace}
	}
	down := func(since time.Time) func(*resource.Instance) {
		return func(in *resource.Instance) { in.UnhealthySince = since }
	}
	tests := []struct {
		name        string
		policy      *resource.AutomaticRepairsPolicy
		repairGrace time.Duration
		suspended   bool
		health      map[string]Health
		edit        func(*resource.Instance) // of instance "0"
		marks       []HealthMark
		repairs     []string
		waiting     []string
		replaced    bool
		restarted   bool
	}{
		{name: "healthy: nothing", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthUp}},
		{name: "first down: marked, grace starts", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			marks: []HealthMark{{"0", now}}, waiting: []string{"0"}},
		{name: "down within grace: waits", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-9 * time.Minute)), waiting: []string{"0"}},
		{name: "down past grace: replaced", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-10 * time.Minute)), repairs: []string{"0"}, replaced: true},
		{name: "grace counts from the last state change", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: func(in *resource.Instance) {
				in.UnhealthySince, in.RepairGraceFrom = now.Add(-time.Hour), now.Add(-5*time.Minute)
			}, waiting: []string{"0"}},
		{name: "restart action: new generation", policy: policy("Restart", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-time.Hour)), repairs: []string{"0"}, restarted: true},
		{name: "reimage action, lower case", policy: policy("reimage", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-time.Hour)), repairs: []string{"0"}, restarted: true},
		{name: "disabled: marks only", policy: nil, health: map[string]Health{"0": HealthDown}, marks: []HealthMark{{"0", now}}},
		{name: "protected from scale-set actions", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: func(in *resource.Instance) {
				in.UnhealthySince, in.ProtectFromScaleSetActions = now.Add(-time.Hour), true
			}},
		{name: "unknown clears the mark", policy: policy("", "PT10M"), health: map[string]Health{},
			edit: down(now.Add(-time.Hour)), marks: []HealthMark{{"0", time.Time{}}}},
		{name: "no probe: an exited workload is down", policy: policy("", "PT10M"), health: nil,
			edit:    func(in *resource.Instance) { in.Message, in.UnhealthySince = "workload exited: 1", now.Add(-time.Hour) },
			repairs: []string{"0"}, replaced: true},
		{name: "stopped instances are not repaired", policy: policy("", "PT10M"), health: map[string]Health{"0": HealthDown},
			edit: func(in *resource.Instance) {
				in.Power, in.Actual, in.UnhealthySince = resource.PowerStopped, resource.PowerStopped, now.Add(-time.Hour)
			}},
		{name: "test grace override", policy: policy("", "PT30M"), repairGrace: time.Second, health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-time.Second)), repairs: []string{"0"}, replaced: true},
		{name: "suspended: marks only, past grace", policy: policy("", "PT10M"), suspended: true, health: map[string]Health{"0": HealthDown},
			edit: down(now.Add(-time.Hour))},
		{name: "suspended: a first down is still marked", policy: policy("", "PT10M"), suspended: true, health: map[string]Health{"0": HealthDown},
			marks: []HealthMark{{"0", now}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := scaleSet(2)
			vm.Properties.AutomaticRepairsPolicy = tt.policy
			r0 := rec(vm, "0")
			if tt.edit != nil {
				tt.edit(r0)
			}
			in := settledInput(vm, r0, rec(vm, "1"))
			in.Health, in.RepairGrace, in.RepairsSuspended = tt.health, tt.repairGrace, tt.suspended
			if in.Health != nil {
				in.Health["1"] = HealthUp
			}
			got := PlanPass(in)
			if got.Err != nil {
				t.Fatal(got.Err)
			}
			if !reflect.DeepEqual(got.HealthMarks, tt.marks) {
				t.Errorf("health marks = %+v, want %+v", got.HealthMarks, tt.marks)
			}
			if ids := repairIDs(got); !reflect.DeepEqual(ids, tt.repairs) {
				t.Errorf("repairs = %v, want %v", ids, tt.repairs)
			}
			if w := ids(got.RepairsWaiting, func(r Repair) string { return r.InstanceID }); !reflect.DeepEqual(w, tt.waiting) {
				t.Errorf("waiting = %v, want %v", w, tt.waiting)
			}
			for _, r := range append(append([]Repair(nil), got.Repairs...), got.RepairsWaiting...) {
				from := r.UnhealthySince
				if r0.RepairGraceFrom.After(from) {
					from = r0.RepairGraceFrom
				}
				if grace, _ := ParseISODuration(tt.policy.GracePeriod); tt.repairGrace == 0 && !r.GraceEnds.Equal(from.Add(grace)) {
					t.Errorf("repair %+v: grace ends %v, want %v", r, r.GraceEnds, from.Add(grace))
				}
			}
			if tt.replaced {
				if !reflect.DeepEqual(createdIDs(got), []string{"2"}) {
					t.Errorf("replaced instance: create %v, want a fresh instance 2", createdIDs(got))
				}
				if _, ok := driveOf(got, "0"); ok {
					t.Error("a replaced instance is driven")
				}
			}
			if tt.restarted {
				r := got.Repairs[0]
				if r.Generation != 1 || r.Repairs != 1 || !r.GraceFrom.Equal(now) {
					t.Errorf("restart repair = %+v, want generation 1, repairs 1, grace from now", r)
				}
				if d, ok := driveOf(got, "0"); !ok || d.Action != DriveRestart {
					t.Errorf("restarted instance: drive %+v, want a restart", d)
				}
				if got.Create != nil {
					t.Error("a restart repair creates an instance")
				}
			}
		})
	}
}

func TestPlanRepairBudget(t *testing.T) {
	enabled := true
	vm := scaleSet(40)
	vm.Properties.AutomaticRepairsPolicy = &resource.AutomaticRepairsPolicy{Enabled: &enabled, GracePeriod: "PT10M"}
	var recs []*resource.Instance
	health := map[string]Health{}
	for i := range 40 {
		recs = append(recs, rec(vm, itoa(i), func(in *resource.Instance) { in.UnhealthySince = t0 }))
		health[itoa(i)] = HealthDown
	}
	in := settledInput(vm, recs...)
	in.Health = health
	got := PlanPass(in)
	if ids := repairIDs(got); !reflect.DeepEqual(ids, []string{"0", "1"}) {
		t.Fatalf("repairs = %v, want the first RepairBatchSize(40) = 2", ids)
	}
}

func TestPlanDrive(t *testing.T) {
	exited := driver.Status{State: driver.StateExited, Message: "exit status 1", ProviderIP: mustAddr("127.81.0.4")}
	stopped := driver.Status{State: driver.StateStopped, ProviderIP: mustAddr("127.81.0.4")}
	tests := []struct {
		name     string
		edit     func(*resource.Instance)
		workload *driver.Status // nil: none
		seen     bool
		want     *Drive // nil: no step
		seenNow  bool
	}{
		{name: "running and seen: nothing", workload: ptr(running()), seen: true},
		{name: "running, first seen: remembered", workload: ptr(running()), seenNow: true},
		{name: "new generation: restart", edit: func(in *resource.Instance) { in.Generation = 1 }, workload: ptr(running()), seen: true,
			want: &Drive{Action: DriveRestart, Reason: ReasonNewGeneration}},
		{name: "new generation without workload: start", edit: func(in *resource.Instance) { in.Generation = 1 }, seen: true,
			want: &Drive{Action: DriveStart, Reason: ReasonNoWorkload}},
		{name: "died while nimbus was down: restart", workload: &exited,
			want: &Drive{Action: DriveRestart, Reason: ReasonDiedWhileDown, Detail: "exit status 1"}},
		{name: "exited under our eyes: stays down, record says why", workload: &exited, seen: true,
			want: &Drive{Action: DriveRefresh, Status: RecordStatus{Actual: resource.PowerRunning, Message: "workload exited: exit status 1",
				ProvisioningState: resource.Succeeded, ProviderIP: "127.81.0.4"}}},
		{name: "missing workload: start", want: &Drive{Action: DriveStart, Reason: ReasonNoWorkload}},
		{name: "stopped workload of a running instance: start", workload: &stopped, seen: true,
			want: &Drive{Action: DriveStart, Reason: ReasonStopped}},
		{name: "failed start is retried", edit: func(in *resource.Instance) {
			in.ProvisioningState, in.Message, in.Actual = resource.Failed, "boom", ""
		}, want: &Drive{Action: DriveStart, Reason: ReasonNoWorkload}},
		{name: "stop a stopped instance's running workload", edit: func(in *resource.Instance) { in.Power = resource.PowerStopped },
			workload: ptr(running()), seen: true,
			want: &Drive{Action: DriveStop, Status: RecordStatus{Actual: resource.PowerStopped, ProvisioningState: resource.Succeeded,
				ProviderIP: "127.81.0.4"}}},
		{name: "deallocated, already stopped: record only", edit: func(in *resource.Instance) {
			in.Power, in.Generation = resource.PowerDeallocated, 2
		}, workload: &stopped, seen: true,
			want: &Drive{Action: DriveRefresh, Status: RecordStatus{Actual: resource.PowerDeallocated, ProvisioningState: resource.Succeeded,
				Applied: 2, ProviderIP: "127.81.0.4"}}},
		{name: "stopped and settled: nothing", edit: func(in *resource.Instance) {
			in.Power, in.Actual = resource.PowerStopped, resource.PowerStopped
		}, workload: &stopped, seen: true},
		{name: "provider address moved: refresh", workload: &driver.Status{State: driver.StateRunning, ProviderIP: mustAddr("127.81.0.9")}, seen: true,
			want: &Drive{Action: DriveRefresh, Status: RecordStatus{Actual: resource.PowerRunning, ProvisioningState: resource.Succeeded,
				ProviderIP: "127.81.0.9"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vm := scaleSet(1)
			r := rec(vm, "0")
			if tt.edit != nil {
				tt.edit(r)
			}
			in := Input{ScaleSet: vm, Instances: []*resource.Instance{r}, NextID: 1, Now: now, Workloads: map[string]driver.Status{},
				Memory: Memory{SeenRunning: map[string]bool{"0": tt.seen}}}
			if tt.workload != nil {
				in.Workloads["0"] = *tt.workload
			}
			got := PlanPass(in)
			var want []Drive
			if tt.want != nil {
				d := *tt.want
				d.InstanceID = "0"
				want = []Drive{d}
			}
			if !reflect.DeepEqual(got.Drive, want) {
				t.Fatalf("drive\n got %+v\nwant %+v", got.Drive, want)
			}
			if s := len(got.SeenRunning) == 1; s != tt.seenNow {
				t.Errorf("seen running = %v, want remembered: %v", got.SeenRunning, tt.seenNow)
			}
			if got.Converged != (tt.want == nil && r.ProvisioningState == resource.Succeeded) {
				t.Errorf("converged = %v with drive %+v", got.Converged, got.Drive)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// natLB is a load balancer with the NAT pool "ssh" on ports start..end and
// a load-balancing rule on frontend port 50001.
func natLB(start, end int32) *resource.LoadBalancer {
	fe := &resource.SubResource{ID: lbID + "/frontendIPConfigurations/fe"}
	p80 := int32(50001)
	return &resource.LoadBalancer{Envelope: resource.Envelope{ID: lbID, Name: "lb"},
		Properties: resource.LoadBalancerProps{
			InboundNatPools: []resource.InboundNatPool{{ID: lbID + "/inboundNatPools/ssh", Name: "ssh",
				Properties: resource.NatPoolProps{FrontendIPConfiguration: fe, Protocol: "Tcp",
					FrontendPortRangeStart: &start, FrontendPortRangeEnd: &end}}},
			LoadBalancingRules: []resource.LoadBalancingRule{{Name: "http", Properties: resource.RuleProps{
				FrontendIPConfiguration: fe, FrontendPort: &p80}}},
		}}
}

func TestPlanNATPorts(t *testing.T) {
	pool := lbID + "/inboundNatPools/ssh"
	key := resource.NormalizeRefID(pool)
	lbs := map[string]*resource.LoadBalancer{resource.NormalizeRefID(lbID): natLB(50000, 50003)}
	withPort := func(p uint16) func(*resource.Instance) {
		return func(in *resource.Instance) { in.NATPorts = map[string]uint16{key: p} }
	}

	t.Run("survivors keep ports, new ones take the lowest free, reserved skipped", func(t *testing.T) {
		vm := scaleSet(3, pool)
		in := settledInput(vm, rec(vm, "0", withPort(50002)))
		in.LoadBalancers = lbs
		got := PlanPass(in)
		want := []NATPorts{{"1", map[string]uint16{key: 50000}}, {"2", map[string]uint16{key: 50003}}}
		if got.Err != nil || !reflect.DeepEqual(got.NATPorts, want) {
			t.Fatalf("NAT ports = %+v (err %v), want %+v", got.NATPorts, got.Err, want)
		}
	})
	t.Run("ports of a pool the model dropped are released", func(t *testing.T) {
		vm := scaleSet(1)
		got := PlanPass(settledInput(vm, rec(vm, "0", withPort(50000))))
		if want := []NATPorts{{InstanceID: "0"}}; !reflect.DeepEqual(got.NATPorts, want) {
			t.Fatalf("NAT ports = %+v, want %+v", got.NATPorts, want)
		}
	})
	t.Run("range too small for the capacity: nothing created", func(t *testing.T) {
		vm := scaleSet(4, pool) // 4 ports, one reserved
		in := settledInput(vm, rec(vm, "0", withPort(50000)))
		in.LoadBalancers = lbs
		got := PlanPass(in)
		var re *resource.Error
		if !errors.As(got.Err, &re) || re.Code != "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts" || got.Create != nil {
			t.Fatalf("err = %v, create %+v; want the range error and no create", got.Err, got.Create)
		}
	})
	t.Run("existing instances over the range fail assignment", func(t *testing.T) {
		vm := scaleSet(1, pool)
		var recs []*resource.Instance
		for i := range 4 {
			recs = append(recs, rec(vm, itoa(i), func(in *resource.Instance) { in.ProtectFromScaleIn = true }))
		}
		in := settledInput(vm, recs...)
		in.LoadBalancers = lbs
		got := PlanPass(in)
		var re *resource.Error
		if !errors.As(got.Err, &re) || re.Code != "InboundNatPoolFrontendPortRangeSmallerThanRequestedPorts" || len(got.Drive) != 0 {
			t.Fatalf("err = %v, drive %+v; want the range error before any drive", got.Err, got.Drive)
		}
	})
	t.Run("missing load balancer", func(t *testing.T) {
		vm := scaleSet(2, pool)
		got := PlanPass(settledInput(vm, rec(vm, "0")))
		if !errors.Is(got.Err, store.ErrNotFound) || got.Create != nil {
			t.Fatalf("err = %v, create %+v; want not found and no create", got.Err, got.Create)
		}
	})
	t.Run("NAT rule v2 on the instance's backend pool", func(t *testing.T) {
		bp := lbID + "/backendAddressPools/be"
		vm := scaleSet(2)
		ipc := &vm.Properties.VirtualMachineProfile.NetworkProfile.NetworkInterfaceConfigurations[0].Properties.IPConfigurations[0]
		ipc.Properties.LoadBalancerBackendAddressPools = []resource.SubResource{{ID: bp}}
		lb := natLB(50000, 50003)
		s, e := int32(60000), int32(60009)
		lb.Properties.InboundNatRules = []resource.InboundNatRule{{ID: lbID + "/inboundNatRules/v2", Name: "v2", Properties: resource.NatRuleProps{
			FrontendIPConfiguration: lb.Properties.InboundNatPools[0].Properties.FrontendIPConfiguration,
			BackendAddressPool:      &resource.SubResource{ID: bp}, FrontendPortRangeStart: &s, FrontendPortRangeEnd: &e}}}
		in := settledInput(vm, rec(vm, "0"), rec(vm, "1"))
		in.LoadBalancers = map[string]*resource.LoadBalancer{resource.NormalizeRefID(lbID): lb}
		got := PlanPass(in)
		v2 := resource.NormalizeRefID(lbID + "/inboundNatRules/v2")
		want := []NATPorts{{"0", map[string]uint16{v2: 60000}}, {"1", map[string]uint16{v2: 60001}}}
		if got.Err != nil || !reflect.DeepEqual(got.NATPorts, want) {
			t.Fatalf("NAT ports = %+v (err %v), want %+v", got.NATPorts, got.Err, want)
		}
	})
}

func TestPlanDoesNotModifyInput(t *testing.T) {
	vm := scaleSet(3)
	vm.Properties.UpgradePolicy = &resource.UpgradePolicy{Mode: resource.UpgradeAutomatic}
	r := rec(vm, "0", stale(vm), func(in *resource.Instance) { in.NATPorts = map[string]uint16{"x": 1} })
	before := *r
	beforePorts := map[string]uint16{"x": 1}
	got := PlanPass(settledInput(vm, r, rec(vm, "1", func(in *resource.Instance) { in.Deleting = true })))
	if len(got.Upgrades) != 1 || len(got.NATPorts) != 1 {
		t.Fatalf("plan = %+v, want an upgrade and a NAT change of 0", got)
	}
	if !reflect.DeepEqual(*r, before) || !reflect.DeepEqual(r.NATPorts, beforePorts) {
		t.Fatalf("PlanPass modified its input record:\n got %+v\nwant %+v", *r, before)
	}
}
