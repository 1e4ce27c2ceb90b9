package compute_test

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/compute/armcompute/v7"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/workload"
)

// TestMarketplaceImageCatalogue reads the image catalogue as az and the SDK
// do: marketplace images (az's aliases and any platform image the default
// image map maps) resolve, Windows ones say so, and resource SKUs list.
func TestMarketplaceImageCatalogue(t *testing.T) {
	e := armtest.NewEnv(t)
	imgs, err := armcompute.NewVirtualMachineImagesClient(e.Sub, e.Cred, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	pubs, err := imgs.ListPublishers(e.Ctx, "eastus", nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range pubs.VirtualMachineImageResourceArray {
		names = append(names, *p.Name)
	}
	for _, want := range []string{"nimbus", "Canonical", "Debian", "MicrosoftWindowsServer"} {
		if !strings.Contains(strings.Join(names, ","), want) {
			t.Errorf("publishers %v lack %s", names, want)
		}
	}
	tests := []struct {
		pub, offer, sku, os string
	}{
		{"Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "Linux"},
		{"Canonical", "ubuntu-24_04-lts", "server", "Linux"},
		{"Debian", "debian-12", "12-gen2", "Linux"},
		{"MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition", "Windows"}, // not an alias: mapped all the same
		{"nimbus", "workloads", "echo", "Linux"},
	}
	for _, tt := range tests {
		vs, err := imgs.List(e.Ctx, "eastus", tt.pub, tt.offer, tt.sku, &armcompute.VirtualMachineImagesClientListOptions{Top: to.Ptr[int32](1), Orderby: to.Ptr("name desc")})
		if err != nil || len(vs.VirtualMachineImageResourceArray) != 1 {
			t.Fatalf("versions of %s:%s:%s = %v, %v", tt.pub, tt.offer, tt.sku, vs, err)
		}
		v, err := imgs.Get(e.Ctx, "eastus", tt.pub, tt.offer, tt.sku, *vs.VirtualMachineImageResourceArray[0].Name, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := string(*v.Properties.OSDiskImage.OperatingSystem); got != tt.os {
			t.Errorf("%s:%s:%s os = %s; want %s", tt.pub, tt.offer, tt.sku, got, tt.os)
		}
	}
	skus, err := armcompute.NewResourceSKUsClient(e.Sub, e.Cred, e.Options)
	if err != nil {
		t.Fatal(err)
	}
	pager := skus.NewListPager(&armcompute.ResourceSKUsClientListOptions{Filter: to.Ptr("location eq 'eastus'")})
	found := false
	for pager.More() {
		page, err := pager.NextPage(e.Ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			if *s.Name == "Standard_B1s" && *s.ResourceType == "virtualMachines" && *s.Locations[0] == "eastus" {
				found = true
			}
		}
	}
	if !found {
		t.Error("Microsoft.Compute/skus does not list Standard_B1s in eastus")
	}
	// The alias document az reads (no token needed).
	req, _ := http.NewRequest("GET", e.Base+"/metadata/vm-image-aliases", nil)
	resp, err := e.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var doc struct {
		Outputs struct {
			Aliases struct {
				Value map[string]map[string]struct{ Publisher, Offer, SKU string }
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil || resp.StatusCode != 200 {
		t.Fatalf("alias doc: %d %v", resp.StatusCode, err)
	}
	if a := doc.Outputs.Aliases.Value["Linux"]["Ubuntu2204"]; a.Offer != "0001-com-ubuntu-server-jammy" {
		t.Errorf("alias Ubuntu2204 = %+v", a)
	}
	if a := doc.Outputs.Aliases.Value["Windows"]["Win2022Datacenter"]; a.Publisher != "MicrosoftWindowsServer" {
		t.Errorf("alias Win2022Datacenter = %+v", a)
	}
	st, _, b := e.Do("GET", "/nimbus/info", nil)
	if st != 200 || !strings.Contains(string(b), `"images"`) || !strings.Contains(string(b), `"name":"windows"`) {
		t.Errorf("GET /nimbus/info does not show the image map: %d %s", st, b)
	}
}

// imageCases are the forms of image a scale set can name.
func imageCases(e *armtest.Env) map[string]*armcompute.VirtualMachineScaleSetStorageProfile {
	return map[string]*armcompute.VirtualMachineScaleSetStorageProfile{
		"ubuntu": {ImageReference: &armcompute.ImageReference{Publisher: to.Ptr("Canonical"), Offer: to.Ptr("0001-com-ubuntu-server-jammy"),
			SKU: to.Ptr("22_04-lts-gen2"), Version: to.Ptr("latest")}},
		"windows": {ImageReference: &armcompute.ImageReference{Publisher: to.Ptr("MicrosoftWindowsServer"), Offer: to.Ptr("WindowsServer"),
			SKU: to.Ptr("2022-datacenter-g2"), Version: to.Ptr("latest")}},
		"gallery": {ImageReference: &armcompute.ImageReference{ID: to.Ptr("/subscriptions/" + e.Sub + "/resourceGroups/rg/providers/Microsoft.Compute/galleries/gal/images/web/versions/1.0.0")}},
		"shared":  {ImageReference: &armcompute.ImageReference{SharedGalleryImageID: to.Ptr("/SharedGalleries/g/Images/web/Versions/latest")}},
		"vhd": {OSDisk: &armcompute.VirtualMachineScaleSetOSDisk{Name: to.Ptr("os"), CreateOption: to.Ptr(armcompute.DiskCreateOptionTypesFromImage),
			OSType: to.Ptr(armcompute.OperatingSystemTypesLinux), Image: &armcompute.VirtualHardDisk{URI: to.Ptr("https://acct.blob.core.windows.net/vhds/web.vhd")}}},
	}
}

// TestScaleSetImages: every form of image runs by default; with an image
// map that maps none of them, every form is refused at PUT the same way.
func TestScaleSetImages(t *testing.T) {
	t.Run("default map", func(t *testing.T) {
		e := armtest.NewEnv(t)
		if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
			t.Fatal(err)
		}
		for name, sp := range imageCases(e) {
			body := e.VMSSBody("lb1", true, armcompute.UpgradeModeManual)
			body.Properties.VirtualMachineProfile.StorageProfile = sp
			v, err := e.PutVMSS(t, "web-"+name, body, nil)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			got := v.Properties.VirtualMachineProfile.StorageProfile
			if name == "vhd" && (got.OSDisk == nil || got.OSDisk.Image == nil || *got.OSDisk.Image.URI != *sp.OSDisk.Image.URI) {
				t.Errorf("%s: osDisk.image not returned: %+v", name, got.OSDisk)
			}
			if name != "vhd" && (got.ImageReference == nil || got.ImageReference.ID == nil && got.ImageReference.SharedGalleryImageID == nil && got.ImageReference.Publisher == nil) {
				t.Errorf("%s: imageReference not returned: %+v", name, got.ImageReference)
			}
		}
	})
	t.Run("restricted map", func(t *testing.T) {
		dir := t.TempDir()
		m := `{"images": [{"name": "only-echo", "match": {"publisher": "nimbus", "offer": "workloads", "sku": "echo"}, "workload": "echo"}]}`
		if err := os.WriteFile(filepath.Join(dir, workload.ImageMapFile), []byte(m), 0o600); err != nil {
			t.Fatal(err)
		}
		e := armtest.NewEnvOn(t, armtest.Start(t, dir))
		if _, err := e.PutLB(t, "lb1", e.PublicLB("lb1")); err != nil {
			t.Fatal(err)
		}
		for name, sp := range imageCases(e) {
			body := e.VMSSBody("lb1", true, armcompute.UpgradeModeManual)
			body.Properties.VirtualMachineProfile.StorageProfile = sp
			_, err := e.PutVMSS(t, "web-"+name, body, nil)
			code := "ImageNotFound"
			if sp.ImageReference != nil && sp.ImageReference.Publisher != nil {
				code = "PlatformImageNotFound"
			}
			armtest.WantCode(t, name, err, code)
			if err != nil && !strings.Contains(err.Error(), "only-echo") {
				t.Errorf("%s: the error does not name the map's entries: %v", name, err)
			}
		}
	})
}

// TestAZImageAliases creates scale sets with az 2.45 from aliases: its own
// (Win2022Datacenter) and, through nimbus's alias document, newer ones
// (Ubuntu2204, Debian12).
func TestAZImageAliases(t *testing.T) {
	n := armtest.Start(t)
	env := armtest.LoginAZ(t, n)
	armtest.RunAZ(t, env, "cloud", "update", "-n", "Nimbus", "--endpoint-vm-image-alias-doc", n.Base+"/metadata/vm-image-aliases")
	armtest.RunAZ(t, env, "group", "create", "-n", "rg", "-l", "eastus")
	tests := []struct{ alias, publisher, offer string }{
		{"Ubuntu2204", "Canonical", "0001-com-ubuntu-server-jammy"},
		{"Debian12", "Debian", "debian-12"},
		{"Win2022Datacenter", "MicrosoftWindowsServer", "WindowsServer"},
	}
	for i, tt := range tests {
		name := "web" + string(rune('a'+i))
		armtest.RunAZ(t, env, "vmss", "create", "-g", "rg", "-n", name, "--image", tt.alias, "--instance-count", "1",
			"--admin-username", "azureuser", "--admin-password", "Secr3t-Passw0rd!", "--authentication-type", "password",
			"--vnet-name", name+"vnet", "--lb", name+"lb", "-o", "none")
		out := armtest.RunAZ(t, env, "vmss", "show", "-g", "rg", "-n", name, "--query", "virtualMachineProfile.storageProfile.imageReference", "-o", "json")
		var ir struct{ Publisher, Offer string }
		if err := json.Unmarshal(out, &ir); err != nil || ir.Publisher != tt.publisher || ir.Offer != tt.offer {
			t.Errorf("%s: imageReference %s (%v); want %s %s", tt.alias, out, err, tt.publisher, tt.offer)
		}
	}
}
