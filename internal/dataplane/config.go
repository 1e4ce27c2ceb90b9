// Package dataplane holds the engine-neutral data-plane model: a complete,
// declarative Config compiled from stored resources, health reported by the
// prober, and the Engine interface that both engines (dataplane/proxy, the
// portable userspace engine, and dataplane/nft, the Linux kernel engine)
// implement. Every engine must pass the suite in dataplane/dptest.
package dataplane

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"
)

// Protocol is a transport protocol as Azure names it.
type Protocol string

// Protocols. All is only valid on load-balancing rules (HA ports) and
// outbound rules.
const (
	TCP Protocol = "Tcp"
	UDP Protocol = "Udp"
	All Protocol = "All"
)

// Distribution is a rule's loadDistribution: which tuple is hashed.
type Distribution string

// Distribution modes.
const (
	Default          Distribution = "Default"          // 5-tuple
	SourceIP         Distribution = "SourceIP"         // 2-tuple: src IP, dst IP
	SourceIPProtocol Distribution = "SourceIPProtocol" // 3-tuple: src IP, dst IP, protocol
)

// NoHealthyBehavior is a probe's noHealthyBackendsBehavior.
type NoHealthyBehavior string

// No-healthy-backends behaviours.
const (
	AllProbedDown NoHealthyBehavior = "AllProbedDown" // no new flows
	AllProbedUp   NoHealthyBehavior = "AllProbedUp"   // send to all backends
)

// DefaultIdleTimeout is Azure's default idle timeout (4 minutes).
const DefaultIdleTimeout = 4 * time.Minute

// DefaultMaglevSize is the default Maglev table size (prime).
const DefaultMaglevSize = 65537

// Config is the whole desired data plane. It is a plain value: engines must
// not keep references into it after Apply returns. The zero Config is an
// empty data plane (nothing listens).
type Config struct {
	Rules    []Rule
	NATRules []NATRule
	Outbound []SNATAllocation
	// InstanceIPs are 1:1 NATs for instance-level public IPs.
	InstanceIPs []InstancePublicIP
	// Probes are the health probes that at least one rule uses, each with the
	// backends it must probe. Probes no rule uses are not listed (Azure runs
	// only probes that a rule references).
	Probes []Probe
	// Security is the network security groups in force (security.go): the
	// engines let a new flow to or from a NIC through only when
	// SecurityIndex.Evaluate allows it. The zero value guards nothing.
	Security Security
}

// ProbeProtocol is a health probe's protocol.
type ProbeProtocol string

// Probe protocols.
const (
	ProbeTCP   ProbeProtocol = "Tcp"
	ProbeHTTP  ProbeProtocol = "Http"
	ProbeHTTPS ProbeProtocol = "Https"
)

// Probe is one health probe with the backends it watches.
type Probe struct {
	// ID is the probe resource id (lowercase).
	ID          string
	Protocol    ProbeProtocol
	Port        uint16
	RequestPath string // Http/Https only
	Interval    time.Duration
	// Threshold is the number of consecutive results needed to flip state
	// (probeThreshold, or the legacy numberOfProbes; at least 1).
	Threshold         int
	NoHealthyBackends NoHealthyBehavior
	// Backends to probe, deduplicated by ID, sorted by ID; the prober connects
	// to DialIP:Port.
	Backends []Backend
	// Denied lists the IDs of Backends whose network security groups deny
	// the probe (its source is the AzureLoadBalancer service tag), sorted:
	// the prober counts them as failing without connecting, as their probes
	// would in Azure. Nil: none.
	Denied []string
}

// Frontend is a frontend IP configuration's address.
type Frontend struct {
	// ID is the frontendIPConfiguration resource id (lowercase).
	ID string
	// IP is the frontend's address as the API reports it (public IP from the
	// pool, or a private address for an internal LB).
	IP netip.Addr
	// Internal is true for a subnet (private) frontend.
	Internal bool
	// ListenIP is where the userspace engine listens for this frontend when
	// IP is not an address of the host (an internal frontend's private IP
	// mapped to loopback). The zero value means IP.
	ListenIP netip.Addr
	// Secure is true for a public frontend of a Standard load balancer:
	// closed to inbound flows unless a network security group of the
	// backend allows them (Flow.Secure).
	Secure bool
}

// Backend is one member of a backend pool, as seen by one rule.
type Backend struct {
	// ID is the NIC ipConfiguration id (lowercase); stable across updates and
	// the Maglev key.
	ID string
	// IP is the customer address (the instance's private IP).
	IP netip.Addr
	// DialIP is where the engine reaches the backend: the ProviderIP of the
	// instance (loopback for the process driver, the CA for netns).
	DialIP netip.Addr
	// AdminState is "", "None", "Up" or "Down" (Azure's adminState).
	AdminState string
}

// Rule is one load-balancing rule with its resolved backends.
type Rule struct {
	// ID is the loadBalancingRule resource id (lowercase).
	ID           string
	Frontend     Frontend
	Protocol     Protocol
	FrontendPort uint16 // 0 with Protocol All = HA ports
	BackendPort  uint16 // 0 = same as the client's destination port
	Distribution Distribution
	IdleTimeout  time.Duration
	TCPReset     bool
	FloatingIP   bool
	// DisableOutboundSNAT false means the rule implicitly SNATs its pool's
	// outbound flows through its frontend.
	DisableOutboundSNAT bool
	// ProbeID is the probe resource id (lowercase), "" when the rule has none
	// (then every backend counts as healthy).
	ProbeID           string
	NoHealthyBackends NoHealthyBehavior
	// ProxyProtocol sends a PROXY protocol v2 header to backends (userspace
	// engine only; the kernel engine preserves the client address itself).
	ProxyProtocol bool
	// Backends in a deterministic order (sorted by ID).
	Backends []Backend
}

// NATRule forwards one frontend port to one backend (inbound NAT rules v1,
// each member mapping of a v2 rule, and rules generated from NAT pools).
type NATRule struct {
	// ID is the inboundNatRule id (lowercase); for v2 rules the rule id plus
	// "/" plus the member's ipConfiguration id.
	ID           string
	Frontend     Frontend
	Protocol     Protocol
	FrontendPort uint16
	BackendPort  uint16
	IdleTimeout  time.Duration
	TCPReset     bool
	FloatingIP   bool
	Backend      Backend
}

// SNATAllocation is one backend's block of outbound SNAT ports on a frontend.
type SNATAllocation struct {
	// RuleID is the outboundRule id, or the load-balancing rule id for
	// implicit (rule-based) SNAT.
	RuleID      string
	Frontend    Frontend
	Protocol    Protocol
	Backend     Backend
	PortStart   uint16 // first port of the block (inclusive)
	PortEnd     uint16 // last port of the block (inclusive)
	IdleTimeout time.Duration
	TCPReset    bool
}

// InstancePublicIP is an instance-level public IP: stateless 1:1 NAT.
type InstancePublicIP struct {
	PublicIP netip.Addr
	Backend  Backend
	// Secure is true for a Standard public IP: closed to inbound flows
	// unless a network security group of the instance allows them.
	Secure bool
}

// HealthKey names one probe's view of one backend.
type HealthKey struct {
	ProbeID   string
	BackendID string
}

// Health is a complete health snapshot: true = up. A key that is absent
// counts as up until the prober has an answer (Azure marks an instance up
// after one success; nimbus starts optimistic so a new rule works at once and
// the first failed probe takes a backend out).
type Health map[HealthKey]bool

// Engine applies Configs and Health. Apply and SetHealth are atomic (a reader
// of the data plane sees the old or the new state, never a mix) and
// idempotent (applying the same value twice changes nothing). A rule that
// cannot be applied (its port held by another program, its address gone)
// fails alone: Apply applies everything else and returns an *ApplyError
// naming the failed rules; applying the Config again retries them. Neither drops an
// established flow whose rule and backend still exist: a backend that went
// down keeps its established TCP flows and gets no new ones.
// Engines are safe for concurrent use.
type Engine interface {
	Apply(ctx context.Context, cfg Config) error
	SetHealth(ctx context.Context, h Health) error
	Close() error
}

// Reasons a rule could not be applied (RuleError.Reason).
const (
	// ReasonPortInUse: another program holds the frontend port.
	ReasonPortInUse = "FrontendPortInUse"
	// ReasonAddressUnavailable: the frontend address is not (or no longer)
	// an address of the host.
	ReasonAddressUnavailable = "FrontendAddressUnavailable"
	// ReasonInvalid: the rule conflicts with another rule or lacks an
	// address (a compile bug; the API validated what it stored).
	ReasonInvalid = "FrontendInvalid"
	// ReasonOther: any other failure to open the frontend.
	ReasonOther = "FrontendApplyFailed"
)

// RuleError is one load-balancing or inbound NAT rule an engine could not
// apply. The rest of the Config was applied without it.
type RuleError struct {
	// RuleID is the Rule or NATRule ID.
	RuleID string
	// FrontendID is the rule's frontendIPConfiguration id.
	FrontendID string
	Protocol   Protocol
	// Listen is the address and port the engine tried to open (the zero
	// value when the rule never got that far).
	Listen netip.AddrPort
	// Reason is one of the Reason constants: the ARM error code.
	Reason string
	// Holder names the program holding the port ("pid 42 (nginx)"), best
	// effort; "" when unknown.
	Holder string
	// Err is the underlying error.
	Err error
}

// Error implements error.
func (e RuleError) Error() string {
	s := "rule " + e.RuleID + ": " + e.Reason
	if e.Listen.IsValid() {
		s += " " + string(e.Protocol) + "/" + e.Listen.String()
	}
	if e.Holder != "" {
		s += " (held by " + e.Holder + ")"
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

// Unwrap returns the underlying error.
func (e RuleError) Unwrap() error { return e.Err }

// ApplyError is returned by Engine.Apply when some rules could not be
// applied: every other rule of the Config is in force, and applying the same
// Config again retries the failed ones. Rules is sorted by RuleID.
type ApplyError struct {
	Rules []RuleError
}

// Error implements error.
func (e *ApplyError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d rule(s) not applied", len(e.Rules))
	for i, r := range e.Rules {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rules)-i)
			break
		}
		b.WriteString("; ")
		b.WriteString(r.Error())
	}
	return b.String()
}
