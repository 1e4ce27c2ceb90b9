package workload

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"nimbus/internal/driver"
)

// ImageMapFile is the image map's file name in the data directory: when it
// exists, nimbus serve reads it instead of DefaultImageMap.
const ImageMapFile = "images.json"

// OS names as Azure spells them (osDisk.osType, osDiskImage.operatingSystem).
const (
	OSLinux   = "Linux"
	OSWindows = "Windows"
)

// What a map entry does with customData and extensions.
const (
	// Store keeps them in the model and reports them, without running them.
	Store = "store"
	// Run runs them in the instance: customData as a shell script (as
	// cloud-init runs user data), then each extension's commandToExecute.
	Run = "run"
)

// ImageRef is an image reference in any of the forms Azure accepts, as a
// scale set's storageProfile carries it. The zero value names no image.
type ImageRef struct {
	// Publisher, Offer, SKU and Version name a platform (marketplace) image.
	Publisher, Offer, SKU, Version string
	// ID is a custom image or gallery image (version) id.
	ID string
	// SharedGalleryImageID and CommunityGalleryImageID are the gallery forms.
	SharedGalleryImageID, CommunityGalleryImageID string
	// URI is an unmanaged osDisk.image.uri (a VHD).
	URI string
	// OSType is osDisk.osType ("" when the request does not say).
	OSType string
}

// IsZero reports whether r names no image at all.
func (r ImageRef) IsZero() bool {
	return r.Publisher == "" && r.Offer == "" && r.SKU == "" && r.Version == "" && r.ID == "" &&
		r.SharedGalleryImageID == "" && r.CommunityGalleryImageID == "" && r.URI == ""
}

// String names r as a user would write it: a URN publisher:offer:sku:version
// for a platform image, else its id or URI.
func (r ImageRef) String() string {
	switch {
	case r.ID != "":
		return r.ID
	case r.SharedGalleryImageID != "":
		return r.SharedGalleryImageID
	case r.CommunityGalleryImageID != "":
		return r.CommunityGalleryImageID
	case r.URI != "":
		return r.URI
	}
	return r.Publisher + ":" + r.Offer + ":" + r.SKU + ":" + r.Version
}

// IsPlatform reports whether r is a platform image (publisher/offer/sku).
func (r ImageRef) IsPlatform() bool {
	return r.ID == "" && r.SharedGalleryImageID == "" && r.CommunityGalleryImageID == "" && r.URI == ""
}

// windowsPublishers publish Windows images on Azure's marketplace.
var windowsPublishers = []string{
	"MicrosoftWindowsServer", "MicrosoftWindowsDesktop", "MicrosoftSQLServer", "MicrosoftVisualStudio",
	"MicrosoftWindowsServerHPCPack", "MicrosoftSharePoint", "MicrosoftDynamicsAX", "MicrosoftBizTalkServer",
	"microsoft-ads", "MicrosoftAzureSiteRecovery",
}

// OS returns the operating system of r: osDisk.osType when given, Windows
// for the Windows publishers and offers of Azure's marketplace (and az's
// Windows aliases), else Linux.
func (r ImageRef) OS() string {
	switch {
	case strings.EqualFold(r.OSType, OSWindows):
		return OSWindows
	case strings.EqualFold(r.OSType, OSLinux):
		return OSLinux
	}
	for _, p := range windowsPublishers {
		if strings.EqualFold(r.Publisher, p) {
			return OSWindows
		}
	}
	lower := strings.ToLower(r.Offer + " " + r.SKU + " " + r.String())
	if strings.Contains(lower, "windows") || strings.Contains(lower, "win2") {
		return OSWindows
	}
	return OSLinux
}

// ImageMatch selects images. Every non-empty field must match; patterns are
// globs ("*" matches any run of characters, "/" included, "?" any one;
// "Canonical" only Canonical), compared case-insensitively. The zero ImageMatch matches every image.
type ImageMatch struct {
	Publisher string `json:"publisher,omitempty"`
	Offer     string `json:"offer,omitempty"`
	SKU       string `json:"sku,omitempty"`
	Version   string `json:"version,omitempty"`
	// ID matches the id of a custom or gallery image (either gallery form
	// too); an image without one does not match a non-empty ID.
	ID string `json:"id,omitempty"`
	// URI matches an unmanaged VHD's URI.
	URI string `json:"uri,omitempty"`
	// OS is Linux or Windows (ImageRef.OS).
	OS string `json:"os,omitempty"`
}

// ImageEntry is one row of the image map: the images it matches and the
// nimbus workload they run as.
type ImageEntry struct {
	// Name identifies the entry in the instance view and in errors.
	Name  string     `json:"name"`
	Match ImageMatch `json:"match"`
	// Workload is the nimbus workload the images run as: echo or script.
	Workload Kind `json:"workload"`
	// CustomData is Run or Store (default: Run for the script workload,
	// Store otherwise).
	CustomData string `json:"customData,omitempty"`
	// Extensions is Run or Store (default Store).
	Extensions string `json:"extensions,omitempty"`
}

// RunsCustomData reports whether the entry's instances run customData.
func (e ImageEntry) RunsCustomData() bool {
	if e.CustomData == "" {
		return e.Workload == KindScript
	}
	return e.CustomData == Run
}

// RunsExtensions reports whether the entry's instances run extensions.
func (e ImageEntry) RunsExtensions() bool { return e.Extensions == Run }

// ImageMap maps the images users write to nimbus workloads: the first entry
// whose Match matches an image decides. An image no entry matches cannot
// run and is refused when a scale set names it. The zero value maps
// nothing; DefaultImageMap maps everything. An ImageMap is not changed
// after it is built, and is safe for concurrent reads.
type ImageMap struct {
	Images []ImageEntry `json:"images"`
}

// DefaultImageMap is the map nimbus uses without images.json: nimbus's own
// images as themselves, every other Windows and Linux image (platform
// images, az's aliases, gallery and custom images, VHDs) as the echo
// workload, which serves every port the scale set's load balancers send to.
func DefaultImageMap() *ImageMap {
	return &ImageMap{Images: []ImageEntry{
		{Name: "nimbus-echo", Match: ImageMatch{Publisher: "nimbus", Offer: "workloads", SKU: "echo"}, Workload: KindEcho},
		{Name: "nimbus-script", Match: ImageMatch{Publisher: "nimbus", Offer: "workloads", SKU: "script"}, Workload: KindScript},
		{Name: "windows", Match: ImageMatch{OS: OSWindows}, Workload: KindEcho},
		{Name: "linux", Match: ImageMatch{OS: OSLinux}, Workload: KindEcho},
	}}
}

// ErrImageNotMapped is wrapped by Map's error for an image no entry matches.
var ErrImageNotMapped = errors.New("image not mapped to a nimbus workload")

// ParseImageMap decodes and checks an image map (the JSON of images.json).
func ParseImageMap(b []byte) (*ImageMap, error) {
	var m ImageMap
	d := json.NewDecoder(strings.NewReader(string(b)))
	d.DisallowUnknownFields()
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("image map: %w", err)
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// LoadImageMap reads the image map file at p; a missing file gives
// DefaultImageMap.
func LoadImageMap(p string) (*ImageMap, error) {
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return DefaultImageMap(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("image map: %w", err)
	}
	m, err := ParseImageMap(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}

// Validate checks every entry: a name, a known workload, valid patterns and
// customData / extensions values.
func (m *ImageMap) Validate() error {
	for i, e := range m.Images {
		if e.Name == "" {
			return fmt.Errorf("image map: entry %d has no name", i)
		}
		if _, err := ParseKind(string(e.Workload)); err != nil {
			return fmt.Errorf("image map: entry %q: %w", e.Name, err)
		}
		for _, v := range []string{e.CustomData, e.Extensions} {
			if v != "" && v != Run && v != Store {
				return fmt.Errorf("image map: entry %q: %q: want %q or %q", e.Name, v, Run, Store)
			}
		}
		mt := e.Match
		if mt.OS != "" && mt.OS != OSLinux && mt.OS != OSWindows {
			return fmt.Errorf("image map: entry %q: os %q: want %s or %s", e.Name, mt.OS, OSLinux, OSWindows)
		}
	}
	return nil
}

// glob reports whether s matches pattern p ("" matches everything),
// case-insensitively: "*" matches any run of characters, "?" any one.
func glob(p, s string) bool {
	if p == "" {
		return true
	}
	p, s = strings.ToLower(p), strings.ToLower(s)
	// Iterative wildcard matching with backtracking to the last "*".
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi, mark = star+1, mark+1
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// Matches reports whether mt selects r.
func (mt ImageMatch) Matches(r ImageRef) bool {
	id := r.ID
	if id == "" {
		id = r.SharedGalleryImageID
	}
	if id == "" {
		id = r.CommunityGalleryImageID
	}
	if mt.ID != "" && (id == "" || !glob(mt.ID, id)) {
		return false
	}
	if mt.URI != "" && (r.URI == "" || !glob(mt.URI, r.URI)) {
		return false
	}
	if (mt.Publisher != "" || mt.Offer != "" || mt.SKU != "" || mt.Version != "") && !r.IsPlatform() {
		return false
	}
	return glob(mt.Publisher, r.Publisher) && glob(mt.Offer, r.Offer) && glob(mt.SKU, r.SKU) &&
		glob(mt.Version, r.Version) && (mt.OS == "" || strings.EqualFold(mt.OS, r.OS()))
}

// Map returns the entry that runs r. An image no entry matches is an error
// wrapping ErrImageNotMapped and driver.ErrUnknownImage that names the
// image; so is a reference naming no image.
func (m *ImageMap) Map(r ImageRef) (ImageEntry, error) {
	if !r.IsZero() {
		for _, e := range m.Images {
			if e.Match.Matches(r) {
				return e, nil
			}
		}
	}
	var names []string
	for _, e := range m.Images {
		names = append(names, e.Name)
	}
	return ImageEntry{}, fmt.Errorf("%w: %w: the image '%s' (%s) is not in nimbus's image map (entries: %s; see GET /nimbus/info and %s)",
		driver.ErrUnknownImage, ErrImageNotMapped, r.String(), r.OS(), strings.Join(names, ", "), ImageMapFile)
}

// Image returns the nimbus image (driver.Image) the entry's instances run.
func (e ImageEntry) Image() driver.Image {
	return driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: string(e.Workload), Version: "latest"}
}
