package compute

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// Scale-set extensions as child resources
// ({vmss}/extensions/{name}: PUT, PATCH, GET, DELETE, and the list), as
// Azure serves them: views of the model's
// virtualMachineProfile.extensionProfile.extensions, so a PUT here and a
// PUT of the scale set see the same extensions. A change is a change of the
// model (instances upgrade to it as the upgrade policy says). Every
// property is stored and returned, except protectedSettings, which is
// write-only as in Azure (kept when an update leaves it out). Whether
// extensions run is the image map's choice (guide.md, Images).

const extensionType = "Microsoft.Compute/virtualMachineScaleSets/extensions"

func registerExtensions(s *server) {
	p := instVMSSPath + "/extensions"
	s.Handle(http.MethodGet, p, Versions, s.listExtensions)
	s.Handle(http.MethodGet, p+"/{ext}", Versions, s.getExtension)
	s.Handle(http.MethodPut, p+"/{ext}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.putExtension(ctx, r, false)
	})
	s.Handle(http.MethodPatch, p+"/{ext}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.putExtension(ctx, r, true)
	})
	s.Handle(http.MethodDelete, p+"/{ext}", Versions, s.deleteExtension)
}

// extensionList decodes a profile's extensions (each a JSON object).
func extensionList(vp *resource.VMProfile) ([]map[string]any, map[string]any) {
	prof := map[string]any{}
	if vp != nil && len(vp.ExtensionProfile) > 0 {
		_ = json.Unmarshal(vp.ExtensionProfile, &prof) // validated at PUT
	}
	var out []map[string]any
	if list, ok := prof["extensions"].([]any); ok {
		for _, e := range list {
			if m, ok := e.(map[string]any); ok {
				out = append(out, m)
			}
		}
	}
	return out, prof
}

func extName(e map[string]any) string { n, _ := e["name"].(string); return n }

// renderExtension is an extension as its child endpoint answers it.
func renderExtension(v *resource.VirtualMachineScaleSet, e map[string]any) map[string]any {
	out := map[string]any{"id": v.ID + "/extensions/" + extName(e), "name": extName(e), "type": extensionType}
	props := map[string]any{}
	if p, ok := e["properties"].(map[string]any); ok {
		for k, x := range p {
			if !strings.EqualFold(k, "protectedSettings") {
				props[k] = x
			}
		}
	}
	props["provisioningState"] = resource.Succeeded
	out["properties"] = props
	return out
}

func (s *server) listExtensions(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, _, err := s.loadScaleSet(ctx, arm.StoreReader{Store: s.Store()}, instScaleSetID(r))
	if err != nil {
		return nil, err
	}
	exts, _ := extensionList(v.Properties.VirtualMachineProfile)
	items := []any{}
	for _, e := range exts {
		items = append(items, renderExtension(v, e))
	}
	return r.Page(items)
}

func findExtension(exts []map[string]any, name string) int {
	for i, e := range exts {
		if strings.EqualFold(extName(e), name) {
			return i
		}
	}
	return -1
}

func extensionNotFound(v *resource.VirtualMachineScaleSet, name string) error {
	return resource.NotFound("NotFound", "The extension '%s' of Virtual Machine Scale Set '%s' was not found.", name, v.Name)
}

func (s *server) getExtension(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	v, _, err := s.loadScaleSet(ctx, arm.StoreReader{Store: s.Store()}, instScaleSetID(r))
	if err != nil {
		return nil, err
	}
	exts, _ := extensionList(v.Properties.VirtualMachineProfile)
	i := findExtension(exts, r.Param("ext"))
	if i < 0 {
		return nil, extensionNotFound(v, r.Param("ext"))
	}
	return arm.JSON(http.StatusOK, renderExtension(v, exts[i])), nil
}

// putExtension serves PUT (replace) and PATCH (merge the properties) of an
// extension.
func (s *server) putExtension(ctx context.Context, r *arm.Request, patch bool) (*arm.Response, error) {
	id, name := instScaleSetID(r), r.Param("ext")
	var body map[string]any
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	props, _ := body["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	delete(props, "provisioningState")
	created := false
	var result map[string]any
	k := s.Kind(resource.VirtualMachineScaleSetType)
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: id, Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.ResourceNotFoundError(id)
		}
		v := old.(*resource.VirtualMachineScaleSet)
		if v.Properties.VirtualMachineProfile == nil {
			v.Properties.VirtualMachineProfile = &resource.VMProfile{}
		}
		exts, prof := extensionList(v.Properties.VirtualMachineProfile)
		i := findExtension(exts, name)
		if i < 0 && patch {
			return nil, extensionNotFound(v, name)
		}
		e := map[string]any{"name": name, "properties": props}
		if i >= 0 {
			oldProps, _ := exts[i]["properties"].(map[string]any)
			if patch {
				for k, x := range props {
					oldProps[k] = x
				}
				e["properties"] = oldProps
			} else if _, ok := props["protectedSettings"]; !ok && oldProps["protectedSettings"] != nil {
				props["protectedSettings"] = oldProps["protectedSettings"] // write-only: kept
			}
			e["name"] = extName(exts[i])
			exts[i] = e
		} else {
			created = true
			exts = append(exts, e)
		}
		list := make([]any, len(exts))
		for j := range exts {
			list[j] = exts[j]
		}
		prof["extensions"] = list
		b, err := json.Marshal(prof)
		if err != nil {
			return nil, err
		}
		v.Properties.VirtualMachineProfile.ExtensionProfile = b
		result = e
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.Async(status, renderExtension(res.Object.(*resource.VirtualMachineScaleSet), result), res.Op), nil
}

func (s *server) deleteExtension(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id, name := instScaleSetID(r), r.Param("ext")
	found := false
	k := s.Kind(resource.VirtualMachineScaleSetType)
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: id, Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.ResourceNotFoundError(id)
		}
		v := old.(*resource.VirtualMachineScaleSet)
		exts, prof := extensionList(v.Properties.VirtualMachineProfile)
		i := findExtension(exts, name)
		if i < 0 {
			return v, nil
		}
		found = true
		exts = append(exts[:i], exts[i+1:]...)
		list := make([]any, len(exts))
		for j := range exts {
			list[j] = exts[j]
		}
		prof["extensions"] = list
		b, err := json.Marshal(prof)
		if err != nil {
			return nil, err
		}
		v.Properties.VirtualMachineProfile.ExtensionProfile = b
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	if !found {
		return arm.NoContent(http.StatusNoContent), nil
	}
	return r.Accepted(res.Op), nil
}
