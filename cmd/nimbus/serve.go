package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"time"

	"github.com/spf13/cobra"

	"nimbus/internal/driver"
	"nimbus/internal/node"
	"nimbus/internal/system"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var (
		dataDir, listen, pool, drv, dp, metricsListen string
		providerPool, netnsName, uplink, instanceUser string
		imageMap                                      string
		probeInterval, repairGrace                    time.Duration
	)
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run nimbus: the ARM-compatible API, controllers, instances and data plane",
		Long: `Run nimbus: the ARM-compatible HTTPS API, the controllers, the instance
driver and the data plane.

On first start nimbus creates, in the data directory, a CA (ca.pem: the file
clients trust), a server certificate, a token-signing key and the default
subscription, and writes endpoint.json (endpoint, subscriptionId, tenantId,
caFile, msiEndpoint, identityHeader). The data directory defaults to
$NIMBUS_DATA_DIR, or ~/.local/share/nimbus.

Modes: --driver process|netns and --dataplane proxy|nft. The default, auto,
picks netns + nft when running as root on Linux with nftables (instances are
network namespaces, the kernel load-balances and the backend sees the client's
address), else process + proxy (instances are processes on loopback, a
userspace proxy load-balances). The chosen mode is printed and served at
GET /nimbus/info.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var p netip.Prefix
			if pool != "" {
				var err error
				if p, err = netip.ParsePrefix(pool); err != nil {
					return fmt.Errorf("--public-pool: %w", err)
				}
				p = p.Masked()
			}
			opt := system.Options{Driver: drv, Dataplane: dp, MetricsListen: metricsListen,
				ProbeInterval: probeInterval, RepairGrace: repairGrace}
			if providerPool != "" {
				pp, err := netip.ParsePrefix(providerPool)
				if err != nil || !pp.Addr().IsLoopback() {
					return fmt.Errorf("--provider-pool %q: want a loopback prefix such as 127.100.0.0/16", providerPool)
				}
				opt.ProviderPool = pp.Masked()
			}
			if instanceUser != "" {
				u, err := driver.ParseUser(instanceUser)
				if err != nil {
					return fmt.Errorf("--instance-user: %w", err)
				}
				opt.InstanceUser = u
			}
			opt.HostNet.Name = netnsName
			if uplink != "" {
				up, err := netip.ParsePrefix(uplink)
				if err != nil || up.Bits() != 30 {
					return fmt.Errorf("--netns-uplink %q: want a /30 such as 198.19.255.252/30", uplink)
				}
				opt.HostNet.Uplink = up.Masked()
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			opt.Node = node.Config{DataDir: dataDir, Listen: listen, PublicPool: p, Logger: log, ImageMapFile: imageMap}
			s, err := system.Start(cmd.Context(), opt)
			if err != nil {
				return err
			}
			e := s.Node.Endpoint
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "nimbus serving ARM at %s\n  mode: driver %s, data plane %s", e.Endpoint, s.Mode.Driver, s.Mode.Dataplane)
			if s.Mode.Reason != "" {
				fmt.Fprintf(out, " (auto: %s)", s.Mode.Reason)
			}
			fmt.Fprintf(out, "\n  subscription %s, tenant %s\n  CA certificate: %s\n  endpoint file:  %s\n  managed identity: %s\n",
				e.SubscriptionID, e.TenantID, e.CAFile, e.DataDir+"/"+node.EndpointFile, e.MSIEndpoint)
			if s.MetricsAddr != "" {
				fmt.Fprintf(out, "  metrics: http://%s/metrics\n", s.MetricsAddr)
			}
			err = s.Node.Wait()
			if stopErr := s.Stop(); err == nil {
				err = stopErr
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dataDir, "data-dir", node.DefaultDataDir(), "data directory (store, keys, endpoint.json, instance state); env NIMBUS_DATA_DIR")
	f.StringVar(&listen, "listen", node.DefaultListen, "HTTPS listen address")
	f.StringVar(&pool, "public-pool", "", "prefix public IP addresses are allocated from (default 127.77.0.0/16 with the proxy data plane, 198.18.64.0/18 with nft)")
	f.StringVar(&drv, "driver", system.Auto, "instance driver: auto, process or netns")
	f.StringVar(&dp, "dataplane", system.Auto, "data plane: auto, proxy or nft")
	f.StringVar(&providerPool, "provider-pool", "", "process driver: loopback range instances' private IPs are mapped to (default 127.100.0.0/16); two nimbus on one host need different ones")
	f.StringVar(&netnsName, "netns-name", "", "netns driver: name of nimbus's network namespace and prefix of its veth (default nimbus0)")
	f.StringVar(&uplink, "netns-uplink", "", "netns driver: the /30 between the host and nimbus's namespace (default 198.19.255.252/30)")
	f.StringVar(&instanceUser, "instance-user", "", "host user instances (echo, script, customData) run as when nimbus runs as root: NAME or UID, optionally :GROUP or :GID; never root (default nobody, 65534:65534). Not as root, instances run as nimbus's own user")
	f.StringVar(&imageMap, "image-map", "", "JSON file mapping the images scale sets name (marketplace, gallery, custom, VHD) to nimbus workloads (default: <data-dir>/images.json when present, else every Linux and Windows image runs as the echo workload); shown at GET /nimbus/info")
	f.StringVar(&metricsListen, "metrics-listen", "127.0.0.1:9464", "loopback address serving Prometheus /metrics over HTTP, or off")
	f.DurationVar(&probeInterval, "test-probe-interval", 0, "TESTS AND DEMOS ONLY: run every health probe at this interval, below Azure's 5 s minimum")
	f.DurationVar(&repairGrace, "test-repair-grace", 0, "TESTS AND DEMOS ONLY: use this automatic-repairs grace period, below Azure's 10 min minimum")
	return cmd
}
