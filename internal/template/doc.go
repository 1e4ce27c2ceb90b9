// Package template is nimbus's Azure Resource Manager template engine: it
// parses a deployment's template and parameters, evaluates ARM template
// expressions, orders the resources by their dependencies and deploys them
// through an Env the caller provides. It does no HTTP itself.
//
// The flow is two steps. Validate checks the whole template before anything
// is created: parameter values against their declarations, every expression's
// syntax and function names, and every value that does not depend on the
// state of deployed resources (everything except reference()). It expands
// copy loops and conditions, resolves dependsOn and implicit dependencies
// (reference() to a resource of the template, a nested child on its parent)
// and rejects cycles. The resulting Plan lists the resources to deploy.
// Plan.Run then puts the resources through the Env, independent resources in
// parallel, each one as soon as the resources it depends on have succeeded,
// evaluates reference() against the Env at that moment, and finally evaluates
// the outputs.
//
// Template forms: the classic array of resources (nested child resources
// with relative types and names included) and languageVersion 2.0, whose
// resources are an object keyed by symbolic name; dependsOn and reference()
// accept symbolic names ("pips" or "pips[1]" for one iteration), and
// "existing": true resources are read by reference() but never put. A
// nested Microsoft.Resources/deployments resource (a Bicep module) is put
// like any resource: with expressionEvaluationOptions.scope "inner" its
// template is passed on untouched, otherwise ("outer", ARM's default) its
// expressions are evaluated in this template's context. A nested child
// resource depends on its parent implicitly.
//
// User-defined types ("definitions", "$ref" in parameters and outputs) are
// resolved to their type and top-level constraints; "nullable": true
// parameters may be left out (null). Templates and deployment bodies are
// read as ARM reads them: comments, trailing commas and unquoted property
// names are accepted (StandardJSON). Subscription-scope deployments
// (Scope.ResourceGroup "") may create resource groups and nest deployments
// into them.
//
// Not supported: Complete mode, templateLink/parametersLink, Key Vault
// parameter references, list*() functions, validation of the properties of
// user-defined object types, extension resources ("scope"), management
// group and tenant scopes, and copyIndex() or resource copy loops inside an
// outer-scope nested template.
//
// Values are JSON values as encoding/json decodes them into any, except that
// numbers are int64 when integral (float64 otherwise).
//
// Errors are *Error values with ARM's error codes: InvalidTemplate for
// anything Validate rejects (the message names the parameter, function or
// expression and its position, such as
// "resources[2].properties.frontendIPConfigurations[0].properties.publicIPAddress.id"),
// DeploymentFailed from Run with one detail per failed resource carrying the
// resource's own error code, and DeploymentOutputEvaluationFailed when the
// outputs cannot be evaluated.
//
// Deterministic functions give Azure's values: uniqueString(a, b, ...) is
// Azure's 64-bit MurmurHash of the arguments joined by "-", written as 13
// characters of the base-32 alphabet a–z2–7 (hash.go; tested against values
// Azure produced), and guid(a, b, ...) is the name-based (SHA-1, version 5)
// UUID of the arguments joined by "-" in the namespace
// 11fb06fb-712d-4ddd-98c7-e71bbd588830.
//
// Property-level coercion: az sends some integer and boolean resource
// properties as strings ("frontendPortRangeStart": "50000",
// "primary": "true"). Azure's resource providers accept that; the engine does
// not change resource bodies. Servers that decode bodies strictly can apply
// CoerceScalars with the names of the properties their resource type
// declares as integer or boolean.
package template
