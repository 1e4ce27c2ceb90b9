package network

import (
	"context"
	"math/big"
	"net/http"
	"net/netip"

	"nimbus/internal/arm"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
)

// ipAvailability is the body of …/virtualNetworks/{vn}/CheckIPAddressAvailability.
type ipAvailability struct {
	Available            bool     `json:"available"`
	AvailableIPAddresses []string `json:"availableIPAddresses"`
}

// checkIPAvailability answers whether ipAddress is free in the subnet of
// the network that contains it and, if not, up to five free addresses of
// that subnet (lowest first).
func (s *server) checkIPAvailability(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	k := s.vnetKind()
	rd := arm.StoreReader{Store: s.Store()}
	obj, _, err := s.Load(ctx, rd, k, subnetParent(r))
	if err != nil {
		return nil, err
	}
	a, perr := netip.ParseAddr(r.Query("ipAddress"))
	if perr != nil {
		return nil, resource.InvalidParameter("ipAddress", "The IP address '%s' is not a valid IP address.", r.Query("ipAddress"))
	}
	v := obj.(*resource.VirtualNetwork)
	for _, sn := range v.Properties.Subnets {
		for _, p := range sn.ParsedPrefixes() {
			if !p.Contains(a) {
				continue
			}
			used, err := ipam.Allocations(ctx, rd, sn.ID)
			if err != nil {
				return nil, err
			}
			first, last := ipam.SubnetRange(p)
			_, taken := used[a]
			out := ipAvailability{Available: !taken && a.Compare(first) >= 0 && a.Compare(last) <= 0}
			if !out.Available {
				for c := first; c.IsValid() && c.Compare(last) <= 0 && len(out.AvailableIPAddresses) < 5; c = c.Next() {
					if _, ok := used[c]; !ok {
						out.AvailableIPAddresses = append(out.AvailableIPAddresses, c.String())
					}
				}
			}
			return arm.JSON(http.StatusOK, out), nil
		}
	}
	return nil, resource.BadRequest("PrivateIPAddressNotInAnySubnet", "IP address %s does not belong to any subnet of virtual network %s.", a, v.Name)
}

// usage is one entry of …/virtualNetworks/{vn}/usages.
type usage struct {
	ID           string    `json:"id"`
	CurrentValue int64     `json:"currentValue"`
	Limit        int64     `json:"limit"`
	Name         usageName `json:"name"`
	Unit         string    `json:"unit"`
}

type usageName struct {
	Value          string `json:"value"`
	LocalizedValue string `json:"localizedValue"`
}

// listVNetUsages reports, per subnet, the allocated and usable address counts.
func (s *server) listVNetUsages(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	rd := arm.StoreReader{Store: s.Store()}
	obj, _, err := s.Load(ctx, rd, s.vnetKind(), subnetParent(r))
	if err != nil {
		return nil, err
	}
	var items []any
	for _, sn := range obj.(*resource.VirtualNetwork).Properties.Subnets {
		used, err := ipam.Allocations(ctx, rd, sn.ID)
		if err != nil {
			return nil, err
		}
		var limit int64
		for _, p := range sn.ParsedPrefixes() {
			first, last := ipam.SubnetRange(p)
			n := new(big.Int).Sub(new(big.Int).SetBytes(last.AsSlice()), new(big.Int).SetBytes(first.AsSlice()))
			n.Add(n, big.NewInt(1))
			if n.IsInt64() && n.Sign() > 0 {
				limit += n.Int64()
			}
		}
		items = append(items, usage{ID: sn.ID, CurrentValue: int64(len(used)), Limit: limit, Unit: "Count",
			Name: usageName{Value: "Subnet size and usage", LocalizedValue: "Subnet size and usage"}})
	}
	return r.Page(items)
}

// registerVnetIp registers the routes of vnet_ip.go.
func registerVnetIp(s *server) {
	base := "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{name}/"
	s.Handle(http.MethodGet, base+"CheckIPAddressAvailability", Versions, s.checkIPAvailability)
	s.Handle(http.MethodGet, base+"usages", Versions, s.listVNetUsages)
}
