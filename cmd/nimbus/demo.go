package main

import (
	"os"

	"github.com/spf13/cobra"

	"nimbus/internal/demo"
	"nimbus/internal/rootless"
)

func init() { subcommands = append(subcommands, newDemoCmd) }

func newDemoCmd() *cobra.Command {
	var opt demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Start an embedded nimbus and walk through a scale set behind a Standard Load Balancer",
		Long: `Start an embedded nimbus in the best mode this machine allows and walk through
Azure's scenario for scale sets behind a Standard Load Balancer, saying what
happens at each step: a load balancer and 3 echo instances, traffic spread,
inbound NAT ports, a sick instance leaving rotation, Azure's
CannotModifyRuleUsedByProbeUsedByVMSS error and its documented way out, scale
out, and outbound SNAT. Everything is cleaned up at the end unless --keep.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reexecRootless(opt.Driver, opt.Dataplane) {
				return rootless.Run(cmd.Context(), os.Args[1:])
			}
			opt.Out = cmd.OutOrStdout()
			opt.Rootless = rootlessHost
			_, err := demo.Run(cmd.Context(), opt)
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVar(&opt.Keep, "keep", false, "leave nimbus and the demo's resources running to explore (Ctrl-C stops)")
	f.StringVar(&opt.DataDir, "data-dir", "", "data directory of the embedded nimbus (default: a temporary one)")
	f.StringVar(&opt.Driver, "driver", "auto", "instance driver: auto, process or netns")
	f.StringVar(&opt.Dataplane, "dataplane", "auto", "data plane: auto, proxy or nft")
	return cmd
}
