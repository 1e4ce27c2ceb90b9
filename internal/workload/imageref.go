package workload

import (
	"encoding/json"
	"slices"
	"strings"

	"nimbus/internal/resource"
)

// ImageRefOf returns the image a virtualMachineProfile names, in whichever
// form: storageProfile.imageReference, or an unmanaged osDisk.image.uri;
// osDisk.osType gives the OS when present. A nil profile names no image.
func ImageRefOf(p *resource.VMProfile) ImageRef {
	if p == nil || p.StorageProfile == nil {
		return ImageRef{}
	}
	sp := p.StorageProfile
	var r ImageRef
	if ir := sp.ImageReference; ir != nil {
		r = ImageRef{Publisher: ir.Publisher, Offer: ir.Offer, SKU: ir.SKU, Version: ir.Version, ID: ir.ID,
			SharedGalleryImageID: ir.SharedGalleryImageID, CommunityGalleryImageID: ir.CommunityGalleryImageID}
	}
	f := sp.OSDiskFacts()
	r.OSType = f.OSType
	if f.Image != nil && r.IsZero() {
		r.URI = f.Image.URI
	}
	return r
}

// customScriptTypes are the extension types whose commandToExecute (or
// base64 script) the image map may run: Linux's CustomScript (2.x and 1.x)
// and Windows' CustomScriptExtension.
var customScriptTypes = []string{
	"Microsoft.Azure.Extensions/CustomScript",
	"Microsoft.OSTCExtensions/CustomScriptForLinux",
	"Microsoft.Compute/CustomScriptExtension",
}

// ExtensionCommands returns the shell commands of the profile's custom
// script extensions, in order: each one's commandToExecute (protected
// settings win over public ones, as the extension reads them) or its
// base64 script. Other extensions have nothing nimbus can run.
func ExtensionCommands(p *resource.VMProfile) []string {
	if p == nil || len(p.ExtensionProfile) == 0 {
		return nil
	}
	type settings struct {
		CommandToExecute string `json:"commandToExecute"`
		Script           string `json:"script"`
	}
	var prof struct {
		Extensions []struct {
			Properties struct {
				Publisher         string   `json:"publisher"`
				Type              string   `json:"type"`
				Settings          settings `json:"settings"`
				ProtectedSettings settings `json:"protectedSettings"`
			} `json:"properties"`
		} `json:"extensions"`
	}
	if json.Unmarshal(p.ExtensionProfile, &prof) != nil {
		return nil
	}
	var out []string
	for _, e := range prof.Extensions {
		pr := e.Properties
		if !slices.ContainsFunc(customScriptTypes, func(t string) bool { return strings.EqualFold(t, pr.Publisher+"/"+pr.Type) }) {
			continue
		}
		for _, s := range []settings{pr.ProtectedSettings, pr.Settings} {
			if s.CommandToExecute != "" {
				out = append(out, s.CommandToExecute)
				break
			}
			if b, err := DecodeCustomData(s.Script); s.Script != "" && err == nil {
				out = append(out, string(b))
				break
			}
		}
	}
	return out
}
