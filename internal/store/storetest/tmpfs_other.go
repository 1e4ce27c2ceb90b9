//go:build !linux

package storetest

import "testing"

// Tmpfs would mount a tmpfs of size bytes; only Linux has one here, so it
// skips the test.
func Tmpfs(t testing.TB, size int64) string {
	t.Skip("a size-limited tmpfs needs Linux")
	return ""
}
