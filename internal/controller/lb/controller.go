package lb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Prober is the part of probe.Prober the controller drives: after each
// apply it hands over the probes the Config lists. The prober owns backend
// health and feeds it to the engine and the API itself (probe.Prober.Feed,
// StatusOf); the controller keeps no copy.
type Prober interface {
	Update(probes []dataplane.Probe)
}

// Options configure a Controller. Store and Engine are required.
type Options struct {
	Store  store.Store
	Engine dataplane.Engine
	// Prober runs the probes the compiled Config lists; nil runs none (every
	// backend counts as healthy).
	Prober Prober
	// ListenIP maps frontend addresses for the userspace engine (see
	// Snapshot.ListenIP); nil means identity.
	ListenIP func(netip.Addr) netip.Addr
	Logger   *slog.Logger
	// Resync is the period of a full recompile without store events
	// (default 5 s). It is also the retry period of rules the engine could
	// not apply (see Failures).
	Resync time.Duration
	// OnApplied, when set, is called after each Config is applied, with the
	// store revision it reflects.
	OnApplied func(rev int64, cfg dataplane.Config)
	// NetworkSecurity enforces network security groups (Snapshot.NetworkSecurity).
	NetworkSecurity bool
	// ProbeInterval, when positive, replaces every probe's interval. The API
	// keeps Azure's 5-second minimum; this exists for tests and demos only
	// (`nimbus serve --test-probe-interval`).
	ProbeInterval time.Duration
}

// Controller compiles the stored load balancers into the data plane. It is
// safe for concurrent use; run it with Run.
type Controller struct {
	opt  Options
	log  *slog.Logger
	kick chan struct{}

	mu      sync.Mutex
	last    *dataplane.Config
	lastRev int64
	waiters []revWaiter
	// failed are the rules the engine could not apply at the last apply,
	// by normalized load balancer id; the next Sync applies again while
	// it is not empty.
	failed map[string][]dataplane.RuleError
}

type revWaiter struct {
	rev int64
	ch  chan error // receives once: nil when applied, or the apply error
}

// New returns a Controller.
func New(opt Options) *Controller {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.DiscardHandler)
	}
	if opt.Resync <= 0 {
		opt.Resync = 5 * time.Second
	}
	return &Controller{opt: opt, log: opt.Logger.With("controller", "lb"), kick: make(chan struct{}, 1)}
}

// Resync returns the resync period, which is also the retry period of
// failed rules.
func (c *Controller) Resync() time.Duration { return c.opt.Resync }

// Config returns the last applied Config and the store revision it reflects.
func (c *Controller) Config() (dataplane.Config, int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		return dataplane.Config{}, 0
	}
	return *c.last, c.lastRev
}

// WaitApplied blocks until a Config reflecting store revision rev (or a
// later one) is applied to the engine. A Config whose rules were applied
// but some (Failures) counts as applied. It returns the engine's error when
// the apply of such a Config failed as a whole, or ctx's.
func (c *Controller) WaitApplied(ctx context.Context, rev int64) error {
	c.mu.Lock()
	if c.last != nil && c.lastRev >= rev {
		c.mu.Unlock()
		return nil
	}
	ch := make(chan error, 1)
	c.waiters = append(c.waiters, revWaiter{rev: rev, ch: ch})
	c.mu.Unlock()
	c.Kick()
	select {
	case err := <-ch:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Failures returns the rules of load balancer lbID (any case) the engine
// could not apply at the last apply, sorted by rule id; nil when all of them
// are in force. The controller retries them every Resync period until they
// apply (the port frees up, the address comes back).
func (c *Controller) Failures(lbID string) []dataplane.RuleError {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.failed[norm(lbID)])
}

// LoadBalancerOf returns the load balancer id (lowercase) of a rule, NAT
// rule or frontend id ("" when id is not under a load balancer).
func LoadBalancerOf(id string) string {
	id = strings.ToLower(id)
	const seg = "/providers/microsoft.network/loadbalancers/"
	i := strings.Index(id, seg)
	if i < 0 {
		return ""
	}
	rest := id[i+len(seg):]
	if j := strings.IndexByte(rest, '/'); j >= 0 {
		rest = rest[:j]
	}
	return id[:i+len(seg)] + rest
}

// Kick asks for a recompile soon.
func (c *Controller) Kick() {
	select {
	case c.kick <- struct{}{}:
	default:
	}
}

// Run compiles and applies until ctx ends: after every store change under
// the resource and instance prefixes, and every Resync period.
func (c *Controller) Run(ctx context.Context) error {
	return store.Loop(ctx, c.opt.Store, []string{resource.ResourcePrefix + "/", resource.InstancePrefix}, c.opt.Resync,
		c.kick, c.Sync, func(err error) { c.log.Warn("sync failed", "err", err) })
}

// Sync reads the store once, compiles and applies the result if it changed.
func (c *Controller) Sync(ctx context.Context) error {
	snap, rev, err := ReadSnapshot(ctx, c.opt.Store)
	if err != nil {
		return err
	}
	snap.ListenIP = c.opt.ListenIP
	snap.NetworkSecurity = c.opt.NetworkSecurity
	cfg := Compile(snap)
	if c.opt.ProbeInterval > 0 {
		for i := range cfg.Probes {
			cfg.Probes[i].Interval = c.opt.ProbeInterval
		}
	}
	c.mu.Lock()
	changed := c.last == nil || !reflect.DeepEqual(*c.last, cfg)
	same := !changed && len(c.failed) == 0 // a retry applies the same Config again
	c.mu.Unlock()
	var failed map[string][]dataplane.RuleError
	if !same {
		start := time.Now()
		err := c.opt.Engine.Apply(ctx, cfg)
		var ae *dataplane.ApplyError
		if errors.As(err, &ae) {
			failed = byLoadBalancer(ae.Rules)
		} else if err != nil {
			err = fmt.Errorf("apply data plane: %w", err)
			c.release(rev, err)
			return err
		}
		if c.opt.Prober != nil {
			c.opt.Prober.Update(cfg.Probes)
		}
		if changed {
			c.log.Info("data plane applied", "revision", rev, "rules", len(cfg.Rules), "natRules", len(cfg.NATRules),
				"snat", len(cfg.Outbound), "failedRules", len(failedRules(failed)), "took", time.Since(start))
		}
	}
	c.mu.Lock()
	if !same {
		c.logFailures(c.failed, failed)
		c.failed = failed
	}
	c.last, c.lastRev = &cfg, rev
	c.mu.Unlock()
	c.release(rev, nil)
	if c.opt.OnApplied != nil {
		c.opt.OnApplied(rev, cfg)
	}
	return nil
}

// release answers the waiters for revisions up to rev with err; a nil err
// also covers later waiters' revisions only when they are reached.
func (c *Controller) release(rev int64, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.rev <= rev {
			w.ch <- err
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// byLoadBalancer groups rule errors by their load balancer's id.
func byLoadBalancer(rs []dataplane.RuleError) map[string][]dataplane.RuleError {
	out := map[string][]dataplane.RuleError{}
	for _, r := range rs {
		lb := LoadBalancerOf(r.RuleID)
		out[lb] = append(out[lb], r)
	}
	return out
}

func failedRules(m map[string][]dataplane.RuleError) []dataplane.RuleError {
	var out []dataplane.RuleError
	for _, rs := range m {
		out = append(out, rs...)
	}
	return out
}

// logFailures logs each rule failure once, when it appears or changes, and
// once when it clears; retries that fail the same way say nothing. Called
// with c.mu held.
func (c *Controller) logFailures(old, cur map[string][]dataplane.RuleError) {
	key := func(r dataplane.RuleError) string { return r.RuleID + "|" + r.Reason + "|" + r.Listen.String() }
	was := map[string]bool{}
	for _, r := range failedRules(old) {
		was[key(r)] = true
	}
	now := map[string]bool{}
	for _, r := range failedRules(cur) {
		now[key(r)] = true
		if !was[key(r)] {
			c.log.Warn("rule not applied: retrying", "rule", r.RuleID, "code", r.Reason, "listen", r.Listen.String(),
				"holder", r.Holder, "err", r.Err)
		}
	}
	for _, r := range failedRules(old) {
		if !now[key(r)] {
			c.log.Info("rule no longer failing", "rule", r.RuleID)
		}
	}
}

// ReadSnapshot reads load balancers, public IPs and instances from the
// store in one listing at one revision (store.ListPrefixes), returned with
// it: the Snapshot is the store's state at that revision, never a mix of two.
// Keys are classified by their resource ID (resource.ParseKey,
// resource.SplitInstanceKey) and values decoded through their resource
// types; other resources and the instance counters are skipped. A value that
// does not decode fails the read.
func ReadSnapshot(ctx context.Context, st store.Store) (Snapshot, int64, error) {
	lists, rev, err := st.ListPrefixes(ctx, []string{resource.SubscriptionsPrefix, resource.InstancePrefix})
	if err != nil {
		return Snapshot{}, 0, fmt.Errorf("read snapshot: %w", err)
	}
	snap := Snapshot{PublicIPs: map[string]netip.Addr{}, SecurityGroups: map[string]*resource.NetworkSecurityGroup{}}
	for _, kv := range lists[0] {
		id, ok := resource.ParseKey(kv.Key)
		if !ok || len(id.Types) != 1 {
			continue
		}
		switch {
		case strings.EqualFold(id.Type(), resource.LoadBalancerType):
			lb, err := resource.DecodeLoadBalancer(kv.Value)
			if err != nil {
				return Snapshot{}, 0, fmt.Errorf("read snapshot: decode %s: %w", kv.Key, err)
			}
			snap.LoadBalancers = append(snap.LoadBalancers, lb)
		case strings.EqualFold(id.Type(), resource.PublicIPType):
			var p resource.PublicIPAddress
			if err := json.Unmarshal(kv.Value, &p); err != nil {
				return Snapshot{}, 0, fmt.Errorf("read snapshot: decode %s: %w", kv.Key, err)
			}
			if addr, err := netip.ParseAddr(p.Properties.IPAddress); err == nil {
				snap.PublicIPs[norm(id.String())] = addr
			}
		case strings.EqualFold(id.Type(), resource.NetworkSecurityGroupType):
			var g resource.NetworkSecurityGroup
			if err := json.Unmarshal(kv.Value, &g); err != nil {
				return Snapshot{}, 0, fmt.Errorf("read snapshot: decode %s: %w", kv.Key, err)
			}
			g.ID = id.String()
			snap.SecurityGroups[norm(g.ID)] = &g
		case strings.EqualFold(id.Type(), resource.VirtualNetworkType):
			var v resource.VirtualNetwork
			if err := json.Unmarshal(kv.Value, &v); err != nil {
				return Snapshot{}, 0, fmt.Errorf("read snapshot: decode %s: %w", kv.Key, err)
			}
			snap.VirtualNetworks = append(snap.VirtualNetworks, &v)
		}
	}
	for _, kv := range lists[1] {
		if _, id, ok := resource.SplitInstanceKey(kv.Key); !ok || id == "" {
			continue
		}
		in, err := resource.DecodeInstance(kv.Value)
		if err != nil {
			return Snapshot{}, 0, fmt.Errorf("read snapshot: decode %s: %w", kv.Key, err)
		}
		snap.Instances = append(snap.Instances, in)
	}
	return snap, rev, nil
}
