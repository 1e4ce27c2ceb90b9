package compute

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Instance actions set desired state on the scale-set controller's instance
// records (resource.Instance) with the records' revisions as expectations;
// the controller makes the workloads follow. Each answers as an LRO (202,
// Location + Azure-AsyncOperation) whose operation finishes when
// Runtime.WaitScaleSet returns, or at once without a runtime.
//
// Protection (azure-behavior.md §1.11): an instance with
// protectFromScaleSetActions is skipped by actions on the scale set that
// name all instances ("*" or no instanceIds) and refused (409
// OperationNotAllowed) when named explicitly; actions on the instance
// itself and deletes are never blocked.

// instAction is one instance action.
type instAction struct {
	// name is the action as Azure spells it in messages.
	name string
	// needIDs: instanceIds is required on the scale-set endpoint.
	needIDs bool
	// apply sets the desired state on a record of scale set v.
	apply func(in *resource.Instance, v *resource.VirtualMachineScaleSet) error
}

func setPower(p string) func(*resource.Instance, *resource.VirtualMachineScaleSet) error {
	return func(in *resource.Instance, _ *resource.VirtualMachineScaleSet) error {
		in.Power = p
		return nil
	}
}

// regenerate asks for a restart of the workload (restart, reimage,
// reimageall, redeploy), leaving the instance running.
func regenerate(in *resource.Instance, _ *resource.VirtualMachineScaleSet) error {
	in.Generation++
	in.Power = resource.PowerRunning
	return nil
}

var (
	actStart      = instAction{name: "start", apply: setPower(resource.PowerRunning)}
	actPowerOff   = instAction{name: "powerOff", apply: setPower(resource.PowerStopped)}
	actDeallocate = instAction{name: "deallocate", apply: setPower(resource.PowerDeallocated)}
	actRestart    = instAction{name: "restart", apply: regenerate}
	actReimage    = instAction{name: "reimage", apply: regenerate}
	actReimageAll = instAction{name: "reimageAll", apply: regenerate}
	actRedeploy   = instAction{name: "redeploy", apply: regenerate}
	actUpgrade    = instAction{name: "manualUpgrade", needIDs: true,
		apply: func(in *resource.Instance, v *resource.VirtualMachineScaleSet) error {
			return resource.ApplyModel(in, v.Properties.VirtualMachineProfile)
		}}
	actDelete = instAction{name: "delete", needIDs: true,
		apply: func(in *resource.Instance, _ *resource.VirtualMachineScaleSet) error {
			in.Deleting = true
			in.ProvisioningState = resource.Deleting
			return nil
		}}
)

// instActionAttempts bounds the retries of an action whose records changed
// under it.
const instActionAttempts = 8

func registerInstanceActions(s *server) {
	for _, a := range []instAction{actStart, actPowerOff, actDeallocate, actRestart, actReimage, actReimageAll, actRedeploy, actUpgrade} {
		s.Handle(http.MethodPost, instVMSSPath+"/"+a.name, Versions, s.scaleSetAction(a))
	}
	s.Handle(http.MethodPost, instVMSSPath+"/delete", Versions, s.deleteInstancesAction)
	for _, a := range []instAction{actStart, actPowerOff, actDeallocate, actRestart, actReimage, actReimageAll, actRedeploy} {
		s.Handle(http.MethodPost, instVMPath+"/"+a.name, Versions, s.instanceAction(a))
	}
	s.Handle(http.MethodDelete, instVMPath, Versions, s.deleteInstance)
	s.Handle(http.MethodPut, instVMPath, Versions, s.putInstance)
}

// instanceIDsBody is VirtualMachineScaleSetVMInstanceIDs (and the
// instanceIds of the reimage parameters).
type instanceIDsBody struct {
	InstanceIDs []string `json:"instanceIds"`
}

// parseInstanceIDs reads the action body: all is true for "*" anywhere or
// (when not required) no ids at all.
func parseInstanceIDs(r *arm.Request, required bool) (ids []string, all bool, err error) {
	var b instanceIDsBody
	if len(bytes.TrimSpace(r.Body)) > 0 {
		if err := r.Decode(&b); err != nil {
			return nil, false, err
		}
	}
	seen := map[string]bool{}
	for _, id := range b.InstanceIDs {
		id = strings.TrimSpace(id)
		if id == "*" {
			return nil, true, nil
		}
		if id == "" || seen[id] {
			continue
		}
		seen[id] = true
		ids = append(ids, id)
	}
	if len(ids) == 0 {
		if required {
			e := resource.InvalidParameter("instanceIds", "The value of parameter instanceIds is invalid: at least one instance id (or \"*\") is required.")
			return nil, false, e
		}
		return nil, true, nil
	}
	return ids, false, nil
}

// selectTargets picks the records an action on the scale set applies to.
// Unknown (or deleting) ids are a 400 naming them; explicitly named
// instances protected from scale-set actions are a 409 unless the action
// is a delete; with all, protected ones are skipped.
func selectTargets(v *resource.VirtualMachineScaleSet, recs []instRecord, ids []string, all bool, a instAction) ([]instRecord, error) {
	isDelete := a.name == actDelete.name
	byID := map[string]instRecord{}
	for _, rec := range recs {
		byID[strings.ToLower(rec.in.InstanceID)] = rec
	}
	var out []instRecord
	if all {
		for _, rec := range recs {
			if rec.in.Deleting || (!isDelete && rec.in.ProtectFromScaleSetActions) {
				continue
			}
			out = append(out, rec)
		}
		return out, nil
	}
	var unknown, protected []string
	for _, id := range ids {
		rec, ok := byID[strings.ToLower(id)]
		switch {
		case ok && rec.in.Deleting && isDelete:
			continue // already being deleted: nothing to do
		case !ok || rec.in.Deleting:
			unknown = append(unknown, id)
		case !isDelete && rec.in.ProtectFromScaleSetActions:
			protected = append(protected, id)
		default:
			out = append(out, rec)
		}
	}
	if len(unknown) == 1 {
		return nil, resource.InvalidParameter("instanceIds",
			"The provided instanceId %s is not an active Virtual Machine Scale Set VM instanceId.", unknown[0])
	}
	if len(unknown) > 1 {
		return nil, resource.InvalidParameter("instanceIds",
			"The provided instanceIds %s are not active Virtual Machine Scale Set VM instanceIds.", strings.Join(unknown, ", "))
	}
	if len(protected) > 0 {
		return nil, resource.Conflict("OperationNotAllowed",
			"The operation '%s' cannot be performed on instances %s of Virtual Machine Scale Set '%s' because they are protected from scale set actions (protectionPolicy.protectFromScaleSetActions).",
			a.name, strings.Join(protected, ", "), v.Name)
	}
	return out, nil
}

// stageActionOp returns the operation of an action and its InProgress
// record, committed with the records it changes.
func (s *server) stageActionOp(v *resource.VirtualMachineScaleSet, id resource.ID) (arm.Op, store.Op, error) {
	op := arm.NewOp(id, v.Location)
	rec := arm.OpRecord{Op: op, ResourceID: v.ID, Status: arm.StatusInProgress, StartTime: s.Now().UTC(), InProcess: true}
	b, err := json.Marshal(rec)
	if err != nil {
		return arm.Op{}, store.Op{}, fmt.Errorf("arm: encode operation: %w", err)
	}
	return op, store.Op{Key: arm.OpKey(op.ID), Value: b, Expected: store.MustNotExist}, nil
}

// finishWhenConverged finishes op once the scale set vmssID has converged
// (Runtime.WaitScaleSet), or at once without a runtime.
func (s *server) finishWhenConverged(ctx context.Context, op arm.Op, vmssID string) {
	rt := s.Runtime()
	s.Ops.Go(ctx, op, func(ctx context.Context) (any, error) {
		if rt == nil {
			return nil, nil
		}
		return nil, rt.WaitScaleSet(ctx, vmssID)
	})
}

// applyToRecords applies a to recs (copies) and commits them together with
// the operation record; a conflict is returned as is for the caller to retry.
func (s *server) applyToRecords(ctx context.Context, v *resource.VirtualMachineScaleSet, id resource.ID, recs []instRecord, a instAction) (arm.Op, error) {
	op, opRec, err := s.stageActionOp(v, id)
	if err != nil {
		return arm.Op{}, err
	}
	ops := []store.Op{opRec}
	for _, rec := range recs {
		if err := a.apply(rec.in, v); err != nil {
			return arm.Op{}, err
		}
		b, err := json.Marshal(rec.in)
		if err != nil {
			return arm.Op{}, fmt.Errorf("arm: encode instance: %w", err)
		}
		ops = append(ops, store.Op{Key: rec.key, Value: b, Expected: rec.rev})
	}
	if _, err := s.Store().Txn(ctx, ops); err != nil {
		return arm.Op{}, err
	}
	return op, nil
}

// isConflict reports whether err is a store revision conflict.
func isConflict(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce)
}

// scaleSetAction serves POST {vmss}/{action} with {"instanceIds": [...]}.
func (s *server) scaleSetAction(a instAction) arm.HandlerFunc {
	return func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		id := instScaleSetID(r)
		ids, all, err := parseInstanceIDs(r, a.needIDs)
		if err != nil {
			return nil, err
		}
		defer s.LockWrites()()
		for attempt := 0; ; attempt++ {
			rd := arm.StoreReader{Store: s.Store()}
			v, _, err := s.loadScaleSet(ctx, rd, id)
			if err != nil {
				return nil, err
			}
			recs, err := loadInstances(ctx, rd, v.ID)
			if err != nil {
				return nil, err
			}
			targets, err := selectTargets(v, recs, ids, all, a)
			if err != nil {
				return nil, err
			}
			op, err := s.applyToRecords(ctx, v, id, targets, a)
			if isConflict(err) && attempt < instActionAttempts {
				continue
			}
			if err != nil {
				return nil, err
			}
			s.finishWhenConverged(ctx, op, v.ID)
			return r.Accepted(op), nil
		}
	}
}

// instanceAction serves POST {vmss}/virtualMachines/{n}/{action}: a user
// action on one instance, never blocked by protection.
func (s *server) instanceAction(a instAction) arm.HandlerFunc {
	return func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		defer s.LockWrites()()
		for attempt := 0; ; attempt++ {
			v, rec, err := s.loadInstance(ctx, r)
			if err != nil {
				return nil, err
			}
			if rec.in.Deleting {
				return nil, resource.Conflict("OperationNotAllowed",
					"The operation '%s' is not allowed on instance %s of Virtual Machine Scale Set '%s' because it is being deleted.", a.name, rec.in.InstanceID, v.Name)
			}
			op, err := s.applyToRecords(ctx, v, instScaleSetID(r), []instRecord{rec}, a)
			if isConflict(err) && attempt < instActionAttempts {
				continue
			}
			if err != nil {
				return nil, err
			}
			s.finishWhenConverged(ctx, op, v.ID)
			return r.Accepted(op), nil
		}
	}
}

// deleteInstancesAction serves POST {vmss}/delete ("delete instances";
// ?forceDeletion= is accepted and has no further effect).
func (s *server) deleteInstancesAction(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	ids, all, err := parseInstanceIDs(r, true)
	if err != nil {
		return nil, err
	}
	op, err := s.deleteInstances(ctx, instScaleSetID(r), ids, all)
	if err != nil {
		return nil, err
	}
	return r.Accepted(op), nil
}

// deleteInstance serves DELETE {vmss}/virtualMachines/{n}: 204 when the
// instance does not exist (404 when the scale set does not).
func (s *server) deleteInstance(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	v, _, err := s.loadScaleSet(ctx, arm.StoreReader{Store: s.Store()}, id)
	if err != nil {
		return nil, err
	}
	if _, err := s.Store().Get(ctx, resource.InstanceKey(v.ID, r.Param("instanceId"))); arm.IsNotFound(err) {
		return arm.NoContent(http.StatusNoContent), nil
	}
	op, err := s.deleteInstances(ctx, id, []string{r.Param("instanceId")}, false)
	var re *resource.Error
	if errors.As(err, &re) && re.Code == "InvalidParameter" {
		return arm.NoContent(http.StatusNoContent), nil // deleted meanwhile
	}
	if err != nil {
		return nil, err
	}
	return r.Accepted(op), nil
}

// deleteInstances marks the chosen instances Deleting and lowers the scale
// set's sku.capacity by their number, in one write of the scale set
// through Apply (the records are staged with their revisions), as Azure
// does: the instances go and are not replaced. The operation finishes when
// the scale set converged.
func (s *server) deleteInstances(ctx context.Context, id resource.ID, ids []string, all bool) (arm.Op, error) {
	k := s.Kind(resource.VirtualMachineScaleSetType)
	if k == nil {
		return arm.Op{}, errors.New("arm: scale sets are not served")
	}
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: id, Build: func(ctx context.Context, tx *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.ResourceNotFoundError(id)
		}
		v := old.(*resource.VirtualMachineScaleSet)
		recs, err := loadInstances(ctx, tx, v.ID)
		if err != nil {
			return nil, err
		}
		targets, err := selectTargets(v, recs, ids, all, actDelete)
		if err != nil {
			return nil, err
		}
		for _, rec := range targets {
			if err := actDelete.apply(rec.in, v); err != nil {
				return nil, err
			}
			if err := tx.PutJSON(rec.key, rec.in, rec.rev); err != nil {
				return nil, err
			}
		}
		if len(targets) > 0 {
			c := max(v.Capacity()-int64(len(targets)), 0)
			if v.SKU == nil {
				v.SKU = &resource.VMSSSku{}
			}
			v.SKU.Capacity = &c
		}
		return v, nil
	}})
	if err != nil {
		return arm.Op{}, err
	}
	return res.Op, nil
}

// instanceUpdate is the part of a VirtualMachineScaleSetVM PUT body nimbus
// applies: the protection policy. Other properties are the model's and are
// ignored, as their changes would be in Azure without a model update.
type instanceUpdate struct {
	Properties struct {
		ProtectionPolicy *struct {
			ProtectFromScaleIn         *bool `json:"protectFromScaleIn"`
			ProtectFromScaleSetActions *bool `json:"protectFromScaleSetActions"`
		} `json:"protectionPolicy"`
	} `json:"properties"`
}

// putInstance serves PUT {vmss}/virtualMachines/{n}: it sets the instance's
// protectionPolicy (protectFromScaleSetActions implies protectFromScaleIn)
// and answers 200 with the instance and a finished operation. If-Match and
// If-None-Match are checked against the instance's etag (412).
func (s *server) putInstance(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	var body instanceUpdate
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	defer s.LockWrites()()
	for attempt := 0; ; attempt++ {
		v, rec, err := s.loadInstance(ctx, r)
		if err != nil {
			return nil, err
		}
		if rec.in.Deleting {
			return nil, resource.Conflict("OperationNotAllowed",
				"Instance %s of Virtual Machine Scale Set '%s' is being deleted and cannot be updated.", rec.in.InstanceID, v.Name)
		}
		if err := arm.CheckPreconditions(r.HTTP.Header.Get("If-Match"), r.HTTP.Header.Get("If-None-Match"), true, vmEtag(rec.rev)); err != nil {
			return nil, err
		}
		if pp := body.Properties.ProtectionPolicy; pp != nil {
			actions := pp.ProtectFromScaleSetActions != nil && *pp.ProtectFromScaleSetActions
			rec.in.ProtectFromScaleSetActions = actions
			rec.in.ProtectFromScaleIn = actions || (pp.ProtectFromScaleIn != nil && *pp.ProtectFromScaleIn)
		}
		op, opRec, err := s.stageActionOp(v, instScaleSetID(r))
		if err != nil {
			return nil, err
		}
		var done arm.OpRecord
		if err := json.Unmarshal(opRec.Value, &done); err != nil {
			return nil, fmt.Errorf("arm: operation record: %w", err)
		}
		done.InProcess = false
		arm.FinishRecord(&done, s.Now(), nil, nil)
		if opRec.Value, err = json.Marshal(done); err != nil {
			return nil, fmt.Errorf("arm: encode operation: %w", err)
		}
		b, err := json.Marshal(rec.in)
		if err != nil {
			return nil, fmt.Errorf("arm: encode instance: %w", err)
		}
		rev, err := s.Store().Txn(ctx, []store.Op{opRec, {Key: rec.key, Value: b, Expected: rec.rev}})
		if isConflict(err) && attempt < instActionAttempts {
			continue
		}
		if err != nil {
			return nil, err
		}
		rec.rev = rev
		return r.Async(http.StatusOK, s.renderVM(v, rec, false, false, ""), op), nil
	}
}
