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

// SubnetPrefix returns a subnet's (first) address prefix.
func (a subnets) SubnetPrefix(ctx context.Context, subnetID string) (netip.Prefix, error) {
	id, err := resource.ParseID(subnetID)
	if err != nil || len(id.Types) != 2 || !strings.EqualFold(id.Types[1], "subnets") {
		return netip.Prefix{}, fmt.Errorf("subnet id %q: not a subnet", subnetID)
	}
	kv, err := a.st.Get(ctx, resource.Key(id))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, err)
	}
	var vnet resource.VirtualNetwork
	if err := json.Unmarshal(kv.Value, &vnet); err != nil {
		return netip.Prefix{}, fmt.Errorf("decode virtual network of %s: %w", subnetID, err)
	}
	sn := vnet.Subnet(id.Names[1])
	if sn == nil || len(sn.ParsedPrefixes()) == 0 {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, store.ErrNotFound)
	}
	return sn.ParsedPrefixes()[0].Masked(), nil
}
