package network

import (
	"context"
	"net/netip"

	"nimbus/internal/arm"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
)

// publicIPModel implements Model for Microsoft.Network/publicIPAddresses.
type publicIPModel struct{ s *server }

var _ arm.Model = publicIPModel{}

// New implements Model.
func (publicIPModel) New() arm.Object { return &resource.PublicIPAddress{} }

// Prepare validates the address, keeps the address it already holds (an
// update never changes the address) or allocates the lowest free one from
// the public pool, and reserves its DNS label.
func (m publicIPModel) Prepare(ctx context.Context, tx *arm.Tx, obj, old arm.Object) error {
	p := obj.(*resource.PublicIPAddress)
	if err := p.Normalize(); err != nil {
		return err
	}
	if pf := p.Properties.PublicIPPrefix; pf != nil && pf.ID != "" {
		if err := arm.CheckReference(ctx, tx, p.ID, "properties.publicIPPrefix.id", pf.ID, "Microsoft.Network/publicIPPrefixes"); err != nil {
			return err
		}
	}
	pool := m.s.PublicPool()
	if p.IsIPv6() != pool.Addr().Is6() {
		return resource.BadRequest("PublicIPAddressVersionNotSupported",
			"Public IP address %s requests %s, but the public pool %s has no such addresses.", p.ID, p.Properties.PublicIPAddressVersion, pool)
	}
	var prev *resource.PublicIPAddress
	if old != nil {
		prev = old.(*resource.PublicIPAddress)
		p.Properties.ResourceGUID = prev.Properties.ResourceGUID
	}
	if p.Properties.ResourceGUID == "" {
		p.Properties.ResourceGUID = resource.NewGUID()
	}
	if prev != nil && prev.Properties.IPAddress != "" && prev.IsIPv6() == p.IsIPv6() {
		p.Properties.IPAddress = prev.Properties.IPAddress
	} else {
		if prev != nil {
			if a, err := netip.ParseAddr(prev.Properties.IPAddress); err == nil {
				ipam.ReleasePublic(tx, a)
			}
		}
		a, err := ipam.AllocatePublic(ctx, tx, pool, p.ID)
		if err != nil {
			return err
		}
		p.Properties.IPAddress = a.String()
	}
	oldLabel, newLabel := "", ""
	if prev != nil && prev.Properties.DNSSettings != nil {
		oldLabel = prev.Properties.DNSSettings.DomainNameLabel
	}
	if p.Properties.DNSSettings != nil {
		newLabel = p.Properties.DNSSettings.DomainNameLabel
	}
	if oldLabel != "" && oldLabel != newLabel {
		ipam.ReleaseDNSLabel(tx, prev.Location, oldLabel)
	}
	if newLabel != "" {
		return ipam.ReserveDNSLabel(ctx, tx, p.Location, newLabel, p.ID)
	}
	return nil
}

// References implements Model: a public IP points at nothing nimbus tracks.
func (publicIPModel) References(arm.Object) []resource.Ref { return nil }

// Release refuses to delete an address something still references
// (InUsePublicIpAddressCannotBeDeleted) and releases its address and DNS label.
func (publicIPModel) Release(ctx context.Context, tx *arm.Tx, obj arm.Object) error {
	p := obj.(*resource.PublicIPAddress)
	refs, err := arm.Referrers(ctx, tx, p.ID, false)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return resource.InUsePublicIPError(p.ID, refs[0].Source)
	}
	if a, err := netip.ParseAddr(p.Properties.IPAddress); err == nil {
		ipam.ReleasePublic(tx, a)
	}
	if d := p.Properties.DNSSettings; d != nil {
		ipam.ReleaseDNSLabel(tx, p.Location, d.DomainNameLabel)
	}
	return nil
}

// Render sets ipConfiguration to whatever references the address.
func (publicIPModel) Render(ctx context.Context, rd arm.Reader, obj arm.Object) error {
	p := obj.(*resource.PublicIPAddress)
	refs, err := arm.Referrers(ctx, rd, p.ID, false)
	if err != nil {
		return err
	}
	p.Properties.IPConfiguration = nil
	if len(refs) > 0 {
		p.Properties.IPConfiguration = &resource.SubResource{ID: refs[0].Source}
	}
	return nil
}

// registerPublicip registers the routes of publicip.go.
func registerPublicip(s *server) {
	s.RegisterKind(&arm.Kind{Type: resource.PublicIPType, Versions: Versions, Model: publicIPModel{s}, CheckName: networkName})
}
