package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Scale-set operations beyond the model and the instance actions: rolling
// upgrades (osRollingUpgrade, extensionRollingUpgrade, rollingUpgrades/latest
// and /cancel, approveRollingUpgrade, osUpgradeHistory), orchestration
// services (setOrchestrationServiceState), scaleOut, reapply,
// performMaintenance and the scale set's skus. Their state lives in the
// scale set's resource.ScaleSetState record, which the scale-set controller
// reads (a suspended AutomaticRepairs repairs nothing). Each POST answers as
// an LRO: 202 with Location and Azure-AsyncOperation, finished when the
// scale set has converged (or at once without a runtime).

func registerScaleSetOps(s *server) {
	p := instVMSSPath
	s.Handle(http.MethodPost, p+"/osRollingUpgrade", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.startRollingUpgrade(ctx, r, "OS")
	})
	s.Handle(http.MethodPost, p+"/extensionRollingUpgrade", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.startRollingUpgrade(ctx, r, "Extension")
	})
	s.Handle(http.MethodGet, p+"/rollingUpgrades/latest", Versions, s.getLatestRollingUpgrade)
	s.Handle(http.MethodPost, p+"/rollingUpgrades/cancel", Versions, s.cancelRollingUpgrade)
	s.Handle(http.MethodPost, p+"/approveRollingUpgrade", Versions, s.approveRollingUpgrade)
	s.Handle(http.MethodGet, p+"/osUpgradeHistory", Versions, s.osUpgradeHistory)
	s.Handle(http.MethodPost, p+"/setOrchestrationServiceState", Versions, s.setOrchestrationServiceState)
	s.Handle(http.MethodPost, p+"/scaleOut", Versions, s.scaleOut)
	s.Handle(http.MethodPost, p+"/reapply", Versions, s.convergedAction)
	s.Handle(http.MethodPost, p+"/performMaintenance", Versions, s.convergedAction)
	s.Handle(http.MethodGet, p+"/skus", Versions, s.listScaleSetSkus)
	s.Handle(http.MethodPost, p+"/convertToSinglePlacementGroup", Versions, s.convertToSinglePlacementGroup)
	s.Handle(http.MethodPost, instVMPath+"/approveRollingUpgrade", Versions, s.approveInstanceRollingUpgrade)
}

// approveInstanceRollingUpgrade serves POST {vmss}/virtualMachines/{n}/approveRollingUpgrade:
// as approveRollingUpgrade, for one instance.
func (s *server) approveInstanceRollingUpgrade(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	defer s.LockWrites()()
	v, _, err := s.loadInstance(ctx, r)
	if err != nil {
		return nil, err
	}
	op, opRec, err := s.stageActionOp(v, instScaleSetID(r))
	if err != nil {
		return nil, err
	}
	if _, err := s.Store().Txn(ctx, []store.Op{opRec}); err != nil {
		return nil, err
	}
	s.finishWhenConverged(ctx, op, v.ID)
	return r.Accepted(op), nil
}

// loadState reads the scale set's state record (zero when absent) and its
// revision (store.MustNotExist when absent).
func loadState(ctx context.Context, rd arm.Reader, vmssID string) (*resource.ScaleSetState, int64, error) {
	kv, err := rd.Get(ctx, resource.ScaleSetStateKey(vmssID))
	if arm.IsNotFound(err) {
		return &resource.ScaleSetState{}, store.MustNotExist, nil
	}
	if err != nil {
		return nil, 0, fmt.Errorf("compute: scale set state: %w", err)
	}
	st, err := resource.DecodeScaleSetState(kv.Value)
	if err != nil {
		return nil, 0, fmt.Errorf("compute: decode scale set state: %w", err)
	}
	return st, kv.Revision, nil
}

// stateOp is the store write of st with expectation rev.
func stateOp(vmssID string, st *resource.ScaleSetState, rev int64) (store.Op, error) {
	b, err := json.Marshal(st)
	if err != nil {
		return store.Op{}, fmt.Errorf("compute: encode scale set state: %w", err)
	}
	return store.Op{Key: resource.ScaleSetStateKey(vmssID), Value: b, Expected: rev}, nil
}

// imageOf returns the image of a profile (nil when none).
func imageOf(p *resource.VMProfile) *resource.ImageReference {
	if p == nil || p.StorageProfile == nil || p.StorageProfile.ImageReference == nil {
		return nil
	}
	ir := *p.StorageProfile.ImageReference
	return &ir
}

// startRollingUpgrade serves POST {vmss}/osRollingUpgrade and
// /extensionRollingUpgrade. An OS upgrade moves every instance whose image
// is not the model's to the model (instances already on it are not
// affected, as in Azure); an extension upgrade moves every instance whose
// extensions differ from the model's. The controller restarts the changed
// workloads; the operation, and the upgrade's runningStatus, complete when
// the scale set has converged (Faulted if it failed). One upgrade runs at a
// time: 409 while another rolls forward.
func (s *server) startRollingUpgrade(ctx context.Context, r *arm.Request, kind string) (*arm.Response, error) {
	id := instScaleSetID(r)
	unlock := s.LockWrites()
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		unlock()
		return nil, err
	}
	st, rev, err := loadState(ctx, rd, v.ID)
	if err != nil {
		unlock()
		return nil, err
	}
	if l := st.Latest; l != nil && l.Status == resource.RollingForward {
		unlock()
		return nil, resource.Conflict("OperationNotAllowed",
			"A rolling upgrade is already in progress on Virtual Machine Scale Set '%s'; cancel it (rollingUpgrades/cancel) or wait for it to complete.", v.Name)
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	if err != nil {
		unlock()
		return nil, err
	}
	model := v.Properties.VirtualMachineProfile
	now := s.Now().UTC()
	up := &resource.RollingUpgrade{Kind: kind, Status: resource.RollingForward, StartTime: now, LastAction: "Start", LastActionTime: now,
		Target: imageOf(model)}
	if p := v.Properties.UpgradePolicy; p != nil && p.RollingUpgradePolicy != nil {
		pol := *p.RollingUpgradePolicy
		up.Policy = &pol
	}
	op, opRec, err := s.stageActionOp(v, id)
	if err != nil {
		unlock()
		return nil, err
	}
	ops := []store.Op{opRec}
	for _, rec := range recs {
		if rec.in.Deleting || model == nil {
			continue
		}
		var changed bool
		if kind == "OS" {
			a, b := imageOf(rec.in.Model), imageOf(model)
			changed = (a == nil) != (b == nil) || a != nil && *a != *b
		} else {
			changed = rec.in.Model == nil || string(rec.in.Model.ExtensionProfile) != string(model.ExtensionProfile)
		}
		if !changed {
			continue
		}
		if err := resource.ApplyModel(rec.in, model); err != nil {
			unlock()
			return nil, err
		}
		rec.in.Generation = max(rec.in.Generation, rec.in.Applied+1) // reimaged, as a rolling upgrade does
		b, err := json.Marshal(rec.in)
		if err != nil {
			unlock()
			return nil, fmt.Errorf("compute: encode instance: %w", err)
		}
		ops = append(ops, store.Op{Key: rec.key, Value: b, Expected: rec.rev})
		up.Instances = append(up.Instances, rec.in.InstanceID)
	}
	st.Latest = up
	so, err := stateOp(v.ID, st, rev)
	if err != nil {
		unlock()
		return nil, err
	}
	if _, err := s.Store().Txn(ctx, append(ops, so)); err != nil {
		unlock()
		return nil, err
	}
	unlock()
	rt := s.Runtime()
	vmssID := v.ID
	s.Ops.Go(ctx, op, func(ctx context.Context) (any, error) {
		var werr error
		if rt != nil {
			werr = rt.WaitScaleSet(ctx, vmssID)
		}
		return nil, s.finishRollingUpgrade(ctx, vmssID, up.StartTime, werr)
	})
	return r.Accepted(op), nil
}

// finishRollingUpgrade records the end of the rolling upgrade started at
// start (unless it was cancelled or replaced): Completed, or Faulted with
// werr. OS upgrades join the history.
func (s *server) finishRollingUpgrade(ctx context.Context, vmssID string, start time.Time, werr error) error {
	defer s.LockWrites()()
	rd := arm.StoreReader{Store: s.Store()}
	st, rev, err := loadState(ctx, rd, vmssID)
	if err != nil {
		return err
	}
	l := st.Latest
	if l == nil || !l.StartTime.Equal(start) {
		return werr
	}
	now := s.Now().UTC()
	if l.Status == resource.RollingForward {
		l.Status, l.EndTime = resource.RollingCompleted, now
		if werr != nil {
			l.Status, l.Error = resource.RollingFaulted, werr.Error()
		}
		if recs, err := loadInstances(ctx, rd, vmssID); err == nil {
			for _, rec := range recs {
				if slices.Contains(l.Instances, rec.in.InstanceID) && rec.in.ProvisioningState == resource.Failed {
					l.Failed = append(l.Failed, rec.in.InstanceID)
				}
			}
		}
	}
	if l.Kind == "OS" {
		st.OSHistory = append([]resource.RollingUpgrade{*l}, st.OSHistory...)
		if len(st.OSHistory) > 20 {
			st.OSHistory = st.OSHistory[:20]
		}
	}
	so, err := stateOp(vmssID, st, rev)
	if err != nil {
		return err
	}
	if _, err := s.Store().Txn(ctx, []store.Op{so}); err != nil {
		return fmt.Errorf("compute: record rolling upgrade: %w", err)
	}
	return werr
}

// rollingUpgradeStatus is a RollingUpgradeStatusInfo.
type rollingUpgradeStatus struct {
	ID         string `json:"id,omitempty"`
	Name       string `json:"name,omitempty"`
	Type       string `json:"type"`
	Location   string `json:"location"`
	Properties struct {
		Policy        *resource.RollingPolicy `json:"policy,omitempty"`
		RunningStatus runningStatus           `json:"runningStatus"`
		Progress      upgradeProgress         `json:"progress"`
		Error         *apiError               `json:"error,omitempty"`
	} `json:"properties"`
}

type runningStatus struct {
	Code           string `json:"code"`
	StartTime      string `json:"startTime"`
	EndTime        string `json:"endTime,omitempty"`
	LastAction     string `json:"lastAction,omitempty"`
	LastActionTime string `json:"lastActionTime,omitempty"`
}

type upgradeProgress struct {
	SuccessfulInstanceCount int `json:"successfulInstanceCount"`
	FailedInstanceCount     int `json:"failedInstanceCount"`
	InProgressInstanceCount int `json:"inProgressInstanceCount"`
	PendingInstanceCount    int `json:"pendingInstanceCount"`
}

type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// progressOf counts the upgrade's instances: failed, done (workload
// restarted on the new model, or deleted meanwhile; every other one once
// the upgrade completed, which it does when the scale set converged), in
// progress (restart asked, not done, while rolling forward) and pending
// (not done when the upgrade was cancelled or faulted).
func progressOf(l *resource.RollingUpgrade, recs []instRecord) upgradeProgress {
	var p upgradeProgress
	byID := map[string]*resource.Instance{}
	for _, rec := range recs {
		byID[rec.in.InstanceID] = rec.in
	}
	for _, id := range l.Instances {
		in := byID[id]
		switch {
		case slices.Contains(l.Failed, id) || in != nil && in.ProvisioningState == resource.Failed:
			p.FailedInstanceCount++
		case in == nil || in.Applied >= in.Generation || l.Status == resource.RollingCompleted:
			p.SuccessfulInstanceCount++
		case l.Status == resource.RollingForward:
			p.InProgressInstanceCount++
		default:
			p.PendingInstanceCount++
		}
	}
	return p
}

// getLatestRollingUpgrade serves GET {vmss}/rollingUpgrades/latest: 404
// when no rolling upgrade was ever started.
func (s *server) getLatestRollingUpgrade(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, instScaleSetID(r))
	if err != nil {
		return nil, err
	}
	st, _, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	if st.Latest == nil {
		return nil, resource.NotFound("NotFound", "The entity was not found in this Azure location: Virtual Machine Scale Set '%s' has had no rolling upgrade.", v.Name)
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	l := st.Latest
	out := rollingUpgradeStatus{ID: v.ID + "/rollingUpgrades/latest", Name: "latest",
		Type: "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades", Location: v.Location}
	out.Properties.Policy = l.Policy
	out.Properties.RunningStatus = runningStatus{Code: l.Status, StartTime: rfc3339(l.StartTime), EndTime: rfc3339(l.EndTime),
		LastAction: l.LastAction, LastActionTime: rfc3339(l.LastActionTime)}
	out.Properties.Progress = progressOf(l, recs)
	if l.Error != "" {
		out.Properties.Error = &apiError{Code: "RollingUpgradeFaulted", Message: l.Error}
	}
	return arm.JSON(http.StatusOK, out), nil
}

// cancelRollingUpgrade serves POST {vmss}/rollingUpgrades/cancel: the
// upgrade rolling forward is marked Cancelled (lastAction Cancel) and is
// not completed later; instances whose restart it already asked for finish
// it, as Azure's batches already under way do. 409 OperationNotAllowed when
// no upgrade is in progress.
func (s *server) cancelRollingUpgrade(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	defer s.LockWrites()()
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	st, rev, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	if st.Latest == nil || st.Latest.Status != resource.RollingForward {
		return nil, resource.Conflict("OperationNotAllowed", "There is no rolling upgrade in progress on Virtual Machine Scale Set '%s' to cancel.", v.Name)
	}
	now := s.Now().UTC()
	st.Latest.Status, st.Latest.LastAction, st.Latest.LastActionTime, st.Latest.EndTime = resource.RollingCancelled, "Cancel", now, now
	return s.commitStateAction(ctx, r, v, id, st, rev)
}

// commitStateAction writes st with a finished-when-converged operation and
// answers 202.
func (s *server) commitStateAction(ctx context.Context, r *arm.Request, v *resource.VirtualMachineScaleSet, id resource.ID, st *resource.ScaleSetState, rev int64) (*arm.Response, error) {
	op, opRec, err := s.stageActionOp(v, id)
	if err != nil {
		return nil, err
	}
	so, err := stateOp(v.ID, st, rev)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store().Txn(ctx, []store.Op{opRec, so}); err != nil {
		return nil, err
	}
	s.finishWhenConverged(ctx, op, v.ID)
	return r.Accepted(op), nil
}

// approveRollingUpgrade serves POST {vmss}/approveRollingUpgrade (and the
// instance's): nimbus's rolling upgrades never wait for a user's approval,
// so there is nothing to approve; the named instances must exist.
func (s *server) approveRollingUpgrade(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	ids, _, err := parseInstanceIDs(r, false)
	if err != nil {
		return nil, err
	}
	defer s.LockWrites()()
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	for _, want := range ids {
		if !slices.ContainsFunc(recs, func(rec instRecord) bool { return rec.in.InstanceID == want }) {
			return nil, resource.BadRequest("InvalidParameter", "The instance id '%s' of Virtual Machine Scale Set '%s' does not exist.", want, v.Name)
		}
	}
	st, rev, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	return s.commitStateAction(ctx, r, v, id, st, rev)
}

// osUpgradeHistory serves GET {vmss}/osUpgradeHistory: the OS rolling
// upgrades, newest first (UpgradeOperationHistoricalStatusInfo).
func (s *server) osUpgradeHistory(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, instScaleSetID(r))
	if err != nil {
		return nil, err
	}
	st, _, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	items := []any{}
	list := st.OSHistory
	if l := st.Latest; l != nil && l.Kind == "OS" && l.Status == resource.RollingForward {
		list = append([]resource.RollingUpgrade{*l}, list...)
	}
	for _, h := range list {
		type props struct {
			RunningStatus        runningStatus            `json:"runningStatus"`
			Progress             upgradeProgress          `json:"progress"`
			Error                *apiError                `json:"error,omitempty"`
			StartedBy            string                   `json:"startedBy"`
			TargetImageReference *resource.ImageReference `json:"targetImageReference,omitempty"`
			RollbackInfo         map[string]int           `json:"rollbackInfo"`
		}
		p := props{RunningStatus: runningStatus{Code: h.Status, StartTime: rfc3339(h.StartTime), EndTime: rfc3339(h.EndTime)},
			Progress: progressOf(&h, recs), StartedBy: "User", TargetImageReference: h.Target,
			RollbackInfo: map[string]int{"successfullyRolledbackInstanceCount": 0, "failedRolledbackInstanceCount": 0}}
		if h.Error != "" {
			p.Error = &apiError{Code: "RollingUpgradeFaulted", Message: h.Error}
		}
		items = append(items, map[string]any{"properties": p, "type": "Microsoft.Compute/virtualMachineScaleSets/rollingUpgrades", "location": v.Location})
	}
	return r.Page(items)
}

// orchestrationStateBody is OrchestrationServiceStateInput.
type orchestrationStateBody struct {
	ServiceName string `json:"serviceName"`
	Action      string `json:"action"`
}

// setOrchestrationServiceState serves POST {vmss}/setOrchestrationServiceState
// {serviceName: AutomaticRepairs|AutomaticZoneRebalancing, action:
// Suspend|Resume}. AutomaticRepairs must be enabled
// (automaticRepairsPolicy.enabled), else 409 as in Azure; while suspended
// the controller repairs nothing, and the instance view's
// orchestrationServices says Suspended.
func (s *server) setOrchestrationServiceState(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	var body orchestrationStateBody
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	service, err := canonical("serviceName", body.ServiceName, resource.ServiceAutomaticRepairs, resource.ServiceAutomaticZoneRebalancing)
	if err != nil {
		return nil, err
	}
	action, err := canonical("action", body.Action, "Suspend", "Resume")
	if err != nil {
		return nil, err
	}
	defer s.LockWrites()()
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	if service == resource.ServiceAutomaticRepairs && !repairsEnabled(v) {
		return nil, resource.Conflict("OperationNotAllowed",
			"The orchestration service '%s' is not enabled on Virtual Machine Scale Set '%s': enable automaticRepairsPolicy first.", service, v.Name)
	}
	st, rev, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	st.Suspended = slices.DeleteFunc(st.Suspended, func(x string) bool { return strings.EqualFold(x, service) })
	if action == "Suspend" {
		st.Suspended = append(st.Suspended, service)
	}
	return s.commitStateAction(ctx, r, v, id, st, rev)
}

func repairsEnabled(v *resource.VirtualMachineScaleSet) bool {
	p := v.Properties.AutomaticRepairsPolicy
	return p != nil && p.Enabled != nil && *p.Enabled
}

// canonical returns the allowed value equal to s case-insensitively, or a
// 400 InvalidParameter naming field.
func canonical(field, s string, allowed ...string) (string, error) {
	for _, a := range allowed {
		if strings.EqualFold(a, s) {
			return a, nil
		}
	}
	e := resource.BadRequest("InvalidParameter", "The value '%s' of parameter '%s' is not valid; allowed values: %s.", s, field, strings.Join(allowed, ", "))
	e.Target = field
	return "", e
}

// scaleOutBody is VMScaleSetScaleOutInput.
type scaleOutBody struct {
	Capacity   *int64 `json:"capacity"`
	Properties *struct {
		Zone string `json:"zone"`
	} `json:"properties"`
}

// scaleOut serves POST {vmss}/scaleOut {capacity}: the scale set grows to
// capacity (it must not be below the current one: 400 InvalidParameter),
// through the model's pipeline (validation, the controller's new instances).
func (s *server) scaleOut(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	var body scaleOutBody
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	if body.Capacity == nil {
		e := resource.BadRequest("InvalidParameter", "The parameter 'capacity' is required.")
		e.Target = "capacity"
		return nil, e
	}
	k := s.Kind(resource.VirtualMachineScaleSetType)
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: id, Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.ResourceNotFoundError(id)
		}
		v := old.(*resource.VirtualMachineScaleSet)
		if *body.Capacity < v.Capacity() {
			e := resource.BadRequest("InvalidParameter", "Scale out needs a capacity of at least the current %d; got %d.", v.Capacity(), *body.Capacity)
			e.Target = "capacity"
			return nil, e
		}
		if v.SKU == nil {
			v.SKU = &resource.VMSSSku{}
		}
		c := *body.Capacity
		v.SKU.Capacity = &c
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	return r.Accepted(res.Op), nil
}

// convergedAction serves POST {vmss}/reapply and /performMaintenance:
// nimbus's instances always run the platform's current state and have no
// pending maintenance, so the operation completes once the scale set has
// converged.
func (s *server) convergedAction(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	if _, _, err := parseInstanceIDs(r, false); err != nil {
		return nil, err
	}
	defer s.LockWrites()()
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	op, opRec, err := s.stageActionOp(v, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store().Txn(ctx, []store.Op{opRec}); err != nil {
		return nil, err
	}
	s.finishWhenConverged(ctx, op, v.ID)
	return r.Accepted(op), nil
}

// listScaleSetSkus serves GET {vmss}/skus: the sizes the scale set can
// have (VirtualMachineScaleSetSku), capacity 0–1,000.
func (s *server) listScaleSetSkus(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	rd := arm.StoreReader{Store: s.Store()}
	if _, _, err := s.loadScaleSet(ctx, rd, instScaleSetID(r)); err != nil {
		return nil, err
	}
	items := []any{}
	for _, sz := range vmSizes {
		items = append(items, map[string]any{
			"resourceType": resource.VirtualMachineScaleSetType,
			"sku":          map[string]any{"name": sz.name, "tier": "Standard"},
			"capacity":     map[string]any{"minimum": 0, "maximum": 1000, "defaultCapacity": 1, "scaleType": "Automatic"},
		})
	}
	return r.Page(items)
}

// convertToSinglePlacementGroup serves POST {vmss}/convertToSinglePlacementGroup
// {activePlacementGroupId}: as in Azure it sets singlePlacementGroup to
// false (nimbus has one placement group; the id is accepted as given) and
// answers 200 with no body once the model is written.
func (s *server) convertToSinglePlacementGroup(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	var body struct {
		ActivePlacementGroupID string `json:"activePlacementGroupId"`
	}
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	k := s.Kind(resource.VirtualMachineScaleSetType)
	_, err := s.Apply(ctx, arm.Write{Kind: k, ID: id, Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.ResourceNotFoundError(id)
		}
		v := old.(*resource.VirtualMachineScaleSet)
		f := false
		v.Properties.SinglePlacementGroup = &f
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	return arm.NoContent(http.StatusOK), nil
}
