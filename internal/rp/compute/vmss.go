package compute

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/driver"
	"nimbus/internal/resource"
	"nimbus/internal/rp/network"
	"nimbus/internal/store"
	"nimbus/internal/workload"
)

// vmssModel is the Model of Microsoft.Compute/virtualMachineScaleSets: the
// scale-set MODEL. Instances are the scale-set controller's records; a PUT,
// PATCH or DELETE finishes its operation when the controller reports the
// scale set converged (Runtime.WaitScaleSet), or at once without a runtime.
type vmssModel struct{ s *server }

var (
	_ arm.Model  = vmssModel{}
	_ arm.Merger = vmssModel{}
)

// registerVmss registers the routes of vmss.go.
func registerVmss(s *server) {
	k := &arm.Kind{Type: resource.VirtualMachineScaleSetType, Versions: Versions, Model: vmssModel{s}, CheckName: resource.CheckScaleSetName}
	s.RegisterPagedLists(k)
	s.RegisterKind(k)
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/virtualMachineScaleSets", Versions,
		func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.listScaleSetsByLocation(ctx, r, k)
		})
}

// New returns an empty scale-set model to decode into.
func (vmssModel) New() arm.Object { return &resource.VirtualMachineScaleSet{} }

// Prepare normalizes and validates the model against the stored one and the
// LBs and subnets it references, guards the LBs it read, and (with a
// runtime) makes the operation wait for the instances.
func (m vmssModel) Prepare(ctx context.Context, tx *arm.Tx, obj, old arm.Object) error {
	v := obj.(*resource.VirtualMachineScaleSet)
	var prev *resource.VirtualMachineScaleSet
	if old != nil {
		prev = old.(*resource.VirtualMachineScaleSet)
	}
	if err := resource.NormalizeScaleSet(v, prev, v.ID, v.Name); err != nil {
		return err
	}
	keepCustomData(v, prev)
	fillProfileDefaults(v.Properties.VirtualMachineProfile)
	v.Properties.ProvisioningState = resource.Succeeded
	if prev == nil {
		v.Properties.UniqueID = resource.NewGUID()
		v.Properties.TimeCreated = m.s.Now().UTC().Format(time.RFC3339Nano)
	}
	vctx, read, err := vmssContext(ctx, tx, v)
	if err != nil {
		return err
	}
	if err := resource.ValidateScaleSet(v, prev, vctx); err != nil {
		return err
	}
	if err := m.validateImage(v); err != nil {
		return err
	}
	if err := checkSecurityRefs(ctx, tx, v); err != nil {
		return err
	}
	arm.GuardRead(tx, read)
	m.waitConverged(tx, v.ID)
	return nil
}

func (m vmssModel) waitConverged(tx *arm.Tx, id string) {
	if rt := m.s.Runtime(); rt != nil {
		tx.After(func(ctx context.Context) (any, error) { return nil, rt.WaitScaleSet(ctx, id) })
	}
}

// vmssContext reads the LBs and subnets a model references; read are the
// stored LB entries (for write guards).
func vmssContext(ctx context.Context, rd arm.Reader, v *resource.VirtualMachineScaleSet) (*resource.VMSSContext, []store.KV, error) {
	c := &resource.VMSSContext{LoadBalancers: map[string]*resource.LoadBalancer{}, Subnets: map[string]resource.SubnetFacts{}}
	var read []store.KV
	u := v.Uses()
	lbIDs := u.LoadBalancerIDs()
	for _, lbID := range lbIDs {
		kv, ok, err := arm.ReadTop(ctx, rd, lbID)
		if err != nil {
			return nil, nil, err
		}
		if !ok {
			continue
		}
		lb, err := resource.DecodeLoadBalancer(kv.Value)
		if err != nil {
			return nil, nil, err
		}
		c.LoadBalancers[resource.NormalizeRefID(lbID)] = lb
		read = append(read, kv)
	}
	if np := v.NetworkProfile(); np != nil {
		for _, nic := range np.NetworkInterfaceConfigurations {
			for _, ipc := range nic.Properties.IPConfigurations {
				if ipc.Properties.Subnet != nil {
					if err := network.ReadSubnet(ctx, rd, ipc.Properties.Subnet.ID, c.Subnets); err != nil {
						return nil, nil, err
					}
				}
			}
		}
	}
	return c, read, nil
}

// References lists the pools, NAT pools, health probe and subnets the model uses.
func (vmssModel) References(obj arm.Object) []resource.Ref {
	v := obj.(*resource.VirtualMachineScaleSet)
	u := v.Uses()
	var out []resource.Ref
	for _, id := range append(append(append([]string(nil), u.Pools...), u.NatPools...), u.HealthProbe) {
		if id != "" {
			out = append(out, resource.Ref{Source: v.ID, Target: id})
		}
	}
	if np := v.NetworkProfile(); np != nil {
		for _, nic := range np.NetworkInterfaceConfigurations {
			for _, ipc := range nic.Properties.IPConfigurations {
				if ipc.Properties.Subnet != nil && ipc.Properties.Subnet.ID != "" {
					out = append(out, resource.Ref{Source: v.ID, Target: ipc.Properties.Subnet.ID})
				}
				for _, g := range ipc.Properties.ApplicationSecurityGroups {
					if g.ID != "" {
						out = append(out, resource.Ref{Source: v.ID, Target: g.ID})
					}
				}
			}
			if g := nic.Properties.NetworkSecurityGroup; g != nil && g.ID != "" {
				out = append(out, resource.Ref{Source: v.ID, Target: g.ID})
			}
		}
	}
	return out
}

// checkSecurityRefs checks that the network security groups of the NIC
// configurations and the application security groups of their
// ipConfigurations exist (InvalidResourceReference otherwise).
func checkSecurityRefs(ctx context.Context, tx *arm.Tx, v *resource.VirtualMachineScaleSet) error {
	np := v.NetworkProfile()
	if np == nil {
		return nil
	}
	base := "properties.virtualMachineProfile.networkProfile.networkInterfaceConfigurations"
	for i, nic := range np.NetworkInterfaceConfigurations {
		if g := nic.Properties.NetworkSecurityGroup; g != nil && g.ID != "" {
			path := fmt.Sprintf("%s[%d].properties.networkSecurityGroup.id", base, i)
			if err := arm.CheckReference(ctx, tx, v.ID, path, g.ID, resource.NetworkSecurityGroupType); err != nil {
				return err
			}
		}
		for j, ipc := range nic.Properties.IPConfigurations {
			for k, g := range ipc.Properties.ApplicationSecurityGroups {
				path := fmt.Sprintf("%s[%d].properties.ipConfigurations[%d].properties.applicationSecurityGroups[%d].id", base, i, j, k)
				if err := arm.CheckReference(ctx, tx, v.ID, path, g.ID, resource.ApplicationSecurityGroupType); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// Release lets the controller remove the instances and drops the scale
// set's service state (suspended services, rolling upgrades); the operation
// finishes when the instances are gone.
func (m vmssModel) Release(_ context.Context, tx *arm.Tx, obj arm.Object) error {
	id := obj.(*resource.VirtualMachineScaleSet).ID
	tx.Delete(resource.ScaleSetStateKey(id), store.AnyRevision)
	m.waitConverged(tx, id)
	return nil
}

// Render removes write-only values: adminPassword and customData, which
// Azure stores and gives the instances but never returns (in GET, list or
// PUT answers alike).
func (vmssModel) Render(_ context.Context, _ arm.Reader, obj arm.Object) error {
	v := obj.(*resource.VirtualMachineScaleSet)
	v.ScrubSecrets()
	if vp := v.Properties.VirtualMachineProfile; vp != nil && vp.OSProfile != nil {
		vp.OSProfile.CustomData = ""
	}
	return nil
}

// fillProfileDefaults fills the defaults Azure shows in a scale set's
// profile: the OS configuration of the image's OS (Linux:
// disablePasswordAuthentication false, provisionVMAgent true; Windows:
// provisionVMAgent and enableAutomaticUpdates true), osDisk.osType, and
// each data disk's caching (None) and storage account type (Standard_LRS).
// Values the client set are kept.
func fillProfileDefaults(vp *resource.VMProfile) {
	if vp == nil {
		return
	}
	os := workload.ImageRefOf(vp).OS()
	if op := vp.OSProfile; op != nil {
		if os == workload.OSWindows || len(op.WindowsConfiguration) > 0 {
			op.WindowsConfiguration = withDefaults(op.WindowsConfiguration, map[string]any{"provisionVMAgent": true, "enableAutomaticUpdates": true})
		} else {
			op.LinuxConfiguration = withDefaults(op.LinuxConfiguration, map[string]any{"disablePasswordAuthentication": false, "provisionVMAgent": true})
		}
	}
	if sp := vp.StorageProfile; sp != nil {
		if len(sp.OSDisk) > 0 {
			sp.OSDisk = withDefaults(sp.OSDisk, map[string]any{"osType": os})
		}
		var disks []json.RawMessage
		if len(sp.DataDisks) > 0 && json.Unmarshal(sp.DataDisks, &disks) == nil {
			for i, d := range disks {
				var m map[string]any
				if json.Unmarshal(d, &m) != nil || m == nil {
					continue
				}
				if _, ok := m["caching"]; !ok {
					m["caching"] = "None"
				}
				if _, vhd := m["vhd"]; !vhd {
					md, _ := m["managedDisk"].(map[string]any)
					if md == nil {
						md = map[string]any{}
					}
					if _, ok := md["storageAccountType"]; !ok {
						md["storageAccountType"] = "Standard_LRS"
					}
					m["managedDisk"] = md
				}
				if b, err := json.Marshal(m); err == nil {
					disks[i] = b
				}
			}
			if b, err := json.Marshal(disks); err == nil {
				sp.DataDisks = b
			}
		}
	}
}

// withDefaults returns the JSON object raw (nil: an empty one) with the
// properties of defs it lacks; raw unchanged when it is not an object.
func withDefaults(raw json.RawMessage, defs map[string]any) json.RawMessage {
	m := map[string]any{}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil || m == nil {
			return raw
		}
	}
	changed := len(raw) == 0
	for k, v := range defs {
		if _, ok := m[k]; !ok {
			m[k], changed = v, true
		}
	}
	if !changed {
		return raw
	}
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}

// keepCustomData gives an update whose osProfile leaves customData out the
// stored one. Clients that GET, change and PUT a scale set (az vmss update,
// the SDKs' read-modify-write) never see customData (Render), so its absence
// means "unchanged", not "remove": otherwise the update would change the
// model and the instances would be reimaged without their script. A new
// value replaces it.
func keepCustomData(v, prev *resource.VirtualMachineScaleSet) {
	if prev == nil || prev.Properties.VirtualMachineProfile == nil || prev.Properties.VirtualMachineProfile.OSProfile == nil {
		return
	}
	vp := v.Properties.VirtualMachineProfile
	if vp == nil || vp.OSProfile == nil || vp.OSProfile.CustomData != "" {
		return
	}
	vp.OSProfile.CustomData = prev.Properties.VirtualMachineProfile.OSProfile.CustomData
}

// Merge applies a PATCH body (VirtualMachineScaleSetUpdate) as a JSON merge
// patch: objects merge recursively, arrays and scalars replace, null
// removes. Read-only and identity fields of the body are ignored.
func (vmssModel) Merge(obj arm.Object, body []byte) error {
	var patch map[string]any
	if err := arm.DecodeBody(body, &patch); err != nil {
		return err
	}
	for _, k := range []string{"id", "name", "type", "location", "etag"} {
		delete(patch, k)
	}
	cur, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	var doc map[string]any
	if err := json.Unmarshal(cur, &doc); err != nil {
		return err
	}
	merged, err := json.Marshal(mergePatch(doc, patch))
	if err != nil {
		return err
	}
	v := obj.(*resource.VirtualMachineScaleSet)
	*v = resource.VirtualMachineScaleSet{}
	return arm.DecodeBody(merged, v)
}

// mergePatch applies RFC 7386 JSON merge patch p to doc.
func mergePatch(doc, p map[string]any) map[string]any {
	if doc == nil {
		doc = map[string]any{}
	}
	for k, pv := range p {
		if pv == nil {
			delete(doc, k)
			continue
		}
		pm, pIsMap := pv.(map[string]any)
		dm, dIsMap := doc[k].(map[string]any)
		if pIsMap && dIsMap {
			doc[k] = mergePatch(dm, pm)
			continue
		}
		if pIsMap {
			doc[k] = mergePatch(nil, pm)
			continue
		}
		doc[k] = pv
	}
	return doc
}

// listScaleSetsByLocation serves GET {SUB}/providers/Microsoft.Compute/locations/{loc}/virtualMachineScaleSets.
func (s *server) listScaleSetsByLocation(ctx context.Context, r *arm.Request, k *arm.Kind) (*arm.Response, error) {
	rd := arm.StoreReader{Store: s.Store()}
	objs, err := s.ListObjects(ctx, rd, k, r.Param("sub"), "")
	if err != nil {
		return nil, err
	}
	loc := arm.NormalizeLocation(r.Param("loc"))
	items := []any{}
	for _, obj := range objs {
		if !strings.EqualFold(obj.Meta().Location, loc) {
			continue
		}
		if err := k.Model.Render(ctx, rd, obj); err != nil {
			return nil, err
		}
		items = append(items, obj)
	}
	return r.Page(items)
}

// validateImage refuses, at write time, an image the image map does not
// map to a nimbus workload, in whichever form the model names it (platform
// image, custom or gallery image id, unmanaged VHD): instances would only
// fail later. customData must be base64.
func (m vmssModel) validateImage(v *resource.VirtualMachineScaleSet) error {
	vp := v.Properties.VirtualMachineProfile
	if vp == nil {
		return nil
	}
	if ref := workload.ImageRefOf(vp); !ref.IsZero() {
		if _, err := m.s.images.Map(ref); err != nil {
			code, target := "PlatformImageNotFound", "properties.virtualMachineProfile.storageProfile.imageReference"
			if !ref.IsPlatform() {
				code = "ImageNotFound"
			}
			if ref.URI != "" {
				target = "properties.virtualMachineProfile.storageProfile.osDisk.image.uri"
			}
			e := resource.BadRequest(code, "%s", strings.TrimPrefix(err.Error(), driver.ErrUnknownImage.Error()+": "))
			e.Target = target
			return e
		}
	}
	if op := vp.OSProfile; op != nil && op.CustomData != "" {
		if _, err := workload.DecodeCustomData(op.CustomData); err != nil {
			e := resource.BadRequest("InvalidParameter", "Custom data in OSProfile must be in Base64 encoding and with a maximum length of 87380 characters.")
			e.Target = "properties.virtualMachineProfile.osProfile.customData"
			return e
		}
	}
	return nil
}
