package system

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"sort"
	"strings"
	"sync"
	"time"

	lbctl "nimbus/internal/controller/lb"
	"nimbus/internal/dataplane"
	"nimbus/internal/rootless"
)

// Reasons of the rule errors this package adds to the engines' own.
const (
	// ReasonNotReachableFromHost: a rootless nimbus has the rule in force
	// inside its namespace, but the forwarder cannot listen for it on the
	// host's loopback (a port below 1024, or one another program holds).
	// Shown on GET; the write succeeds.
	ReasonNotReachableFromHost = "FrontendNotReachableFromHost"
	// ReasonNotSupportedInProxyMode: the process + proxy mode cannot carry
	// what the rule asks for (HA ports); the LB write fails with it.
	// Outbound rules get it on GET only (their SNAT blocks are allocated
	// and reported, but instances' flows are not rewritten).
	ReasonNotSupportedInProxyMode = "NotSupportedInProxyMode"
)

// hostRetry is how often a rootless nimbus retries the forwards the host
// refused (a port another program held may free up).
const hostRetry = 5 * time.Second

// rootlessInnerBase is where a rootless nimbus's namespace puts the public
// pool: the API's loopback pool maps 1:1 (same offset) into
// 198.18.0.0/16, a routed range (loopback addresses cannot be routed
// between namespaces), so inside, the kernel path is the root one.
var rootlessInnerBase = netip.MustParsePrefix("198.18.0.0/16")

// addrMap maps the API's public pool 1:1 to the range nimbus's namespace
// carries it on. The zero addrMap maps nothing.
type addrMap struct{ api, inner netip.Prefix }

// newAddrMap returns the map of a rootless nimbus's public pool: a
// loopback IPv4 prefix of /16 or longer.
func newAddrMap(api netip.Prefix) (addrMap, error) {
	if !api.Addr().Is4() || !api.Addr().IsLoopback() || api.Bits() < rootlessInnerBase.Bits() {
		return addrMap{}, fmt.Errorf("--public-pool %s: a rootless nimbus serves public frontends on the host's loopback: want a loopback prefix of /16 or longer such as 127.77.0.0/16", api)
	}
	return addrMap{api: api.Masked(), inner: netip.PrefixFrom(rootlessInnerBase.Addr(), api.Bits())}, nil
}

func shift(a netip.Addr, from, to netip.Prefix) netip.Addr {
	if !from.IsValid() || !a.Is4() || !from.Contains(a) {
		return a
	}
	f, t, x := from.Addr().As4(), to.Addr().As4(), a.As4()
	v := binary.BigEndian.Uint32(x[:]) - binary.BigEndian.Uint32(f[:]) + binary.BigEndian.Uint32(t[:])
	var out [4]byte
	binary.BigEndian.PutUint32(out[:], v)
	return netip.AddrFrom4(out)
}

// in maps an API address to nimbus's namespace (others unchanged).
func (m addrMap) in(a netip.Addr) netip.Addr { return shift(a, m.api, m.inner) }

// out maps an address of nimbus's namespace back to the API's.
func (m addrMap) out(a netip.Addr) netip.Addr { return shift(a, m.inner, m.api) }

// inward returns cfg with every public address mapped in; cfg is not
// modified.
func (m addrMap) inward(cfg dataplane.Config) dataplane.Config {
	out := cfg
	out.Rules = append([]dataplane.Rule(nil), cfg.Rules...)
	for i := range out.Rules {
		out.Rules[i].Frontend.IP = m.in(out.Rules[i].Frontend.IP)
	}
	out.NATRules = append([]dataplane.NATRule(nil), cfg.NATRules...)
	for i := range out.NATRules {
		out.NATRules[i].Frontend.IP = m.in(out.NATRules[i].Frontend.IP)
	}
	out.Outbound = append([]dataplane.SNATAllocation(nil), cfg.Outbound...)
	for i := range out.Outbound {
		out.Outbound[i].Frontend.IP = m.in(out.Outbound[i].Frontend.IP)
	}
	out.InstanceIPs = append([]dataplane.InstancePublicIP(nil), cfg.InstanceIPs...)
	for i := range out.InstanceIPs {
		out.InstanceIPs[i].PublicIP = m.in(out.InstanceIPs[i].PublicIP)
	}
	return out
}

// ruleRef names the rule a forward serves.
type ruleRef struct {
	rule, frontend string
	protocol       dataplane.Protocol
}

// forwardsOf lists the host forwards cfg's public frontends need, with the
// rules each serves. HA-ports rules and instance public IPs have no port
// to listen on: they are reachable inside nimbus's namespace only.
func forwardsOf(cfg dataplane.Config, m addrMap) ([]rootless.Forward, map[rootless.Forward][]ruleRef) {
	owners := map[rootless.Forward][]ruleRef{}
	add := func(id string, fe dataplane.Frontend, p dataplane.Protocol, port uint16) {
		if port == 0 || fe.Internal || !m.api.Contains(fe.IP) {
			return
		}
		for _, n := range networks(p) {
			f := rootless.Forward{Network: n, Listen: netip.AddrPortFrom(fe.IP, port), Target: netip.AddrPortFrom(m.in(fe.IP), port)}
			owners[f] = append(owners[f], ruleRef{rule: id, frontend: fe.ID, protocol: p})
		}
	}
	for _, r := range cfg.Rules {
		add(r.ID, r.Frontend, r.Protocol, r.FrontendPort)
	}
	for _, r := range cfg.NATRules {
		add(r.ID, r.Frontend, r.Protocol, r.FrontendPort)
	}
	out := make([]rootless.Forward, 0, len(owners))
	for f := range owners {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out, owners
}

func networks(p dataplane.Protocol) []string {
	switch p {
	case dataplane.TCP:
		return []string{"tcp"}
	case dataplane.UDP:
		return []string{"udp"}
	}
	return []string{"tcp", "udp"}
}

// advisor is an engine decorator that knows rules in force but degraded:
// shown on the LB's frontends at GET, never failing a write.
type advisor interface {
	Advisories() []dataplane.RuleError
}

// rootlessEngine is the kernel engine of a rootless nimbus: it applies
// configs with the public pool mapped into nimbus's namespace and keeps
// the forwarder's set in step with the frontends.
type rootlessEngine struct {
	dataplane.Engine
	m   addrMap
	fwd *rootless.Forwarder
	log *slog.Logger

	mu      sync.Mutex
	want    []rootless.Forward
	owners  map[rootless.Forward][]ruleRef
	refused map[rootless.Forward]error
	stop    context.CancelFunc
	done    chan struct{}
}

var (
	_ dataplane.Engine = (*rootlessEngine)(nil)
	_ advisor          = (*rootlessEngine)(nil)
)

func newRootlessEngine(inner dataplane.Engine, m addrMap, fwd *rootless.Forwarder, log *slog.Logger) *rootlessEngine {
	ctx, cancel := context.WithCancel(context.Background())
	e := &rootlessEngine{Engine: inner, m: m, fwd: fwd, log: log, stop: cancel, done: make(chan struct{})}
	go e.retry(ctx)
	return e
}

// Apply applies cfg mapped into nimbus's namespace, then opens and closes
// host forwards to match. Errors of the kernel engine name API addresses.
func (e *rootlessEngine) Apply(ctx context.Context, cfg dataplane.Config) error {
	err := e.Engine.Apply(ctx, e.m.inward(cfg))
	var ae *dataplane.ApplyError
	if err != nil && !errors.As(err, &ae) {
		return err
	}
	if ae != nil {
		for i := range ae.Rules {
			l := ae.Rules[i].Listen
			if l.IsValid() {
				ae.Rules[i].Listen = netip.AddrPortFrom(e.m.out(l.Addr()), l.Port())
			}
		}
	}
	want, owners := forwardsOf(cfg, e.m)
	e.mu.Lock()
	e.want, e.owners = want, owners
	e.refused = e.fwd.Set(want)
	e.logRefused()
	e.mu.Unlock()
	return err
}

// logRefused logs the forwards the host refused. Called with e.mu held.
func (e *rootlessEngine) logRefused() {
	for f, err := range e.refused {
		e.log.Warn("frontend not reachable from the host", "forward", f.String(), "err", err)
	}
}

// retry reopens refused forwards every hostRetry until Close.
func (e *rootlessEngine) retry(ctx context.Context) {
	defer close(e.done)
	t := time.NewTicker(hostRetry)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		e.mu.Lock()
		if len(e.refused) > 0 {
			e.refused = e.fwd.Set(e.want)
		}
		e.mu.Unlock()
	}
}

// Advisories returns one rule error per rule whose frontend the host
// cannot reach.
func (e *rootlessEngine) Advisories() []dataplane.RuleError {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []dataplane.RuleError
	for f, err := range e.refused {
		for _, o := range e.owners[f] {
			out = append(out, dataplane.RuleError{RuleID: o.rule, FrontendID: o.frontend, Protocol: o.protocol,
				Listen: f.Listen, Reason: ReasonNotReachableFromHost, Err: err})
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].RuleID+out[i].Listen.String() < out[j].RuleID+out[j].Listen.String()
	})
	return out
}

// Close stops the retries, the forwarder and the kernel engine.
func (e *rootlessEngine) Close() error {
	e.stop()
	<-e.done
	return errors.Join(e.fwd.Close(), e.Engine.Close())
}

// forwards reports the forwards in force and refused, for /nimbus/info.
func (e *rootlessEngine) forwards() (open []string, refused map[string]string) {
	for _, f := range e.fwd.Open() {
		open = append(open, f.String())
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	refused = map[string]string{}
	for f, err := range e.refused {
		refused[f.String()] = err.Error()
	}
	return open, refused
}

// proxyLimits is the userspace engine as the API sees it: what the
// process + proxy mode cannot carry is refused (HA-ports rules: the write
// fails with ReasonNotSupportedInProxyMode) or shown (outbound rules, on
// GET), and counted for /nimbus/info, instead of being skipped with only a
// log line.
type proxyLimits struct {
	dataplane.Engine

	mu         sync.Mutex
	advisories []dataplane.RuleError
	notInForce map[string]int
}

var (
	_ dataplane.Engine = (*proxyLimits)(nil)
	_ advisor          = (*proxyLimits)(nil)
)

// Apply applies cfg and adds a rule error per HA-ports rule to the
// engine's.
func (e *proxyLimits) Apply(ctx context.Context, cfg dataplane.Config) error {
	var refused, adv []dataplane.RuleError
	counts := map[string]int{}
	for _, r := range cfg.Rules {
		if r.FrontendPort == 0 {
			refused = append(refused, dataplane.RuleError{RuleID: r.ID, FrontendID: r.Frontend.ID, Protocol: r.Protocol,
				Reason: ReasonNotSupportedInProxyMode, Err: errors.New("HA-ports rules (protocol All, frontend port 0) need the kernel data plane (netns + nft mode)")})
			counts["haPortsRules"]++
		}
		if r.FloatingIP {
			counts["floatingIPRules"]++
		}
	}
	seen := map[string]bool{}
	for _, o := range cfg.Outbound {
		counts["snatBlocks"]++
		if !strings.Contains(strings.ToLower(o.RuleID), "/outboundrules/") || seen[o.RuleID] {
			continue
		}
		seen[o.RuleID] = true
		adv = append(adv, dataplane.RuleError{RuleID: o.RuleID, FrontendID: o.Frontend.ID, Protocol: o.Protocol,
			Reason: ReasonNotSupportedInProxyMode, Err: errors.New("the userspace data plane allocates this rule's SNAT port blocks (see metrics) but cannot rewrite instances' own outbound flows: they leave from the host's addresses (netns + nft mode does real SNAT)")})
	}
	counts["instancePublicIPs"] = len(cfg.InstanceIPs)
	err := e.Engine.Apply(ctx, cfg)
	e.mu.Lock()
	e.advisories, e.notInForce = adv, counts
	e.mu.Unlock()
	if len(refused) == 0 {
		return err
	}
	var ae *dataplane.ApplyError
	switch {
	case err == nil:
		return &dataplane.ApplyError{Rules: refused}
	case errors.As(err, &ae):
		return &dataplane.ApplyError{Rules: append(refused, ae.Rules...)}
	}
	return err
}

// Advisories returns the outbound rules whose flows the mode does not
// rewrite.
func (e *proxyLimits) Advisories() []dataplane.RuleError {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]dataplane.RuleError(nil), e.advisories...)
}

// limits lists what is configured but not in force, for /nimbus/info.
func (e *proxyLimits) limits() map[string]string {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := map[string]string{}
	if n := e.notInForce["haPortsRules"]; n > 0 {
		out["haPortsRules"] = fmt.Sprintf("%d refused (%s): HA ports need the kernel data plane", n, ReasonNotSupportedInProxyMode)
	}
	if n := e.notInForce["floatingIPRules"]; n > 0 {
		out["floatingIPRules"] = fmt.Sprintf("%d carried without floating IP: backends see their own address as the destination", n)
	}
	if n := e.notInForce["instancePublicIPs"]; n > 0 {
		out["instancePublicIPs"] = fmt.Sprintf("%d not in force: 1:1 NAT needs the kernel data plane", n)
	}
	if n := e.notInForce["snatBlocks"]; n > 0 {
		out["outboundSNAT"] = fmt.Sprintf("%d port blocks allocated and reported, flows not rewritten: instances' outbound flows leave from the host's addresses", n)
	}
	return out
}

// failuresOf returns the rule errors of lbID among rs.
func failuresOf(rs []dataplane.RuleError, lbID string) []dataplane.RuleError {
	var out []dataplane.RuleError
	want := lbctl.LoadBalancerOf(lbID)
	for _, r := range rs {
		if lbctl.LoadBalancerOf(r.RuleID) == want {
			out = append(out, r)
		}
	}
	return out
}
