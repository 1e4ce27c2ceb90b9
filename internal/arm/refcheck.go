package arm

import (
	"context"
	"strings"

	"nimbus/internal/resource"
)

// CheckReference validates a reference property at path (e.g.
// "properties.subnets[0].properties.networkSecurityGroup.id") of resource
// owner: ref must be a well-formed resource ID (400
// LinkedInvalidPropertyId), of type wantType (400
// InvalidJsonReferenceWrongType) and name a resource that exists (400
// InvalidResourceReference). Children are checked through their top-level
// resource's existence.
func CheckReference(ctx context.Context, rd Reader, owner, path, ref, wantType string) error {
	id, err := resource.ParseID(ref)
	if err != nil {
		e := resource.BadRequest("LinkedInvalidPropertyId",
			"Property id '%s' at path '%s' is invalid. Expect fully qualified resource Id that start with '/subscriptions/{subscriptionId}' or '/providers/{resourceProviderNamespace}/'.", ref, path)
		e.Target = path
		return e
	}
	if !strings.EqualFold(id.Type(), wantType) {
		e := resource.BadRequest("InvalidJsonReferenceWrongType",
			"Reference Id %s is referencing resource of a wrong type. The Id is expected to reference resources of type %s. Path %s.", ref, wantType, path)
		e.Target = path
		return e
	}
	if _, err := rd.Get(ctx, resource.Key(id)); IsNotFound(err) {
		e := resource.BadRequest("InvalidResourceReference", "Resource %s referenced by resource %s was not found. Please make sure that the referenced resource exists, and that both resources are in the same region.", ref, owner)
		e.Target = path
		return e
	} else if err != nil {
		return err
	}
	return nil
}
