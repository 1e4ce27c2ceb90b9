package monitor

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// DefaultInterval is how often the sampler measures, at the default grain:
// four samples per minute.
const DefaultInterval = 15 * time.Second

// Instance is one running instance for the sampler to measure.
type Instance struct {
	// ScaleSetID is the scale set's resource ID (any case); InstanceID its
	// instance ID; Name the instance's name (the VMName dimension).
	ScaleSetID, InstanceID, Name string
	// PID leads the instance's process group.
	PID int
	// OwnNetwork is true when the instance has a network namespace of its
	// own, whose eth0 counters /proc/<PID>/net/dev shows (netns driver);
	// false when it shares the host's stack (process driver).
	OwnNetwork bool
}

// Instances lists the running instances (the system reads its driver).
type Instances interface {
	Instances(ctx context.Context) ([]Instance, error)
}

// Frontends maps a frontend IP address (as the FrontendIPAddress label
// spells it) to the ID of the load balancer that owns it.
type Frontends interface {
	FrontendOwners() map[string]string
}

// SamplerOptions configure a Sampler. History is required; a nil source
// is not sampled.
type SamplerOptions struct {
	History *History
	// Instances lists the instances whose CPU, network and memory are
	// measured.
	Instances Instances
	// Gatherer and Frontends give the load-balancer metrics: the series
	// of internal/metrics' registry, attributed through their
	// FrontendIPAddress.
	Gatherer  prometheus.Gatherer
	Frontends Frontends
	// Interval is the time between passes (default DefaultInterval).
	Interval time.Duration
	// ProcDir is the proc file system (default /proc; benchmarks point it
	// at synthetic input).
	ProcDir string
	// Now is the clock (default time.Now).
	Now    func() time.Time
	Logger *slog.Logger
}

// Sampler feeds a History. Run it; Sample is one pass (tests call it
// directly). It is not safe for concurrent passes.
type Sampler struct {
	o SamplerOptions
	// prev are the previous pass's readings, per instance.
	prev     map[string]reading
	prevTime time.Time
	// counters are the previous values of Prometheus counters.
	counters map[string]float64
}

// reading is one instance's cumulative figures at one pass.
type reading struct {
	pid    int
	ticks  uint64
	hasCPU bool
	rx, tx uint64
	hasNet bool
}

// NewSampler returns a sampler.
func NewSampler(o SamplerOptions) *Sampler {
	if o.Interval <= 0 {
		o.Interval = DefaultInterval
	}
	if o.ProcDir == "" {
		o.ProcDir = "/proc"
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Sampler{o: o, prev: map[string]reading{}, counters: map[string]float64{}}
}

// Run samples every Interval until ctx ends, and expires old series.
func (s *Sampler) Run(ctx context.Context) error {
	t := time.NewTicker(s.o.Interval)
	defer t.Stop()
	for {
		s.Sample(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sample makes one pass: instances, then load balancers.
func (s *Sampler) Sample(ctx context.Context) {
	now := s.o.Now()
	var samples []Sample
	if s.o.Instances != nil {
		samples = s.sampleInstances(ctx, now, samples)
	}
	if s.o.Gatherer != nil && s.o.Frontends != nil {
		samples = s.sampleLoadBalancers(samples)
	}
	s.o.History.Add(now, samples...)
	s.o.History.Expire(now)
}

func (s *Sampler) sampleInstances(ctx context.Context, now time.Time, out []Sample) []Sample {
	insts, err := s.o.Instances.Instances(ctx)
	if err != nil {
		s.o.Logger.Warn("list instances for metrics", "err", err)
		return out
	}
	want := make(map[int]bool, len(insts))
	for _, in := range insts {
		if in.PID > 0 {
			want[in.PID] = true
		}
	}
	ticks := groupTicks(s.o.ProcDir, want)
	mem, memOK := uint64(0), false
	if b, err := os.ReadFile(filepath.Join(s.o.ProcDir, "meminfo")); err == nil {
		mem, memOK = memAvailable(b)
	}
	dt := now.Sub(s.prevTime).Seconds()
	next := make(map[string]reading, len(insts))
	buf := make([]byte, 4096)
	for _, in := range insts {
		key := strings.ToLower(in.ScaleSetID) + "/" + in.InstanceID
		r := reading{pid: in.PID}
		r.ticks, r.hasCPU = ticks[in.PID]
		if in.OwnNetwork && in.PID > 0 {
			if n, err := readInto(filepath.Join(s.o.ProcDir, strconv.Itoa(in.PID), "net", "dev"), buf); err == nil {
				r.rx, r.tx, r.hasNet = netDev(buf[:n], "eth0")
			}
		}
		next[key] = r
		dims := []Dim{{Name: VMName, Value: in.Name}}
		if memOK {
			out = append(out, Sample{Resource: in.ScaleSetID, Metric: AvailableMemoryBytes, Kind: Gauge, Dims: dims, Value: float64(mem)})
		}
		p, seen := s.prev[key]
		if !seen || p.pid != in.PID || dt <= 0 {
			continue // a new or restarted instance: this pass is its baseline
		}
		if r.hasCPU && p.hasCPU {
			d := float64(0)
			if r.ticks > p.ticks {
				d = float64(r.ticks - p.ticks)
			}
			pct := min(d/clockTicks/dt*100, 100)
			out = append(out, Sample{Resource: in.ScaleSetID, Metric: PercentageCPU, Kind: Gauge, Dims: dims, Value: pct})
		}
		if r.hasNet && p.hasNet {
			out = append(out,
				Sample{Resource: in.ScaleSetID, Metric: NetworkInTotal, Kind: Counter, Dims: dims, Value: float64(delta(r.rx, p.rx))},
				Sample{Resource: in.ScaleSetID, Metric: NetworkOutTotal, Kind: Counter, Dims: dims, Value: float64(delta(r.tx, p.tx))})
		}
	}
	s.prev, s.prevTime = next, now
	return out
}

// delta is the increase of a counter that may have been reset.
func delta(cur, prev uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

func (s *Sampler) sampleLoadBalancers(out []Sample) []Sample {
	fams, err := s.o.Gatherer.Gather()
	if err != nil {
		s.o.Logger.Warn("gather load balancer metrics", "err", err)
	}
	owners := s.o.Frontends.FrontendOwners()
	next := make(map[string]float64, len(s.counters))
	for _, fam := range fams {
		def, ok := Lookup(LoadBalancerMetrics, fam.GetName())
		if !ok || def.Name != fam.GetName() {
			continue
		}
		for _, m := range fam.GetMetric() {
			dims := make([]Dim, 0, len(m.GetLabel()))
			lb := ""
			var key strings.Builder
			key.WriteString(def.Name)
			for _, l := range m.GetLabel() {
				dims = append(dims, Dim{Name: l.GetName(), Value: l.GetValue()})
				key.WriteByte(0)
				key.WriteString(l.GetName() + "=" + l.GetValue())
				if l.GetName() == "FrontendIPAddress" {
					lb = owners[l.GetValue()]
				}
			}
			if lb == "" {
				continue
			}
			v, isCounter := metricValue(m)
			if isCounter {
				k := key.String()
				next[k] = v
				d := v - s.counters[k]
				if d < 0 {
					d = v
				}
				out = append(out, Sample{Resource: lb, Metric: def.Name, Kind: Counter, Dims: dims, Value: d})
				continue
			}
			out = append(out, Sample{Resource: lb, Metric: def.Name, Kind: Gauge, Dims: dims, Value: v})
		}
	}
	s.counters = next
	return out
}

func metricValue(m *dto.Metric) (v float64, counter bool) {
	if c := m.GetCounter(); c != nil {
		return c.GetValue(), true
	}
	if g := m.GetGauge(); g != nil {
		return g.GetValue(), false
	}
	return m.GetUntyped().GetValue(), false
}
