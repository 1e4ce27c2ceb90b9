package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"

	"github.com/spf13/cobra"

	"nimbus/internal/node"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var dataDir, listen, pool string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the ARM-compatible API server (HTTPS)",
		Long: `Run nimbus: the ARM-compatible HTTPS API and its background components.

On first start nimbus creates, in the data directory, a CA (ca.pem: the file
clients trust), a server certificate, a token-signing key and the default
subscription, and writes endpoint.json (endpoint, subscriptionId, tenantId,
caFile, msiEndpoint, identityHeader). The data directory defaults to
$NIMBUS_DATA_DIR, or ~/.local/share/nimbus.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := netip.ParsePrefix(pool)
			if err != nil {
				return fmt.Errorf("--public-pool: %w", err)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			n, err := node.Start(cmd.Context(), node.Config{DataDir: dataDir, Listen: listen, PublicPool: p.Masked(), Logger: log})
			if err != nil {
				return err
			}
			e := n.Endpoint
			fmt.Fprintf(cmd.OutOrStdout(), "nimbus serving ARM at %s\n  subscription %s, tenant %s\n  CA certificate: %s\n  endpoint file:  %s\n  managed identity: %s\n",
				e.Endpoint, e.SubscriptionID, e.TenantID, e.CAFile, e.DataDir+"/"+node.EndpointFile, e.MSIEndpoint)
			return n.Wait()
		},
	}
	cmd.Flags().StringVar(&dataDir, "data-dir", node.DefaultDataDir(), "data directory (store, keys, endpoint.json); env NIMBUS_DATA_DIR")
	cmd.Flags().StringVar(&listen, "listen", node.DefaultListen, "HTTPS listen address")
	cmd.Flags().StringVar(&pool, "public-pool", "127.77.0.0/16", "prefix public IP addresses are allocated from")
	return cmd
}
