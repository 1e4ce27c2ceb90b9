// Package vmss is the scale-set controller: it turns each stored scale-set
// model into instances (records in the store and workloads in a driver), keeps
// their pool and NAT membership, applies scale-in policy, upgrades and
// automatic repairs. Its policies (NAT port choice, scale-in order, batch
// sizes) are pure functions in policy.go.
package vmss
