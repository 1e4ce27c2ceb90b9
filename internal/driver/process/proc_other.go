//go:build !linux

package process

import (
	"fmt"
	"runtime"

	"nimbus/internal/driver"
)

func newOS() (osOps, error) {
	return nil, fmt.Errorf("process: %w: the process driver needs Linux (pidfd, /proc) and this is %s; run nimbus in a Linux VM or container",
		driver.ErrNotSupported, runtime.GOOS)
}

// isolation confines nothing here: the driver does not run outside Linux.
type isolation struct{}

func rootIsolation() isolation                           { return isolation{} }
func userNSIsolation(inner, outer driver.User) isolation { return isolation{} }
