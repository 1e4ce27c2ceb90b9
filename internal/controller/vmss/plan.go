package vmss

import (
	"maps"
	"strings"
	"time"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
)

// This file is the pure half of a pass: PlanPass turns what one pass read
// about one scale set (Input) into what the pass does to it (Plan). It does
// no I/O: no store, no driver, no clock. apply.go carries a Plan out.

// Health is one instance's health as the scale set's health probe sees it.
type Health uint8

const (
	// HealthUnknown means the prober has no answer for the instance yet.
	HealthUnknown Health = iota
	// HealthUp means the probe succeeds.
	HealthUp
	// HealthDown means the probe fails.
	HealthDown
)

// Memory is what the controller remembers about a scale set between passes.
// It is not stored: a restarted nimbus starts from the zero Memory, which is
// how it tells instances that died while it was down.
type Memory struct {
	// SeenRunning holds the ids of instances this controller has seen
	// running. An instance found exited that was never seen running died
	// while nimbus was down (a crash, a host reboot): it is restarted, as
	// Azure restarts VMs after host maintenance. One that exits under our
	// eyes stays down for the health probe and automatic repairs. Nil is
	// empty.
	SeenRunning map[string]bool
	// RollingNotBefore is when the next rolling-upgrade batch may start at
	// the earliest (pauseTimeBetweenBatches after the last one); zero: now.
	RollingNotBefore time.Time
}

// Input is everything PlanPass decides from: one scale set as one pass read
// it. PlanPass does not modify it.
type Input struct {
	// ScaleSet is the scale set's model; nil when the scale set is gone,
	// and then every instance record is removed.
	ScaleSet *resource.VirtualMachineScaleSet
	// Instances are the scale set's instance records, in any order.
	Instances []*resource.Instance
	// NextID is the scale set's InstanceCounter.Next: the id of the next
	// instance created (ids are never reused).
	NextID int
	// Workloads is the driver's state of each instance, by instance id; an
	// instance without an entry has no workload in the driver (Inspect
	// said driver.ErrNotFound). Records being deleted need no entry.
	Workloads map[string]driver.Status
	// Health is the health probe's answer per instance id; an instance
	// without an entry is HealthUnknown. Nil means the scale set has no
	// health probe or the controller no health source: then a running
	// instance counts as healthy unless its workload exited (its record
	// has a Message).
	Health map[string]Health
	// LoadBalancers holds, by resource.NormalizeRefID of their id, the
	// load balancers the scale set's model and its instances' applied
	// models refer to (NAT pools, backend pools). One that is missing does
	// not exist; the plan fails where it needs it.
	LoadBalancers map[string]*resource.LoadBalancer
	// Memory is what the controller remembers from earlier passes.
	Memory Memory
	// Now is the pass's clock.
	Now time.Time
	// RepairGrace, when positive, replaces every automaticRepairsPolicy
	// gracePeriod (Options.RepairGrace).
	RepairGrace time.Duration
	// RepairsSuspended is true while a user has suspended the scale set's
	// automatic repairs (setOrchestrationServiceState): health marks are
	// kept, no instance is repaired.
	RepairsSuspended bool
}

// Plan is what one pass does to one scale set. apply carries out its phases
// in this order, each step a store write or driver call that is safe to
// retry: Removals, Upgrades, HealthMarks, Repairs, Create, NATPorts, then
// SeenRunning is remembered, then Drive, and last DeleteCounter. A pass that
// stops between steps (a crash, a write conflict) leaves a state whose next
// plan finishes the work. The zero Plan does nothing.
type Plan struct {
	// Removals are the instances removed for good (workload destroyed,
	// addresses released, record deleted), in order: records already being
	// deleted, then scale-in victims, each in instance-id order (every
	// record, when the scale set is gone). A scale-in victim is first
	// marked deleting, so a crash cannot bring it back.
	Removals []Removal
	// Upgrades give instances the scale set's current model: every stale
	// instance in Automatic mode, one batch in Rolling mode (see Rolling),
	// none in Manual mode.
	Upgrades []Upgrade
	// Rolling is the state of a rolling upgrade; nil unless upgradePolicy
	// mode is Rolling and some instance runs an older model.
	Rolling *Rolling
	// HealthMarks record when an instance's health probe started failing
	// (or that it stopped failing), for automatic repairs' grace period.
	HealthMarks []HealthMark
	// Repairs are the automatic repairs carried out in this pass, at most
	// RepairBatchSize of them; RepairsWaiting the unhealthy instances whose
	// grace period has not ended (nothing is done to them yet).
	Repairs        []Repair
	RepairsWaiting []Repair
	// Create makes new instances up to capacity; nil: none.
	Create *Creation
	// NATPorts are the instances whose NAT pool (or NAT rule v2) frontend
	// ports change, in instance-id order.
	NATPorts []NATPorts
	// Drive makes workloads match their records: starts, restarts, stops,
	// and status updates of records, in instance-id order (existing
	// instances, then new ones). apply runs them in parallel, at most
	// Options.StartConcurrency at once.
	Drive []Drive
	// SeenRunning are the ids of instances found running that Memory did
	// not know yet; apply remembers them (and those its starts see running).
	SeenRunning []string
	// DeleteCounter is set when the scale set is gone: after the removals
	// its InstanceCounter is deleted too.
	DeleteCounter bool
	// Err, when set, stops the pass: the steps above were planned before
	// the point of failure, apply carries them out and returns Err (an
	// exhausted NAT port range, a rolling upgrade over its unhealthy
	// limits, a missing load balancer).
	Err error
	// Shortfall says why the instances left after this plan will not number
	// the capacity even without Err ("" when they will).
	Shortfall string
	// Converged reports that the input already meets the model: nothing to
	// do in this pass (a rolling upgrade may be pausing, a repair waiting
	// for its grace), capacity instances, every one provisioned in its
	// desired state (WaitConverged's condition); or, for a gone scale set,
	// no instances left.
	Converged bool
}

// RemoveReason says why an instance is removed.
type RemoveReason string

// Removal reasons. Automatic repairs' Replace removes too, listed in
// Plan.Repairs.
const (
	// RemoveDeleted: the record is already marked deleting (the delete
	// instances API, or an earlier pass that did not finish).
	RemoveDeleted RemoveReason = "deleted"
	// RemoveScaleIn: the capacity went down and the scale-in policy chose
	// the instance.
	RemoveScaleIn RemoveReason = "scale-in"
	// RemoveScaleSetGone: the scale set was deleted.
	RemoveScaleSetGone RemoveReason = "scale set deleted"
)

// Removal is one instance removed for good.
type Removal struct {
	InstanceID string
	Reason     RemoveReason
}

// marks reports whether the record is marked deleting before the removal.
func (r Removal) marks() bool { return r.Reason == RemoveScaleIn }

// Upgrade gives one instance the scale set's current model
// (resource.ApplyModel): Model, ModelHash and Generation are the record's
// new values; Generation moves when what the workload runs changed (image,
// customData), so the drive phase restarts it.
type Upgrade struct {
	InstanceID string
	Model      *resource.VMProfile
	ModelHash  string
	Generation int64
}

func (u Upgrade) edit(in *resource.Instance) {
	in.Model, in.ModelHash, in.Generation = u.Model, u.ModelHash, u.Generation
}

// Reasons a rolling upgrade starts no batch in a pass.
const (
	// RollingPaused: pauseTimeBetweenBatches has not passed since the
	// last batch.
	RollingPaused = "pause between batches"
	// RollingPending: an upgraded instance is still starting or its health
	// is not known yet.
	RollingPending = "previous batch not settled"
)

// Rolling is the state of a rolling upgrade in one pass.
type Rolling struct {
	// BatchSize is maxBatchInstancePercent of the scale set's instances,
	// at least 1 (BatchSize): no batch is larger.
	BatchSize int
	// Batch numbers the batch this pass starts (1 for the first), counted
	// from the instances already on the latest model; 0 when none starts.
	Batch int
	// Wait says why no batch starts (RollingPaused, RollingPending); ""
	// when one does, or when Plan.Err says why not.
	Wait string
	// NotBefore is when the batch after this one may start: the pass's
	// clock plus pauseTimeBetweenBatches. Zero when no batch starts.
	NotBefore time.Time
}

// HealthMark sets an instance's UnhealthySince (zero: healthy again).
type HealthMark struct {
	InstanceID     string
	UnhealthySince time.Time
}

func (m HealthMark) edit(in *resource.Instance) { in.UnhealthySince = m.UnhealthySince }

// Repair is one automatic repair (automaticRepairsPolicy).
type Repair struct {
	InstanceID string
	// Action is the policy's repairAction as spelled there ("Replace" by
	// default): Replace removes the instance (scale-out in the same pass
	// creates a fresh one); Restart and Reimage start a new generation of
	// its workload in place.
	Action string
	// UnhealthySince is when the health probe first said down; GraceEnds
	// is the grace period's end: the later of UnhealthySince and the
	// record's RepairGraceFrom, plus the grace.
	UnhealthySince time.Time
	GraceEnds      time.Time
	// Generation, Repairs and GraceFrom are the record's new Generation,
	// Repairs and RepairGraceFrom after a Restart or Reimage (its
	// UnhealthySince is cleared).
	Generation int64
	Repairs    int
	GraceFrom  time.Time
}

// replaces reports whether the repair removes the instance.
func (r Repair) replaces() bool {
	a := strings.ToLower(r.Action)
	return a != "restart" && a != "reimage"
}

func (r Repair) edit(in *resource.Instance) {
	in.Generation, in.Repairs = r.Generation, r.Repairs
	in.UnhealthySince, in.RepairGraceFrom = time.Time{}, r.GraceFrom
}

// Creation is a scale-out: new instance records, written in one store
// transaction with the scale set's InstanceCounter and their addresses.
type Creation struct {
	// FirstID is the first new instance id; the new ids are FirstID,
	// FirstID+1, ... and the counter moves past the last.
	FirstID int
	// Instances are the new records, complete but for what apply fills
	// in: VMID (random), PrivateIP and PublicIP (allocated in the same
	// transaction).
	Instances []*resource.Instance
}

// NATPorts sets an instance's NAT frontend ports: Ports is its complete new
// Instance.NATPorts (nil: none).
type NATPorts struct {
	InstanceID string
	Ports      map[string]uint16
}

func (n NATPorts) edit(in *resource.Instance) { in.NATPorts = maps.Clone(n.Ports) }

// DriveAction is what the drive phase does to one instance's workload.
type DriveAction string

// Drive actions.
const (
	// DriveRefresh only updates the record's status to what the driver
	// reports.
	DriveRefresh DriveAction = "refresh"
	// DriveStart starts the workload (the driver has none, or it was
	// stopped).
	DriveStart DriveAction = "start"
	// DriveRestart destroys the workload and starts it again.
	DriveRestart DriveAction = "restart"
	// DriveStop stops the running workload of a stopped or deallocated
	// instance.
	DriveStop DriveAction = "stop"
)

// Reasons for starts and restarts.
const (
	ReasonNoWorkload    = "no workload"
	ReasonStopped       = "workload stopped"
	ReasonNewGeneration = "new generation"
	// ReasonDiedWhileDown: found exited, never seen running (Memory).
	ReasonDiedWhileDown = "stopped while nimbus was down"
)

// Drive is one instance's drive step.
type Drive struct {
	InstanceID string
	Action     DriveAction
	// Reason says why a start or restart (Reason* constants); Detail is
	// the driver's message about the old workload, if any.
	Reason string
	Detail string
	// Status is the record's status after a Refresh or Stop. After a
	// Start or Restart it comes from the driver's answer (startedStatus).
	Status RecordStatus
}

// RecordStatus is the part of an instance record the drive phase writes.
type RecordStatus struct {
	Actual            string
	Message           string
	ProvisioningState string
	Applied           int64
	ProviderIP        string
}

func statusOf(in *resource.Instance) RecordStatus {
	return RecordStatus{Actual: in.Actual, Message: in.Message, ProvisioningState: in.ProvisioningState,
		Applied: in.Applied, ProviderIP: in.ProviderIP}
}

func (s RecordStatus) edit(in *resource.Instance) {
	in.Actual, in.Message, in.ProvisioningState, in.Applied, in.ProviderIP =
		s.Actual, s.Message, s.ProvisioningState, s.Applied, s.ProviderIP
}

// runningStatus is the status of a record asked to run whose workload the
// driver reports as st. A workload that ended on its own leaves the VM
// "running" in Azure's terms but its application dead: the health probe
// and automatic repairs notice it.
func runningStatus(in *resource.Instance, st driver.Status) RecordStatus {
	s := statusOf(in)
	s.ProviderIP = st.ProviderIP.String()
	switch st.State {
	case driver.StateRunning:
		s.Actual, s.Message = resource.PowerRunning, ""
	case driver.StateExited:
		s.Actual = resource.PowerRunning
		s.Message = "workload exited: " + st.Message
	}
	s.ProvisioningState = resource.Succeeded
	return s
}
