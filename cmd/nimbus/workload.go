package main

import (
	"os"

	"github.com/spf13/cobra"

	"nimbus/internal/workload"
)

func init() { subcommands = append(subcommands, newWorkloadCmd) }

// newWorkloadCmd is the hidden verb a driver execs inside an instance:
// `nimbus workload echo|script`, configured by the NIMBUS_* environment
// (see package workload). It runs until SIGTERM.
func newWorkloadCmd() *cobra.Command {
	return &cobra.Command{
		Use:       "workload echo|script",
		Short:     "Run a scale-set image inside an instance (started by the instance driver)",
		Hidden:    true,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{string(workload.KindEcho), string(workload.KindScript)},
		RunE: func(cmd *cobra.Command, args []string) error {
			return workload.Main(cmd.Context(), args[0], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
		},
	}
}
