package compute

import (
	"context"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/driver"
	"nimbus/internal/resource"
)

// The platform-image catalogue az reads for `--image publisher:offer:sku:version`
// (GET …/publishers/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions):
// nimbus's images are the ones its drivers run (driver.Images), each with the
// single version "latest". Unknown publishers, offers and SKUs are 404, as in
// Azure, which az only warns about.

// imageURN is one image of driver.Images split into its parts.
type imageURN struct{ publisher, offer, sku, version string }

func nimbusImages() []imageURN {
	var out []imageURN
	for _, s := range driver.Images {
		p := strings.Split(s, ":")
		if len(p) == 4 {
			out = append(out, imageURN{p[0], p[1], p[2], p[3]})
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
	return resource.NotFound("NotFound", "Artifact: VMImage was not found. %s is not available; available images: %s.", what, strings.Join(driver.Images, ", "))
}

// matchImages returns the images matching the non-empty parts.
func matchImages(pub, offer, sku, version string) []imageURN {
	var out []imageURN
	for _, im := range nimbusImages() {
		if (pub == "" || strings.EqualFold(pub, im.publisher)) &&
			(offer == "" || strings.EqualFold(offer, im.offer)) &&
			(sku == "" || strings.EqualFold(sku, im.sku)) &&
			(version == "" || strings.EqualFold(version, im.version)) {
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
	return imageList(r, matchImages("", "", "", ""), "publishers",
		func(im imageURN) string { return im.publisher },
		func(im imageURN) string { return base + im.publisher })
}

func (s *server) listImageOffers(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, matchImages(r.Param("pub"), "", "", ""), "publisher "+r.Param("pub"),
		func(im imageURN) string { return im.offer },
		func(im imageURN) string { return base + im.publisher + "/ArtifactTypes/VMImage/Offers/" + im.offer })
}

func (s *server) listImageSKUs(_ context.Context, r *arm.Request) (*arm.Response, error) {
	base := imageBase(r.Param("sub"), r.Param("loc"))
	return imageList(r, matchImages(r.Param("pub"), r.Param("offer"), "", ""), "offer "+r.Param("pub")+":"+r.Param("offer"),
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
	return imageList(r, matchImages(r.Param("pub"), r.Param("offer"), r.Param("sku"), ""),
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
		DataDiskImages   []any  `json:"dataDiskImages"`
		HyperVGeneration string `json:"hyperVGeneration"`
		Architecture     string `json:"architecture"`
	} `json:"properties"`
}

func (s *server) getImageVersion(_ context.Context, r *arm.Request) (*arm.Response, error) {
	ims := matchImages(r.Param("pub"), r.Param("offer"), r.Param("sku"), r.Param("version"))
	if len(ims) == 0 {
		return nil, imageNotFound("image " + r.Param("pub") + ":" + r.Param("offer") + ":" + r.Param("sku") + ":" + r.Param("version"))
	}
	im := ims[0]
	var v imageVersion
	v.ID = versionID(imageBase(r.Param("sub"), r.Param("loc")), im)
	v.Name, v.Location = im.version, arm.NormalizeLocation(r.Param("loc"))
	v.Properties.OSDiskImage.OperatingSystem = "Linux"
	v.Properties.HyperVGeneration = "V1"
	v.Properties.Architecture = "x64"
	return arm.JSON(http.StatusOK, &v), nil
}

// registerDeploymentImages registers the routes of deployment_images.go.
func registerDeploymentImages(s *server) {
	base := "/subscriptions/{sub}/providers/Microsoft.Compute/locations/{loc}/publishers"
	s.Handle(http.MethodGet, base, Versions, s.listImagePublishers)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers", Versions, s.listImageOffers)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus", Versions, s.listImageSKUs)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions", Versions, s.listImageVersions)
	s.Handle(http.MethodGet, base+"/{pub}/artifacttypes/vmimage/offers/{offer}/skus/{sku}/versions/{version}", Versions, s.getImageVersion)
}
