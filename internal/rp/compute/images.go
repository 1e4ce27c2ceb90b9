package compute

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/driver"
	"nimbus/internal/resource"
	"nimbus/internal/workload"
)

// The platform-image catalogue az and templates read
// (GET …/locations/{loc}/publishers/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions[/{version}]):
// nimbus's own images, the images of az's aliases, and every platform
// image the image map names without wildcards are listed; every platform
// image the map maps (by default all of them) answers its versions
// ("latest") and version details, so `az vmss create --image URN` and
// templates' image lookups resolve any marketplace image. An image the map
// does not map is 404, as an unknown image is in Azure.

// imageAlias is one of az's image aliases (--image Ubuntu2204).
type imageAlias struct {
	alias, os             string
	publisher, offer, sku string
	version, architecture string
}

// imageAliases are az's aliases: those of az 2.45 and those newer releases
// added (aliases.json of Azure/azure-rest-api-specs and of azure-cli), plus
// nimbus's own images. GET /metadata/vm-image-aliases serves them in the
// document's format, for az cloud register --endpoint-vm-image-alias-doc.
var imageAliases = []imageAlias{
	{"NimbusEcho", workload.OSLinux, "nimbus", "workloads", "echo", "latest", "x64"},
	{"NimbusScript", workload.OSLinux, "nimbus", "workloads", "script", "latest", "x64"},
	{"Ubuntu2404", workload.OSLinux, "Canonical", "ubuntu-24_04-lts", "server", "latest", "x64"},
	{"Ubuntu2404Pro", workload.OSLinux, "Canonical", "ubuntu-24_04-lts", "ubuntu-pro", "latest", "x64"},
	{"Ubuntu2204", workload.OSLinux, "Canonical", "0001-com-ubuntu-server-jammy", "22_04-lts-gen2", "latest", "x64"},
	{"UbuntuLTS", workload.OSLinux, "Canonical", "UbuntuServer", "18.04-LTS", "latest", "x64"},
	{"Debian12", workload.OSLinux, "Debian", "debian-12", "12-gen2", "latest", "x64"},
	{"Debian11", workload.OSLinux, "Debian", "debian-11", "11-backports-gen2", "latest", "x64"},
	{"Debian", workload.OSLinux, "Debian", "debian-10", "10", "latest", "x64"},
	{"CentOS85Gen2", workload.OSLinux, "OpenLogic", "CentOS", "8_5-gen2", "latest", "x64"},
	{"CentOS", workload.OSLinux, "OpenLogic", "CentOS", "7.5", "latest", "x64"},
	{"FlatcarLinuxFreeGen2", workload.OSLinux, "kinvolk", "flatcar-container-linux-free", "stable-gen2", "latest", "x64"},
	{"Flatcar", workload.OSLinux, "kinvolk", "flatcar-container-linux-free", "stable", "latest", "x64"},
	{"OpenSuseLeap154Gen2", workload.OSLinux, "SUSE", "openSUSE-leap-15-4", "gen2", "latest", "x64"},
	{"openSUSE-Leap", workload.OSLinux, "SUSE", "opensuse-leap-15-3", "gen2", "latest", "x64"},
	{"RHELRaw8LVMGen2", workload.OSLinux, "RedHat", "RHEL", "8-lvm-gen2", "latest", "x64"},
	{"RHEL", workload.OSLinux, "RedHat", "RHEL", "7-LVM", "latest", "x64"},
	{"SuseSles15SP5", workload.OSLinux, "SUSE", "sles-15-sp5", "gen2", "latest", "x64"},
	{"SuseSles15SP3", workload.OSLinux, "SUSE", "sles-15-sp3", "gen2", "latest", "x64"},
	{"SLES", workload.OSLinux, "SUSE", "sles-15-sp3", "gen2", "latest", "x64"},
	{"Win2022Datacenter", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-g2", "latest", "x64"},
	{"Win2022AzureEditionCore", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2022-datacenter-azure-edition-core", "latest", "x64"},
	{"Win2019Datacenter", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2019-datacenter-gensecond", "latest", "x64"},
	{"Win2016Datacenter", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2016-datacenter-gensecond", "latest", "x64"},
	{"Win2012R2Datacenter", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2012-R2-Datacenter", "latest", "x64"},
	{"Win2012Datacenter", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2012-Datacenter", "latest", "x64"},
	{"Win2008R2SP1", workload.OSWindows, "MicrosoftWindowsServer", "WindowsServer", "2008-R2-SP1", "latest", "x64"},
}

// imageURN is one catalogue image split into its parts.
type imageURN struct{ publisher, offer, sku, version string }

func (im imageURN) ref() workload.ImageRef {
	return workload.ImageRef{Publisher: im.publisher, Offer: im.offer, SKU: im.sku, Version: im.version}
}

// catalogue lists the images nimbus names: its own, az's aliases' and the
// image map's literal platform entries.
func (s *server) catalogue() []imageURN {
	var out []imageURN
	add := func(im imageURN) {
		if !slices.ContainsFunc(out, func(x imageURN) bool { return strings.EqualFold(x.ref().String(), im.ref().String()) }) {
			out = append(out, im)
		}
	}
	for _, u := range driver.Images {
		if p := strings.Split(u, ":"); len(p) == 4 {
			add(imageURN{p[0], p[1], p[2], p[3]})
		}
	}
	for _, a := range imageAliases {
		if _, err := s.images.Map(workload.ImageRef{Publisher: a.publisher, Offer: a.offer, SKU: a.sku, Version: a.version}); err == nil {
			add(imageURN{a.publisher, a.offer, a.sku, a.version})
		}
	}
	literal := func(p string) bool { return p != "" && !strings.ContainsAny(p, "*?") }
	for _, e := range s.images.Images {
		if m := e.Match; literal(m.Publisher) && literal(m.Offer) && literal(m.SKU) {
			add(imageURN{m.Publisher, m.Offer, m.SKU, "latest"})
		}
	}
	return out
}

// imageResource is an entry of the image lists (VirtualMachineImageResource).
type imageResource struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Location string `json:"location"`
}

// imageBase is the id prefix of the catalogue in location loc.
func imageBase(sub, loc string) string {
	return "/Subscriptions/" + sub + "/Providers/Microsoft.Compute/Locations/" + arm.NormalizeLocation(loc) + "/Publishers/"
}

func imageNotFound(what string) error {
	return resource.NotFound("NotFound", "Artifact: VMImage was not found. %s is not available; see GET /nimbus/info for the image map.", what)
}

// matchImages returns the catalogue images matching the non-empty parts.
// A platform image outside the catalogue that the image map maps is an
// image too, once publisher, offer and sku are all given.
func (s *server) matchImages(pub, offer, sku, version string) []imageURN {
	var out []imageURN
	for _, im := range s.catalogue() {
		if (pub == "" || strings.EqualFold(pub, im.publisher)) &&
			(offer == "" || strings.EqualFold(offer, im.offer)) &&
			(sku == "" || strings.EqualFold(sku, im.sku)) &&
			(version == "" || strings.EqualFold(version, im.version)) {
			out = append(out, im)
		}
	}
	if len(out) == 0 && pub != "" && offer != "" && sku != "" {
		v := version
		if v == "" {
			v = "latest"
		}
		im := imageURN{pub, offer, sku, v}
		if _, err := s.images.Map(im.ref()); err == nil {
			out = append(out, im)
		}
	}
	return out
}

// imageList answers one level of the catalogue with the distinct names
// name(im) of the matching images, as a bare JSON array.
func imageList(r *arm.Request, ims []imageURN, what string, name func(imageURN) string, id func(imageURN) string) (*arm.Response, error) {
	if len(ims) == 0 {
		return nil, imageNotFound(what)
	}
	var out []imageResource
	var seen []string
	for _, im := range ims {
		n := name(im)
		if slices.Contains(seen, strings.ToLower(n)) {
			continue
		}
		seen = append(seen, strings.ToLower(n))
		out = append(out, imageResource{ID: id(im), Name: n, Location: arm.NormalizeLocation(r.Param("loc"))})
	}
	return arm.JSON(http.StatusOK, out), nil
}

func (s *server) listImagePublishers(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, s.matchImages("", "", "", ""), "publishers",
		func(im imageURN) string { return im.publisher },
		func(im imageURN) string { return base + im.publisher })
}

func (s *server) listImageOffers(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, s.matchImages(r.Param("pub"), "", "", ""), "publisher "+r.Param("pub"),
		func(im imageURN) string { return im.offer },
		func(im imageURN) string { return base + im.publisher + "/ArtifactTypes/VMImage/Offers/" + im.offer })
}

func (s *server) listImageSKUs(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, s.matchImages(r.Param("pub"), r.Param("offer"), "", ""), "offer "+r.Param("pub")+":"+r.Param("offer"),
		func(im imageURN) string { return im.sku },
		func(im imageURN) string {
			return base + im.publisher + "/ArtifactTypes/VMImage/Offers/" + im.offer + "/Skus/" + im.sku
		})
}

func versionID(base string, im imageURN) string {
	return base + im.publisher + "/ArtifactTypes/VMImage/Offers/" + im.offer + "/Skus/" + im.sku + "/Versions/" + im.version
}

func (s *server) listImageVersions(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, s.matchImages(r.Param("pub"), r.Param("offer"), r.Param("sku"), ""),
		"image "+r.Param("pub")+":"+r.Param("offer")+":"+r.Param("sku"),
		func(im imageURN) string { return im.version },
		func(im imageURN) string { return versionID(base, im) })
}

// imageVersion is GET …/versions/{version} (VirtualMachineImage).
type imageVersion struct {
	imageResource
	Properties struct {
		OSDiskImage struct {
			OperatingSystem string `json:"operatingSystem"`
		} `json:"osDiskImage"`
		DataDiskImages   []any             `json:"dataDiskImages"`
		HyperVGeneration string            `json:"hyperVGeneration"`
		Architecture     string            `json:"architecture"`
		Features         []imageFeature    `json:"features,omitempty"`
		ImageDeprecation map[string]string `json:"imageDeprecationStatus"`
	} `json:"properties"`
}

type imageFeature struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// getImageVersion answers any version of a mapped platform image, as
// catalogue lookups of a pinned version expect.
func (s *server) getImageVersion(_ context.Context, r *arm.Request) (*arm.Response, error) {
	im := imageURN{r.Param("pub"), r.Param("offer"), r.Param("sku"), r.Param("version")}
	if _, err := s.images.Map(im.ref()); err != nil {
		return nil, imageNotFound("image " + im.ref().String())
	}
	for _, c := range s.catalogue() { // the catalogue's spelling
		if strings.EqualFold(c.publisher, im.publisher) && strings.EqualFold(c.offer, im.offer) && strings.EqualFold(c.sku, im.sku) {
			im.publisher, im.offer, im.sku = c.publisher, c.offer, c.sku
		}
	}
	var v imageVersion
	v.ID = versionID(imageBase(r.Param("sub"), r.Param("loc")), im)
	v.Name, v.Location = im.version, arm.NormalizeLocation(r.Param("loc"))
	v.Properties.OSDiskImage.OperatingSystem = im.ref().OS()
	v.Properties.DataDiskImages = []any{}
	sku := strings.ToLower(im.sku)
	v.Properties.HyperVGeneration = "V1"
	if strings.Contains(sku, "gen2") || strings.HasSuffix(sku, "-g2") || strings.Contains(sku, "gensecond") || im.offer == "ubuntu-24_04-lts" {
		v.Properties.HyperVGeneration = "V2"
	}
	v.Properties.Architecture = "x64"
	if strings.Contains(sku, "arm64") {
		v.Properties.Architecture = "Arm64"
	}
	v.Properties.ImageDeprecation = map[string]string{"imageState": "Active"}
	return arm.JSON(http.StatusOK, &v), nil
}

// aliasDoc serves the image alias document in the format of Azure's
// aliases.json (outputs.aliases.value.{Linux,Windows}.{alias}), for
// `az cloud register --endpoint-vm-image-alias-doc {endpoint}/metadata/vm-image-aliases`:
// az 2.45 then knows the aliases of newer releases (Ubuntu2204, Debian12, ...).
func (s *server) aliasDoc(_ context.Context, _ *arm.Request) (*arm.Response, error) {
	value := map[string]map[string]any{workload.OSLinux: {}, workload.OSWindows: {}}
	for _, a := range imageAliases {
		value[a.os][a.alias] = map[string]string{"publisher": a.publisher, "offer": a.offer, "sku": a.sku,
			"version": a.version, "architecture": a.architecture}
	}
	return arm.JSON(http.StatusOK, map[string]any{
		"$schema":        "http://schema.management.azure.com/schemas/2015-01-01/deploymentTemplate.json",
		"contentVersion": "1.0.0.0", "parameters": map[string]any{}, "variables": map[string]any{}, "resources": []any{},
		"outputs": map[string]any{"aliases": map[string]any{"type": "object", "value": value}},
	}), nil
}

// registerImages registers the routes of images.go and the image map's
// part of GET /nimbus/info.
func registerImages(s *server) {
	base := "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/publishers"
	s.Handle(http.MethodGet, base, Versions, s.listImagePublishers)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers", Versions, s.listImageOffers)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus", Versions, s.listImageSKUs)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions", Versions, s.listImageVersions)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions/{version}", Versions, s.getImageVersion)
	s.HandlePublic(http.MethodGet, "/metadata/vm-image-aliases", s.aliasDoc)
	s.AddInfo("images", func() any { return s.images })
}
