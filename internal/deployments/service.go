// Package deployments is nimbus's deployments service
// (Microsoft.Resources/deployments): it stores deployments at resource
// group and subscription scope, evaluates their templates
// (internal/template) and deploys every resource by sending ordinary ARM
// requests to the server's own HTTP handler, so a template goes through
// exactly the validation a client's requests do. It serves validate,
// what-if, cancel, export and the deployment operations.
package deployments

import (
	"nimbus/internal/arm"
)

// server is the service's view of Resource Manager: the ARM server whose
// store, operations and HTTP handler the deployments use.
type server struct {
	*arm.Server
}

// Register adds the deployments routes to srv. Call it once, before srv
// serves requests.
func Register(srv *arm.Server) {
	registerDeployment(&server{Server: srv})
}
