package system

import (
	"context"
	"fmt"
	"strings"
	"time"

	"nimbus/internal/controller/autoscale"
	"nimbus/internal/driver"
	"nimbus/internal/monitor"
	"nimbus/internal/node"
	"nimbus/internal/resource"
	"nimbus/internal/rp/insights"
)

// grain is the length of one Azure minute in this system: a minute, or
// less under Options.TimeScale (tests and demos).
func grain(scale float64) time.Duration {
	if scale <= 1 {
		return time.Minute
	}
	return time.Duration(float64(time.Minute) / scale)
}

// monitoring builds the metrics sampler and the autoscale engine once the
// node exists; they run with the controllers.
func (s *System) monitoring(n *node.Node, opt Options) (sample, scale func(ctx context.Context) error) {
	g := grain(opt.TimeScale)
	sampler := monitor.NewSampler(monitor.SamplerOptions{
		History: s.Monitor, Instances: driverInstances{s}, Gatherer: s.Metrics.Registry(), Frontends: lbFrontends{s},
		Interval: time.Duration(float64(monitor.DefaultInterval) * float64(g) / float64(time.Minute)),
		Logger:   n.Logger.With("component", "monitor"),
	})
	s.Autoscale = autoscale.New(autoscale.Options{Server: n.Server, History: s.Monitor, Logger: n.Logger.With("component", "autoscale")})
	return sampler.Run, s.Autoscale.Run
}

// driverInstances lists the driver's running instances for the sampler.
type driverInstances struct{ s *System }

var _ monitor.Instances = driverInstances{}

// Instances implements monitor.Instances: driver keys are
// "<lower-case scale set ID>/<instanceId>".
func (d driverInstances) Instances(ctx context.Context) ([]monitor.Instance, error) {
	sts, err := d.s.Driver.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	out := make([]monitor.Instance, 0, len(sts))
	for _, st := range sts {
		if st.State != driver.StateRunning || st.PID <= 0 {
			continue
		}
		i := strings.LastIndexByte(st.Key, '/')
		if i < 0 {
			continue
		}
		id, err := resource.ParseID(st.Key[:i])
		if err != nil {
			continue
		}
		out = append(out, monitor.Instance{ScaleSetID: st.Key[:i], InstanceID: st.Key[i+1:], Name: id.Name() + "_" + st.Key[i+1:],
			PID: st.PID, OwnNetwork: d.s.Mode.Driver == Netns})
	}
	return out, nil
}

// lbFrontends attributes frontend addresses to load balancers from the LB
// controller's applied data-plane config.
type lbFrontends struct{ s *System }

var _ monitor.Frontends = lbFrontends{}

// FrontendOwners implements monitor.Frontends.
func (f lbFrontends) FrontendOwners() map[string]string {
	out := map[string]string{}
	if f.s.LB == nil {
		return out
	}
	cfg, _ := f.s.LB.Config()
	add := func(id string, ip string) {
		if pid, err := resource.ParseID(id); err == nil {
			out[ip] = pid.Top().String()
		}
	}
	for _, r := range cfg.Rules {
		add(r.Frontend.ID, r.Frontend.IP.String())
	}
	for _, r := range cfg.NATRules {
		add(r.Frontend.ID, r.Frontend.IP.String())
	}
	for _, r := range cfg.Outbound {
		add(r.Frontend.ID, r.Frontend.IP.String())
	}
	return out
}

var (
	_ insights.MetricsSource  = (*sysRuntime)(nil)
	_ insights.ActivitySource = (*sysRuntime)(nil)
)

// MetricsHistory implements insights.MetricsSource.
func (r *sysRuntime) MetricsHistory() *monitor.History { return r.s.Monitor }

// ActivityLog implements insights.ActivitySource.
func (r *sysRuntime) ActivityLog() []insights.Event {
	if r.s.Autoscale == nil {
		return nil
	}
	return r.s.Autoscale.ActivityLog()
}
