package monitor

import "strings"

// Aggregation names, as Azure Monitor spells them.
const (
	AggNone    = "None"
	AggAverage = "Average"
	AggMinimum = "Minimum"
	AggMaximum = "Maximum"
	AggTotal   = "Total"
	AggCount   = "Count"
)

// Aggregations are the aggregation types every nimbus metric supports.
var Aggregations = []string{AggNone, AggAverage, AggMinimum, AggMaximum, AggTotal, AggCount}

// Definition describes one metric of a resource type, as Azure's
// metricDefinitions list it.
type Definition struct {
	// Name is the metric's REST name ("Percentage CPU").
	Name        string
	Description string
	// Unit is Azure's unit name: Percent, Bytes, Count.
	Unit string
	// Primary is the default aggregation (Average or Total).
	Primary string
	// Dimensions are the dimension names series of this metric carry.
	Dimensions []string
	Kind       Kind
}

// Namespaces of the resource types with metrics.
const (
	ScaleSetNamespace     = "Microsoft.Compute/virtualMachineScaleSets"
	LoadBalancerNamespace = "Microsoft.Network/loadBalancers"
)

// Metric names of scale sets and their instances.
const (
	PercentageCPU        = "Percentage CPU"
	NetworkInTotal       = "Network In Total"
	NetworkOutTotal      = "Network Out Total"
	AvailableMemoryBytes = "Available Memory Bytes"
)

// VMName is the dimension of scale-set metrics naming the instance.
const VMName = "VMName"

// ScaleSetMetrics are the metrics of Microsoft.Compute/virtualMachineScaleSets
// (split by VMName) and of their instances (one series each).
var ScaleSetMetrics = []Definition{
	{Name: PercentageCPU, Unit: "Percent", Primary: AggAverage, Dimensions: []string{VMName}, Kind: Gauge,
		Description: "The percentage of one CPU in use by the instance's processes (utime+stime of its process group over the sampling interval; every instance counts as one vCPU, so the value is capped at 100)."},
	{Name: NetworkInTotal, Unit: "Bytes", Primary: AggTotal, Dimensions: []string{VMName}, Kind: Counter,
		Description: "Bytes received by the instance's network interface (netns instances: eth0's counters). Process instances share the host's network stack and report no data."},
	{Name: NetworkOutTotal, Unit: "Bytes", Primary: AggTotal, Dimensions: []string{VMName}, Kind: Counter,
		Description: "Bytes sent by the instance's network interface (netns instances: eth0's counters). Process instances share the host's network stack and report no data."},
	{Name: AvailableMemoryBytes, Unit: "Bytes", Primary: AggAverage, Dimensions: []string{VMName}, Kind: Gauge,
		Description: "Memory available to the instance: instances have no memory limit of their own, so this is the host's MemAvailable."},
}

// LoadBalancerMetrics are the metrics of Microsoft.Network/loadBalancers,
// read from internal/metrics' Prometheus series of the same names.
var LoadBalancerMetrics = []Definition{
	{Name: "VipAvailability", Unit: "Count", Primary: AggAverage, Dimensions: []string{"FrontendIPAddress", "FrontendPort"}, Kind: Gauge,
		Description: "Data path availability (0 or 100 per sample)."},
	{Name: "DipAvailability", Unit: "Count", Primary: AggAverage, Dimensions: []string{"ProtocolType", "BackendPort", "FrontendIPAddress", "FrontendPort", "BackendIPAddress"}, Kind: Gauge,
		Description: "Health probe status (0 or 100 per sample)."},
	{Name: "ByteCount", Unit: "Bytes", Primary: AggTotal, Dimensions: []string{"FrontendIPAddress", "FrontendPort", "Direction"}, Kind: Counter,
		Description: "Bytes carried through the frontend."},
	{Name: "PacketCount", Unit: "Count", Primary: AggTotal, Dimensions: []string{"FrontendIPAddress", "FrontendPort", "Direction"}, Kind: Counter,
		Description: "Packets carried through the frontend."},
	{Name: "SYNCount", Unit: "Count", Primary: AggTotal, Dimensions: []string{"FrontendIPAddress", "FrontendPort", "Direction"}, Kind: Counter,
		Description: "New TCP connections (SYN packets) at the frontend."},
	{Name: "SnatConnectionCount", Unit: "Count", Primary: AggTotal, Dimensions: []string{"FrontendIPAddress", "BackendIPAddress", "ConnectionState"}, Kind: Counter,
		Description: "New outbound SNAT connections."},
	{Name: "AllocatedSnatPorts", Unit: "Count", Primary: AggAverage, Dimensions: []string{"FrontendIPAddress", "BackendIPAddress", "ProtocolType", "IsAwaitingRemoval"}, Kind: Gauge,
		Description: "SNAT ports allocated to a backend on a frontend."},
	{Name: "UsedSnatPorts", Unit: "Count", Primary: AggAverage, Dimensions: []string{"FrontendIPAddress", "BackendIPAddress", "ProtocolType", "IsAwaitingRemoval"}, Kind: Gauge,
		Description: "SNAT ports in use by a backend on a frontend."},
}

// Lookup returns the definition of metric name (case-insensitive) in defs.
func Lookup(defs []Definition, name string) (Definition, bool) {
	for _, d := range defs {
		if strings.EqualFold(d.Name, name) {
			return d, true
		}
	}
	return Definition{}, false
}
