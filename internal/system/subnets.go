package system

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// subnets reads subnet prefixes from their virtual networks for the
// scale-set controller.
type subnets struct {
	st store.Store
}

// SubnetPrefix reads a subnet's addressPrefix from its virtual network.
func (a subnets) SubnetPrefix(ctx context.Context, subnetID string) (netip.Prefix, error) {
	id, err := resource.ParseID(subnetID)
	if err != nil || len(id.Types) != 2 || !strings.EqualFold(id.Types[1], "subnets") {
		return netip.Prefix{}, fmt.Errorf("subnet id %q: not a subnet", subnetID)
	}
	kv, err := a.st.Get(ctx, resource.Key(id))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, err)
	}
	var vnet struct {
		Properties struct {
			Subnets []struct {
				Name       string `json:"name"`
				Properties struct {
					AddressPrefix   string   `json:"addressPrefix"`
					AddressPrefixes []string `json:"addressPrefixes"`
				} `json:"properties"`
			} `json:"subnets"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(kv.Value, &vnet); err != nil {
		return netip.Prefix{}, fmt.Errorf("decode virtual network of %s: %w", subnetID, err)
	}
	for _, sn := range vnet.Properties.Subnets {
		if !strings.EqualFold(sn.Name, id.Names[1]) {
			continue
		}
		p := sn.Properties.AddressPrefix
		if p == "" && len(sn.Properties.AddressPrefixes) > 0 {
			p = sn.Properties.AddressPrefixes[0]
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("subnet %s prefix %q: %w", subnetID, p, err)
		}
		return pfx.Masked(), nil
	}
	return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, store.ErrNotFound)
}
