// Package vmss is the scale-set controller: it turns each stored scale-set
// model into instances (records in the store and workloads in a driver), keeps
// their pool and NAT membership, applies scale-in policy, upgrades and
// automatic repairs.
//
// A pass over one scale set has three steps. read (controller.go) gathers
// everything the decisions need into an Input: the model, the instance
// records, the driver's state of each workload, health by the scale set's
// probe, the load balancers it refers to, the clock and what the controller
// remembers between passes. PlanPass (plan.go, planpass.go) is a pure
// function of that Input; its Plan lists what to remove and why, which
// instances to upgrade (one batch of a rolling upgrade), which to repair and
// when their grace ends, what to create, the NAT ports, what to start, stop
// or restart, and whether the scale set is converged. apply (apply.go)
// carries the Plan out against the store and the driver, one retry-safe step
// at a time. The leaf policies (NAT port choice, scale-in order, batch
// sizes) are pure functions in policy.go.
package vmss
