// Package lb compiles stored load balancers, and the scale-set instances in
// their pools, into the engine-neutral dataplane.Config (a pure function with
// golden tests), and runs the loop that applies it: on every relevant store
// change it recompiles and hands the whole Config to the engine and the
// prober. SNAT port allocation lives in snat.go.
package lb
