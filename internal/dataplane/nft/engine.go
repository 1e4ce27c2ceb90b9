// Package nft is nimbus's Linux kernel data plane: it applies a
// dataplane.Config as one nftables table inside nimbus's network namespace,
// through netlink (no nft binary). The rules are fixed; every per-frontend,
// per-backend and per-rule value lives in maps, so health changes and most
// configuration changes are element updates. See README.md for the table.
package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sort"
	"sync"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/mdlayher/netlink"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
	"nimbus/internal/hostnet"
)

// DefaultTable is the name of the table nimbus owns.
const DefaultTable = "nimbus"

// maxElemsPerMsg bounds the elements per netlink message: the element list is
// one nested attribute with a 16-bit length, and larger lists are silently
// truncated by the kernel.
const maxElemsPerMsg = 1000

// sockBuf is the forced socket buffer size, large enough for a batch that
// fills a 65537-slot map.
const sockBuf = 32 << 20

// floatRouteTableBase is the first routing table of floating-IP routes;
// routeID n uses table floatRouteTableBase+n.
const floatRouteTableBase = 0x4e00

// floatRulePriority is the priority of the ip rules of floating-IP routes.
const floatRulePriority = 1000

// ErrUnavailable is matched (errors.Is) by the error Available and New
// return when the kernel engine cannot run here.
var ErrUnavailable = errors.New("nft: kernel data plane unavailable")

// UnavailableError says why the kernel engine cannot run. It matches
// ErrUnavailable.
type UnavailableError struct {
	Reason string // what is missing, e.g. "not root"
	Err    error  // the underlying error, if any
}

// Error says why the kernel data plane cannot run here.
func (e *UnavailableError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("nft: kernel data plane unavailable: %s: %v", e.Reason, e.Err)
	}
	return "nft: kernel data plane unavailable: " + e.Reason
}

// Unwrap returns the underlying error.
func (e *UnavailableError) Unwrap() error { return e.Err }

// Is matches ErrUnavailable.
func (e *UnavailableError) Is(target error) bool { return target == ErrUnavailable }

// Available reports whether this machine can run the engine: root (or
// CAP_NET_ADMIN), network namespaces, and nf_tables with NAT, ct timeout
// objects and jhash. It probes in a throwaway namespace, so the host is never
// touched. A nil result means yes; otherwise an *UnavailableError.
func Available() error {
	if os.Geteuid() != 0 {
		return &UnavailableError{Reason: "not root (needs CAP_NET_ADMIN and CAP_SYS_ADMIN for namespaces)"}
	}
	errc := make(chan error, 1)
	go func() {
		leave, err := enterFreshNamespace()
		defer leave()
		if err != nil {
			errc <- &UnavailableError{Reason: "cannot create a network namespace", Err: err}
			return
		}
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			errc <- &UnavailableError{Reason: "cannot open the probe namespace", Err: err}
			return
		}
		defer f.Close()
		c, err := nftables.New(nftables.WithNetNSFd(int(f.Fd())), nftables.AsLasting())
		if err != nil {
			errc <- &UnavailableError{Reason: "no nftables netlink", Err: err}
			return
		}
		defer c.CloseLasting()
		rs := compile(dataplane.Config{}, nil, compileOptions{table: "nimbus_probe", uplink: "lo"})
		rs.objs = append(rs.objs, timeoutObj{name: "probe", idle: 240})
		if err := applyFull(c, rs); err != nil {
			errc <- &UnavailableError{Reason: "nf_tables lacks a needed feature (nat, ct timeout, jhash, maps)", Err: err}
			return
		}
		errc <- nil
	}()
	return <-errc
}

// Options configure an Engine. The zero value is usable.
type Options struct {
	// Table is the table name; default DefaultTable.
	Table string
	// Uplink is the interface in nimbus's namespace towards the outside
	// (hostnet.Net.UplinkName()); outbound SNAT applies to flows leaving by
	// it. Empty disables outbound SNAT (hairpin SNAT still works).
	Uplink string
	// SlotTableSize fixes every rule's Maglev table size; 0 picks it from the
	// pool size (SlotTableSize).
	SlotTableSize uint64
	// Logger receives apply events; nil discards them.
	Logger *slog.Logger
}

// Engine is the nftables data plane. It is safe for concurrent use.
type Engine struct {
	ns   *hostnet.Namespace
	opts Options
	log  *slog.Logger

	mu         sync.Mutex
	conn       *nftables.Conn
	cfg        dataplane.Config
	health     dataplane.Health
	applied    *ruleset // nil until the first successful apply
	structure  string
	routes     map[netip.Addr]uint32 // floating-IP backend -> route id
	sizes      map[string]uint64     // rule id -> slot table size in use
	slots      *slotCache
	closed     bool
	configured bool // Apply succeeded at least once
	stats      Stats

	rawFd      int // raw IPv4 socket in nimbus's namespace (idle resets)
	stopReaper context.CancelFunc
	reaperDone chan struct{}
}

// Stats counts what the engine sent to the kernel.
type Stats struct {
	Transactions   uint64 // batches committed
	FullReplaces   uint64 // of which whole-table replacements
	ElementChanges uint64 // set elements deleted or added by incremental updates
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stats
}

var _ dataplane.Engine = (*Engine)(nil)

// New returns an engine that owns table opts.Table in ns. ns must stay
// open until Close. Nothing is written before the first Apply or SetHealth;
// a table left by an earlier process is replaced whole by the first Apply.
func New(ctx context.Context, ns *hostnet.Namespace, opts Options) (*Engine, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if os.Geteuid() != 0 {
		return nil, &UnavailableError{Reason: "not root"}
	}
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c, err := nftables.New(
		nftables.WithNetNSFd(ns.Fd()),
		nftables.AsLasting(),
		nftables.WithSockOptions(forceBuffers),
	)
	if err != nil {
		return nil, &UnavailableError{Reason: "no nftables netlink", Err: err}
	}
	// A mid-stream TCP packet of an expired flow must be INVALID (then it is
	// dropped or reset), not picked up as a new flow and re-balanced.
	if err := ns.Sysctl("net/netfilter/nf_conntrack_tcp_loose", "0"); err != nil {
		opts.Logger.Warn("nft tcp_loose", "err", err)
	}
	e := &Engine{ns: ns, opts: opts, log: opts.Logger, conn: c, routes: map[netip.Addr]uint32{}, sizes: map[string]uint64{}, slots: &slotCache{m: map[string]*setSpec{}}}
	e.adoptRoutes()
	if err := ns.Do(func() error {
		var err error
		e.rawFd, err = unix.Socket(unix.AF_INET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_RAW)
		return err
	}); err != nil {
		c.CloseLasting()
		return nil, fmt.Errorf("nft: raw socket for idle resets: %w", err)
	}
	rctx, cancel := context.WithCancel(context.Background())
	e.stopReaper, e.reaperDone = cancel, make(chan struct{})
	go func() {
		defer close(e.reaperDone)
		e.reaper(rctx)
	}()
	return e, nil
}

func forceBuffers(c *netlink.Conn) error {
	if err := c.SetOption(netlink.CapAcknowledge, true); err != nil {
		return fmt.Errorf("nft: NETLINK_CAP_ACK: %w", err)
	}
	rc, err := c.SyscallConn()
	if err != nil {
		return fmt.Errorf("nft: syscall conn: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		serr = setBuffers(int(fd))
	})
	if err != nil {
		return fmt.Errorf("nft: socket control: %w", err)
	}
	if serr != nil {
		return fmt.Errorf("nft: force socket buffers: %w", serr)
	}
	return nil
}

// setBuffers sizes a netlink socket's buffers to sockBuf. The FORCE options
// need CAP_NET_ADMIN in the host's user namespace; inside a user namespace
// of its own (rootless nimbus) they fail with EPERM, and the plain options
// give what net.core.wmem_max and rmem_max allow. Batches larger than that
// (pools of thousands of backends) then fail to apply, with the kernel's
// error.
func setBuffers(fd int) error {
	for _, o := range [][2]int{{unix.SO_SNDBUFFORCE, unix.SO_SNDBUF}, {unix.SO_RCVBUFFORCE, unix.SO_RCVBUF}} {
		err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[0], sockBuf)
		if errors.Is(err, unix.EPERM) {
			err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, o[1], sockBuf)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// Apply makes the table match cfg (with the current health). When only set
// contents differ from the last apply, it sends element updates; otherwise
// it replaces the whole table. Either way it is one atomic transaction, and
// applying the same config twice sends nothing. Conntrack entries of
// backends that disappeared are deleted (their flows end, as on Azure when
// an instance leaves the pool).
func (e *Engine) Apply(ctx context.Context, cfg dataplane.Config) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("nft: engine closed")
	}
	cfg = cloneConfig(cfg)
	if err := e.syncRoutes(cfg); err != nil {
		return err
	}
	rs := e.compile(cfg, e.health)
	if err := e.sync(rs); err != nil {
		return err
	}
	gone := removedBackends(e.cfg, cfg)
	e.flushDenied(e.cfg, cfg)
	e.cfg, e.configured = cfg, true
	e.pruneRoutes(cfg)
	if len(gone) > 0 {
		e.flushConntrack(gone)
	}
	return nil
}

// SetHealth replaces the health snapshot and rewrites the affected slot
// maps (element updates only). Established flows are not touched.
func (e *Engine) SetHealth(ctx context.Context, h dataplane.Health) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("nft: engine closed")
	}
	hc := make(dataplane.Health, len(h))
	for k, v := range h {
		hc[k] = v
	}
	if !e.configured {
		// Before the first Apply there is nothing to rebalance; writing now
		// would replace a table an earlier nimbus left (still carrying
		// traffic) with an empty one.
		e.health = hc
		return nil
	}
	rs := e.compile(e.cfg, hc)
	if err := e.sync(rs); err != nil {
		return err
	}
	moved := udpLeavers(e.cfg, e.health, hc)
	e.health = hc
	if len(moved) > 0 {
		// Azure moves the UDP flows of a backend that went down to a
		// healthy one (TCP flows stay): forget their conntrack entries so
		// their next datagram is balanced again.
		e.flushConntrackProto(moved, unix.IPPROTO_UDP)
	}
	return nil
}

// udpLeavers lists backends of UDP rules that were eligible under old and
// are not under cur.
func udpLeavers(cfg dataplane.Config, old, cur dataplane.Health) []netip.Addr {
	seen := map[netip.Addr]bool{}
	var out []netip.Addr
	for i := range cfg.Rules {
		r := &cfg.Rules[i]
		if r.Protocol == dataplane.TCP {
			continue
		}
		before, _ := dataplane.Eligible(r, old)
		after, _ := dataplane.Eligible(r, cur)
		still := map[string]bool{}
		for _, b := range after {
			still[b.ID] = true
		}
		for _, b := range before {
			if ip := dialIP(b); !still[b.ID] && !seen[ip] {
				seen[ip] = true
				out = append(out, ip)
			}
		}
	}
	return out
}

// Resync rewrites the whole table from the last applied configuration and
// health, repairing any drift (someone edited or deleted the table). Call
// it periodically; it is one transaction like any other.
func (e *Engine) Resync(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("nft: engine closed")
	}
	if !e.configured {
		return nil
	}
	if err := e.syncRoutes(e.cfg); err != nil {
		return err
	}
	e.applied, e.structure = nil, ""
	return e.sync(e.compile(e.cfg, e.health))
}

// Close releases the netlink connection. The table stays in nimbus's
// namespace (flows keep working while nimbus restarts); Remove deletes it.
func (e *Engine) Close() error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	e.mu.Unlock()
	e.stopReaper()
	<-e.reaperDone
	unix.Close(e.rawFd)
	return e.conn.CloseLasting()
}

// Remove deletes the table and the floating-IP routes. Removing a missing
// table succeeds.
func (e *Engine) Remove(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return errors.New("nft: engine closed")
	}
	t := &nftables.Table{Name: e.opts.Table, Family: nftables.TableFamilyIPv4}
	e.conn.AddTable(t)
	e.conn.DelTable(t)
	if err := e.conn.Flush(); err != nil {
		return fmt.Errorf("nft: delete table %s: %w", e.opts.Table, err)
	}
	e.applied, e.structure = nil, ""
	e.cfg, e.configured = dataplane.Config{}, false
	e.pruneRoutes(dataplane.Config{})
	return nil
}

// Ruleset renders the table the engine last applied, in nft syntax (for
// debugging and the API). Empty before the first apply.
func (e *Engine) Ruleset() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.applied == nil {
		return ""
	}
	rs := e.compileWith(e.cfg, e.health, true)
	return rs.text()
}

// slotSize keeps a rule's table size while it is large enough, so a pool
// that shrinks (or grows a little) changes slot-map elements only: the size
// is part of the rule's hash expression, and Maglev's small-churn property
// holds only for a fixed size.
func (e *Engine) slotSize(ruleID string, backends int) uint64 {
	if e.opts.SlotTableSize != 0 {
		return e.opts.SlotTableSize
	}
	want := SlotTableSize(backends)
	if cur, ok := e.sizes[ruleID]; ok && cur >= want {
		return cur
	}
	e.sizes[ruleID] = want
	return want
}

func (e *Engine) compile(cfg dataplane.Config, h dataplane.Health) *ruleset {
	return e.compileWith(cfg, h, false)
}

func (e *Engine) compileWith(cfg dataplane.Config, h dataplane.Health, withText bool) *ruleset {
	return compile(cfg, h, compileOptions{
		withText: withText,
		slots:    e.slots,
		table:    e.opts.Table,
		uplink:   e.opts.Uplink,
		slotSize: e.slotSize,
		floatMark: func(ip netip.Addr) uint32 {
			return floatTag | e.routes[ip]
		},
	})
}

// sync sends the difference between the last applied ruleset and rs.
func (e *Engine) sync(rs *ruleset) error {
	st := rs.structure()
	if e.applied == nil || st != e.structure {
		if err := applyFull(e.conn, rs); err != nil {
			e.applied, e.structure = nil, ""
			return err
		}
		e.applied, e.structure = rs, st
		e.stats.Transactions++
		e.stats.FullReplaces++
		e.log.Debug("nft table replaced", "table", rs.table, "sets", len(rs.sets), "chains", len(rs.chains))
		return nil
	}
	n, err := applyDiff(e.conn, e.applied, rs)
	if err != nil {
		// The kernel rejected the batch as a whole; force a full replace next time.
		e.applied, e.structure = nil, ""
		return err
	}
	if n > 0 {
		e.stats.Transactions++
		e.stats.ElementChanges += uint64(n)
		e.log.Debug("nft elements updated", "table", rs.table, "changes", n)
	}
	e.applied = rs
	return nil
}

func tableOf(rs *ruleset) *nftables.Table {
	return &nftables.Table{Name: rs.table, Family: nftables.TableFamilyIPv4}
}

func setHandle(t *nftables.Table, s *setSpec) *nftables.Set {
	set := &nftables.Set{Table: t, Name: s.name, KeyType: s.key, IsMap: s.isMap}
	if s.isMap {
		set.DataType = s.data
	}
	if s.native {
		set.KeyByteOrder = binaryNative
	}
	if s.dynamic {
		set.Dynamic, set.HasTimeout = true, true
	}
	if s.interval {
		set.Interval = true
	}
	return set
}

func elems(s *setSpec, keys []string) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, len(keys))
	for _, k := range keys {
		e := s.elems[k]
		out = append(out, nftables.SetElement{Key: e.key, Val: e.val, VerdictData: e.verdict, IntervalEnd: e.intervalEnd})
	}
	return out
}

// allElems lists a set's elements in no particular order (the kernel does
// not care, and sorting 65,537 keys costs more than sending them).
func allElems(s *setSpec) []nftables.SetElement {
	out := make([]nftables.SetElement, 0, s.count())
	s.each(func(e element) {
		out = append(out, nftables.SetElement{Key: e.key, Val: e.val, VerdictData: e.verdict, IntervalEnd: e.intervalEnd})
	})
	if s.interval {
		// The kernel wants an interval's start and end in order.
		sort.Slice(out, func(i, j int) bool {
			if c := bytes.Compare(out[i].Key, out[j].Key); c != 0 {
				return c < 0
			}
			return out[i].IntervalEnd && !out[j].IntervalEnd
		})
	}
	return out
}

func addInChunks(c *nftables.Conn, set *nftables.Set, els []nftables.SetElement) error {
	for len(els) > 0 {
		n := min(len(els), maxElemsPerMsg)
		if err := c.SetAddElements(set, els[:n]); err != nil {
			return err
		}
		els = els[n:]
	}
	return nil
}

func delInChunks(c *nftables.Conn, set *nftables.Set, els []nftables.SetElement) error {
	for len(els) > 0 {
		n := min(len(els), maxElemsPerMsg)
		if err := c.SetDeleteElements(set, els[:n]); err != nil {
			return err
		}
		els = els[n:]
	}
	return nil
}

// applyFull replaces the table in one batch: add (so the delete cannot fail
// on a missing table), delete, then add it with all its contents.
func applyFull(c *nftables.Conn, rs *ruleset) error {
	t := tableOf(rs)
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, o := range rs.objs {
		c.AddObj(&nftables.NamedObj{Table: t, Name: o.name, Type: nftables.ObjTypeCtTimeout, Obj: tcpTimeout(o.idle)})
	}
	for name := range rs.counters {
		c.AddObj(&nftables.CounterObj{Table: t, Name: name})
	}
	chains := map[string]*nftables.Chain{}
	for _, cs := range rs.chains {
		ch := &nftables.Chain{Name: cs.name, Table: t}
		if cs.hook != nil {
			ch.Hooknum, ch.Priority, ch.Type = cs.hook, cs.prio, cs.typ
		}
		chains[cs.name] = c.AddChain(ch)
	}
	handles := map[string]*nftables.Set{}
	for _, s := range rs.sets {
		set := setHandle(t, s)
		all := allElems(s)
		first := all[:min(len(all), maxElemsPerMsg)]
		if err := c.AddSet(set, first); err != nil {
			return fmt.Errorf("nft: set %s: %w", s.name, err)
		}
		if err := addInChunks(c, set, all[len(first):]); err != nil {
			return fmt.Errorf("nft: set %s: %w", s.name, err)
		}
		handles[s.name] = set
	}
	refs := func(name string) *nftables.Set {
		s, ok := handles[name]
		if !ok {
			panic("nft: rule references unknown set " + name)
		}
		return s
	}
	for _, cs := range rs.chains {
		for _, r := range cs.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: chains[cs.name], Exprs: r.exprs(refs)})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("nft: replace table %s: %w", rs.table, err)
	}
	return nil
}

// applyDiff sends element deletes and adds (changed elements are deleted and
// re-added: the kernel refuses to overwrite a key) in one batch and returns
// the number of changed elements.
func applyDiff(c *nftables.Conn, old, rs *ruleset) (int, error) {
	t := tableOf(rs)
	changes := 0
	for _, s := range rs.sets {
		prev := old.set(s.name)
		if prev == s {
			continue // the same cached slot map
		}
		if s.interval {
			// Interval elements come in start/end pairs: replace them all
			// (flush and refill, in the same batch) when any differs.
			if sameElems(prev, s) {
				continue
			}
			set := setHandle(t, s)
			c.FlushSet(set)
			if err := addInChunks(c, set, allElems(s)); err != nil {
				return 0, fmt.Errorf("nft: set %s: %w", s.name, err)
			}
			changes += prev.count() + s.count()
			continue
		}
		if prev.dense != nil || s.dense != nil {
			n, err := diffDense(c, setHandle(t, s), prev.dense, s.dense)
			if err != nil {
				return 0, fmt.Errorf("nft: set %s: %w", s.name, err)
			}
			changes += n
			continue
		}
		var del, add []string
		for k, pe := range prev.elems {
			ne, ok := s.elems[k]
			if !ok {
				del = append(del, k)
				continue
			}
			if string(ne.val) != string(pe.val) || !sameVerdict(ne.verdict, pe.verdict) {
				del = append(del, k)
				add = append(add, k)
			}
		}
		for k := range s.elems {
			if _, ok := prev.elems[k]; !ok {
				add = append(add, k)
			}
		}
		if len(del) == 0 && len(add) == 0 {
			continue
		}
		sort.Strings(del)
		sort.Strings(add)
		set := setHandle(t, s)
		if err := delInChunks(c, set, elems(prev, del)); err != nil {
			return 0, fmt.Errorf("nft: set %s: %w", s.name, err)
		}
		if err := addInChunks(c, set, elems(s, add)); err != nil {
			return 0, fmt.Errorf("nft: set %s: %w", s.name, err)
		}
		changes += len(del) + len(add)
	}
	if changes == 0 {
		return 0, nil
	}
	if err := c.Flush(); err != nil {
		return 0, fmt.Errorf("nft: update table %s: %w", rs.table, err)
	}
	return changes, nil
}

// sameElems reports whether two renders of a set have the same elements.
func sameElems(a, b *setSpec) bool {
	if len(a.elems) != len(b.elems) {
		return false
	}
	for k, e := range a.elems {
		f, ok := b.elems[k]
		if !ok || string(e.val) != string(f.val) || e.intervalEnd != f.intervalEnd || !sameVerdict(e.verdict, f.verdict) {
			return false
		}
	}
	return true
}

// diffDense updates a slot map slot by slot: a missing slot is added, a
// slot whose backend changed is deleted and re-added, a slot gone is deleted.
func diffDense(c *nftables.Conn, set *nftables.Set, old, cur []element) (int, error) {
	var del, add []nftables.SetElement
	for i := 0; i < max(len(old), len(cur)); i++ {
		switch {
		case i >= len(cur):
			del = append(del, nftables.SetElement{Key: old[i].key})
		case i >= len(old):
			add = append(add, nftables.SetElement{Key: cur[i].key, Val: cur[i].val})
		case string(old[i].val) != string(cur[i].val):
			del = append(del, nftables.SetElement{Key: old[i].key})
			add = append(add, nftables.SetElement{Key: cur[i].key, Val: cur[i].val})
		}
	}
	if err := delInChunks(c, set, del); err != nil {
		return 0, err
	}
	if err := addInChunks(c, set, add); err != nil {
		return 0, err
	}
	return len(del) + len(add), nil
}

func sameVerdict(a, b *expr.Verdict) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Kind == b.Kind && a.Chain == b.Chain
}

// tcpTimeout is a full TCP timeout policy (the library would otherwise fill
// the missing states from a shared default map): kernel defaults except the
// established state, which is the idle timeout.
func tcpTimeout(idle uint32) *expr.CtTimeout {
	return &expr.CtTimeout{
		L3Proto: unix.NFPROTO_IPV4,
		L4Proto: unix.IPPROTO_TCP,
		Policy: expr.CtStatePolicyTimeout{
			expr.CtStateTCPSYNSENT:     120,
			expr.CtStateTCPSYNRECV:     60,
			expr.CtStateTCPESTABLISHED: idle,
			expr.CtStateTCPFINWAIT:     120,
			expr.CtStateTCPCLOSEWAIT:   60,
			expr.CtStateTCPLASTACK:     30,
			expr.CtStateTCPTIMEWAIT:    120,
			expr.CtStateTCPCLOSE:       10,
			expr.CtStateTCPSYNSENT2:    120,
			expr.CtStateTCPRETRANS:     300,
			expr.CtStateTCPUNACK:       300,
		},
	}
}

// backendIPs lists every address flows may be DNATed to.
func backendIPs(cfg dataplane.Config) map[netip.Addr]bool {
	m := map[netip.Addr]bool{}
	for _, r := range cfg.Rules {
		for _, b := range r.Backends {
			m[dialIP(b)] = true
		}
	}
	for _, n := range cfg.NATRules {
		m[dialIP(n.Backend)] = true
	}
	for _, il := range cfg.InstanceIPs {
		m[dialIP(il.Backend)] = true
	}
	return m
}

func removedBackends(old, cur dataplane.Config) []netip.Addr {
	now := backendIPs(cur)
	var gone []netip.Addr
	for ip := range backendIPs(old) {
		if !now[ip] {
			gone = append(gone, ip)
		}
	}
	sort.Slice(gone, func(i, j int) bool { return gone[i].Less(gone[j]) })
	return gone
}

// flushConntrack deletes the conntrack entries of flows DNATed to the given
// backends (reply source = backend).
func (e *Engine) flushConntrack(ips []netip.Addr) { e.flushConntrackProto(ips, 0) }

// flushConntrackProto is flushConntrack for one protocol (0: all).
func (e *Engine) flushConntrackProto(ips []netip.Addr, proto uint8) {
	var filters []vnl.CustomConntrackFilter
	for _, ip := range ips {
		f := &vnl.ConntrackFilter{}
		if err := f.AddIP(vnl.ConntrackReplySrcIP, net.IP(ip.AsSlice())); err != nil {
			continue
		}
		if proto != 0 {
			if err := f.AddProtocol(proto); err != nil {
				continue
			}
		}
		filters = append(filters, f)
	}
	n, err := e.ns.Handle().ConntrackDeleteFilters(vnl.ConntrackTable, unix.AF_INET, filters...)
	if err != nil {
		e.log.Warn("nft conntrack delete", "err", err)
		return
	}
	e.log.Debug("nft conntrack deleted", "backends", len(ips), "entries", n)
}

func cloneConfig(c dataplane.Config) dataplane.Config {
	out := dataplane.Config{
		Rules:       make([]dataplane.Rule, len(c.Rules)),
		NATRules:    append([]dataplane.NATRule(nil), c.NATRules...),
		Outbound:    append([]dataplane.SNATAllocation(nil), c.Outbound...),
		InstanceIPs: append([]dataplane.InstancePublicIP(nil), c.InstanceIPs...),
		Probes:      make([]dataplane.Probe, len(c.Probes)),
		Security:    c.Security.Clone(),
	}
	for i, r := range c.Rules {
		r.Backends = append([]dataplane.Backend(nil), r.Backends...)
		out.Rules[i] = r
	}
	for i, p := range c.Probes {
		p.Backends = append([]dataplane.Backend(nil), p.Backends...)
		p.Denied = append([]string(nil), p.Denied...)
		out.Probes[i] = p
	}
	return out
}
