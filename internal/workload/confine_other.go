//go:build !linux

package workload

import "fmt"

// confine refuses EnvConfine: namespaces are Linux-only.
func confine(getenv func(string) string, environ []string) (drop func() error, err error) {
	if m := getenv(EnvConfine); m != "" {
		return nil, fmt.Errorf("workload: %s=%s needs Linux namespaces", EnvConfine, m)
	}
	return func() error { return nil }, nil
}
