// Package proxy is the portable userspace data-plane engine: it implements
// dataplane.Engine with ordinary sockets (no root; Linux and macOS).
//
// One listener serves each (listen address, port, protocol) of the Config's
// load-balancing and inbound NAT rules, on Frontend.ListenIP (or Frontend.IP
// when ListenIP is zero). A rule with Protocol All listens on TCP and UDP.
//
// TCP: each accepted connection is hashed on the rule's loadDistribution
// tuple (dataplane.FlowHash) into a Maglev table built over the rule's
// eligible backends (dataplane.Eligible: health, admin state,
// noHealthyBackendsBehavior). Tables are rebuilt only when the eligible set
// changes; rules with the same eligible backends share one table (a table
// depends only on the backend IDs and the size, so sharing changes no
// mapping). Bytes are moved with io.Copy between *net.TCPConn, which uses
// splice(2) on Linux (zero copy). A flow idle for the rule's IdleTimeout is
// closed: with TCPReset both sides get an RST, otherwise both get an
// ordinary FIN. (Azure drops an idle flow silently; a proxy owns two sockets
// and cannot leave them half-alive, so the client sees EOF.) The idle check
// runs every IdleTimeout/8 (10 ms to 5 s), so a flow ends between
// IdleTimeout and IdleTimeout×1.125 after its last byte, whatever its
// directions are doing: a reaper also ends flows whose directions are stuck
// writing to a peer that never reads. A half-closed flow (one side's FIN
// passed on) ends after Options.HalfCloseTimeout without a byte, so a
// client that left while its backend never answers gives its two
// descriptors back.
//
// Budget: the engine carries at most Options.MaxFlows flows (TCP
// connections and UDP sessions) and Options.MaxFlowsPerFrontend per
// listener; by default DefaultBudget's share of the descriptor limit, below
// it, so the process never runs out of descriptors and one flooded frontend
// leaves room for the others. A new TCP connection beyond a budget is
// accepted and reset at once, a UDP datagram that would open a session is
// dropped; both are counted in nimbus_refused_flows_total and logged at most
// once per Options.RefusedLogInterval.
//
// A listener that cannot be opened (port held by another program, address
// not on the host) fails its rule alone: Apply applies the rest and returns
// a *dataplane.ApplyError naming the rule, the reason and, on Linux, the
// process holding the port (from /proc/net and /proc/*/fd, best effort).
//
// When a rule has no eligible backend under AllProbedDown, the engine still
// accepts (the kernel completes the handshake before a userspace proxy sees
// anything) and at once resets the connection: the client sees the connect
// succeed and its first read fail with ECONNRESET. Azure drops the SYN
// instead (the client times out). A backend that refuses the proxy's connect
// gets the client reset the same way.
//
// UDP: a session per client address, with its own connected socket to the
// backend; replies go back from the frontend socket, so the client sees them
// come from the frontend address. A session whose backend is no longer
// eligible moves to another eligible backend on its next datagram (Azure
// moves UDP flows of a down backend). Sessions end after IdleTimeout without
// datagrams in either direction.
//
// A proxy cannot keep the client's address: backends see connections from
// the host. Rule.ProxyProtocol makes the engine send a PROXY protocol v2
// header first (TCP) or in front of every datagram (UDP), carrying the
// client's address and the frontend address. The kernel engine preserves the
// client address itself and ignores the flag.
//
// Metrics (Options.Metrics): SYNCount counts accepted TCP connections;
// ByteCount is exact; PacketCount counts UDP datagrams exactly and estimates
// TCP packets as bytes/1448 per copy chunk (splice hides segments from a
// proxy). VipAvailability and DipAvailability are recomputed on every Apply
// and SetHealth by metrics.Availability over the rules the engine serves and
// the prober's health, the same function the kernel path reports through.
//
// Network security groups (Config.Security) are enforced at accept time:
// a new TCP connection or UDP session is evaluated with
// dataplane.SecurityIndex.Evaluate as the backend NIC would see it (client
// address, backend customer address and port, Secure for a Standard public
// frontend); a denied TCP connection is reset at once (the kernel has
// already completed the handshake; Azure drops the SYN), a denied
// datagram is dropped. Each decision counts one hit of the deciding rule
// (metrics.AddSecurityRuleHits) and a denial is logged at debug level.
// Established flows are never re-evaluated, except those of a group with
// flushConnection whose rules an Apply changed: they end if now denied.
// The engine cannot see instance-to-instance or outbound traffic (the host
// carries it), so NSGs do not apply to it here.
//
// Not supported (logged and skipped): HA-ports rules (protocol All, port 0),
// instance-level public IPs and outbound SNAT (the host's own stack carries
// the instances' outbound flows; SNAT allocations are only reported as
// metrics).
package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/maglev"
	"nimbus/internal/metrics"
)

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Logger; nil discards.
	Logger *slog.Logger
	// Metrics receives counters and availability; nil records nothing.
	Metrics *metrics.Metrics
	// MaglevSize is the Maglev table size; 0 means dataplane.DefaultMaglevSize.
	MaglevSize uint64
	// DialTimeout bounds the connect to a backend; 0 means 5 s.
	DialTimeout time.Duration
	// MaxFlows bounds the flows (TCP connections, UDP sessions) the engine
	// carries at once over all frontends; 0 means DefaultBudget's figure for
	// the process's descriptor limit. A TCP flow holds two descriptors.
	MaxFlows int
	// MaxFlowsPerFrontend bounds the flows of one frontend listener (one
	// address, port and protocol); 0 means DefaultBudget's figure.
	MaxFlowsPerFrontend int
	// RefusedLogInterval is the least time between two "flows refused" log
	// lines; 0 means 10 s.
	RefusedLogInterval time.Duration
	// HalfCloseTimeout bounds a TCP flow one side of which has closed (its
	// FIN was passed on): it ends when the other direction moved no byte
	// for min(HalfCloseTimeout, the rule's idle timeout) since the later
	// of the FIN and the last byte. 0 means DefaultHalfCloseTimeout.
	HalfCloseTimeout time.Duration
}

// DefaultHalfCloseTimeout is the default Options.HalfCloseTimeout: Linux's
// own bound for a closed socket waiting for its peer's FIN (tcp_fin_timeout).
const DefaultHalfCloseTimeout = 60 * time.Second

// Engine is the userspace engine. It is safe for concurrent use.
type Engine struct {
	opts   Options
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	// state is what the data path reads: one atomic pointer, so a flow sees
	// the old or the new configuration, never a mix.
	state atomic.Pointer[snapshot]

	mu        sync.Mutex // serialises Apply, SetHealth, Close
	closed    bool
	specs     map[lkey]*spec
	served    dataplane.Config // the rules and NAT rules specs serve, for metrics
	health    dataplane.Health
	listeners map[lkey]listener
	// tables are the Maglev tables of the current routes, shared by every
	// rule with the same eligible backends: the key is their IDs joined by
	// NUL. A table depends only on the IDs and the size, so sharing keeps
	// every rule's mapping what it would be with a table of its own.
	tables   map[string]*maglev.Table
	counters map[lkey]*metrics.FrontendCounters // of the current routes, kept across publishes
	outbound []dataplane.SNATAllocation
	// tcp lists the TCP listeners for the idle reaper.
	tcp atomic.Pointer[[]*tcpListener]
	// reapEvery is the reaper's period in nanoseconds (the smallest
	// idleTick of the current rules).
	reapEvery atomic.Int64
	reapKick  chan struct{}

	budget budget

	// security is the Config's network security groups (a deep copy); sec
	// the state routes read.
	security dataplane.Security
	sec      *secState
}

// secState is the network security part of the data path's view: the
// index every new flow is evaluated with, and the groups with
// flushConnection whose rules the last Apply changed (their established
// flows are evaluated again and those now denied end).
type secState struct {
	ix    *dataplane.SecurityIndex
	flush map[string]bool
}

var _ dataplane.Engine = (*Engine)(nil)

// lkey names one listener.
type lkey struct {
	ip    netip.Addr
	port  uint16
	proto dataplane.Protocol // TCP or UDP, never All
}

func (k lkey) String() string {
	return string(k.proto) + "/" + netip.AddrPortFrom(k.ip, k.port).String()
}

// spec is one listener's share of the Config, copied out of it.
type spec struct {
	ruleID      string
	nat         bool
	frontend    dataplane.Frontend
	backendPort uint16
	dist        dataplane.Distribution
	idle        time.Duration
	tcpReset    bool
	proxyProto  bool
	rule        dataplane.Rule // Backends copied; used for eligibility
	natBackend  dataplane.Backend
}

// route is the data path's immutable view of one listener.
type route struct {
	spec     *spec
	eligible []dataplane.Backend
	table    *maglev.Table // over eligible; nil for NAT rules
	valid    map[string]netip.AddrPort
	// ips maps a backend ID to its customer address (what NSGs see).
	ips      map[string]netip.Addr
	counters *metrics.FrontendCounters
	sec      *secState
}

type snapshot struct {
	routes map[lkey]*route
}

// listener is a TCP or UDP listener with its flows.
type listener interface {
	// prune ends flows whose backend r no longer lists (nil r: all flows).
	prune(r *route)
	// close stops the listener and ends all its flows.
	close()
}

// New returns an Engine with an empty configuration. Close it to stop every
// listener and flow.
func New(opts Options) *Engine {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 5 * time.Second
	}
	if opts.MaglevSize == 0 {
		opts.MaglevSize = dataplane.DefaultMaglevSize
	}
	if opts.MaxFlows <= 0 || opts.MaxFlowsPerFrontend <= 0 {
		total, per := DefaultBudget(nofileLimit())
		if opts.MaxFlows <= 0 {
			opts.MaxFlows = total
		}
		if opts.MaxFlowsPerFrontend <= 0 {
			opts.MaxFlowsPerFrontend = min(per, opts.MaxFlows)
		}
	}
	if opts.HalfCloseTimeout <= 0 {
		opts.HalfCloseTimeout = DefaultHalfCloseTimeout
	}
	if opts.RefusedLogInterval <= 0 {
		opts.RefusedLogInterval = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	e := &Engine{
		opts:      opts,
		log:       opts.Logger,
		ctx:       ctx,
		cancel:    cancel,
		specs:     map[lkey]*spec{},
		listeners: map[lkey]listener{},
		tables:    map[string]*maglev.Table{},
		reapKick:  make(chan struct{}, 1),
	}
	e.budget = budget{total: int64(opts.MaxFlows), perFrontend: int64(opts.MaxFlowsPerFrontend),
		log: opts.Logger, metrics: opts.Metrics, every: opts.RefusedLogInterval}
	e.state.Store(&snapshot{routes: map[lkey]*route{}})
	e.tcp.Store(&[]*tcpListener{})
	e.reapEvery.Store(int64(5 * time.Second))
	e.wg.Add(1)
	go e.reapLoop()
	return e
}

// Budget returns the engine's flow budget: in total and per frontend
// listener.
func (e *Engine) Budget() (total, perFrontend int) {
	return e.opts.MaxFlows, e.opts.MaxFlowsPerFrontend
}

// ErrClosed is returned by Apply and SetHealth after Close.
var ErrClosed = errors.New("proxy: engine closed")

// Apply makes the engine serve cfg. Listeners cfg still needs are kept
// (with their connections); flows whose rule or backend disappeared end with
// an RST; other flows continue. A rule whose listener cannot be opened (port
// held by another program, address not on the host) or that is invalid (no
// address, a second rule on one listener) is left out alone: every other
// rule is applied and Apply returns a *dataplane.ApplyError naming the
// failed ones. Applying the same cfg again retries them and changes nothing
// else.
func (e *Engine) Apply(ctx context.Context, cfg dataplane.Config) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("proxy apply: %w", err)
	}
	specs, failed := e.buildSpecs(cfg)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	opened := map[lkey]listener{}
	for k, sp := range specs {
		if _, ok := e.listeners[k]; ok {
			continue
		}
		l, err := e.listen(k)
		if err != nil {
			failed = append(failed, listenError(sp, k, err))
			continue
		}
		opened[k] = l
	}
	// A rule is in force only if all its listeners are: drop the others
	// of a rule with a failed listener (Protocol All).
	bad := map[string]bool{}
	for _, f := range failed {
		bad[f.RuleID] = true
	}
	for k, sp := range specs {
		if bad[sp.ruleID] {
			delete(specs, k)
			if l, ok := opened[k]; ok {
				l.close()
				delete(opened, k)
			}
		}
	}
	for k, l := range opened {
		e.listeners[k] = l
	}
	e.specs, e.served = specs, servedOf(cfg, bad)
	e.setSecurity(cfg.Security)
	e.outbound = slices.Clone(cfg.Outbound)
	snap := e.publish()
	for k, l := range e.listeners {
		if r, ok := snap.routes[k]; ok {
			if _, isNew := opened[k]; !isNew {
				l.prune(r)
			}
			continue
		}
		l.close()
		delete(e.listeners, k)
	}
	e.updateReaper()
	e.reportSnat()
	if len(failed) > 0 {
		slices.SortFunc(failed, func(a, b dataplane.RuleError) int { return strings.Compare(a.RuleID, b.RuleID) })
		return &dataplane.ApplyError{Rules: failed}
	}
	return nil
}

// servedOf is the part of cfg in force: its rules and NAT rules but the
// failed ones and HA-ports rules, copied.
func servedOf(cfg dataplane.Config, bad map[string]bool) dataplane.Config {
	var out dataplane.Config
	for _, r := range cfg.Rules {
		if !bad[r.ID] && r.FrontendPort != 0 {
			r.Backends = slices.Clone(r.Backends)
			out.Rules = append(out.Rules, r)
		}
	}
	for _, n := range cfg.NATRules {
		if !bad[n.ID] {
			out.NATRules = append(out.NATRules, n)
		}
	}
	return out
}

// SetHealth replaces the health snapshot. Backends that went down get no new
// flows; their established TCP flows continue; their UDP sessions move on
// their next datagram.
func (e *Engine) SetHealth(ctx context.Context, h dataplane.Health) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("proxy set health: %w", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	e.health = maps(h)
	e.publish()
	return nil
}

// Close stops every listener, ends every flow and waits for the engine's
// goroutines. It is safe to call more than once.
func (e *Engine) Close() error {
	e.mu.Lock()
	if !e.closed {
		e.closed = true
		for k, l := range e.listeners {
			l.close()
			delete(e.listeners, k)
		}
		e.state.Store(&snapshot{routes: map[lkey]*route{}})
		e.cancel()
	}
	e.mu.Unlock()
	e.wg.Wait()
	return nil
}

func maps(h dataplane.Health) dataplane.Health {
	out := make(dataplane.Health, len(h))
	for k, v := range h {
		out[k] = v
	}
	return out
}

// buildSpecs turns cfg into one spec per listener. A rule without an
// address, with an unknown protocol or on a listener an earlier rule (in
// cfg's order) took is left out and returned as failed.
func (e *Engine) buildSpecs(cfg dataplane.Config) (map[lkey]*spec, []dataplane.RuleError) {
	out := map[lkey]*spec{}
	var failed []dataplane.RuleError
	add := func(id string, fe dataplane.Frontend, proto dataplane.Protocol, port uint16, s *spec) {
		invalid := func(err error) {
			failed = append(failed, dataplane.RuleError{RuleID: id, FrontendID: fe.ID, Protocol: proto,
				Reason: dataplane.ReasonInvalid, Err: err})
		}
		ip := fe.ListenIP
		if !ip.IsValid() {
			ip = fe.IP
		}
		if !ip.IsValid() {
			invalid(fmt.Errorf("frontend %s has no address", fe.ID))
			return
		}
		protos := []dataplane.Protocol{proto}
		if proto == dataplane.All {
			protos = []dataplane.Protocol{dataplane.TCP, dataplane.UDP}
		}
		var keys []lkey
		for _, p := range protos {
			if p != dataplane.TCP && p != dataplane.UDP {
				invalid(fmt.Errorf("unknown protocol %q", p))
				return
			}
			k := lkey{ip: ip.Unmap(), port: port, proto: p}
			if prev, ok := out[k]; ok {
				invalid(fmt.Errorf("rules %s and %s both use %s", prev.ruleID, id, k))
				return
			}
			keys = append(keys, k)
		}
		for _, k := range keys {
			out[k] = s
		}
	}
	for _, r := range cfg.Rules {
		if r.FrontendPort == 0 {
			e.log.Warn("rule skipped: HA ports need the kernel engine", "rule", r.ID)
			continue
		}
		rc := r
		rc.Backends = slices.Clone(r.Backends)
		s := &spec{ruleID: r.ID, frontend: r.Frontend, backendPort: r.BackendPort, dist: r.Distribution,
			idle: r.IdleTimeout, tcpReset: r.TCPReset, proxyProto: r.ProxyProtocol, rule: rc}
		add(r.ID, r.Frontend, r.Protocol, r.FrontendPort, s)
	}
	for _, n := range cfg.NATRules {
		s := &spec{ruleID: n.ID, nat: true, frontend: n.Frontend, backendPort: n.BackendPort,
			idle: n.IdleTimeout, tcpReset: n.TCPReset, natBackend: n.Backend, dist: dataplane.Default}
		add(n.ID, n.Frontend, n.Protocol, n.FrontendPort, s)
	}
	if len(cfg.InstanceIPs) > 0 {
		e.log.Warn("instance public IPs skipped: 1:1 NAT needs the kernel engine", "count", len(cfg.InstanceIPs))
	}
	for _, s := range out {
		if s.idle <= 0 {
			s.idle = dataplane.DefaultIdleTimeout
		}
	}
	return out, failed
}

// publish builds routes from specs and health, stores them, and reports
// availability. Called with e.mu held.
func (e *Engine) publish() *snapshot {
	snap := &snapshot{routes: make(map[lkey]*route, len(e.specs))}
	tables := make(map[string]*maglev.Table, len(e.tables))
	counters := make(map[lkey]*metrics.FrontendCounters, len(e.specs))
	for k, s := range e.specs {
		c := e.counters[k]
		if c == nil {
			c = e.opts.Metrics.Frontend(s.frontend.IP, k.port)
		}
		counters[k] = c
		r := &route{spec: s, valid: map[string]netip.AddrPort{}, ips: map[string]netip.Addr{}, counters: c, sec: e.sec}
		port := s.backendPort
		if port == 0 {
			port = k.port
		}
		if s.nat {
			r.eligible = []dataplane.Backend{s.natBackend}
			r.valid[s.natBackend.ID] = dialAddr(s.natBackend, port)
			r.ips[s.natBackend.ID] = s.natBackend.IP
			snap.routes[k] = r
			continue
		}
		for _, b := range s.rule.Backends {
			r.valid[b.ID] = dialAddr(b, port)
			r.ips[b.ID] = b.IP
		}
		elig, _ := dataplane.Eligible(&s.rule, e.health)
		r.eligible = elig
		ids := dataplane.BackendIDs(elig)
		tk := strings.Join(ids, "\x00")
		t, ok := tables[tk]
		if !ok {
			if t, ok = e.tables[tk]; !ok {
				t = maglev.New(ids, e.opts.MaglevSize)
			}
			tables[tk] = t
		}
		r.table = t
		snap.routes[k] = r
	}
	e.tables, e.counters = tables, counters
	e.state.Store(snap)
	if e.opts.Metrics != nil {
		e.opts.Metrics.SetAvailability(metrics.Availability(e.served, e.health))
	}
	return snap
}

// setSecurity takes the Config's network security groups: new flows are
// evaluated against them from the next publish on, and the groups with
// flushConnection whose rules changed are marked for prune.
func (e *Engine) setSecurity(s dataplane.Security) {
	next := s.Clone()
	flush := dataplane.FlushedGroups(e.security, next)
	e.security = next
	e.sec = &secState{flush: flush}
	if !next.Empty() || e.hasSecureFrontend() {
		e.sec.ix = dataplane.NewSecurityIndex(next)
	}
}

// hasSecureFrontend reports whether a served rule has a Secure frontend
// (then flows are evaluated even without any group).
func (e *Engine) hasSecureFrontend() bool {
	for _, sp := range e.specs {
		if sp.frontend.Secure {
			return true
		}
	}
	return false
}

// admit evaluates a new flow from src to backend b on its backend port
// (the NIC's customer address, as NSGs see it after the load balancer's
// DNAT), counts the deciding rule and logs a denial at debug level.
func (e *Engine) admit(r *route, proto uint8, src netip.AddrPort, b dataplane.Backend, port uint16) bool {
	if r.sec == nil || r.sec.ix == nil {
		return true
	}
	ix := r.sec.ix
	f := dataplane.Flow{Protocol: proto, Src: src, Dst: netip.AddrPortFrom(b.IP, port), Secure: r.spec.frontend.Secure}
	v := ix.Evaluate(ix.Interface(b.ID), dataplane.Inbound, f)
	if v.RuleID != "" {
		e.opts.Metrics.AddSecurityRuleHits(v.GroupID, v.RuleID, v.Allow, 1)
	}
	if !v.Allow {
		e.log.Debug("flow denied by network security group", "rule", r.spec.ruleID, "src", src.String(),
			"dst", f.Dst.String(), "group", v.GroupID, "securityRule", v.RuleID)
	}
	return v.Allow
}

// stillAllowed reports whether an established flow from src to backend id
// on port survives a rule change: true unless a group with flushConnection
// that guards the backend changed and its rules now deny the flow.
func (r *route) stillAllowed(proto uint8, src netip.AddrPort, id string, port uint16) bool {
	if r.sec == nil || r.sec.ix == nil || len(r.sec.flush) == 0 {
		return true
	}
	nic := r.sec.ix.Interface(id)
	if nic == nil || (!r.sec.flush[nic.SubnetGroup] && !r.sec.flush[nic.NICGroup]) {
		return true
	}
	f := dataplane.Flow{Protocol: proto, Src: src, Dst: netip.AddrPortFrom(r.ips[id], port), Secure: r.spec.frontend.Secure}
	return r.sec.ix.Evaluate(nic, dataplane.Inbound, f).Allow
}

func (e *Engine) reportSnat() {
	e.opts.Metrics.SetSnatPorts(metrics.SnatAllocated(e.outbound))
}

func dialAddr(b dataplane.Backend, port uint16) netip.AddrPort {
	ip := b.DialIP
	if !ip.IsValid() {
		ip = b.IP
	}
	return netip.AddrPortFrom(ip.Unmap(), port)
}

// pick chooses the backend for a new flow; ok is false when there is none.
func (r *route) pick(proto dataplane.Protocol, src, dst netip.AddrPort) (dataplane.Backend, netip.AddrPort, bool) {
	if r.spec.nat {
		b := r.spec.natBackend
		return b, r.valid[b.ID], true
	}
	if len(r.eligible) == 0 {
		return dataplane.Backend{}, netip.AddrPort{}, false
	}
	i := r.table.Lookup(dataplane.FlowHash(r.spec.dist, proto, src, dst))
	b := r.eligible[i]
	return b, r.valid[b.ID], true
}

// eligibleFor reports whether backend id at addr may keep receiving a UDP
// flow under r.
func (r *route) eligibleFor(id string, addr netip.AddrPort) bool {
	if r.valid[id] != addr {
		return false
	}
	for _, b := range r.eligible {
		if b.ID == id {
			return true
		}
	}
	return false
}

// idleTick is how often a flow checks for idleness.
func idleTick(idle time.Duration) time.Duration {
	return min(max(idle/8, 10*time.Millisecond), 5*time.Second)
}

func (e *Engine) listen(k lkey) (listener, error) {
	addr := netip.AddrPortFrom(k.ip, k.port)
	switch k.proto {
	case dataplane.TCP:
		// No TCP keep-alives: Azure's load balancer sends none, and each one
		// costs setsockopt calls per connection.
		lc := net.ListenConfig{KeepAlive: -1}
		ln, err := lc.Listen(e.ctx, "tcp", addr.String())
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", k, err)
		}
		return e.serveTCP(k, ln.(*net.TCPListener)), nil
	default:
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(addr))
		if err != nil {
			return nil, fmt.Errorf("listen %s: %w", k, err)
		}
		return e.serveUDP(k, c), nil
	}
}

// isClosed reports the error of using a closed socket.
func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || (err != nil && strings.Contains(err.Error(), "use of closed"))
}
