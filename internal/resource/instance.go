package resource

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"
)

// InstancePrefix starts the store keys of scale-set instance records:
//
//	/inst<lower-case scale set ID>/<instanceId>   one Instance per instance
//	/inst<lower-case scale set ID>                the scale set's InstanceCounter
//
// Instance records are written only by the scale-set controller (and the
// instance API's actions, which set desired state on them); they are not
// under ResourcePrefix because a scale set's key is its own top-level key.
const InstancePrefix = "/inst"

// InstanceType is the ARM type of a Uniform scale-set instance.
const InstanceType = "Microsoft.Compute/virtualMachineScaleSets/virtualMachines"

// InstancesPrefix returns the prefix of every instance record of the scale
// set vmssID (with a trailing slash).
func InstancesPrefix(vmssID string) string {
	return InstancePrefix + strings.ToLower(canonical(vmssID)) + "/"
}

// InstanceKey returns the store key of one instance record.
func InstanceKey(vmssID, instanceID string) string {
	return InstancesPrefix(vmssID) + instanceID
}

// InstanceCounterKey returns the key of the scale set's InstanceCounter.
func InstanceCounterKey(vmssID string) string {
	return InstancePrefix + strings.ToLower(canonical(vmssID))
}

// InstanceCounter hands out instance ids: Azure never reuses the id of a
// deleted instance in a scale set.
type InstanceCounter struct {
	Next int `json:"next"`
}

// Power states an instance can be asked to be in, and reports.
const (
	PowerRunning     = "running"
	PowerStopped     = "stopped"
	PowerDeallocated = "deallocated"
	PowerStarting    = "starting"
	PowerStopping    = "stopping"
)

// Instance is the controller's record of one scale-set instance. The API
// renders it as a VirtualMachineScaleSetVM.
type Instance struct {
	ScaleSetID   string    `json:"scaleSetId"`
	InstanceID   string    `json:"instanceId"`
	Name         string    `json:"name"`
	ComputerName string    `json:"computerName"`
	VMID         string    `json:"vmId"`
	Location     string    `json:"location,omitempty"`
	Zone         string    `json:"zone,omitempty"`
	Created      time.Time `json:"created"`

	// Model is the virtualMachineProfile this instance runs (the model as it
	// was when the instance was created or last upgraded). Pool and NAT pool
	// membership, the image and customData all come from it, never from the
	// scale set's current model. ModelHash is ProfileHash(Model).
	Model     *VMProfile `json:"model"`
	ModelHash string     `json:"modelHash"`

	// PrivateIP is the customer address from Subnet; ProviderIP where the
	// driver makes the instance reachable (see driver.Status).
	Subnet     string `json:"subnet"`
	PrivateIP  string `json:"privateIp"`
	ProviderIP string `json:"providerIp,omitempty"`
	// PublicIP is the instance-level public IP (publicIPAddressConfiguration),
	// "" when the model has none.
	PublicIP string `json:"publicIp,omitempty"`
	// NATPorts maps a lower-case NAT pool (or NAT rule v2) id to this
	// instance's frontend port.
	NATPorts map[string]uint16 `json:"natPorts,omitempty"`

	// Power is the desired power state (PowerRunning, PowerStopped,
	// PowerDeallocated); Actual what the driver reported last.
	Power  string `json:"power"`
	Actual string `json:"actual,omitempty"`
	// Generation counts restarts and reimages the API asked for; the
	// controller restarts the workload when it differs from Applied.
	Generation int64 `json:"generation"`
	Applied    int64 `json:"applied"`
	// Deleting marks an instance being removed (scale-in, delete instances).
	Deleting bool `json:"deleting,omitempty"`

	ProtectFromScaleIn         bool `json:"protectFromScaleIn,omitempty"`
	ProtectFromScaleSetActions bool `json:"protectFromScaleSetActions,omitempty"`

	// Workload is the image map entry and nimbus workload the instance's
	// image runs as, "linux (echo)"; Ports the extra ports the echo
	// workload serves for its load balancers ("tcp/443,udp/53"). The
	// controller sets both when it starts the workload; "" before.
	Workload string `json:"workload,omitempty"`
	Ports    string `json:"ports,omitempty"`

	ProvisioningState string `json:"provisioningState"`
	// Message explains the last failure (workload exit, start error).
	Message string `json:"message,omitempty"`
	// UnhealthySince is when the instance's health probe first reported it
	// down (zero when healthy); automatic repairs count the grace period from
	// the later of this and the last state change (RepairGraceFrom).
	UnhealthySince  time.Time `json:"unhealthySince,omitempty"`
	RepairGraceFrom time.Time `json:"repairGraceFrom,omitempty"`
	Repairs         int       `json:"repairs,omitempty"`
}

// ID returns the instance's ARM id.
func (in *Instance) ID() string {
	return in.ScaleSetID + "/virtualMachines/" + in.InstanceID
}

// PrimaryIPConfigID returns the id of the instance's primary NIC ipconfig,
// the backend id pools and NAT rules refer to:
// {vmss}/virtualMachines/{n}/networkInterfaces/{nic}/ipConfigurations/{ipc}.
func (in *Instance) PrimaryIPConfigID() string {
	nic, ipc := in.PrimaryNames()
	if nic == "" {
		return ""
	}
	return in.ID() + "/networkInterfaces/" + nic + "/ipConfigurations/" + ipc
}

// PrimaryNames returns the names of the primary NIC configuration and of its
// primary ipconfig in the instance's model ("" when the model has none).
func (in *Instance) PrimaryNames() (nic, ipc string) {
	n, c := PrimaryIPConfig(in.Model)
	if n == nil || c == nil {
		return "", ""
	}
	return n.Name, c.Name
}

// PrimaryIPConfig returns the primary NIC configuration and its primary
// ipconfig of a virtualMachineProfile (the first ones when none is marked
// primary), or nils.
func PrimaryIPConfig(p *VMProfile) (*NICConfig, *IPConfig) {
	if p == nil || p.NetworkProfile == nil || len(p.NetworkProfile.NetworkInterfaceConfigurations) == 0 {
		return nil, nil
	}
	nics := p.NetworkProfile.NetworkInterfaceConfigurations
	nic := &nics[0]
	for i := range nics {
		if nics[i].Properties.Primary != nil && *nics[i].Properties.Primary {
			nic = &nics[i]
			break
		}
	}
	ipcs := nic.Properties.IPConfigurations
	if len(ipcs) == 0 {
		return nic, nil
	}
	ipc := &ipcs[0]
	for i := range ipcs {
		if ipcs[i].Properties.Primary != nil && *ipcs[i].Properties.Primary {
			ipc = &ipcs[i]
			break
		}
	}
	return nic, ipc
}

// ProfileHash fingerprints a virtualMachineProfile: an instance runs the
// latest model exactly when its ModelHash equals the hash of the scale set's
// current profile. As in Azure, any change of the profile counts (capacity
// is not part of it).
func ProfileHash(p *VMProfile) string {
	b, _ := json.Marshal(p)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:8])
}

// DecodeInstance decodes a stored instance record.
func DecodeInstance(b []byte) (*Instance, error) {
	var in Instance
	if err := json.Unmarshal(b, &in); err != nil {
		return nil, err
	}
	return &in, nil
}

// SplitInstanceKey splits a key under InstancePrefix into the lower-case
// scale set id and the instance id; instanceID is "" for the scale set's
// InstanceCounter key. ok is false for keys that are neither.
func SplitInstanceKey(key string) (vmssID, instanceID string, ok bool) {
	rest, found := strings.CutPrefix(key, InstancePrefix)
	if !found {
		return "", "", false
	}
	const seg = "/virtualmachinescalesets/"
	i := strings.LastIndex(rest, seg)
	if i < 0 {
		return "", "", false
	}
	name, id, hasID := strings.Cut(rest[i+len(seg):], "/")
	if name == "" || (hasID && (id == "" || strings.Contains(id, "/"))) {
		return "", "", false
	}
	return rest[:i] + seg + name, id, true
}
