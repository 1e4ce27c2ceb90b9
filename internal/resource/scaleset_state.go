package resource

import (
	"encoding/json"
	"strings"
	"time"
)

// ScaleSetStatePrefix starts the store keys of the scale sets' service
// state (ScaleSetState): /vmssstate<lower-case scale set ID>. The compute
// provider writes it (setOrchestrationServiceState, rolling upgrades) and
// deletes it with the scale set; the scale-set controller reads it.
const ScaleSetStatePrefix = "/vmssstate"

// ScaleSetStateKey returns the store key of the scale set vmssID's state.
func ScaleSetStateKey(vmssID string) string {
	return ScaleSetStatePrefix + strings.ToLower(canonical(vmssID))
}

// Orchestration service names and states (setOrchestrationServiceState).
const (
	ServiceAutomaticRepairs         = "AutomaticRepairs"
	ServiceAutomaticZoneRebalancing = "AutomaticZoneRebalancing"
	ServiceRunning                  = "Running"
	ServiceSuspended                = "Suspended"
	ServiceNotRunning               = "NotRunning"
)

// Rolling upgrade running states (RollingUpgradeRunningStatus.code).
const (
	RollingForward   = "RollingForward"
	RollingCancelled = "Cancelled"
	RollingCompleted = "Completed"
	RollingFaulted   = "Faulted"
)

// ScaleSetState is what nimbus keeps about a scale set beside its model:
// the orchestration services a user suspended and its rolling upgrades.
// The zero value: nothing suspended, no rolling upgrade ever.
type ScaleSetState struct {
	// Suspended lists the orchestration services suspended by
	// setOrchestrationServiceState (ServiceAutomaticRepairs, ...).
	Suspended []string `json:"suspended,omitempty"`
	// Latest is the last rolling upgrade (OS or extension); nil when none
	// was ever started.
	Latest *RollingUpgrade `json:"latest,omitempty"`
	// OSHistory lists the OS rolling upgrades, newest first (at most 20).
	OSHistory []RollingUpgrade `json:"osHistory,omitempty"`
}

// RollingUpgrade is one rolling upgrade (osRollingUpgrade or
// extensionRollingUpgrade).
type RollingUpgrade struct {
	// Kind is "OS" or "Extension".
	Kind string `json:"kind"`
	// Status is RollingForward, Cancelled, Completed or Faulted.
	Status         string    `json:"status"`
	StartTime      time.Time `json:"startTime"`
	EndTime        time.Time `json:"endTime,omitempty"`
	LastAction     string    `json:"lastAction"`
	LastActionTime time.Time `json:"lastActionTime"`
	// Error is the failure of a Faulted upgrade.
	Error string `json:"error,omitempty"`
	// Target is the image the instances are upgraded to.
	Target *ImageReference `json:"target,omitempty"`
	// Instances are the ids of the instances the upgrade changes;
	// Failed those that ended failed.
	Instances []string `json:"instances,omitempty"`
	Failed    []string `json:"failed,omitempty"`
	// Policy is the rolling upgrade policy the upgrade runs with.
	Policy *RollingPolicy `json:"policy,omitempty"`
}

// IsSuspended reports whether service is suspended.
func (s *ScaleSetState) IsSuspended(service string) bool {
	if s == nil {
		return false
	}
	for _, x := range s.Suspended {
		if strings.EqualFold(x, service) {
			return true
		}
	}
	return false
}

// DecodeScaleSetState decodes a stored ScaleSetState.
func DecodeScaleSetState(b []byte) (*ScaleSetState, error) {
	var s ScaleSetState
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, err
	}
	return &s, nil
}
