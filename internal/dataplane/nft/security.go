package nft

import (
	"fmt"
	"net/netip"
	"sort"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	vnl "github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
)

// flushDenied deletes the conntrack entries of established flows that a
// group with flushConnection, whose rules this Apply changed, now denies
// (dataplane.FlushedGroups): inbound flows to its NICs (reply source = the
// NIC) and outbound flows from them (original source = the NIC). Without
// their entry the flows' next packets are invalid and dropped. Every other
// established flow keeps going, as Azure keeps them when a rule changes.
func (e *Engine) flushDenied(old, cur dataplane.Config) {
	flush := dataplane.FlushedGroups(old.Security, cur.Security)
	if len(flush) == 0 {
		return
	}
	f := &flushFilter{ix: dataplane.NewSecurityIndex(cur.Security), flush: flush, secure: map[netip.Addr]bool{}}
	for _, r := range cur.Rules {
		if r.Frontend.Secure {
			f.secure[r.Frontend.IP] = true
		}
	}
	for _, n := range cur.NATRules {
		if n.Frontend.Secure {
			f.secure[n.Frontend.IP] = true
		}
	}
	for _, ip := range cur.InstanceIPs {
		if ip.Secure {
			f.secure[ip.PublicIP] = true
		}
	}
	n, err := e.ns.Handle().ConntrackDeleteFilters(vnl.ConntrackTable, unix.AF_INET, f)
	if err != nil {
		e.log.Warn("nft conntrack flush of denied flows", "err", err)
		return
	}
	e.log.Debug("nft flows denied after a rule change ended", "groups", len(flush), "entries", n)
}

// flushFilter matches the conntrack entries flushDenied deletes.
type flushFilter struct {
	ix     *dataplane.SecurityIndex
	flush  map[string]bool
	secure map[netip.Addr]bool
}

var _ vnl.CustomConntrackFilter = (*flushFilter)(nil)

// MatchConntrackFlow implements vnl.CustomConntrackFilter.
func (f *flushFilter) MatchConntrackFlow(flow *vnl.ConntrackFlow) bool {
	addr := func(b []byte) netip.Addr { a, _ := netip.AddrFromSlice(b); return a.Unmap() }
	orig, reply := flow.Forward, flow.Reverse
	proto := orig.Protocol
	src := netip.AddrPortFrom(addr(orig.SrcIP), orig.SrcPort)
	if nic := f.ix.InterfaceByIP(addr(reply.SrcIP)); nic != nil && (f.flush[nic.SubnetGroup] || f.flush[nic.NICGroup]) {
		in := dataplane.Flow{Protocol: proto, Src: src, Dst: netip.AddrPortFrom(nic.IP, reply.SrcPort), Secure: f.secure[addr(orig.DstIP)]}
		if !f.ix.Evaluate(nic, dataplane.Inbound, in).Allow {
			return true
		}
	}
	if nic := f.ix.InterfaceByIP(src.Addr()); nic != nil && (f.flush[nic.SubnetGroup] || f.flush[nic.NICGroup]) {
		out := dataplane.Flow{Protocol: proto, Src: netip.AddrPortFrom(nic.IP, src.Port()), Dst: netip.AddrPortFrom(addr(orig.DstIP), orig.DstPort)}
		if !f.ix.Evaluate(nic, dataplane.Outbound, out).Allow {
			return true
		}
	}
	return false
}

// SecurityHits returns, for every network security rule in the table, the
// flows it decided since the table was last replaced (its counter object),
// and the flows to Standard SKUs that no group guards. It is the kernel
// path's source for metrics.SetSecurityHitSource.
func (e *Engine) SecurityHits() ([]metrics.RuleHits, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed || e.applied == nil {
		return nil, nil
	}
	objs, err := e.conn.GetNamedObjects(tableOf(e.applied))
	if err != nil {
		return nil, fmt.Errorf("nft: read counters: %w", err)
	}
	sum := map[securityCounter]uint64{} // a rule has a counter per chain (virtual network) it is in
	for _, o := range objs {
		no, ok := o.(*nftables.NamedObj)
		if !ok || no.Type != nftables.ObjTypeCounter {
			continue
		}
		c, ok := no.Obj.(*expr.Counter)
		what, known := e.applied.counters[no.Name]
		if !ok || !known {
			continue
		}
		sum[what] += c.Packets
	}
	out := make([]metrics.RuleHits, 0, len(sum))
	for what, n := range sum {
		out = append(out, metrics.RuleHits{GroupID: what.GroupID, RuleID: what.RuleID, Allow: what.Allow, Flows: n})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].RuleID < out[j].RuleID })
	return out, nil
}
