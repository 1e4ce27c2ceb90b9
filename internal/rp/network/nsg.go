package network

import (
	"context"
	"fmt"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// nsgModel implements Model for Microsoft.Network/networkSecurityGroups
// (see resource.NetworkSecurityGroup; controller/lb enforces them).
type nsgModel struct{ s *server }

var _ arm.Model = nsgModel{}

// New implements Model.
func (nsgModel) New() arm.Object { return &resource.NetworkSecurityGroup{} }

// Prepare validates the rules, checks that the application security
// groups they name exist, and keeps the group's resourceGuid.
func (nsgModel) Prepare(ctx context.Context, tx *arm.Tx, obj, old arm.Object) error {
	n := obj.(*resource.NetworkSecurityGroup)
	if old != nil {
		n.Properties.ResourceGUID = old.(*resource.NetworkSecurityGroup).Properties.ResourceGUID
	}
	if n.Properties.ResourceGUID == "" {
		n.Properties.ResourceGUID = resource.NewGUID()
	}
	n.Properties.Subnets, n.Properties.NetworkInterfaces = nil, nil
	if err := resource.NormalizeNSG(n); err != nil {
		return err
	}
	for i, r := range n.Properties.SecurityRules {
		for _, g := range []struct {
			name string
			refs []resource.SubResource
		}{{"sourceApplicationSecurityGroups", r.Properties.SourceApplicationSecurityGroups}, {"destinationApplicationSecurityGroups", r.Properties.DestinationApplicationSecurityGroups}} {
			for j, ref := range g.refs {
				path := fmt.Sprintf("properties.securityRules[%d].properties.%s[%d].id", i, g.name, j)
				if err := arm.CheckReference(ctx, tx, r.ID, path, ref.ID, resource.ApplicationSecurityGroupType); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// References implements Model: rules point at the application security
// groups they name.
func (nsgModel) References(obj arm.Object) []resource.Ref {
	var out []resource.Ref
	for _, r := range obj.(*resource.NetworkSecurityGroup).Properties.SecurityRules {
		for _, g := range append(append([]resource.SubResource(nil), r.Properties.SourceApplicationSecurityGroups...), r.Properties.DestinationApplicationSecurityGroups...) {
			if g.ID != "" {
				out = append(out, resource.Ref{Source: r.ID, Target: g.ID})
			}
		}
	}
	return out
}

// Release refuses to delete a group a subnet or NIC still uses
// (InUseNetworkSecurityGroupCannotBeDeleted).
func (nsgModel) Release(ctx context.Context, tx *arm.Tx, obj arm.Object) error {
	n := obj.(*resource.NetworkSecurityGroup)
	refs, err := arm.Referrers(ctx, tx, n.ID, false)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return resource.BadRequest("InUseNetworkSecurityGroupCannotBeDeleted",
			"Network security group %s cannot be deleted because it is in use by the following resources: %s.", n.ID, refs[0].Source)
	}
	return nil
}

// Render fills the subnets and network interfaces that use the group.
func (nsgModel) Render(ctx context.Context, rd arm.Reader, obj arm.Object) error {
	n := obj.(*resource.NetworkSecurityGroup)
	refs, err := arm.Referrers(ctx, rd, n.ID, false)
	if err != nil {
		return err
	}
	n.Properties.Subnets, n.Properties.NetworkInterfaces = []resource.SubResource{}, []resource.SubResource{}
	for _, r := range refs {
		if strings.Contains(strings.ToLower(r.Source), "/subnets/") {
			n.Properties.Subnets = append(n.Properties.Subnets, resource.SubResource{ID: r.Source})
		} else {
			n.Properties.NetworkInterfaces = append(n.Properties.NetworkInterfaces, resource.SubResource{ID: r.Source})
		}
	}
	if n.Properties.SecurityRules == nil {
		n.Properties.SecurityRules = []resource.SecurityRule{}
	}
	return nil
}

// registerNsg registers the routes of nsg.go.
func registerNsg(s *server) {
	s.RegisterKind(&arm.Kind{Type: resource.NetworkSecurityGroupType, Versions: Versions, Model: nsgModel{s}, CheckName: networkName,
		Children: []string{"securityRules", "defaultSecurityRules"}})
	registerNSGRules(s)
}
