// Package arm is nimbus's HTTPS front door: it speaks Azure Resource
// Manager's wire protocol (routing, api-version, bearer-token auth, LRO,
// ETags, the error envelope) so unmodified Azure SDKs and the az CLI work.
//
// # Request flow
//
// Server.ServeHTTP collapses "//", serves /metadata/endpoints, the
// managed-identity endpoint /msi/token (loopback peers owned by root or
// Config.TrustedUIDs, msi.go) and the rate-limited service-principal
// sign-in endpoints (oauth.go) without a token, verifies the bearer token (401 AuthenticationFailed /
// InvalidAuthenticationToken), matches the route case-insensitively (the
// most literal pattern wins; 404 InvalidResourceType/NotFound, 405), checks
// api-version (400 MissingApiVersionParameter, NoRegisteredProviderFound or
// InvalidApiVersionParameter), reads the body and calls the handler. A
// handler returns (*Response, error); AsARMError is the one place errors
// become ARM codes: return *resource.Error for client errors, store errors
// map to 404/409, anything else is a logged 500.
//
// # Resource providers
//
// Package arm is Resource Manager only: the front door that routes to
// resource providers, as Azure's does. The providers live in their own
// packages (internal/rp/network for Microsoft.Network, internal/rp/compute
// for Microsoft.Compute, internal/deployments for
// Microsoft.Resources/deployments) and register explicitly from the wiring
// (internal/node) through a small API: RegisterNamespace (the namespace and
// its api-versions, for provider metadata and operation URLs),
// RegisterKind (a top-level type), Handle and HandleAnyVersion (child
// endpoints and actions). A provider keeps its own view of the server,
// typically
//
//	type server struct{ *arm.Server }
//
//	func Register(srv *arm.Server) {
//		s := &server{srv}
//		srv.RegisterNamespace("Microsoft.Network", Versions)
//		s.RegisterKind(&arm.Kind{Type: resource.LoadBalancerType, Versions: Versions, Model: lbModel{s}})
//		s.Handle(http.MethodGet, ".../loadBalancers/{name}/probes/{child}", Versions, s.getProbe)
//	}
//
// A Kind's Model implements Model: New (a pointer to the Go type, which
// embeds resource.Envelope and has SetProvisioningState), Prepare
// (validate, default, stage extra writes such as address allocations),
// References (what it points at), Release (in-use checks and releases on
// delete) and Render (read-time back-references). RegisterKind then serves
// PUT (201/200 + Azure-AsyncOperation), GET, PATCH (tags, or Merger),
// DELETE (202 + Location, 204 when absent) and the group and subscription
// lists (paged, absolute nextLink), with If-Match / If-None-Match (412
// PreconditionFailed) and optimistic concurrency: the write commits with the
// revision it read, and a concurrent change is retried or, with If-Match,
// refused — never lost.
//
// Names are case-insensitive but keep the case they were created with:
// Apply spells a resource's ID as first stored (subscription, group and
// name), whatever case a later request uses.
//
// Child endpoints (subnets, LB backendAddressPools, ...) and actions are
// plain routes registered with Handle. Their handlers use Load to read the
// parent, Apply with a Write whose Build copies the stored parent and
// changes the child (the whole parent goes through Prepare again), Remove to
// delete a top-level resource, and Request.Async / Request.Accepted to
// answer as an LRO.
//
// # Long-running operations
//
// Every Apply/Remove stages an operation record (store key
// resource.OpsPrefix+ID) in the same transaction. It is finished at once
// unless the Model, inside Prepare or Release, calls
//
//   - tx.After(fn): the operation finishes when fn returns (run in the
//     background by Ops.Go after the commit), or
//   - tx.Defer(): another component finishes it later with
//     Server.Ops.Finish(ctx, opID, result, err); store tx.Op().ID in the
//     resource so a controller can find it.
//
// Ops.Start creates a standalone InProgress operation (POST actions);
// Request.Accepted(op) answers 202 with its URLs. Status URLs are
// /subscriptions/{sub}/providers/{ns}/locations/{loc}/operations/{id} (always
// 200 with status) and …/operationResults/{id} (202 while running, then 200
// with the Finish result or 204; failures with a non-retriable 4xx), both
// absolute, echoing the request's api-version. Records are kept for
// OpRetention after they finish; Ops.Run sweeps them.
//
// # References
//
// Models declare outgoing references (References); the framework keeps an
// index under resource.RefPrefix in the same transaction. Referrers(ctx, rd,
// id, children) answers "who points at id (or its children)", which powers
// in-use checks on delete and back-references such as a public IP's
// ipConfiguration. Inside a Tx, referrers being deleted by the same write
// are already gone.
package arm
