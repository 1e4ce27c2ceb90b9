package nft

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"sort"

	"github.com/google/nftables/binaryutil"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
)

var binaryNative = binaryutil.NativeEndian

// Floating IP keeps the frontend address as the destination, so DNAT cannot
// steer the packet. Instead the rule marks it with floatTag|routeID, and an
// ip rule per backend (fwmark -> table floatRouteTableBase+routeID, whose
// default route goes via the backend) delivers it. The mark is saved in the
// conntrack entry and restored for later packets of the flow (original
// direction only; replies route normally).

func floatingBackends(cfg dataplane.Config) []netip.Addr {
	seen := map[netip.Addr]bool{}
	for _, r := range cfg.Rules {
		if r.FloatingIP {
			for _, b := range r.Backends {
				seen[dialIP(b)] = true
			}
		}
	}
	for _, n := range cfg.NATRules {
		if n.FloatingIP {
			seen[dialIP(n.Backend)] = true
		}
	}
	out := make([]netip.Addr, 0, len(seen))
	for ip := range seen {
		out = append(out, ip)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Less(out[j]) })
	return out
}

// syncRoutes gives every floating-IP backend a route id (kept across
// applies) and installs its ip rule and route.
func (e *Engine) syncRoutes(cfg dataplane.Config) error {
	used := map[uint32]bool{}
	for _, id := range e.routes {
		used[id] = true
	}
	next := uint32(1)
	for _, ip := range floatingBackends(cfg) {
		id, ok := e.routes[ip]
		if !ok {
			for used[next] {
				next++
			}
			if next >= 1<<16 {
				return fmt.Errorf("nft: too many floating-IP backends")
			}
			id = next
			used[id] = true
			e.routes[ip] = id
		}
		if err := e.installRoute(ip, id); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) installRoute(ip netip.Addr, id uint32) error {
	h := e.ns.Handle()
	table := floatRouteTableBase + int(id)
	rt := &vnl.Route{
		Dst:   &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)},
		Gw:    net.IP(ip.AsSlice()),
		Table: table,
	}
	if err := h.RouteReplace(rt); err != nil {
		return fmt.Errorf("nft: floating-IP route via %s: %w", ip, err)
	}
	rule := vnl.NewRule()
	rule.Family = unix.AF_INET
	rule.Mark = floatTag | id
	mask := uint32(0xffffffff)
	rule.Mask = &mask
	rule.Table = table
	rule.Priority = floatRulePriority
	rules, err := h.RuleListFiltered(unix.AF_INET, rule, vnl.RT_FILTER_MARK|vnl.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("nft: list ip rules: %w", err)
	}
	if len(rules) > 0 {
		return nil
	}
	if err := h.RuleAdd(rule); err != nil {
		return fmt.Errorf("nft: ip rule for %s: %w", ip, err)
	}
	return nil
}

// pruneRoutes removes the rules and routes of backends no floating rule
// uses any more.
func (e *Engine) pruneRoutes(cfg dataplane.Config) {
	keep := map[netip.Addr]bool{}
	for _, ip := range floatingBackends(cfg) {
		keep[ip] = true
	}
	h := e.ns.Handle()
	for ip, id := range e.routes {
		if keep[ip] {
			continue
		}
		table := floatRouteTableBase + int(id)
		rule := vnl.NewRule()
		rule.Family = unix.AF_INET
		rule.Mark = floatTag | id
		mask := uint32(0xffffffff)
		rule.Mask = &mask
		rule.Table = table
		rule.Priority = floatRulePriority
		if err := h.RuleDel(rule); err != nil {
			e.log.Warn("nft floating rule delete", "ip", ip, "err", err)
		}
		rt := &vnl.Route{Dst: &net.IPNet{IP: net.IPv4zero.To4(), Mask: net.CIDRMask(0, 32)}, Gw: net.IP(ip.AsSlice()), Table: table}
		if err := h.RouteDel(rt); err != nil {
			e.log.Warn("nft floating route delete", "ip", ip, "err", err)
		}
		delete(e.routes, ip)
	}
}

// adoptRoutes rebuilds the route ids of floating-IP backends from the ip
// rules and routes an earlier nimbus process left in the namespace, so the
// marks in its conntrack entries keep meaning the same backend; pruneRoutes
// removes the ones the next Apply does not need.
func (e *Engine) adoptRoutes() {
	h := e.ns.Handle()
	rules, err := h.RuleList(unix.AF_INET)
	if err != nil {
		return
	}
	for _, r := range rules {
		if r.Priority != floatRulePriority || uint32(r.Mark)&floatMask != floatTag {
			continue
		}
		id := uint32(r.Mark) &^ floatMask
		routes, err := h.RouteListFiltered(unix.AF_INET, &vnl.Route{Table: floatRouteTableBase + int(id)}, vnl.RT_FILTER_TABLE)
		if err != nil {
			continue
		}
		for _, rt := range routes {
			if ip, ok := netip.AddrFromSlice(rt.Gw.To4()); ok {
				e.routes[ip] = id
			}
		}
	}
}

// enterFreshNamespace locks the calling goroutine's thread and moves it
// into a new, empty network namespace. leave, which the caller defers, puts
// the thread back into its namespace and unlocks it; if that fails the
// thread stays locked and is discarded when the goroutine exits. (A thread
// never returned would be the main one at times, which cannot exit: the
// process's /proc/self/net would then show the empty namespace for good.)
func enterFreshNamespace() (leave func(), err error) {
	runtime.LockOSThread()
	orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
	if err != nil {
		return func() {}, err
	}
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		orig.Close()
		runtime.UnlockOSThread() // still in its own namespace
		return func() {}, err
	}
	return func() {
		if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
			runtime.UnlockOSThread()
		}
		orig.Close()
	}, nil
}
