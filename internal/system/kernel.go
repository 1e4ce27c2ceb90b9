package system

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"path/filepath"

	"nimbus/internal/dataplane/nft"
	"nimbus/internal/driver/netns"
	"nimbus/internal/driver/process"
	"nimbus/internal/hostnet"
	"nimbus/internal/metrics"
	"nimbus/internal/probe"
	"nimbus/internal/rootless"
)

// kernelAvailable reports whether nftables can be programmed here.
func kernelAvailable() error {
	if err := nft.Available(); err != nil {
		return err
	}
	return netns.Available()
}

// DefaultKernelPublicPool is the public pool of the kernel path: a routed
// range (loopback addresses cannot leave the root namespace), reached from
// the host through nimbus's one veth.
var DefaultKernelPublicPool = netip.MustParsePrefix("198.18.64.0/18")

// startKernelPath sets up nimbus's namespace, the nft engine in it and the
// netns driver, and returns the dialer probes use (from inside the
// namespace).
func (s *System) startKernelPath(ctx context.Context, opt Options, log *slog.Logger) (probe.Dialer, error) {
	pool := opt.Node.PublicPool
	if s.addrs.inner.IsValid() {
		pool = s.addrs.inner
	}
	hopt := opt.HostNet
	hopt.PublicRanges = []netip.Prefix{pool}
	hopt.Logger = log.With("component", "hostnet")
	hn, err := hostnet.Setup(ctx, hopt)
	if err != nil {
		return nil, fmt.Errorf("host network: %w", err)
	}
	s.hostNet = hn
	// A clean shutdown removes everything nimbus made on the host: the
	// namespace (with the nft table in it), the veth and the routes. The
	// instances' namespaces hang off it, so they stop too; the next start
	// restarts them from their records. After a crash, Setup adopts what is
	// left instead.
	s.closers = append(s.closers, func() error { return hn.Close(context.Background(), true) })
	e, err := nft.New(ctx, hn.Namespace(), nft.Options{Uplink: hn.UplinkName(), Logger: log.With("dataplane", "nft")})
	if err != nil {
		return nil, fmt.Errorf("nft engine: %w", err)
	}
	s.Engine = e
	if s.rootless != nil {
		s.rootlessEng = newRootlessEngine(e, s.addrs, rootless.NewForwarder(s.rootless, log.With("component", "forwarder")), log)
		s.Engine = s.rootlessEng
	}
	s.closers = append(s.closers, s.Engine.Close)
	s.Metrics.SetSecurityHitSource(func() []metrics.RuleHits { h, _ := e.SecurityHits(); return h })
	d, err := netns.New(ctx, netns.Options{Net: hn, StateDir: filepath.Join(opt.Node.DataDir, "instances-netns"),
		Command: opt.WorkloadCommand, Env: opt.WorkloadEnv, Logger: log.With("driver", "netns"),
		Process: process.Options{User: opt.InstanceUser, Hide: []string{opt.Node.DataDir}}})
	if err != nil {
		return nil, fmt.Errorf("netns driver: %w", err)
	}
	s.Driver = d
	s.closers = append(s.closers, func() error { return d.Close(context.Background(), true) })
	return hn, nil
}

// HostAddr is the host's address on nimbus's uplink (kernel path): a
// destination outside nimbus's namespace, reached by instances' outbound
// flows through SNAT. The zero Addr in process mode.
func (s *System) HostAddr() netip.Addr {
	if s.hostNet == nil {
		return netip.Addr{}
	}
	return s.hostNet.HostAddr()
}

// DialFromInstance opens a connection from inside an instance, as the
// instance's own software would (kernel path only): its flow leaves through
// nimbus's SNAT like any outbound flow. key is the driver key of the
// instance ("<lower-case scale set id>/<instance id>").
func (s *System) DialFromInstance(ctx context.Context, key, network, address string) (net.Conn, error) {
	d, ok := s.Driver.(*netns.Driver)
	if !ok {
		return nil, fmt.Errorf("dial from instance: the %s driver shares the host's network stack", s.Mode.Driver)
	}
	ns, err := hostnet.OpenNamespace(d.NamespaceName(key))
	if err != nil {
		return nil, fmt.Errorf("dial from instance %s: %w", key, err)
	}
	defer ns.Close()
	return hostnet.DialIn(ctx, ns, network, address)
}
