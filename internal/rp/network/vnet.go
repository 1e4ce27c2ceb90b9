package network

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// vnetModel implements Model for Microsoft.Network/virtualNetworks; subnets
// are stored inline and also served through their child endpoints.
type vnetModel struct{ s *server }

var _ arm.Model = vnetModel{}

// New implements Model.
func (vnetModel) New() arm.Object { return &resource.VirtualNetwork{} }

// Prepare validates address spaces and subnets, and refuses to remove or
// re-address a subnet that something references.
func (vnetModel) Prepare(ctx context.Context, tx *arm.Tx, obj, old arm.Object) error {
	v := obj.(*resource.VirtualNetwork)
	if err := v.Normalize(); err != nil {
		return err
	}
	for i, sn := range v.Properties.Subnets {
		for _, r := range []struct {
			name string
			ref  *resource.SubResource
			typ  string
		}{
			{"networkSecurityGroup", sn.Properties.NetworkSecurityGroup, "Microsoft.Network/networkSecurityGroups"},
			{"routeTable", sn.Properties.RouteTable, "Microsoft.Network/routeTables"},
			{"natGateway", sn.Properties.NatGateway, "Microsoft.Network/natGateways"},
		} {
			if r.ref == nil || r.ref.ID == "" {
				continue
			}
			path := fmt.Sprintf("properties.subnets[%d].properties.%s.id", i, r.name)
			if err := arm.CheckReference(ctx, tx, sn.ID, path, r.ref.ID, r.typ); err != nil {
				return err
			}
		}
	}
	if old == nil {
		v.Properties.ResourceGUID = resource.NewGUID()
		return nil
	}
	prev := old.(*resource.VirtualNetwork)
	v.Properties.ResourceGUID = prev.Properties.ResourceGUID
	for _, ps := range prev.Properties.Subnets {
		ns := v.Subnet(ps.Name)
		if ns != nil && slices.Equal(ns.Prefixes(), ps.Prefixes()) {
			continue
		}
		refs, err := arm.Referrers(ctx, tx, ps.ID, false)
		if err != nil {
			return err
		}
		if len(refs) == 0 {
			if ns == nil {
				if err := releaseSubnetAllocations(ctx, tx, ps.ID); err != nil {
					return err
				}
			}
			continue
		}
		if ns == nil {
			return resource.InUseSubnetError(ps.ID, refs[0].Source)
		}
		return resource.BadRequest("InUseSubnetCannotBeUpdated",
			"Subnet %s is in use by %s and its address prefix cannot be changed.", ps.ID, refs[0].Source)
	}
	return nil
}

// References implements Model: subnets point at their network security group.
func (vnetModel) References(obj arm.Object) []resource.Ref {
	var out []resource.Ref
	for _, sn := range obj.(*resource.VirtualNetwork).Properties.Subnets {
		if g := sn.Properties.NetworkSecurityGroup; g != nil && g.ID != "" {
			out = append(out, resource.Ref{Source: sn.ID, Target: g.ID})
		}
	}
	return out
}

// Release refuses to delete a network whose subnets are in use, and
// releases whatever address allocations its subnets still hold (left by
// resources deleted in the same write, such as a group delete).
func (vnetModel) Release(ctx context.Context, tx *arm.Tx, obj arm.Object) error {
	v := obj.(*resource.VirtualNetwork)
	refs, err := arm.Referrers(ctx, tx, v.ID, true)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return resource.InUseSubnetError(refs[0].Target, refs[0].Source)
	}
	for _, sn := range v.Properties.Subnets {
		if err := releaseSubnetAllocations(ctx, tx, sn.ID); err != nil {
			return err
		}
	}
	return nil
}

// releaseSubnetAllocations stages the release of every private address allocated in a subnet.
func releaseSubnetAllocations(ctx context.Context, tx *arm.Tx, subnetID string) error {
	kvs, err := tx.List(ctx, ipam.SubnetPrefix(subnetID))
	if err != nil {
		return err
	}
	for _, kv := range kvs {
		tx.Delete(kv.Key, store.AnyRevision)
	}
	return nil
}

// Render fills each subnet's ipConfigurations from the reference index.
func (vnetModel) Render(ctx context.Context, rd arm.Reader, obj arm.Object) error {
	v := obj.(*resource.VirtualNetwork)
	refs, err := arm.Referrers(ctx, rd, v.ID, true)
	if err != nil {
		return err
	}
	for i := range v.Properties.Subnets {
		s := &v.Properties.Subnets[i]
		s.Properties.IPConfigurations = nil
		for _, r := range refs {
			if resource.SameID(r.Target, s.ID) {
				s.Properties.IPConfigurations = append(s.Properties.IPConfigurations, resource.SubResource{ID: r.Source})
			}
		}
	}
	return nil
}

// subnet child endpoints

func (s *server) vnetKind() *arm.Kind { return s.Kind(resource.VirtualNetworkType) }

func subnetParent(r *arm.Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), resource.VirtualNetworkType, r.Param("name"))
}

func subnetNotFound(vnet resource.ID, name string) error {
	return resource.NotFound("NotFound", "Resource %s not found.", vnet.Child("subnets", name))
}

func (s *server) getSubnet(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	k := s.vnetKind()
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, k, subnetParent(r))
	if err != nil {
		return nil, err
	}
	if obj, err = s.Render(ctx, k, obj); err != nil {
		return nil, err
	}
	sn := obj.(*resource.VirtualNetwork).Subnet(r.Param("subnet"))
	if sn == nil {
		return nil, subnetNotFound(subnetParent(r), r.Param("subnet"))
	}
	return arm.JSON(http.StatusOK, sn), nil
}

func (s *server) listSubnets(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	k := s.vnetKind()
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, k, subnetParent(r))
	if err != nil {
		return nil, err
	}
	if obj, err = s.Render(ctx, k, obj); err != nil {
		return nil, err
	}
	var items []any
	for i := range obj.(*resource.VirtualNetwork).Properties.Subnets {
		items = append(items, &obj.(*resource.VirtualNetwork).Properties.Subnets[i])
	}
	return r.Page(items)
}

func (s *server) putSubnet(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	k := s.vnetKind()
	var body resource.Subnet
	if err := r.Decode(&body); err != nil {
		return nil, err
	}
	name := r.Param("subnet")
	body.Name = name
	created := false
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: subnetParent(r), Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.NotFound("ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' not found.", r.Param("name"))
		}
		v := old.(*resource.VirtualNetwork)
		cur := v.Subnet(name)
		if err := arm.CheckPreconditions(r.HTTP.Header.Get("If-Match"), r.HTTP.Header.Get("If-None-Match"), cur != nil, subnetEtag(cur)); err != nil {
			return nil, err
		}
		created = cur == nil
		if cur == nil {
			v.Properties.Subnets = append(v.Properties.Subnets, body)
		} else {
			body.Name = cur.Name
			*cur = body
		}
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	out, err := s.Render(ctx, k, res.Object)
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.Async(status, out.(*resource.VirtualNetwork).Subnet(name), res.Op), nil
}

func subnetEtag(s *resource.Subnet) string {
	if s == nil {
		return ""
	}
	return s.Etag
}

func (s *server) deleteSubnet(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	k := s.vnetKind()
	name := r.Param("subnet")
	existed := true
	res, err := s.Apply(ctx, arm.Write{Kind: k, ID: subnetParent(r), Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
		if old == nil {
			return nil, resource.NotFound("ParentResourceNotFound", "Can not perform requested operation on nested resource. Parent resource '%s' not found.", r.Param("name"))
		}
		v := old.(*resource.VirtualNetwork)
		cur := v.Subnet(name)
		if err := arm.CheckPreconditions(r.HTTP.Header.Get("If-Match"), "", cur != nil, subnetEtag(cur)); err != nil {
			return nil, err
		}
		existed = cur != nil
		v.Properties.Subnets = slices.DeleteFunc(v.Properties.Subnets, func(x resource.Subnet) bool { return strings.EqualFold(x.Name, name) })
		return v, nil
	}})
	if err != nil {
		return nil, err
	}
	if !existed {
		return arm.NoContent(http.StatusNoContent), nil
	}
	return r.Accepted(res.Op), nil
}

// registerVnet registers the routes of vnet.go.
func registerVnet(s *server) {
	s.RegisterKind(&arm.Kind{Type: resource.VirtualNetworkType, Versions: Versions, Model: vnetModel{s}, Children: []string{"subnets"},
		CheckName: func(name string) error {
			return resource.CheckNetworkName(name, resource.MinVirtualNetworkNameLen, resource.MaxVirtualNetworkNameLen)
		}})
	base := "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/virtualNetworks/{name}/subnets"
	s.Handle(http.MethodGet, base, Versions, s.listSubnets)
	s.Handle(http.MethodGet, base+"/{subnet}", Versions, s.getSubnet)
	s.Handle(http.MethodPut, base+"/{subnet}", Versions, s.putSubnet)
	s.Handle(http.MethodDelete, base+"/{subnet}", Versions, s.deleteSubnet)
}
