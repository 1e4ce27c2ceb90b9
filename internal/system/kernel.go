package system

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"nimbus/internal/dataplane/nft"
	"nimbus/internal/hostnet"
	"nimbus/internal/probe"
)

// kernelAvailable reports whether nftables can be programmed here.
func kernelAvailable() error { return nft.Available() }

// DefaultKernelPublicPool is the public pool of the kernel path: a routed
// range (loopback addresses cannot leave the root namespace), reached from
// the host through nimbus's one veth.
var DefaultKernelPublicPool = netip.MustParsePrefix("198.18.64.0/18")

// startKernelPath sets up nimbus's namespace, the nft engine in it and the
// netns driver, and returns the dialer probes use (from inside the
// namespace).
func (s *System) startKernelPath(ctx context.Context, opt Options, log *slog.Logger) (probe.Dialer, error) {
	pool := opt.Node.PublicPool
	hn, err := hostnet.Setup(ctx, hostnet.Options{PublicRanges: []netip.Prefix{pool}, Logger: log.With("component", "hostnet")})
	if err != nil {
		return nil, fmt.Errorf("host network: %w", err)
	}
	s.closers = append(s.closers, func() error { return hn.Close(context.Background(), false) })
	e, err := nft.New(ctx, hn.Namespace(), nft.Options{Uplink: hn.UplinkName(), Logger: log.With("dataplane", "nft")})
	if err != nil {
		return nil, fmt.Errorf("nft engine: %w", err)
	}
	s.Engine = e
	s.closers = append(s.closers, e.Close)
	return nil, fmt.Errorf("netns driver: %w", ErrImpossibleMode)
}
