package network

import (
	"context"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// asgModel implements Model for Microsoft.Network/applicationSecurityGroups:
// a group has no rules of its own; security rules and scale-set
// ipConfigurations point at it.
type asgModel struct{}

var _ arm.Model = asgModel{}

// New implements Model.
func (asgModel) New() arm.Object { return &resource.ApplicationSecurityGroup{} }

// Prepare keeps the group's resourceGuid.
func (asgModel) Prepare(_ context.Context, _ *arm.Tx, obj, old arm.Object) error {
	a := obj.(*resource.ApplicationSecurityGroup)
	if old != nil {
		a.Properties.ResourceGUID = old.(*resource.ApplicationSecurityGroup).Properties.ResourceGUID
	}
	if a.Properties.ResourceGUID == "" {
		a.Properties.ResourceGUID = resource.NewGUID()
	}
	return nil
}

// References implements Model: a group points at nothing.
func (asgModel) References(arm.Object) []resource.Ref { return nil }

// Release refuses to delete a group that a security rule or a scale set
// still names (InUseApplicationSecurityGroupCannotBeDeleted; Azure's
// message names the user).
func (asgModel) Release(ctx context.Context, tx *arm.Tx, obj arm.Object) error {
	a := obj.(*resource.ApplicationSecurityGroup)
	refs, err := arm.Referrers(ctx, tx, a.ID, false)
	if err != nil {
		return err
	}
	if len(refs) > 0 {
		return resource.BadRequest("InUseApplicationSecurityGroupCannotBeDeleted",
			"Application security group %s cannot be deleted because it is in use by the following resources: %s.", a.ID, refs[0].Source)
	}
	return nil
}

// Render implements Model: nothing is computed at read time.
func (asgModel) Render(context.Context, arm.Reader, arm.Object) error { return nil }

// registerAsg registers the application security group kind.
func registerAsg(s *server) {
	s.RegisterKind(&arm.Kind{Type: resource.ApplicationSecurityGroupType, Versions: Versions, Model: asgModel{}, CheckName: networkName})
}
