package main

import (
	"fmt"
	"os"
	"os/exec"

	"github.com/spf13/cobra"

	"nimbus/internal/node"
	"nimbus/internal/portal"
)

func init() { subcommands = append(subcommands, newPortalCmd) }

func newPortalCmd() *cobra.Command {
	var dataDir string
	var noBrowser bool
	cmd := &cobra.Command{
		Use:   "portal",
		Short: "Print (and open) a one-time sign-in link to the web portal",
		Long: `Print a one-time sign-in link to the web portal of the running nimbus
(endpoint.json in the data directory says where), and open it with xdg-open
when there is one and a display. The link works once, for five minutes, from
this machine (a loopback connection); only the data directory's owner (or
root) can create one. The session it starts lasts 12 hours. See docs/portal.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			e, err := node.ReadEndpoint(dataDir)
			if err != nil {
				return fmt.Errorf("no running nimbus found (start it with nimbus serve): %w", err)
			}
			link, err := portal.NewSignInLink(dataDir, e.Endpoint)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), link)
			if !noBrowser {
				openBrowser(cmd, link)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", node.DefaultDataDir(), "data directory; env NIMBUS_DATA_DIR")
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "only print the link")
	return cmd
}

// openBrowser starts xdg-open on link when there is a display to open it
// on; without one (a server, CI) printing the link is all there is to do.
func openBrowser(cmd *cobra.Command, link string) {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return
	}
	path, err := exec.LookPath("xdg-open")
	if err != nil {
		return
	}
	c := exec.Command(path, link)
	if err := c.Start(); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "could not open a browser:", err)
		return
	}
	// xdg-open hands the link to the browser and exits; reap it in the background.
	go func() { _ = c.Wait() }()
}
