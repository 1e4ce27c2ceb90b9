// Command nimbus is Azure Standard Load Balancer with Virtual Machine Scale
// Sets that you run yourself: `nimbus serve` runs the ARM-compatible API, the
// controllers, the instance driver and the data plane; `nimbus demo` shows it
// working; the other verbs are an az-shaped client.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"nimbus/internal/rootless"
	"nimbus/internal/system"
)

// subcommands holds the constructors of nimbus's verbs. Each verb lives in
// its own file and registers itself from an init function, so verbs can be
// added without touching this file.
var subcommands []func() *cobra.Command

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "nimbus",
		Short:         "Azure Standard Load Balancer and VM Scale Sets, self-hosted",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	for _, c := range subcommands {
		root.AddCommand(c())
	}
	return root
}

// rootlessHost is set when this process is a rootless child (see
// internal/rootless): serve and demo then run the kernel path in it.
var rootlessHost *rootless.Host

// reexecRootless reports whether drv and dp run rootless here and this
// process is not yet the rootless child: then the verb re-executes itself
// with rootless.Run.
func reexecRootless(drv, dp string) bool {
	if rootlessHost != nil || os.Geteuid() == 0 {
		return false
	}
	m, err := system.ChooseMode(drv, dp)
	return err == nil && m.Rootless
}

func main() {
	// First, before anything else runs: a rootless child sets up its
	// namespaces here.
	h, err := rootless.Enter()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
		os.Exit(1)
	}
	rootlessHost = h
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err = newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		code := 1
		if e, ok := err.(interface{ ExitCode() int }); ok {
			code = e.ExitCode()
		}
		if msg := err.Error(); msg != "" {
			fmt.Fprintln(os.Stderr, "ERROR:", msg)
		}
		os.Exit(code)
	}
}
