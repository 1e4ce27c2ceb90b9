package compute

// Uniform scale-set instances (Microsoft.Compute/virtualMachineScaleSets/
// virtualMachines): read views of the scale-set controller's instance
// records (resource.Instance), the scale set's aggregate instance view, the
// instances' NICs and public IPs, and the instance actions.
//
// The instance view carries, besides Azure's statuses, nimbus's address
// mapping: each instance's customer address (privateIp, what the API
// reports) and the provider address the driver reaches it on (providerIp,
// a loopback address with the process driver, equal to privateIp with the
// netns driver). It appears twice so that every client can see it:
//
//   - as a status {"code": "NimbusAddressMapping/mapped",
//     "displayStatus": "10.0.0.4 -> 127.10.0.4",
//     "message": "privateIp=10.0.0.4 providerIp=127.10.0.4"} (code
//     "NimbusAddressMapping/pending" before the driver reported one), which
//     az and the SDKs keep, and
//   - as the extra property "nimbusAddressMapping": {"privateIp",
//     "providerIp", "publicIp"} of the instance view, for raw clients.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/rp/network"
	"nimbus/internal/store"
	"nimbus/internal/workload"
)

// instNetVersions are the api-versions of the network views nested under a
// scale set (NICs, ipconfigs, public IPs): the SDK sends 2018-10-01 there,
// az the compute profile's.
var instNetVersions = arm.NewVersions(append(append([]string(nil), network.Versions...), Versions...)...)

const (
	instVMSSPath = "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Compute/virtualMachineScaleSets/{name}"
	instVMPath   = instVMSSPath + "/virtualMachines/{instanceId}"
	instNICPath  = instVMPath + "/networkInterfaces/{nic}"
	instIPCPath  = instNICPath + "/ipConfigurations/{ipc}"
)

// registerInstance registers the routes of instance.go.
func registerInstance(s *server) {
	get := func(p string, vs arm.Versions, h arm.HandlerFunc) { s.Handle(http.MethodGet, p, vs, h) }
	get(instVMSSPath+"/virtualMachines", Versions, s.listInstances)
	get(instVMPath, Versions, s.getInstance)
	get(instVMPath+"/instanceView", Versions, s.getInstanceView)
	get(instVMSSPath+"/instanceView", Versions, s.getScaleSetInstanceView)
	get(instVMSSPath+"/networkInterfaces", instNetVersions, s.listScaleSetNICs)
	get(instVMPath+"/networkInterfaces", instNetVersions, s.listInstanceNICs)
	get(instNICPath, instNetVersions, s.getInstanceNIC)
	s.Handle(http.MethodPost, instNICPath+"/effectiveNetworkSecurityGroups", instNetVersions, s.effectiveNSGs)
	get(instNICPath+"/ipConfigurations", instNetVersions, s.listInstanceIPConfigs)
	get(instIPCPath, instNetVersions, s.getInstanceIPConfig)
	get(instVMSSPath+"/publicIPAddresses", instNetVersions, s.listScaleSetPublicIPs)
	get(instIPCPath+"/publicIPAddresses", instNetVersions, s.listInstancePublicIPs)
	get(instIPCPath+"/publicIPAddresses/{pip}", instNetVersions, s.getInstancePublicIP)
	registerInstanceActions(s)
}

// instScaleSetID returns the scale set id the request names.
func instScaleSetID(r *arm.Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), resource.VirtualMachineScaleSetType, r.Param("name"))
}

// instRecord is an instance record with its store revision.
type instRecord struct {
	in  *resource.Instance
	rev int64
	key string
}

// loadScaleSet reads a scale set model through rd: 404 ResourceNotFound
// when it is absent (ResourceGroupNotFound when its group is).
func (s *server) loadScaleSet(ctx context.Context, rd arm.Reader, id resource.ID) (*resource.VirtualMachineScaleSet, store.KV, error) {
	kv, err := rd.Get(ctx, resource.Key(id))
	if arm.IsNotFound(err) {
		if gerr := s.RequireGroup(ctx, rd, id.Subscription, id.ResourceGroup); gerr != nil {
			return nil, kv, gerr
		}
		return nil, kv, resource.ResourceNotFoundError(id)
	}
	if err != nil {
		return nil, kv, err
	}
	v, err := resource.DecodeScaleSet(kv.Value)
	if err != nil {
		return nil, kv, fmt.Errorf("arm: decode scale set %s: %w", id, err)
	}
	return v, kv, nil
}

// loadInstances returns the scale set's instance records in numeric
// instance-id order.
func loadInstances(ctx context.Context, rd arm.Reader, vmssID string) ([]instRecord, error) {
	kvs, err := rd.List(ctx, resource.InstancesPrefix(vmssID))
	if err != nil {
		return nil, fmt.Errorf("arm: instances of %s: %w", vmssID, err)
	}
	out := make([]instRecord, 0, len(kvs))
	for _, kv := range kvs {
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			return nil, fmt.Errorf("arm: decode instance %s: %w", kv.Key, err)
		}
		out = append(out, instRecord{in: in, rev: kv.Revision, key: kv.Key})
	}
	sort.Slice(out, func(i, j int) bool { return lessInstance(out[i].in.InstanceID, out[j].in.InstanceID) })
	return out, nil
}

// lessInstance orders instance ids numerically when both are numbers.
func lessInstance(a, b string) bool {
	ai, aerr := strconv.Atoi(a)
	bi, berr := strconv.Atoi(b)
	if aerr == nil && berr == nil {
		return ai < bi
	}
	return a < b
}

// instNotFound is the 404 for a missing instance of a scale set.
func instNotFound(v *resource.VirtualMachineScaleSet, id resource.ID, instanceID string) error {
	return resource.NotFound("ResourceNotFound",
		"The Resource 'Microsoft.Compute/virtualMachineScaleSets/%s/virtualMachines/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		v.Name, instanceID, id.ResourceGroup)
}

// loadInstance reads the scale set and one of its instances (404 when
// either is missing).
func (s *server) loadInstance(ctx context.Context, r *arm.Request) (*resource.VirtualMachineScaleSet, instRecord, error) {
	id := instScaleSetID(r)
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, instRecord{}, err
	}
	n := r.Param("instanceId")
	kv, err := rd.Get(ctx, resource.InstanceKey(v.ID, n))
	if arm.IsNotFound(err) {
		return nil, instRecord{}, instNotFound(v, id, n)
	}
	if err != nil {
		return nil, instRecord{}, err
	}
	in, err := resource.DecodeInstance(kv.Value)
	if err != nil {
		return nil, instRecord{}, fmt.Errorf("arm: decode instance %s: %w", kv.Key, err)
	}
	return v, instRecord{in: in, rev: kv.Revision, key: kv.Key}, nil
}

// vmssVM is the wire shape of a VirtualMachineScaleSetVM.
type vmssVM struct {
	ID         string            `json:"id"`
	Name       string            `json:"name"`
	Type       string            `json:"type"`
	InstanceID string            `json:"instanceId"`
	Location   string            `json:"location"`
	Tags       map[string]string `json:"tags,omitempty"`
	SKU        *resource.VMSSSku `json:"sku,omitempty"`
	Zones      []string          `json:"zones,omitempty"`
	Etag       string            `json:"etag"`
	Properties vmssVMProps       `json:"properties"`
}

type vmssVMProps struct {
	LatestModelApplied          bool                `json:"latestModelApplied"`
	ModelDefinitionApplied      string              `json:"modelDefinitionApplied"`
	VMID                        string              `json:"vmId"`
	ProvisioningState           string              `json:"provisioningState"`
	TimeCreated                 string              `json:"timeCreated,omitempty"`
	HardwareProfile             vmHardware          `json:"hardwareProfile"`
	DiagnosticsProfile          json.RawMessage     `json:"diagnosticsProfile,omitempty"`
	OSProfile                   *vmOSProfile        `json:"osProfile,omitempty"`
	StorageProfile              *vmStorage          `json:"storageProfile,omitempty"`
	NetworkProfile              vmNetworkProfile    `json:"networkProfile"`
	NetworkProfileConfiguration *vmNetworkConfig    `json:"networkProfileConfiguration,omitempty"`
	ProtectionPolicy            vmProtection        `json:"protectionPolicy"`
	UserData                    string              `json:"userData,omitempty"`
	InstanceView                *vmssVMInstanceView `json:"instanceView,omitempty"`
}

type vmHardware struct {
	VMSize string `json:"vmSize,omitempty"`
}

type vmOSProfile struct {
	ComputerName                string          `json:"computerName"`
	AdminUsername               string          `json:"adminUsername,omitempty"`
	AllowExtensionOperations    bool            `json:"allowExtensionOperations"`
	RequireGuestProvisionSignal bool            `json:"requireGuestProvisionSignal"`
	LinuxConfiguration          json.RawMessage `json:"linuxConfiguration,omitempty"`
	WindowsConfiguration        json.RawMessage `json:"windowsConfiguration,omitempty"`
	Secrets                     json.RawMessage `json:"secrets,omitempty"`
}

type vmStorage struct {
	ImageReference *resource.ImageReference `json:"imageReference,omitempty"`
	OSDisk         json.RawMessage          `json:"osDisk,omitempty"`
	DataDisks      json.RawMessage          `json:"dataDisks,omitempty"`
}

type vmNetworkProfile struct {
	NetworkInterfaces []vmNICRef `json:"networkInterfaces"`
}

type vmNICRef struct {
	ID         string `json:"id"`
	Properties struct {
		Primary bool `json:"primary"`
	} `json:"properties"`
}

type vmNetworkConfig struct {
	NetworkInterfaceConfigurations []resource.NICConfig `json:"networkInterfaceConfigurations"`
}

type vmProtection struct {
	ProtectFromScaleIn         bool `json:"protectFromScaleIn"`
	ProtectFromScaleSetActions bool `json:"protectFromScaleSetActions"`
}

// vmStatus is an InstanceViewStatus.
type vmStatus struct {
	Code          string     `json:"code"`
	Level         string     `json:"level"`
	DisplayStatus string     `json:"displayStatus,omitempty"`
	Message       string     `json:"message,omitempty"`
	Time          *time.Time `json:"time,omitempty"`
}

// vmssVMInstanceView is a VirtualMachineScaleSetVMInstanceView plus
// nimbus's address mapping.
type vmssVMInstanceView struct {
	PlatformUpdateDomain int32          `json:"platformUpdateDomain"`
	PlatformFaultDomain  int32          `json:"platformFaultDomain"`
	ComputerName         string         `json:"computerName"`
	Statuses             []vmStatus     `json:"statuses"`
	VMHealth             *vmHealth      `json:"vmHealth,omitempty"`
	Extensions           []vmExtView    `json:"extensions,omitempty"`
	AddressMapping       addressMapping `json:"nimbusAddressMapping"`
	Workload             *workloadView  `json:"nimbusWorkload,omitempty"`
}

// vmExtView is a VirtualMachineExtensionInstanceView.
type vmExtView struct {
	Name               string     `json:"name"`
	Type               string     `json:"type,omitempty"`
	TypeHandlerVersion string     `json:"typeHandlerVersion,omitempty"`
	Statuses           []vmStatus `json:"statuses"`
}

// workloadView says what the instance's image became: the image as the
// model names it, the image map entry, the nimbus workload, the extra ports
// it serves and whether customData and extensions run.
type workloadView struct {
	Image    string `json:"image"`
	OS       string `json:"osType"`
	MapEntry string `json:"mapEntry"`
	Workload string `json:"workload"`
	Ports    string `json:"ports,omitempty"`
	// RunsCustomData and RunsExtensions: whether customData and the
	// extensions run in the instance, or are only stored and reported.
	RunsCustomData bool `json:"runsCustomData"`
	RunsExtensions bool `json:"runsExtensions"`
}

type vmHealth struct {
	Status vmStatus `json:"status"`
}

type addressMapping struct {
	PrivateIP  string `json:"privateIp"`
	ProviderIP string `json:"providerIp"`
	PublicIP   string `json:"publicIp,omitempty"`
}

// vmEtag derives an instance's etag from its record's revision.
func vmEtag(rev int64) string { return `"` + strconv.FormatInt(rev, 10) + `"` }

// renderVM renders an instance record of scale set v as Azure's
// VirtualMachineScaleSetVM; the instance view is included when view is
// true, userData when withUserData is. profileHash is
// resource.ProfileHash of v's current profile ("" computes it).
func (s *server) renderVM(v *resource.VirtualMachineScaleSet, rec instRecord, view, withUserData bool, profileHash string) *vmssVM {
	in := rec.in
	out := &vmssVM{
		ID: v.ID + "/virtualMachines/" + in.InstanceID, Name: v.Name + "_" + in.InstanceID,
		Type: resource.InstanceType, InstanceID: in.InstanceID, Location: in.Location, Tags: v.Tags, Etag: vmEtag(rec.rev),
	}
	if out.Location == "" {
		out.Location = v.Location
	}
	if v.SKU != nil {
		out.SKU = &resource.VMSSSku{Name: v.SKU.Name, Tier: v.SKU.Tier}
	}
	if in.Zone != "" {
		out.Zones = []string{in.Zone}
	}
	p := &out.Properties
	if profileHash == "" {
		profileHash = resource.ProfileHash(v.Properties.VirtualMachineProfile)
	}
	p.LatestModelApplied = in.ModelHash == profileHash
	p.ModelDefinitionApplied = "VirtualMachineScaleSet"
	p.VMID = in.VMID
	p.ProvisioningState = instProvisioningState(in)
	if !in.Created.IsZero() {
		p.TimeCreated = in.Created.UTC().Format(time.RFC3339Nano)
	}
	if v.SKU != nil {
		p.HardwareProfile.VMSize = v.SKU.Name
	}
	p.OSProfile = &vmOSProfile{ComputerName: in.ComputerName, AllowExtensionOperations: true, RequireGuestProvisionSignal: true}
	p.ProtectionPolicy = vmProtection{ProtectFromScaleIn: in.ProtectFromScaleIn || in.ProtectFromScaleSetActions,
		ProtectFromScaleSetActions: in.ProtectFromScaleSetActions}
	if m := in.Model; m != nil {
		if m.OSProfile != nil {
			p.OSProfile.AdminUsername = m.OSProfile.AdminUsername
			p.OSProfile.LinuxConfiguration = m.OSProfile.LinuxConfiguration
			p.OSProfile.WindowsConfiguration = m.OSProfile.WindowsConfiguration
			p.OSProfile.Secrets = m.OSProfile.Secrets
		}
		if m.StorageProfile != nil {
			p.StorageProfile = &vmStorage{ImageReference: m.StorageProfile.ImageReference,
				OSDisk: instOSDisk(v, in, m.StorageProfile.OSDisk), DataDisks: m.StorageProfile.DataDisks}
		}
		if m.NetworkProfile != nil {
			p.NetworkProfileConfiguration = &vmNetworkConfig{NetworkInterfaceConfigurations: m.NetworkProfile.NetworkInterfaceConfigurations}
			primary, _ := resource.PrimaryIPConfig(m)
			for i := range m.NetworkProfile.NetworkInterfaceConfigurations {
				nic := &m.NetworkProfile.NetworkInterfaceConfigurations[i]
				ref := vmNICRef{ID: out.ID + "/networkInterfaces/" + nic.Name}
				ref.Properties.Primary = nic == primary
				p.NetworkProfile.NetworkInterfaces = append(p.NetworkProfile.NetworkInterfaces, ref)
			}
		}
		p.DiagnosticsProfile = m.DiagnosticsProfile
		if withUserData {
			p.UserData = m.UserData
		}
	}
	if view {
		p.InstanceView = s.instanceView(v, in)
	}
	return out
}

// instOSDisk is the model's osDisk named as Azure names an instance's OS
// disk: {vmss}_{vmss}_{instanceId}_OsDisk_1_{vmId without dashes}.
func instOSDisk(v *resource.VirtualMachineScaleSet, in *resource.Instance, model json.RawMessage) json.RawMessage {
	var disk map[string]any
	if len(model) == 0 || json.Unmarshal(model, &disk) != nil || disk == nil {
		return model
	}
	disk["name"] = v.Name + "_" + v.Name + "_" + in.InstanceID + "_OsDisk_1_" + strings.ReplaceAll(in.VMID, "-", "")
	b, err := json.Marshal(disk)
	if err != nil {
		return model
	}
	return b
}

// instProvisioningState is the provisioningState an instance reports:
// Updating while a restart or reimage is pending.
func instProvisioningState(in *resource.Instance) string {
	st := in.ProvisioningState
	if st == "" {
		st = resource.Creating
	}
	if st == resource.Succeeded && in.Generation != in.Applied {
		st = resource.Updating
	}
	if in.Deleting {
		st = resource.Deleting
	}
	return st
}

// powerState is the PowerState/... code suffix of an instance: what the
// driver reported, or the transition towards the desired state.
func powerState(in *resource.Instance) string {
	switch {
	case in.Power == resource.PowerRunning && in.Actual != resource.PowerRunning:
		return resource.PowerStarting
	case in.Power == resource.PowerStopped && in.Actual == resource.PowerRunning:
		return resource.PowerStopping
	case in.Power == resource.PowerDeallocated && in.Actual == resource.PowerRunning:
		return "deallocating"
	case in.Actual != "":
		return in.Actual
	}
	return in.Power
}

var powerDisplay = map[string]string{
	resource.PowerRunning: "VM running", resource.PowerStopped: "VM stopped", resource.PowerDeallocated: "VM deallocated",
	resource.PowerStarting: "VM starting", resource.PowerStopping: "VM stopping", "deallocating": "VM deallocating",
}

// healthState is an instance's HealthState/... suffix and reason from the
// scale set's health probe (unknown without probe, runtime or answer, and
// for instances that are not running).
func (s *server) healthState(v *resource.VirtualMachineScaleSet, in *resource.Instance) (state, reason string, probed bool) {
	np := v.NetworkProfile()
	if np == nil || np.HealthProbe == nil || np.HealthProbe.ID == "" {
		return "unknown", "", false
	}
	rt := s.Runtime()
	if rt == nil || in.Power != resource.PowerRunning || in.Deleting || in.PrimaryIPConfigID() == "" {
		return "unknown", "", true
	}
	up, known, reason := rt.BackendHealth(np.HealthProbe.ID, in.PrimaryIPConfigID())
	switch {
	case !known:
		return "unknown", reason, true
	case up:
		return "healthy", reason, true
	}
	return "unhealthy", reason, true
}

// instanceView builds an instance's VirtualMachineScaleSetVMInstanceView.
func (s *server) instanceView(v *resource.VirtualMachineScaleSet, in *resource.Instance) *vmssVMInstanceView {
	out := &vmssVMInstanceView{ComputerName: in.ComputerName}
	if n, err := strconv.Atoi(in.InstanceID); err == nil {
		out.PlatformFaultDomain, out.PlatformUpdateDomain = int32(n%5), int32(n%5)
	}
	prov := instProvisioningState(in)
	ps := vmStatus{Code: "ProvisioningState/" + strings.ToLower(prov), Level: "Info", DisplayStatus: "Provisioning " + strings.ToLower(prov)}
	if prov == resource.Succeeded {
		t := in.Created.UTC()
		ps.Time = &t
	}
	if prov == resource.Failed {
		ps.Level, ps.Message = "Error", in.Message
		ps.DisplayStatus = "Provisioning failed"
	}
	pw := powerState(in)
	out.Statuses = append(out.Statuses, ps, vmStatus{Code: "PowerState/" + pw, Level: "Info", DisplayStatus: powerDisplay[pw]})
	if in.Message != "" && prov != resource.Failed {
		out.Statuses = append(out.Statuses, vmStatus{Code: "WorkloadState/exited", Level: "Warning", DisplayStatus: "Workload exited", Message: in.Message})
	}
	out.AddressMapping = addressMapping{PrivateIP: in.PrivateIP, ProviderIP: in.ProviderIP, PublicIP: in.PublicIP}
	am := vmStatus{Code: "NimbusAddressMapping/pending", Level: "Info", DisplayStatus: in.PrivateIP + " -> (not started)",
		Message: "privateIp=" + in.PrivateIP + " providerIp="}
	if in.ProviderIP != "" {
		am.Code = "NimbusAddressMapping/mapped"
		am.DisplayStatus = in.PrivateIP + " -> " + in.ProviderIP
		am.Message = "privateIp=" + in.PrivateIP + " providerIp=" + in.ProviderIP
	}
	out.Statuses = append(out.Statuses, am)
	s.workloadView(in, out)
	if state, reason, probed := s.healthState(v, in); probed {
		hs := vmStatus{Code: "HealthState/" + state, Level: "Info", Message: reason}
		switch state {
		case "healthy":
			hs.DisplayStatus = "The VM is reporting healthy"
		case "unhealthy":
			hs.DisplayStatus, hs.Level = "The VM is reporting unhealthy", "Warning"
		default:
			hs.DisplayStatus = "The VM health is unknown"
		}
		out.VMHealth = &vmHealth{Status: hs}
	}
	return out
}

// workloadView fills the instance view's nimbusWorkload, a
// NimbusWorkload/{kind} status and the extensions' statuses from the image
// map's entry for the instance's image.
func (s *server) workloadView(in *resource.Instance, out *vmssVMInstanceView) {
	ref := workload.ImageRefOf(in.Model)
	e, err := s.images.Map(ref)
	if err != nil {
		return
	}
	wv := &workloadView{Image: ref.String(), OS: ref.OS(), MapEntry: e.Name, Workload: string(e.Workload), Ports: in.Ports,
		RunsCustomData: e.RunsCustomData(), RunsExtensions: e.RunsExtensions()}
	out.Workload = wv
	msg := "image " + wv.Image + " runs as the nimbus " + wv.Workload + " workload (image map entry " + wv.MapEntry + ")"
	if wv.Ports != "" {
		msg += "; serves " + wv.Ports + " for its load balancers"
	}
	out.Statuses = append(out.Statuses, vmStatus{Code: "NimbusWorkload/" + wv.Workload, Level: "Info",
		DisplayStatus: "Runs as nimbus " + wv.Workload, Message: msg})
	var prof struct {
		Extensions []struct {
			Name       string `json:"name"`
			Properties struct {
				Publisher          string `json:"publisher"`
				Type               string `json:"type"`
				TypeHandlerVersion string `json:"typeHandlerVersion"`
			} `json:"properties"`
		} `json:"extensions"`
	}
	if in.Model == nil || json.Unmarshal(in.Model.ExtensionProfile, &prof) != nil {
		return
	}
	for _, x := range prof.Extensions {
		st := vmStatus{Code: "ProvisioningState/succeeded", Level: "Info", DisplayStatus: "Provisioning succeeded",
			Message: "Stored; not run: the image map entry " + e.Name + " keeps extensions (extensions: store)."}
		if e.RunsExtensions() {
			st.Message = "Run by nimbus after customData (image map entry " + e.Name + "): custom script commands run, other extensions have nothing to run."
		}
		out.Extensions = append(out.Extensions, vmExtView{Name: x.Name, Type: x.Properties.Publisher + "." + x.Properties.Type,
			TypeHandlerVersion: x.Properties.TypeHandlerVersion, Statuses: []vmStatus{st}})
	}
}

// expands reports whether the request's $expand lists what (case-insensitive).
func expands(r *arm.Request, what string) bool {
	for _, e := range strings.Split(r.Query("$expand"), ",") {
		if strings.EqualFold(strings.TrimSpace(e), what) {
			return true
		}
	}
	return false
}

// listInstances serves GET {vmss}/virtualMachines ($filter and $select are
// accepted and ignored; $expand=instanceView includes instance views).
func (s *server) listInstances(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	kvs, err := rd.List(ctx, resource.InstancesPrefix(v.ID))
	if err != nil {
		return nil, fmt.Errorf("arm: instances of %s: %w", v.ID, err)
	}
	idOf := func(kv store.KV) string { return kv.Key[strings.LastIndex(kv.Key, "/")+1:] }
	sort.Slice(kvs, func(i, j int) bool { return lessInstance(idOf(kvs[i]), idOf(kvs[j])) })
	view := expands(r, "instanceView") || strings.Contains(strings.ToLower(r.Query("$select")), "instanceview")
	hash := resource.ProfileHash(v.Properties.VirtualMachineProfile)
	items := make([]any, 0, len(kvs))
	for _, kv := range kvs {
		items = append(items, &lazyVM{s: s, v: v, kv: kv, view: view, hash: hash})
	}
	return r.Page(items)
}

// lazyVM is one listed instance, decoded and rendered only when its page
// is encoded: a page of a large scale set costs its own records only.
type lazyVM struct {
	s    *server
	v    *resource.VirtualMachineScaleSet
	kv   store.KV
	view bool
	hash string
}

// MarshalJSON implements json.Marshaler.
func (l *lazyVM) MarshalJSON() ([]byte, error) {
	in, err := resource.DecodeInstance(l.kv.Value)
	if err != nil {
		return nil, fmt.Errorf("arm: decode instance %s: %w", l.kv.Key, err)
	}
	return json.Marshal(arm.FillEmpty(l.s.renderVM(l.v, instRecord{in: in, rev: l.kv.Revision, key: l.kv.Key}, l.view, false, l.hash)))
}

// getInstance serves GET {vmss}/virtualMachines/{n} ($expand=instanceView|userData).
func (s *server) getInstance(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, rec, err := s.loadInstance(ctx, r)
	if err != nil {
		return nil, err
	}
	return arm.JSON(http.StatusOK, s.renderVM(v, rec, expands(r, "instanceView"), expands(r, "userData"), "")), nil
}

// getInstanceView serves GET {vmss}/virtualMachines/{n}/instanceView.
func (s *server) getInstanceView(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, rec, err := s.loadInstance(ctx, r)
	if err != nil {
		return nil, err
	}
	return arm.JSON(http.StatusOK, s.instanceView(v, rec.in)), nil
}

// scaleSetInstanceView is a VirtualMachineScaleSetInstanceView.
type scaleSetInstanceView struct {
	VirtualMachine struct {
		StatusesSummary []statusCount `json:"statusesSummary"`
	} `json:"virtualMachine"`
	Extensions            []json.RawMessage      `json:"extensions"`
	Statuses              []vmStatus             `json:"statuses"`
	OrchestrationServices []orchestrationService `json:"orchestrationServices"`
}

type statusCount struct {
	Code  string `json:"code"`
	Count int32  `json:"count"`
}

type orchestrationService struct {
	ServiceName  string `json:"serviceName"`
	ServiceState string `json:"serviceState"`
}

// getScaleSetInstanceView serves GET {vmss}/instanceView: the scale set's
// provisioning status, counts of its instances' provisioning and power
// states (and health states where a health probe is set), and the state of
// the automatic-repairs service.
func (s *server) getScaleSetInstanceView(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := instScaleSetID(r)
	rd := arm.StoreReader{Store: s.Store()}
	v, _, err := s.loadScaleSet(ctx, rd, id)
	if err != nil {
		return nil, err
	}
	recs, err := loadInstances(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	counts := map[string]int32{}
	var order []string
	add := func(code string) {
		if _, ok := counts[code]; !ok {
			order = append(order, code)
		}
		counts[code]++
	}
	for _, rec := range recs {
		add("ProvisioningState/" + strings.ToLower(instProvisioningState(rec.in)))
	}
	for _, rec := range recs {
		add("PowerState/" + powerState(rec.in))
	}
	for _, rec := range recs {
		if state, _, probed := s.healthState(v, rec.in); probed {
			add("HealthState/" + state)
		}
	}
	out := scaleSetInstanceView{}
	out.VirtualMachine.StatusesSummary = []statusCount{}
	for _, c := range order {
		out.VirtualMachine.StatusesSummary = append(out.VirtualMachine.StatusesSummary, statusCount{Code: c, Count: counts[c]})
	}
	prov := v.Properties.ProvisioningState
	if prov == "" {
		prov = resource.Succeeded
	}
	out.Statuses = []vmStatus{{Code: "ProvisioningState/" + strings.ToLower(prov), Level: "Info", DisplayStatus: "Provisioning " + strings.ToLower(prov)}}
	st, _, err := loadState(ctx, rd, v.ID)
	if err != nil {
		return nil, err
	}
	repairs := resource.ServiceNotRunning
	switch {
	case repairsEnabled(v) && st.IsSuspended(resource.ServiceAutomaticRepairs):
		repairs = resource.ServiceSuspended
	case repairsEnabled(v):
		repairs = resource.ServiceRunning
	}
	out.OrchestrationServices = []orchestrationService{{ServiceName: resource.ServiceAutomaticRepairs, ServiceState: repairs}}
	if st.IsSuspended(resource.ServiceAutomaticZoneRebalancing) {
		out.OrchestrationServices = append(out.OrchestrationServices,
			orchestrationService{ServiceName: resource.ServiceAutomaticZoneRebalancing, ServiceState: resource.ServiceSuspended})
	}
	return arm.JSON(http.StatusOK, out), nil
}
