// Package chaos is nimbus's chaos suite: scenarios that run the real nimbus
// binary (built once per test run) with the real drivers and data planes,
// break something (kill -9 of nimbus under write load, kill storms of
// instances, flapping probes, broken backends, descriptor floods, a held
// frontend port, a full data directory) and end in checked invariants: no
// acknowledged write lost, nothing left behind (processes, namespaces,
// veths, nftables tables), traffic to healthy instances flows, the API
// answers every request within a bound.
//
// The package's one non-test type is Backend, the controllable workload the
// scenarios run in their instances (the script image execs the test binary
// as a Backend); the scenarios themselves are tests.
//
// Every scenario runs in both modes where it applies: process driver with
// the userspace proxy (any user), and netns driver with nftables (root; it
// skips only when not root or on driver.ErrNotSupported / nft.ErrUnavailable).
package chaos
