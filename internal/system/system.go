// Package system assembles a whole nimbus: the ARM server (internal/node),
// an instance driver, a data-plane engine, the health prober and the two
// controllers, in the mode the machine allows. `nimbus serve`, `nimbus demo`
// and the end-to-end tests all start nimbus through it.
package system

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/controller/autoscale"
	lbctl "nimbus/internal/controller/lb"
	vmssctl "nimbus/internal/controller/vmss"
	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/proxy"
	"nimbus/internal/driver"
	"nimbus/internal/driver/process"
	"nimbus/internal/hostnet"
	"nimbus/internal/metrics"
	"nimbus/internal/monitor"
	"nimbus/internal/node"
	"nimbus/internal/peercred"
	"nimbus/internal/probe"
	"nimbus/internal/resource"
	"nimbus/internal/rootless"
	"nimbus/internal/rp/network"
)

// Mode names accepted by Options.Driver and Options.Dataplane.
const (
	Auto    = "auto"
	Process = "process"
	Netns   = "netns"
	Proxy   = "proxy"
	NFT     = "nft"
)

// Options configure a System. The zero value starts an auto-mode nimbus with
// node defaults.
type Options struct {
	// Node configures the API server (data dir, listen address, public pool,
	// logger). Components and Runtime are set by the system.
	Node node.Config
	// Driver is auto, process or netns; Dataplane is auto, proxy or nft.
	// auto picks netns + nft as root on Linux with nftables, or for any
	// user where a user namespace allows it (Rootless), else process +
	// proxy.
	Driver    string
	Dataplane string
	// Rootless is set in a nimbus that rootless.Run re-executed as root of
	// its own user namespace (rootless.Enter's Host): the kernel path runs
	// there, and the API, metrics and public frontends listen on the
	// host's loopback through it. Nil otherwise; then a mode that needs it
	// (a user who is not root asking for netns + nft) fails, and auto
	// falls back to process + proxy.
	Rootless *rootless.Host
	// MetricsListen serves Prometheus metrics over plain HTTP; it must be a
	// loopback address ("" = 127.0.0.1:0 picks a free port, "off" disables).
	MetricsListen string
	// WorkloadCommand overrides the program the process driver runs for
	// instances (default: this executable); tests use the test binary.
	WorkloadCommand []string
	// WorkloadEnv is extra environment for workloads (tests set
	// workload.ReexecEnv).
	WorkloadEnv map[string]string
	// InstanceUser is the host identity instances run as when nimbus runs
	// as root (zero: driver.DefaultUser, nobody 65534:65534); see
	// process.Options.User. Instances never see the data directory.
	InstanceUser driver.User
	// ProviderPool is the loopback range of the process driver's provider
	// addresses (default 127.100.0.0/16). Two nimbus processes on one host
	// need different ranges (and different public pools).
	ProviderPool netip.Prefix
	// InternalPool is the loopback /16 where, with the userspace data
	// plane, private frontends listen: a.b.c.d on the pool's first two
	// bytes followed by c.d (default DefaultInternalPool, 127.103.0.0/16).
	// Two nimbus processes on one host need different ones.
	InternalPool netip.Prefix
	// HostNet names nimbus's network namespace and its uplink on the kernel
	// path (default "nimbus0", 198.19.255.252/30); PublicRanges is set from
	// the public pool. Two nimbus processes on one host need different ones.
	HostNet hostnet.Options
	// Resync overrides the controllers' periodic resync (tests).
	Resync time.Duration
	// NetworkSecurity enforces network security groups on traffic, with
	// Azure's secure-by-default Standard SKUs (controller/lb
	// Options.NetworkSecurity). Off (the default until every shipped flow
	// creates its NSGs), groups are stored and validated only.
	NetworkSecurity bool
	// ProbeInterval and RepairGrace override every probe's interval and
	// every repair grace period, below Azure's minimums (5 s, 10 min), for
	// tests and demos only.
	ProbeInterval time.Duration
	RepairGrace   time.Duration
	// MaxFlows and MaxFlowsPerFrontend are the userspace engine's flow
	// budget (proxy.Options); 0 means proxy.DefaultBudget for the process's
	// descriptor limit.
	MaxFlows            int
	MaxFlowsPerFrontend int
	// HalfCloseTimeout is the userspace engine's bound on half-closed TCP
	// flows (proxy.Options.HalfCloseTimeout; 0 means its default).
	HalfCloseTimeout time.Duration
	// APIMaxConns caps the ARM API's simultaneous connections when
	// Node.MaxConns is 0 (default DefaultAPIMaxConns; negative: no cap).
	APIMaxConns int
	// TimeScale, above 1, runs metrics and autoscale that many times
	// faster: one Azure minute (the metrics grain, and the unit of every
	// timeGrain, timeWindow and cooldown, and of the evaluation interval)
	// lasts a minute divided by TimeScale. For tests and demos only.
	TimeScale float64
}

// Mode is the driver and data plane a System runs with.
type Mode struct {
	Driver    string `json:"driver"`
	Dataplane string `json:"dataplane"`
	// Reason says why auto chose this mode ("" when chosen explicitly).
	Reason string `json:"reason,omitempty"`
	// Rootless: the kernel path runs in a user namespace of nimbus's own,
	// entered by re-executing nimbus (rootless.Run), for a user who is
	// not root.
	Rootless bool `json:"rootless,omitempty"`
}

// System is a running nimbus. Its fields are set by Start and read-only.
type System struct {
	Node    *node.Node
	Mode    Mode
	Driver  driver.Driver
	Engine  dataplane.Engine
	Prober  *probe.Prober
	LB      *lbctl.Controller
	VMSS    *vmssctl.Controller
	Metrics *metrics.Metrics
	// Monitor is the metrics history of the Azure Monitor API and
	// autoscale; Autoscale the engine (set once the node runs).
	Monitor   *monitor.History
	Autoscale *autoscale.Engine
	// MetricsAddr is where /metrics is served ("" when off or not served).
	MetricsAddr string
	// MetricsErr says why /metrics is not served although it was asked
	// for (its port was taken); "" otherwise.
	MetricsErr string

	hostNet      *hostnet.Net
	rootless     *rootless.Host
	rootlessEng  *rootlessEngine
	proxyEng     *proxyLimits
	addrs        addrMap
	providerPool netip.Prefix
	internalPool netip.Prefix
	closers      []func() error
	once         sync.Once
}

// ErrImpossibleMode is returned (wrapped) for a driver and data plane that
// cannot run on this machine or together.
var ErrImpossibleMode = errors.New("impossible mode")

// ChooseMode resolves auto and checks that the combination can run here.
// For a user who is not root the kernel path runs rootless (Mode.Rootless)
// when the kernel lets this user create a user namespace with its own
// network and nftables inside (rootless.Probe); only a process that
// re-executes itself into it (rootless.Run, as serve and demo do) can
// start that mode.
func ChooseMode(drv, dp string) (Mode, error) {
	drv, dp = strings.ToLower(orDefault(drv, Auto)), strings.ToLower(orDefault(dp, Auto))
	kernelOK, why, unpriv := kernelPathAvailable()
	m := Mode{Driver: drv, Dataplane: dp, Rootless: unpriv && kernelOK == nil}
	if drv == Auto && dp == Auto {
		if kernelOK == nil && unpriv {
			return Mode{Driver: Netns, Dataplane: NFT, Rootless: true, Reason: why}, nil
		}
		if kernelOK == nil {
			return Mode{Driver: Netns, Dataplane: NFT, Reason: "root on Linux with nftables"}, nil
		}
		return Mode{Driver: Process, Dataplane: Proxy, Reason: why}, nil
	}
	if drv == Auto {
		m.Driver = map[string]string{NFT: Netns, Proxy: Process}[dp]
	}
	if dp == Auto {
		m.Dataplane = map[string]string{Netns: NFT, Process: Proxy}[drv]
	}
	switch {
	case m.Driver != Process && m.Driver != Netns:
		return m, fmt.Errorf("%w: unknown driver %q (want auto, process or netns)", ErrImpossibleMode, drv)
	case m.Dataplane != Proxy && m.Dataplane != NFT:
		return m, fmt.Errorf("%w: unknown data plane %q (want auto, proxy or nft)", ErrImpossibleMode, dp)
	case m.Driver == Process && m.Dataplane == NFT:
		return m, fmt.Errorf("%w: --dataplane nft needs --driver netns: the kernel engine forwards to instances' real addresses inside nimbus's namespace, and process instances live on the host's loopback", ErrImpossibleMode)
	case m.Driver == Netns && m.Dataplane == Proxy:
		return m, fmt.Errorf("%w: --driver netns needs --dataplane nft: the userspace proxy runs on the host and cannot reach instances inside nimbus's namespace", ErrImpossibleMode)
	case m.Driver == Netns && kernelOK != nil:
		return m, fmt.Errorf("%w: --driver netns --dataplane nft: %w", ErrImpossibleMode, kernelOK)
	}
	if m.Driver == Process {
		m.Rootless = false
	}
	return m, nil
}

// kernelPathAvailable reports whether the netns driver and nft engine can
// run here, a reason (why not, or, for a user who is not root, why
// rootless), and whether this user is not root (the path then runs
// rootless).
func kernelPathAvailable() (error, string, bool) {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("the kernel path needs Linux (this is %s)", runtime.GOOS), "not Linux: process driver and userspace proxy", false
	}
	if os.Geteuid() != 0 {
		if err := rootless.Probe(); err != nil {
			return fmt.Errorf("the kernel path needs root, or a user namespace with its own network and nftables for this user: %w", err),
				"not root, and no user namespace with nftables for this user (" + err.Error() + "): process driver and userspace proxy", true
		}
		return nil, "not root: netns + nft in a user namespace of nimbus's own (rootless; frontends forwarded to the host's loopback)", true
	}
	if err := kernelAvailable(); err != nil {
		return err, "kernel path unavailable (" + err.Error() + "): process driver and userspace proxy", false
	}
	return nil, "", false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Start starts a whole nimbus and returns once the API serves.
func Start(ctx context.Context, opt Options) (*System, error) {
	mode, err := ChooseMode(opt.Driver, opt.Dataplane)
	if err != nil {
		return nil, err
	}
	switch {
	case opt.Rootless != nil:
		if mode.Driver != Netns {
			return nil, fmt.Errorf("%w: a rootless nimbus runs the kernel path (netns + nft) only", ErrImpossibleMode)
		}
		mode.Rootless = true
		if mode.Reason != "" { // auto chose it
			mode.Reason = "not root: netns + nft in a user namespace of nimbus's own (rootless; frontends forwarded to the host's loopback)"
		}
	case mode.Rootless && strings.EqualFold(orDefault(opt.Driver, Auto), Auto) && strings.EqualFold(orDefault(opt.Dataplane, Auto), Auto):
		mode = Mode{Driver: Process, Dataplane: Proxy,
			Reason: "not root, and started in-process (the rootless kernel path needs nimbus serve or nimbus demo, which re-execute themselves): process driver and userspace proxy"}
	case mode.Rootless:
		return nil, fmt.Errorf("%w: --driver netns --dataplane nft as a user who is not root runs in a user namespace that nimbus serve or nimbus demo enter by re-executing themselves; this process was not started that way", ErrImpossibleMode)
	}
	log := opt.Node.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
		opt.Node.Logger = log
	}
	if opt.Node.DataDir == "" {
		opt.Node.DataDir = node.DefaultDataDir()
	}
	var addrs addrMap
	if h := opt.Rootless; h != nil {
		// The API's public addresses are the host's loopback ones (what
		// clients on the host can reach); inside, they map 1:1 to a routed
		// range.
		if addrs, err = newAddrMap(publicPool(opt.Node.PublicPool)); err != nil {
			return nil, err
		}
		opt.Node.PublicPool = addrs.api
		hostnet.NetnsDir = h.NetnsDir
		peercred.NetDirs = []string{h.NetDir, "/proc/thread-self/net", "/proc/self/net"}
		opt.Node.ListenFunc = h.Listen
	} else if mode.Driver == Netns && !opt.Node.PublicPool.IsValid() {
		opt.Node.PublicPool = DefaultKernelPublicPool
	}
	if p := opt.InternalPool; p.IsValid() && (!p.Addr().Is4() || !p.Addr().IsLoopback() || p.Bits() != 16) {
		return nil, fmt.Errorf("--internal-pool %s: want a loopback /16 such as %s", p, DefaultInternalPool)
	}
	host, err := readHost()
	if err != nil {
		return nil, fmt.Errorf("address pools: %w", err)
	}
	pools := addressPools(mode, opt)
	if addrs.api.IsValid() {
		// The public pool lives on the host's loopback, where the
		// forwarder's listen requests meet whatever holds it.
		pools = pools[1:]
	}
	if err := checkPools(pools, host); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(opt.Node.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	s := &System{Mode: mode, Metrics: metrics.New(), providerPool: opt.ProviderPool,
		internalPool: internalPool(opt.InternalPool).Masked(), rootless: opt.Rootless, addrs: addrs,
		Monitor: monitor.NewHistory(monitor.Options{Grain: grain(opt.TimeScale)})}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()

	if err := s.startDataPath(ctx, opt, log); err != nil {
		return nil, err
	}
	rt := &sysRuntime{s: s}
	opt.Node.Runtime = rt
	if opt.Node.MaxConns == 0 && opt.APIMaxConns >= 0 {
		opt.Node.MaxConns = cmp.Or(opt.APIMaxConns, DefaultAPIMaxConns)
	}
	opt.Node.Components = append(opt.Node.Components, func(n *node.Node) (node.Component, error) {
		return s.controllers(n, opt, log)
	})
	n, err := node.Start(ctx, opt.Node)
	if err != nil {
		return nil, err
	}
	s.Node = n
	s.closers = append(s.closers, n.Stop)
	if err := s.serveMetrics(opt.MetricsListen, log); err != nil {
		return nil, err
	}
	log.Info("nimbus started", "driver", mode.Driver, "dataplane", mode.Dataplane, "reason", mode.Reason,
		"endpoint", n.Endpoint.Endpoint, "metrics", s.MetricsAddr)
	ok = true
	return s, nil
}

// startDataPath starts the driver, the engine and the prober of the mode.
func (s *System) startDataPath(ctx context.Context, opt Options, log *slog.Logger) error {
	var dialer probe.Dialer
	switch s.Mode.Driver {
	case Process:
		d, err := process.New(ctx, process.Options{
			StateDir: filepath.Join(opt.Node.DataDir, "instances"), Command: opt.WorkloadCommand,
			Env: opt.WorkloadEnv, Pool: opt.ProviderPool, Logger: log.With("driver", "process"),
			User: opt.InstanceUser, Hide: []string{opt.Node.DataDir},
		})
		if err != nil {
			return fmt.Errorf("process driver: %w", err)
		}
		s.Driver = d
		s.closers = append(s.closers, func() error { return d.Close(context.Background(), false) })
		total, per := flowBudget(opt)
		e := proxy.New(proxy.Options{Logger: log.With("dataplane", "proxy"), Metrics: s.Metrics,
			MaxFlows: total, MaxFlowsPerFrontend: per, HalfCloseTimeout: opt.HalfCloseTimeout})
		log.Info("data plane budget", "maxFlows", total, "maxFlowsPerFrontend", per, "fileLimit", fileLimit())
		s.proxyEng = &proxyLimits{Engine: e}
		s.Engine = s.proxyEng
		s.closers = append(s.closers, e.Close)
	case Netns:
		var err error
		dialer, err = s.startKernelPath(ctx, opt, log)
		if err != nil {
			return err
		}
	}
	s.Prober = probe.New(probe.Options{Dialer: dialer, Logger: log.With("component", "probe")})
	s.closers = append(s.closers, s.Prober.Close)
	return nil
}

// feedHealth follows the prober's health into the engine (and, on the
// kernel path, the availability metrics) until ctx ends: the prober owns
// health, the engine reads every change of it.
func (s *System) feedHealth(ctx context.Context, log *slog.Logger) {
	s.Prober.Feed(ctx, func(ctx context.Context, h dataplane.Health) {
		if err := s.Engine.SetHealth(ctx, h); err != nil && ctx.Err() == nil {
			log.Warn("set health failed", "err", err)
		}
		if s.Mode.Dataplane == NFT {
			cfg, _ := s.LB.Config()
			s.Metrics.ReportConfig(cfg, h)
		}
	})
}

// controllers builds the LB and VMSS controllers once the node exists.
func (s *System) controllers(n *node.Node, opt Options, log *slog.Logger) (node.Component, error) {
	s.LB = lbctl.New(lbctl.Options{Store: n.Store, Engine: s.Engine, Prober: s.Prober, Logger: log,
		ListenIP: s.listenIP, Resync: opt.Resync, OnApplied: s.onApplied, ProbeInterval: opt.ProbeInterval,
		NetworkSecurity: opt.NetworkSecurity})
	s.VMSS = vmssctl.New(vmssctl.Options{Store: n.Store, Driver: s.Driver, Network: subnets{n.Store},
		PublicPool: publicPool(opt.Node.PublicPool), Health: proberHealth{s.Prober}, Logger: log, Resync: opt.Resync, RepairGrace: opt.RepairGrace,
		Images: n.Images})
	sample, scale := s.monitoring(n, opt)
	return componentFunc(func(ctx context.Context) error {
		errc := make(chan error, 5)
		go func() { errc <- s.LB.Run(ctx) }()
		go func() { errc <- s.VMSS.Run(ctx) }()
		go func() { s.feedHealth(ctx, log); errc <- nil }()
		go func() { errc <- sample(ctx) }()
		go func() { errc <- scale(ctx) }()
		var err error
		for range cap(errc) {
			if e := <-errc; err == nil {
				err = e
			}
		}
		return err
	}), nil
}

// proberHealth reads one target's state from the prober, health's only
// owner, for the scale-set repairs (it is their HealthSource) and the API
// (sysRuntime.BackendHealth). Ids may be in any case. A nil prober knows
// nothing.
type proberHealth struct{ p *probe.Prober }

var _ vmssctl.HealthSource = proberHealth{}

// status returns the prober's state of probeID's view of backendID, and
// false when that target is not probed.
func (h proberHealth) status(probeID, backendID string) (probe.Status, bool) {
	if h.p == nil {
		return probe.Status{}, false
	}
	return h.p.StatusOf(resource.NormalizeRefID(probeID), resource.NormalizeRefID(backendID))
}

// BackendHealth implements vmssctl.HealthSource.
func (h proberHealth) BackendHealth(probeID, backendID string) (up, known bool) {
	st, _ := h.status(probeID, backendID)
	return st.Up, st.Known
}

type componentFunc func(ctx context.Context) error

func (f componentFunc) Run(ctx context.Context) error { return f(ctx) }

// listenIP maps internal frontends (private addresses) to loopback for the
// userspace engine; the kernel engine uses addresses as they are.
func (s *System) listenIP(a netip.Addr) netip.Addr {
	if s.Mode.Dataplane != Proxy || a.IsLoopback() {
		return a
	}
	// Private frontends are mapped 1:1 into the internal pool (a /16) by
	// their last two bytes; the mapping is stable and shown by the info
	// endpoint.
	b, p := a.As4(), s.internalPool.Addr().As4()
	return netip.AddrFrom4([4]byte{p[0], p[1], b[2], b[3]})
}

// onApplied keeps the availability and SNAT metrics in step on the kernel
// path, where no packet passes through nimbus; the userspace engine reports
// them itself.
func (s *System) onApplied(_ int64, cfg dataplane.Config) {
	if s.Mode.Dataplane == NFT {
		s.Metrics.ReportConfig(cfg, s.Prober.Health())
	}
}

// serveMetrics serves /metrics on a loopback-only plain HTTP listener.
func (s *System) serveMetrics(addr string, log *slog.Logger) error {
	if addr == "off" {
		return nil
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("metrics listen %q: %w", addr, err)
	}
	if ip, err := netip.ParseAddr(host); (err != nil && host != "localhost") || (err == nil && !ip.IsLoopback()) {
		return fmt.Errorf("metrics listen %q: metrics are served without authentication and only on loopback", addr)
	}
	listen := net.Listen
	if s.rootless != nil {
		listen = s.rootless.Listen
	}
	ln, err := listen("tcp", addr)
	if errors.Is(err, syscall.EADDRINUSE) {
		// Metrics are a side service: a busy port must not take the API
		// down with it. Say so where the user looks: the log, serve's
		// banner and GET /nimbus/info.
		s.MetricsErr = fmt.Sprintf("metrics not served: %s is in use by another program; choose another with --metrics-listen ADDR (or off)", addr)
		log.Warn("metrics not served", "listen", addr, "err", err)
		return nil
	}
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", s.Metrics.Handler())
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	s.MetricsAddr = ln.Addr().String()
	s.closers = append(s.closers, srv.Close)
	return nil
}

// Stop stops the node, the controllers and the data path. Instances keep
// running for re-adoption by the next start, as after a crash.
func (s *System) Stop() error { return s.close() }

func (s *System) close() error {
	var errs []error
	s.once.Do(func() {
		for i := len(s.closers) - 1; i >= 0; i-- {
			if err := s.closers[i](); err != nil {
				errs = append(errs, err)
			}
		}
	})
	return errors.Join(errs...)
}

// sysRuntime is the arm.Runtime of a System.
type sysRuntime struct{ s *System }

var _ arm.Runtime = (*sysRuntime)(nil)

func (r *sysRuntime) WaitScaleSet(ctx context.Context, vmssID string) error {
	if r.s.VMSS == nil {
		return errors.New("scale-set controller not running")
	}
	return r.s.VMSS.WaitConverged(ctx, vmssID)
}

var _ network.DataplaneStatus = (*sysRuntime)(nil)

// WaitLoadBalancer implements network.DataplaneStatus: it waits for the LB
// controller to apply the store's current revision.
func (r *sysRuntime) WaitLoadBalancer(ctx context.Context, lbID string) ([]network.FrontendError, error) {
	if r.s.LB == nil || r.s.Node == nil {
		return nil, nil
	}
	rev, err := r.s.Node.Store.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait load balancer: %w", err)
	}
	if err := r.s.LB.WaitApplied(ctx, rev); err != nil {
		return nil, fmt.Errorf("wait load balancer: %w", err)
	}
	return r.failures(lbID), nil
}

// failures are the rules of lbID the engine could not apply (they fail
// the LB's write).
func (r *sysRuntime) failures(lbID string) []network.FrontendError {
	var out []network.FrontendError
	for _, f := range r.s.LB.Failures(lbID) {
		out = append(out, frontendError(f, r.s.LB.Resync()))
	}
	return out
}

// LoadBalancerErrors implements network.DataplaneStatus from the LB
// controller's last apply, and the rules in force but degraded in this
// mode (a rootless frontend the host cannot reach, an outbound rule the
// userspace engine does not rewrite), which GET shows but which never fail
// a write.
func (r *sysRuntime) LoadBalancerErrors(lbID string) []network.FrontendError {
	if r.s.LB == nil {
		return nil
	}
	out := r.failures(lbID)
	if a, ok := r.s.Engine.(advisor); ok {
		for _, f := range failuresOf(a.Advisories(), lbID) {
			retry := r.s.LB.Resync()
			if f.Reason == ReasonNotReachableFromHost {
				retry = hostRetry
			}
			out = append(out, frontendError(f, retry))
		}
	}
	return out
}

// frontendError is the API's view of a rule the engine could not apply.
func frontendError(f dataplane.RuleError, retry time.Duration) network.FrontendError {
	var msg string
	switch f.Reason {
	case dataplane.ReasonPortInUse:
		msg = fmt.Sprintf("Frontend port %d/%s on %s of rule '%s' is in use by another program", f.Listen.Port(),
			f.Protocol, f.Listen.Addr(), f.RuleID)
		if f.Holder != "" {
			msg += " (" + f.Holder + ")"
		}
	case dataplane.ReasonAddressUnavailable:
		msg = fmt.Sprintf("Frontend address %s of rule '%s' is not an address of this host", f.Listen.Addr(), f.RuleID)
	case ReasonNotReachableFromHost:
		return network.FrontendError{Frontend: f.FrontendID, DataplaneError: resource.DataplaneError{Code: f.Reason, Target: f.RuleID,
			Message: fmt.Sprintf("Rule '%s' is in force inside nimbus's namespace, but its frontend %s/%s is not reachable from the host: %v. nimbus (rootless) retries every %s.",
				f.RuleID, f.Protocol, f.Listen, f.Err, retry)}}
	case ReasonNotSupportedInProxyMode:
		return network.FrontendError{Frontend: f.FrontendID, DataplaneError: resource.DataplaneError{Code: f.Reason, Target: f.RuleID,
			Message: fmt.Sprintf("Rule '%s' is not in force in process + proxy mode: %v. Run nimbus as root, or as a user a user namespace allows (rootless), for the kernel path.", f.RuleID, f.Err)}}
	default:
		msg = fmt.Sprintf("Rule '%s' could not be applied: %v", f.RuleID, f.Err)
	}
	msg += fmt.Sprintf(". nimbus retries every %s; the rule comes up when the frontend is free.", retry)
	return network.FrontendError{Frontend: f.FrontendID,
		DataplaneError: resource.DataplaneError{Code: f.Reason, Message: msg, Target: f.RuleID}}
}

// BackendHealth implements arm.Runtime from the prober's state of the target.
func (r *sysRuntime) BackendHealth(probeID, backendID string) (up, known bool, reason string) {
	st, ok := proberHealth{r.s.Prober}.status(probeID, backendID)
	if !ok {
		return false, false, ""
	}
	return st.Up, st.Known, st.Reason
}

// Info is what GET /nimbus/info reports about the running system.
type Info struct {
	Mode        Mode   `json:"mode"`
	MetricsAddr string `json:"metricsAddress,omitempty"`
	// MetricsErr says why metrics are not served although asked for.
	MetricsErr string `json:"metricsError,omitempty"`
	// AddressPlan says where instances and frontends are reachable from the
	// host in this mode.
	AddressPlan map[string]string `json:"addressPlan"`
	// NotInForce names what is configured but this mode does not carry
	// (process + proxy: HA-ports rules, floating IP, instance public IPs,
	// outbound SNAT), with counts.
	NotInForce map[string]string `json:"notInForce,omitempty"`
	// HostForwards are a rootless nimbus's forwards from the host's
	// loopback into its namespace; HostForwardErrors the ones the host
	// refused, with why.
	HostForwards      []string          `json:"hostForwards,omitempty"`
	HostForwardErrors map[string]string `json:"hostForwardErrors,omitempty"`
}

func (r *sysRuntime) Info() any {
	plan := map[string]string{}
	switch r.s.Mode.Driver {
	case Process:
		pool := r.s.providerPool
		if !pool.IsValid() {
			pool = process.DefaultPool
		}
		plan["instances"] = "each private IP (CA) is mapped 1:1 to a loopback provider address (PA) in " + pool.String() + "; the instance view shows both"
		p := r.s.internalPool.Addr().As4()
		plan["internalFrontends"] = fmt.Sprintf("a private frontend a.b.c.d listens on %d.%d.c.d", p[0], p[1])
	case Netns:
		plan["instances"] = "each instance is a network namespace with its real private IP on a bridge per subnet inside nimbus's namespace"
		plan["internalFrontends"] = "private frontends are addresses inside nimbus's namespace"
	}
	info := Info{Mode: r.s.Mode, MetricsAddr: r.s.MetricsAddr, MetricsErr: r.s.MetricsErr, AddressPlan: plan}
	if m := r.s.addrs; m.api.IsValid() {
		plan["publicFrontends"] = fmt.Sprintf("public IPs of %s are the host's loopback addresses; inside nimbus's user namespace they are %s (same offset). "+
			"nimbus forwards each frontend port from the host's loopback into the namespace: instances see such flows come from %s, not from the host's client; "+
			"HA-ports rules and instance public IPs have no port to forward and are reachable inside the namespace only", m.api, m.inner, r.s.HostAddr())
		plan["outbound"] = "instances' outbound flows are SNATed (port blocks) and reach nimbus's user namespace (" + r.s.HostAddr().String() + "), not the host's network"
	}
	if e := r.s.rootlessEng; e != nil {
		info.HostForwards, info.HostForwardErrors = e.forwards()
	}
	if e := r.s.proxyEng; e != nil {
		info.NotInForce = e.limits()
	}
	return info
}

// PublicAddr returns the API's address for a of nimbus's namespace: in a
// rootless nimbus a public address inside maps back to the host's loopback
// one the API shows; elsewhere a itself.
func (s *System) PublicAddr(a netip.Addr) netip.Addr { return s.addrs.out(a) }

// publicPool is the effective public pool (the API's default when zero).
func publicPool(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return arm.DefaultPublicPool
	}
	return p
}
