//go:build !linux

package cli

import "os"

// isTerminal reports whether f is a terminal; off Linux nimbus does not
// prompt (use --yes).
func isTerminal(*os.File) bool { return false }
