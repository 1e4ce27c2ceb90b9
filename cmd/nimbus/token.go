package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"nimbus/internal/auth"
	"nimbus/internal/node"
)

func init() { subcommands = append(subcommands, newTokenCmd) }

func newTokenCmd() *cobra.Command {
	var dataDir, audience string
	var ttl time.Duration
	cmd := &cobra.Command{
		Use:   "token",
		Short: "Print a bearer token for the ARM API",
		Long: `Print a bearer token (JWT) signed with the key in the data directory, for
Authorization: Bearer <token> on ARM requests (az rest, curl, SDK credentials).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := auth.LoadOrCreateIdentity(dataDir)
			if err != nil {
				return err
			}
			iss, err := auth.LoadOrCreateIssuer(dataDir, id.TenantID)
			if err != nil {
				return err
			}
			tok, _, err := iss.Mint(audience, ttl)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), tok)
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", node.DefaultDataDir(), "data directory; env NIMBUS_DATA_DIR")
	cmd.Flags().StringVar(&audience, "audience", auth.DefaultAudience, "token audience (aud claim)")
	cmd.Flags().DurationVar(&ttl, "ttl", 24*time.Hour, "token lifetime")
	return cmd
}
