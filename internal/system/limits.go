package system

import (
	"fmt"
	"syscall"

	"nimbus/internal/dataplane/proxy"
)

// DefaultAPIMaxConns is the default cap on the ARM API's simultaneous
// connections (Options.APIMaxConns). It lies inside proxy.DefaultReserve,
// the descriptors the data plane never takes.
const DefaultAPIMaxConns = 1024

// RaiseFileLimit raises the process's soft RLIMIT_NOFILE to its hard limit
// (`nimbus serve` calls it first) and returns the limit now in force.
func RaiseFileLimit() (uint64, error) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0, fmt.Errorf("raise file limit: %w", err)
	}
	if rl.Cur < rl.Max {
		want := rl
		want.Cur = want.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &want); err != nil {
			return uint64(rl.Cur), fmt.Errorf("raise file limit to %d: %w", want.Max, err)
		}
		rl = want
	}
	return uint64(rl.Cur), nil
}

// fileLimit is the soft RLIMIT_NOFILE in force (1024 when unknown).
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1024
	}
	return uint64(rl.Cur)
}

// flowBudget resolves the userspace engine's budget: the options' figures,
// or proxy.DefaultBudget's for the descriptor limit in force.
func flowBudget(opt Options) (total, perFrontend int) {
	total, perFrontend = proxy.DefaultBudget(fileLimit())
	if opt.MaxFlows > 0 {
		total, perFrontend = opt.MaxFlows, max(opt.MaxFlows/4, 1)
	}
	if opt.MaxFlowsPerFrontend > 0 {
		perFrontend = opt.MaxFlowsPerFrontend
	}
	return total, min(perFrontend, total)
}
