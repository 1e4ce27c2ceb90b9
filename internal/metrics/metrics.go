// Package metrics exposes the data plane's Prometheus metrics under Azure
// Load Balancer's metric names, with Azure's dimensions as labels
// (azure-behavior.md §5), and serves them on /metrics.
//
// Names and labels are Azure's REST names exactly (case-sensitive), so a
// query written for Azure Monitor reads the same here:
//
//	VipAvailability      gauge   FrontendIPAddress, FrontendPort
//	DipAvailability      gauge   ProtocolType, BackendPort, FrontendIPAddress, FrontendPort, BackendIPAddress
//	ByteCount            counter FrontendIPAddress, FrontendPort, Direction
//	PacketCount          counter FrontendIPAddress, FrontendPort, Direction
//	SYNCount             counter FrontendIPAddress, FrontendPort, Direction
//	SnatConnectionCount  counter FrontendIPAddress, BackendIPAddress, ConnectionState
//	AllocatedSnatPorts   gauge   FrontendIPAddress, BackendIPAddress, ProtocolType, IsAwaitingRemoval
//	UsedSnatPorts        gauge   FrontendIPAddress, BackendIPAddress, ProtocolType, IsAwaitingRemoval
//
// nimbus's own series, where Azure has no metric, are prefixed nimbus_:
//
//	nimbus_refused_flows_total      counter FrontendIPAddress, FrontendPort, ProtocolType, Reason
//	nimbus_security_rule_hits_total counter NetworkSecurityGroup, SecurityRule, Access
//
// The first counts new flows (TCP connections, UDP sessions) the userspace
// engine refused because a budget was reached: Reason is FrontendLimit (the
// frontend listener's share) or TotalLimit (the engine's total). A refused
// TCP connection is reset at once; a refused UDP datagram is dropped. The
// second counts new flows per network security rule that decided them
// (the userspace engine counts at accept time, the kernel engine reads its
// nftables counters); SecurityRule "standard-sku-closed-without-nsg" counts
// flows to a Standard frontend or public IP denied for want of any group.
//
// Differences from Azure, by design: Azure reports per-minute aggregates;
// here counters are cumulative (use rate()/increase()) and availability
// gauges are instantaneous percentages (0 or 100 per series; average them
// over time for Azure's figure). Direction is "Inbound" (client → backend)
// or "Outbound" (backend → client). What a "packet" is depends on the
// engine; see the engine's documentation (the userspace engine estimates
// TCP packets from byte counts and counts UDP datagrams exactly).
package metrics

import (
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Directions (the Direction label).
const (
	Inbound  = "Inbound"
	Outbound = "Outbound"
)

// SNAT connection states (the ConnectionState label).
const (
	SnatPending    = "pending"
	SnatSuccessful = "successful"
	SnatFailed     = "failed"
)

// Metrics holds the collectors and their registry. A nil *Metrics is valid
// and records nothing, so engines can run without metrics. Safe for
// concurrent use.
type Metrics struct {
	reg *prometheus.Registry

	vip       *prometheus.GaugeVec
	dip       *prometheus.GaugeVec
	bytes     *prometheus.CounterVec
	packets   *prometheus.CounterVec
	syn       *prometheus.CounterVec
	snatConns *prometheus.CounterVec
	snatAlloc *prometheus.GaugeVec
	snatUsed  *prometheus.GaugeVec
	refused   *prometheus.CounterVec
	secHits   *prometheus.CounterVec

	hitMu     sync.Mutex
	hitSource func() []RuleHits
	hitLast   map[RuleHits]uint64 // Flows zeroed: the key; value: the source's last total
}

// RuleHits is the number of new flows a security rule decided, as a source
// reports it (SetSecurityHitSource): a running total that may start again
// from zero (the kernel engine's counters after a table replace).
type RuleHits struct {
	GroupID, RuleID string
	Allow           bool
	Flows           uint64
}

// secHitsCollector refreshes nimbus_security_rule_hits_total from the hit
// source before each scrape.
type secHitsCollector struct{ m *Metrics }

func (c secHitsCollector) Describe(ch chan<- *prometheus.Desc) { c.m.secHits.Describe(ch) }

func (c secHitsCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.refreshHits()
	c.m.secHits.Collect(ch)
}

// SetSecurityHitSource makes every scrape read fn (the kernel engine's
// per-rule counters) and add what each total grew by since the last read
// to nimbus_security_rule_hits_total; a total that went down started again
// and counts whole. Nil stops reading.
func (m *Metrics) SetSecurityHitSource(fn func() []RuleHits) {
	if m == nil {
		return
	}
	m.hitMu.Lock()
	defer m.hitMu.Unlock()
	m.hitSource, m.hitLast = fn, map[RuleHits]uint64{}
}

func (m *Metrics) refreshHits() {
	m.hitMu.Lock()
	defer m.hitMu.Unlock()
	if m.hitSource == nil {
		return
	}
	for _, h := range m.hitSource() {
		total := h.Flows
		h.Flows = 0
		last, seen := m.hitLast[h]
		delta := total
		if seen && total >= last {
			delta = total - last
		}
		m.hitLast[h] = total
		m.AddSecurityRuleHits(h.GroupID, h.RuleID, h.Allow, delta)
	}
}

// New returns Metrics registered in a fresh registry (plus the Go runtime and
// process collectors).
func New() *Metrics {
	fe := []string{"FrontendIPAddress", "FrontendPort"}
	fed := []string{"FrontendIPAddress", "FrontendPort", "Direction"}
	snat := []string{"FrontendIPAddress", "BackendIPAddress", "ProtocolType", "IsAwaitingRemoval"}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		vip: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "VipAvailability",
			Help: "Data path availability in percent: 100 while the frontend has a backend to send new flows to."}, fe),
		dip: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "DipAvailability",
			Help: "Health probe status in percent: 100 while the backend is eligible for new flows of the rule."},
			[]string{"ProtocolType", "BackendPort", "FrontendIPAddress", "FrontendPort", "BackendIPAddress"}),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ByteCount",
			Help: "Bytes carried through the frontend."}, fed),
		packets: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "PacketCount",
			Help: "Packets carried through the frontend (TCP estimated from bytes by the userspace engine)."}, fed),
		syn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "SYNCount",
			Help: "New TCP connections (SYN packets) at the frontend."}, fed),
		snatConns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "SnatConnectionCount",
			Help: "New outbound SNAT connections by state."}, []string{"FrontendIPAddress", "BackendIPAddress", "ConnectionState"}),
		snatAlloc: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "AllocatedSnatPorts",
			Help: "SNAT ports allocated to a backend on a frontend."}, snat),
		snatUsed: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "UsedSnatPorts",
			Help: "SNAT ports in use by a backend on a frontend."}, snat),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nimbus_refused_flows_total",
			Help: "New flows refused because a data-plane budget was reached (Reason FrontendLimit or TotalLimit)."},
			[]string{"FrontendIPAddress", "FrontendPort", "ProtocolType", "Reason"}),
		secHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "nimbus_security_rule_hits_total",
			Help: "New flows a network security group rule decided (Access Allow or Deny)."},
			[]string{"NetworkSecurityGroup", "SecurityRule", "Access"}),
	}
	m.reg.MustRegister(m.vip, m.dip, m.bytes, m.packets, m.syn, m.snatConns, m.snatAlloc, m.snatUsed, m.refused, secHitsCollector{m},
		prometheus.NewGoCollector(), prometheus.NewProcessCollector(prometheus.ProcessCollectorOpts{}))
	return m
}

// Registry returns the registry, for callers that add their own collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format (mount it on
// /metrics). A nil *Metrics serves an empty page.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return promhttp.HandlerFor(prometheus.NewRegistry(), promhttp.HandlerOpts{})
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

// FrontendCounters are the traffic counters of one frontend IP and port.
// Their series are created on the first count, not before: a frontend that
// carried nothing costs no series (a rule's five series are about 4 KB, more
// than the rest of an applied rule). After that the hot path only does
// atomic adds. The zero value (from a nil *Metrics) discards everything.
// Safe for concurrent use.
type FrontendCounters struct {
	m        *Metrics
	ip, port string

	once                  sync.Once
	bytesIn, bytesOut     prometheus.Counter
	packetsIn, packetsOut prometheus.Counter
	syn                   prometheus.Counter
}

// counters resolves the series once; false when c discards everything.
func (c *FrontendCounters) counters() bool {
	if c == nil || c.m == nil {
		return false
	}
	c.once.Do(func() {
		a, p := c.ip, c.port
		c.bytesIn, c.bytesOut = c.m.bytes.WithLabelValues(a, p, Inbound), c.m.bytes.WithLabelValues(a, p, Outbound)
		c.packetsIn, c.packetsOut = c.m.packets.WithLabelValues(a, p, Inbound), c.m.packets.WithLabelValues(a, p, Outbound)
		// SYNs travel inbound only.
		c.syn = c.m.syn.WithLabelValues(a, p, Inbound)
	})
	return true
}

// AddBytes counts bytes in each direction and packets as given.
func (c *FrontendCounters) AddBytes(in, out, pktIn, pktOut uint64) {
	if !c.counters() {
		return
	}
	if in > 0 {
		c.bytesIn.Add(float64(in))
	}
	if out > 0 {
		c.bytesOut.Add(float64(out))
	}
	if pktIn > 0 {
		c.packetsIn.Add(float64(pktIn))
	}
	if pktOut > 0 {
		c.packetsOut.Add(float64(pktOut))
	}
}

// AddSYN counts one new TCP connection.
func (c *FrontendCounters) AddSYN() {
	if !c.counters() {
		return
	}
	c.syn.Inc()
}

// AddRefused counts one new flow of protocol ("Tcp" or "Udp") refused for
// reason (FrontendLimit or TotalLimit) in nimbus_refused_flows_total.
func (c *FrontendCounters) AddRefused(protocol, reason string) {
	if c == nil || c.m == nil {
		return
	}
	c.m.refused.WithLabelValues(c.ip, c.port, protocol, reason).Inc()
}

// AddSecurityRuleHits counts n new flows that the security rule ruleID
// (a lowercase rule id; dataplane.NoGroupRuleID for a Standard SKU closed
// without a group) of group groupID ("" for none) decided, in
// nimbus_security_rule_hits_total. The labels are the group's and the
// rule's names (the last segments of the ids).
func (m *Metrics) AddSecurityRuleHits(groupID, ruleID string, allow bool, n uint64) {
	if m == nil || n == 0 {
		return
	}
	access := "Deny"
	if allow {
		access = "Allow"
	}
	m.secHits.WithLabelValues(lastSegment(groupID), lastSegment(ruleID), access).Add(float64(n))
}

func lastSegment(id string) string {
	if i := strings.LastIndexByte(id, '/'); i >= 0 {
		return id[i+1:]
	}
	return id
}

// Frontend returns the counters of frontend ip:port. Call it when building
// per-listener state, not per packet.
func (m *Metrics) Frontend(ip netip.Addr, port uint16) *FrontendCounters {
	if m == nil {
		return &FrontendCounters{}
	}
	return &FrontendCounters{m: m, ip: ip.String(), port: strconv.Itoa(int(port))}
}

// Vip is one VipAvailability sample.
type Vip struct {
	FrontendIP   netip.Addr
	FrontendPort uint16
	Up           bool
}

// Dip is one DipAvailability sample: one backend as seen by one rule.
type Dip struct {
	Protocol     string // "Tcp" or "Udp"
	BackendPort  uint16
	FrontendIP   netip.Addr
	FrontendPort uint16
	BackendIP    netip.Addr
	Up           bool
}

// SetAvailability replaces every VipAvailability and DipAvailability series
// with the given samples (series of removed rules disappear). Engines call
// it after each Apply and health change.
func (m *Metrics) SetAvailability(vips []Vip, dips []Dip) {
	if m == nil {
		return
	}
	m.vip.Reset()
	m.dip.Reset()
	for _, v := range vips {
		m.vip.WithLabelValues(v.FrontendIP.String(), strconv.Itoa(int(v.FrontendPort))).Set(pct(v.Up))
	}
	for _, d := range dips {
		m.dip.WithLabelValues(d.Protocol, strconv.Itoa(int(d.BackendPort)), d.FrontendIP.String(),
			strconv.Itoa(int(d.FrontendPort)), d.BackendIP.String()).Set(pct(d.Up))
	}
}

func pct(up bool) float64 {
	if up {
		return 100
	}
	return 0
}

// SnatPorts is one backend's SNAT port figures on one frontend.
type SnatPorts struct {
	FrontendIP      netip.Addr
	BackendIP       netip.Addr
	Protocol        string // "Tcp" or "Udp"
	AwaitingRemoval bool
	Allocated, Used int
}

// SetSnatPorts replaces every AllocatedSnatPorts and UsedSnatPorts series.
func (m *Metrics) SetSnatPorts(s []SnatPorts) {
	if m == nil {
		return
	}
	m.snatAlloc.Reset()
	m.snatUsed.Reset()
	for _, x := range s {
		l := []string{x.FrontendIP.String(), x.BackendIP.String(), x.Protocol, strconv.FormatBool(x.AwaitingRemoval)}
		m.snatAlloc.WithLabelValues(l...).Add(float64(x.Allocated))
		m.snatUsed.WithLabelValues(l...).Add(float64(x.Used))
	}
}

// SnatConnection counts one new outbound SNAT connection in state (one of
// SnatPending, SnatSuccessful, SnatFailed).
func (m *Metrics) SnatConnection(frontendIP, backendIP netip.Addr, state string) {
	if m == nil {
		return
	}
	m.snatConns.WithLabelValues(frontendIP.String(), backendIP.String(), state).Inc()
}
