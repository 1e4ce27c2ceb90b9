package compute

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"nimbus/internal/arm"
)

// Resource SKUs (GET {sub}/providers/Microsoft.Compute/skus, what
// `az vm list-skus` and templates' size checks read). nimbus runs any size
// a scale set names (sku.name is kept as given; instances are workloads, not
// VMs of that size); the list names the common general-purpose sizes so
// clients that check a size exists find it.

// vmSize is one listed size.
type vmSize struct {
	name, family string
	vCPUs        int
	memoryGB     string
}

var vmSizes = []vmSize{
	{"Standard_B1s", "standardBSFamily", 1, "1"},
	{"Standard_B1ms", "standardBSFamily", 1, "2"},
	{"Standard_B2s", "standardBSFamily", 2, "4"},
	{"Standard_B2ms", "standardBSFamily", 2, "8"},
	{"Standard_A1_v2", "standardAv2Family", 1, "2"},
	{"Standard_A2_v2", "standardAv2Family", 2, "4"},
	{"Standard_DS1_v2", "standardDSv2Family", 1, "3.5"},
	{"Standard_DS2_v2", "standardDSv2Family", 2, "7"},
	{"Standard_D1_v2", "standardDv2Family", 1, "3.5"},
	{"Standard_D2_v2", "standardDv2Family", 2, "7"},
	{"Standard_D2_v3", "standardDv3Family", 2, "8"},
	{"Standard_D2s_v3", "standardDSv3Family", 2, "8"},
	{"Standard_D4s_v3", "standardDSv3Family", 4, "16"},
	{"Standard_D2s_v5", "standardDSv5Family", 2, "8"},
	{"Standard_D2as_v5", "standardDASv5Family", 2, "8"},
	{"Standard_F2s_v2", "standardFSv2Family", 2, "4"},
}

// resourceSku is a ResourceSku of the list.
type resourceSku struct {
	ResourceType string            `json:"resourceType"`
	Name         string            `json:"name"`
	Tier         string            `json:"tier"`
	Size         string            `json:"size"`
	Family       string            `json:"family"`
	Locations    []string          `json:"locations"`
	LocationInfo []skuLocationInfo `json:"locationInfo"`
	Capabilities []skuCapability   `json:"capabilities"`
	Restrictions []any             `json:"restrictions"`
}

type skuLocationInfo struct {
	Location string   `json:"location"`
	Zones    []string `json:"zones"`
}

type skuCapability struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// listSkus serves GET {sub}/providers/Microsoft.Compute/skus, filtered by
// $filter=location eq '{loc}' when given.
func (s *server) listSkus(_ context.Context, r *arm.Request) (*arm.Response, error) {
	locs := arm.Locations
	if f := r.Query("$filter"); f != "" {
		_, v, ok := strings.Cut(f, "'")
		if v, _, ok2 := strings.Cut(v, "'"); ok && ok2 {
			locs = []string{arm.NormalizeLocation(v)}
		}
	}
	items := []any{}
	for _, sz := range vmSizes {
		for _, loc := range locs {
			items = append(items, &resourceSku{
				ResourceType: "virtualMachines", Name: sz.name, Tier: "Standard",
				Size: strings.TrimPrefix(sz.name, "Standard_"), Family: sz.family,
				Locations: []string{loc}, LocationInfo: []skuLocationInfo{{Location: loc, Zones: []string{"1", "2", "3"}}},
				Capabilities: []skuCapability{
					{"vCPUs", strconv.Itoa(sz.vCPUs)}, {"MemoryGB", sz.memoryGB}, {"MaxNetworkInterfaces", "2"},
					{"HyperVGenerations", "V1,V2"}, {"CpuArchitectureType", "x64"}, {"LowPriorityCapable", "True"},
					{"AcceleratedNetworkingEnabled", "True"}, {"PremiumIO", "True"},
				},
				Restrictions: []any{},
			})
		}
	}
	return r.Page(items)
}

// registerSkus registers the routes of skus.go.
func registerSkus(s *server) {
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/Microsoft.Compute/skus", Versions, s.listSkus)
}
