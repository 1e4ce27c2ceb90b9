package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nimbus/internal/arm"
	"nimbus/internal/driver"
	"nimbus/internal/node"
	"nimbus/internal/portal"
	"nimbus/internal/rootless"
	"nimbus/internal/store"
	"nimbus/internal/store/etcd"
	"nimbus/internal/system"
)

func init() { subcommands = append(subcommands, newServeCmd) }

func newServeCmd() *cobra.Command {
	var (
		dataDir, listen, pool, drv, dp, metricsListen string
		providerPool, internalPool, netnsName, uplink string
		instanceUser                                  string
		probeInterval, repairGrace, halfClose         time.Duration
		maxFlows, maxFlowsPerFrontend, apiMaxConns    int
		storeKind, etcdPrefix                         string
		etcdEndpoints                                 []string
		etcdTLS                                       [3]string // CA, certificate, key files
		unserved                                      string
		timeScale                                     float64
		imageMap                                      string
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
address). Not as root, it picks the same inside a user namespace of nimbus's
own when the kernel allows one with nftables (rootless: nimbus re-executes
itself there; public frontends on the host's loopback are forwarded in), else
process + proxy (instances are processes on loopback, a userspace proxy
load-balances). The chosen mode is printed and served at GET /nimbus/info.

Store: --store bolt (the default) keeps everything in nimbus.db in the data
directory. --store etcd keeps it in an etcd cluster instead
(--etcd-endpoints, --etcd-prefix, and --etcd-cacert/--etcd-cert/--etcd-key
for TLS); the data directory still holds the keys and endpoint.json. See
docs/operations.md, "The etcd store".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if reexecRootless(drv, dp) {
				return rootless.Run(cmd.Context(), os.Args[1:])
			}
			var p netip.Prefix
			if pool != "" {
				var err error
				if p, err = netip.ParsePrefix(pool); err != nil {
					return fmt.Errorf("--public-pool: %w", err)
				}
				p = p.Masked()
			}
			opt := system.Options{Driver: drv, Dataplane: dp, MetricsListen: metricsListen,
				ProbeInterval: probeInterval, RepairGrace: repairGrace,
				MaxFlows: maxFlows, MaxFlowsPerFrontend: maxFlowsPerFrontend, APIMaxConns: apiMaxConns,
				HalfCloseTimeout: halfClose, TimeScale: timeScale}
			if timeScale != 0 && timeScale < 1 {
				return fmt.Errorf("--test-time-scale %g: want a factor of 1 or more", timeScale)
			}
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
			if internalPool != "" {
				ip, err := netip.ParsePrefix(internalPool)
				if err != nil || !ip.Addr().Is4() || !ip.Addr().IsLoopback() || ip.Bits() != 16 {
					return fmt.Errorf("--internal-pool %q: want a loopback /16 such as %s", internalPool, system.DefaultInternalPool)
				}
				opt.InternalPool = ip.Masked()
			}
			opt.HostNet.Name = netnsName
			if uplink != "" {
				up, err := netip.ParsePrefix(uplink)
				if err != nil || up.Bits() != 30 {
					return fmt.Errorf("--netns-uplink %q: want a /30 such as 198.19.255.252/30", uplink)
				}
				opt.HostNet.Uplink = up.Masked()
			}
			openStore, storeDesc, err := storeFlags(cmd.Flags(), storeKind, etcd.Config{Endpoints: etcdEndpoints,
				Prefix: etcdPrefix, CAFile: etcdTLS[0], CertFile: etcdTLS[1], KeyFile: etcdTLS[2]})
			if err != nil {
				return err
			}
			if storeDesc == "" {
				storeDesc = "bolt " + filepath.Join(dataDir, node.StoreFile)
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			if !arm.ValidUnservedMode(unserved) {
				return fmt.Errorf("--unserved-types %q: want %s or %s", unserved, arm.UnservedRefuse, arm.UnservedStore)
			}
			if limit, err := system.RaiseFileLimit(); err != nil {
				log.Warn("file descriptor limit not raised", "limit", limit, "err", err)
			}
			opt.Node = node.Config{DataDir: dataDir, Listen: listen, PublicPool: p, Logger: log, OpenStore: openStore, UnservedTypes: unserved,
				ImageMapFile: imageMap}
			opt.Rootless = rootlessHost
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
			if s.Mode.Rootless {
				fmt.Fprintf(out, "\n  rootless: nimbus runs as root of a user namespace of its own; each public frontend port is forwarded from the host's loopback (GET /nimbus/info lists them)")
			}
			fmt.Fprintf(out, "\n  store: %s\n  subscription %s, tenant %s\n  CA certificate: %s\n  endpoint file:  %s\n  managed identity: %s\n",
				storeDesc, e.SubscriptionID, e.TenantID, e.CAFile, e.DataDir+"/"+node.EndpointFile, e.MSIEndpoint)
			if s.MetricsAddr != "" {
				fmt.Fprintf(out, "  metrics: http://%s/metrics\n", s.MetricsAddr)
			}
			if s.MetricsErr != "" {
				fmt.Fprintf(out, "  warning: %s\n", s.MetricsErr)
			}
			if link, err := portal.NewSignInLink(dataDir, e.Endpoint); err == nil {
				fmt.Fprintf(out, "  portal: %s\n    (one-time sign-in link, valid 5 minutes; nimbus portal prints a new one)\n", link)
			} else {
				fmt.Fprintf(out, "  portal: %s%s (sign-in link: %v)\n", e.Endpoint, portal.Prefix, err)
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
	f.StringVar(&pool, "public-pool", "", "prefix public IP addresses are allocated from (default 127.77.0.0/16 with the proxy data plane and rootless, 198.18.64.0/18 with nft as root)")
	f.StringVar(&drv, "driver", system.Auto, "instance driver: auto, process or netns")
	f.StringVar(&dp, "dataplane", system.Auto, "data plane: auto, proxy or nft")
	f.StringVar(&providerPool, "provider-pool", "", "process driver: loopback range instances' private IPs are mapped to (default 127.100.0.0/16); two nimbus on one host need different ones")
	f.StringVar(&internalPool, "internal-pool", "", "proxy data plane: loopback /16 private frontends listen in, a.b.c.d on its first two bytes + c.d (default 127.103.0.0/16); two nimbus on one host need different ones")
	f.StringVar(&netnsName, "netns-name", "", "netns driver: name of nimbus's network namespace and prefix of its veth (default nimbus0)")
	f.StringVar(&uplink, "netns-uplink", "", "netns driver: the /30 between the host and nimbus's namespace (default 198.19.255.252/30)")
	f.StringVar(&instanceUser, "instance-user", "", "host user instances (echo, script, customData) run as when nimbus runs as root: NAME or UID, optionally :GROUP or :GID; never root (default nobody, 65534:65534). Not as root, instances run as nimbus's own user")
	f.StringVar(&unserved, "unserved-types", arm.UnservedRefuse, "resource types nimbus does not serve (storage accounts, Key Vaults, ...): refuse them, or store them as generic resources without behaviour so whole templates deploy (a resource group's tag "+arm.UnservedGroupTag+": store|refuse overrides it)")
	f.StringVar(&imageMap, "image-map", "", "JSON file mapping the images scale sets name (marketplace, gallery, custom, VHD) to nimbus workloads (default: <data-dir>/images.json when present, else every Linux and Windows image runs as the echo workload); shown at GET /nimbus/info")
	f.StringVar(&metricsListen, "metrics-listen", "127.0.0.1:9464", "loopback address serving Prometheus /metrics over HTTP, or off")
	f.IntVar(&maxFlows, "max-flows", 0, "userspace data plane: flows (TCP connections, UDP sessions) carried at once over all frontends; further ones are refused (default: (descriptor limit - 4096) / 2)")
	f.IntVar(&maxFlowsPerFrontend, "max-flows-per-frontend", 0, "userspace data plane: flows one frontend (address, port, protocol) carries at once (default: a quarter of --max-flows)")
	f.DurationVar(&halfClose, "half-close-timeout", 0, "userspace data plane: a TCP flow one side closed ends after this long without a byte from the other (default 1m, or the rule's idle timeout if shorter)")
	f.IntVar(&apiMaxConns, "api-max-conns", system.DefaultAPIMaxConns, "simultaneous ARM API connections; further ones wait (-1: no cap)")
	f.StringVar(&storeKind, "store", "bolt", "where nimbus keeps its state: bolt (nimbus.db in the data directory) or etcd (an etcd cluster, see --etcd-endpoints)")
	f.StringSliceVar(&etcdEndpoints, "etcd-endpoints", nil, "--store etcd: the members' client URLs, comma-separated (http://127.0.0.1:2379, or https://... with the TLS flags)")
	f.StringVar(&etcdPrefix, "etcd-prefix", etcd.DefaultPrefix, "--store etcd: prefix of every key nimbus writes; each nimbus sharing a cluster needs its own")
	f.StringVar(&etcdTLS[0], "etcd-cacert", "", "--store etcd: CA file that signed the members' certificates (default: the system roots)")
	f.StringVar(&etcdTLS[1], "etcd-cert", "", "--store etcd: client certificate file, for members run with --client-cert-auth")
	f.StringVar(&etcdTLS[2], "etcd-key", "", "--store etcd: the client certificate's key file")
	f.DurationVar(&probeInterval, "test-probe-interval", 0, "TESTS AND DEMOS ONLY: run every health probe at this interval, below Azure's 5 s minimum")
	f.DurationVar(&repairGrace, "test-repair-grace", 0, "TESTS AND DEMOS ONLY: use this automatic-repairs grace period, below Azure's 10 min minimum")
	f.Float64Var(&timeScale, "test-time-scale", 0, "TESTS AND DEMOS ONLY: run metrics and autoscale this many times faster: an Azure minute (metrics grain, timeGrain, timeWindow, cooldown, evaluation interval) lasts 1/N minute")
	return cmd
}

// etcdFlags are serve's flags that only --store etcd uses.
var etcdFlags = []string{"etcd-endpoints", "etcd-prefix", "etcd-cacert", "etcd-cert", "etcd-key"}

// storeFlags checks the store flags and returns the node's store opener
// and a description for the banner: nil and "" for bolt (the node opens
// nimbus.db itself).
func storeFlags(f *pflag.FlagSet, kind string, cfg etcd.Config) (func(context.Context, *slog.Logger) (store.Store, error), string, error) {
	switch kind {
	case "bolt":
		for _, name := range etcdFlags {
			if f.Changed(name) {
				return nil, "", fmt.Errorf("--%s needs --store etcd", name)
			}
		}
		return nil, "", nil
	case "etcd":
		if len(cfg.Endpoints) == 0 {
			return nil, "", errors.New("--store etcd needs --etcd-endpoints URL[,URL...]")
		}
		if cfg.Prefix == "" {
			cfg.Prefix = etcd.DefaultPrefix
		}
		open := func(ctx context.Context, log *slog.Logger) (store.Store, error) {
			cfg.Logger = log
			return etcd.Open(ctx, cfg)
		}
		return open, fmt.Sprintf("etcd %s (prefix %s)", strings.Join(cfg.Endpoints, ","), cfg.Prefix), nil
	}
	return nil, "", fmt.Errorf("--store %q: want bolt or etcd", kind)
}
