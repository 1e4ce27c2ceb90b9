package vmss

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"nimbus/internal/driver"
	"nimbus/internal/resource"
)

// natPoolPorts returns the frontend port range of the NAT pool (coll
// inboundNatPools) or v2 NAT rule (coll inboundNatRules) name in lb, and the
// ports other inbound rules use on its frontend.
func natPoolPorts(lb *resource.LoadBalancer, coll, name string) (start, end uint16, reserved map[uint16]bool, err error) {
	var fe string
	found := false
	for _, np := range lb.Properties.InboundNatPools {
		if coll == resource.CollInboundNatPools && strings.EqualFold(np.Name, name) {
			start, end = u16(np.Properties.FrontendPortRangeStart), u16(np.Properties.FrontendPortRangeEnd)
			fe, found = refID(np.Properties.FrontendIPConfiguration), true
		}
	}
	for _, r := range lb.Properties.InboundNatRules {
		if coll == resource.CollInboundNatRules && r.IsV2() && strings.EqualFold(r.Name, name) {
			start, end = u16(r.Properties.FrontendPortRangeStart), u16(r.Properties.FrontendPortRangeEnd)
			fe, found = refID(r.Properties.FrontendIPConfiguration), true
		}
	}
	if !found {
		return 0, 0, nil, fmt.Errorf("nat pool %s not found in load balancer %s", name, lb.Name)
	}
	reserved = map[uint16]bool{}
	for _, r := range lb.Properties.LoadBalancingRules {
		if resource.SameID(refID(r.Properties.FrontendIPConfiguration), fe) {
			reserved[u16(r.Properties.FrontendPort)] = true
		}
	}
	for _, r := range lb.Properties.InboundNatRules {
		if !r.IsV2() && resource.SameID(refID(r.Properties.FrontendIPConfiguration), fe) {
			reserved[u16(r.Properties.FrontendPort)] = true
		}
	}
	return start, end, reserved, nil
}

func u16(p *int32) uint16 {
	if p == nil || *p < 0 || *p > 65535 {
		return 0
	}
	return uint16(*p)
}

func refID(r *resource.SubResource) string {
	if r == nil {
		return ""
	}
	return r.ID
}

// drive makes each instance's workload match its record: running instances
// run the right generation of their model, stopped ones are stopped. Starts
// run in parallel.
func (c *Controller) drive(ctx context.Context, vm *resource.VirtualMachineScaleSet, alive []*instanceKV) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(c.opt.StartConcurrency)
	for _, ik := range alive {
		g.Go(func() error { return c.driveOne(gctx, ik) })
	}
	return g.Wait()
}

func (c *Controller) driveOne(ctx context.Context, ik *instanceKV) error {
	in := ik.in
	key := driverKey(in)
	st, err := c.opt.Driver.Inspect(ctx, key)
	missing := errors.Is(err, driver.ErrNotFound)
	if err != nil && !missing {
		return fmt.Errorf("inspect %s: %w", in.Name, err)
	}
	before := *in
	switch in.Power {
	case resource.PowerRunning:
		restart := in.Generation != in.Applied
		if !missing && st.State == driver.StateExited && !c.wasSeenRunning(key) {
			c.log.Info("restarting instance that stopped while nimbus was down", "resource", in.ID(), "reason", st.Message)
			restart = true
		}
		if restart && !missing {
			if err := c.opt.Driver.Destroy(ctx, key); err != nil {
				return fmt.Errorf("restart %s: %w", in.Name, err)
			}
			missing = true
		}
		if missing || (st.State == driver.StateStopped) {
			spec, err := c.spec(ctx, in)
			if err != nil {
				in.ProvisioningState, in.Message = resource.Failed, err.Error()
				return c.saveIfChanged(ctx, ik, before)
			}
			st, err = c.opt.Driver.Start(ctx, spec)
			if err != nil {
				in.ProvisioningState, in.Message = resource.Failed, err.Error()
				in.Applied = in.Generation
				return c.saveIfChanged(ctx, ik, before)
			}
			in.Applied = in.Generation
			in.RepairGraceFrom = c.opt.Now().UTC()
		}
		in.ProviderIP = st.ProviderIP.String()
		switch st.State {
		case driver.StateRunning:
			c.markSeenRunning(key)
			in.Actual, in.Message = resource.PowerRunning, ""
		case driver.StateExited:
			// The workload ended on its own: the VM keeps "running" in
			// Azure's terms but its application is dead; the health probe
			// and automatic repairs notice it.
			in.Actual = resource.PowerRunning
			in.Message = "workload exited: " + st.Message
		}
		in.ProvisioningState = resource.Succeeded
	case resource.PowerStopped, resource.PowerDeallocated:
		if !missing && st.State == driver.StateRunning {
			if err := c.opt.Driver.Stop(ctx, key); err != nil {
				return fmt.Errorf("stop %s: %w", in.Name, err)
			}
		}
		in.Actual, in.Message = in.Power, ""
		in.Applied = in.Generation
		in.ProvisioningState = resource.Succeeded
	}
	return c.saveIfChanged(ctx, ik, before)
}

func (c *Controller) saveIfChanged(ctx context.Context, ik *instanceKV, before resource.Instance) error {
	in := ik.in
	if before.Actual == in.Actual && before.Message == in.Message && before.ProvisioningState == in.ProvisioningState &&
		before.Applied == in.Applied && before.ProviderIP == in.ProviderIP && before.RepairGraceFrom.Equal(in.RepairGraceFrom) {
		return nil
	}
	return c.save(ctx, ik)
}

// spec builds the driver's view of an instance from its applied model.
func (c *Controller) spec(ctx context.Context, in *resource.Instance) (driver.InstanceSpec, error) {
	spec := driver.InstanceSpec{
		Key: driverKey(in), Name: in.Name, InstanceID: in.InstanceID, ComputerName: in.ComputerName,
		Env: map[string]string{"NIMBUS_SCALE_SET": in.ScaleSetID},
	}
	if m := in.Model; m != nil {
		if m.StorageProfile != nil && m.StorageProfile.ImageReference != nil {
			ir := m.StorageProfile.ImageReference
			spec.Image = driver.Image{Publisher: ir.Publisher, Offer: ir.Offer, SKU: ir.SKU, Version: ir.Version}
		}
		if m.OSProfile != nil {
			spec.CustomData = m.OSProfile.CustomData
		}
	}
	if in.PrivateIP != "" {
		addr, err := netip.ParseAddr(in.PrivateIP)
		if err != nil {
			return spec, fmt.Errorf("instance %s private ip: %w", in.Name, err)
		}
		spec.PrivateIP = addr
		pfx, err := c.opt.Network.SubnetPrefix(ctx, in.Subnet)
		if err != nil {
			return spec, fmt.Errorf("instance %s subnet: %w", in.Name, err)
		}
		spec.Subnet = pfx
		spec.Gateway = pfx.Masked().Addr().Next()
	}
	return spec, nil
}

// healthProbe returns the scale set's health probe id (normalized), or "".
func healthProbe(vm *resource.VirtualMachineScaleSet) string {
	if np := vm.NetworkProfile(); np != nil && np.HealthProbe != nil {
		return resource.NormalizeRefID(np.HealthProbe.ID)
	}
	return ""
}

// healthy reports an instance's health by the scale set's health probe:
// up, and whether the answer is known. Without a probe or health source,
// a running instance counts as healthy.
func (c *Controller) healthy(vm *resource.VirtualMachineScaleSet, in *resource.Instance) (bool, bool) {
	probe := healthProbe(vm)
	if probe == "" || c.opt.Health == nil {
		return in.Message == "", true
	}
	return c.opt.Health.BackendHealth(probe, resource.NormalizeRefID(in.PrimaryIPConfigID()))
}

// upgrade moves instances to the current model as upgradePolicy.mode says:
// Manual leaves them (manualupgrade does it), Automatic upgrades all at
// once, Rolling in batches that wait for the previous batch to be healthy.
func (c *Controller) upgrade(ctx context.Context, vm *resource.VirtualMachineScaleSet, hash string, alive []*instanceKV) error {
	mode := resource.UpgradeManual
	var rp *resource.RollingPolicy
	if up := vm.Properties.UpgradePolicy; up != nil {
		if up.Mode != "" {
			mode = up.Mode
		}
		rp = up.RollingUpgradePolicy
	}
	var stale []*instanceKV
	for _, ik := range alive {
		if ik.in.ModelHash != hash {
			stale = append(stale, ik)
		}
	}
	if len(stale) == 0 || strings.EqualFold(mode, resource.UpgradeManual) {
		return nil
	}
	if strings.EqualFold(mode, resource.UpgradeRolling) {
		lid := strings.ToLower(vm.ID)
		c.mu.Lock()
		notBefore := c.rolling[lid]
		c.mu.Unlock()
		if c.opt.Now().Before(notBefore) {
			return nil
		}
		pct, maxUnhealthy, maxUnhealthyUpgraded := int32(20), int32(20), int32(20)
		pause := time.Duration(0)
		if rp != nil {
			pct = deref32(rp.MaxBatchInstancePercent, 20)
			maxUnhealthy = deref32(rp.MaxUnhealthyInstancePercent, 20)
			maxUnhealthyUpgraded = deref32(rp.MaxUnhealthyUpgradedInstancePercent, 20)
			pause, _ = ParseISODuration(rp.PauseTimeBetweenBatches)
		}
		unhealthy, unhealthyUpgraded, upgraded, pending := 0, 0, 0, 0
		for _, ik := range alive {
			up, known := c.healthy(vm, ik.in)
			if ik.in.ModelHash == hash {
				upgraded++
				if ik.in.Generation != ik.in.Applied || ik.in.ProvisioningState != resource.Succeeded || !known {
					pending++
				} else if !up {
					unhealthyUpgraded++
				}
			} else if known && !up {
				unhealthy++
			}
		}
		if pending > 0 {
			return nil // previous batch still starting
		}
		if UnhealthyPercentExceeded(unhealthyUpgraded, len(alive), int(maxUnhealthyUpgraded)) ||
			UnhealthyPercentExceeded(unhealthy, len(alive), int(maxUnhealthy)) {
			return &resource.Error{Status: 409, Code: "MaxUnhealthyInstancePercentExceededInRollingUpgrade",
				Message: fmt.Sprintf("Rolling Upgrade failed: unhealthy instances exceed the policy (%d%% before, %d%% after a batch).", maxUnhealthy, maxUnhealthyUpgraded)}
		}
		stale = stale[:min(len(stale), BatchSize(len(alive), int(pct)))]
		c.mu.Lock()
		c.rolling[lid] = c.opt.Now().Add(pause)
		c.mu.Unlock()
	}
	for _, ik := range stale {
		if err := c.applyModel(ctx, vm, ik); err != nil {
			return err
		}
	}
	return nil
}

// applyModel gives an instance the scale set's current model and saves it.
func (c *Controller) applyModel(ctx context.Context, vm *resource.VirtualMachineScaleSet, ik *instanceKV) error {
	if err := resource.ApplyModel(ik.in, vm.Properties.VirtualMachineProfile); err != nil {
		return err
	}
	return c.save(ctx, ik)
}

func deref32(p *int32, def int32) int32 {
	if p == nil {
		return def
	}
	return *p
}

// repair applies automaticRepairsPolicy: an instance whose health probe has
// said "down" for longer than the grace period (counted from its creation or
// last state change) is replaced, restarted or reimaged, at most
// RepairBatchSize at a time. Protected instances are skipped.
func (c *Controller) repair(ctx context.Context, vm *resource.VirtualMachineScaleSet, alive []*instanceKV) error {
	now := c.opt.Now().UTC()
	pol := vm.Properties.AutomaticRepairsPolicy
	enabled := pol != nil && pol.Enabled != nil && *pol.Enabled
	grace := 10 * time.Minute
	action := "Replace"
	if pol != nil {
		if d, err := ParseISODuration(pol.GracePeriod); err == nil && pol.GracePeriod != "" {
			grace = d
		}
		if pol.RepairAction != "" {
			action = pol.RepairAction
		}
	}
	if c.opt.RepairGrace > 0 {
		grace = c.opt.RepairGrace
	}
	budget := RepairBatchSize(len(alive))
	for _, ik := range alive {
		in := ik.in
		if in.Power != resource.PowerRunning || in.ProvisioningState != resource.Succeeded {
			continue
		}
		up, known := c.healthy(vm, in)
		if !known || up {
			if !in.UnhealthySince.IsZero() {
				in.UnhealthySince = time.Time{}
				if err := c.save(ctx, ik); err != nil {
					return err
				}
			}
			continue
		}
		if in.UnhealthySince.IsZero() {
			in.UnhealthySince = now
			if err := c.save(ctx, ik); err != nil {
				return err
			}
		}
		if !enabled || in.ProtectFromScaleSetActions || budget == 0 {
			continue
		}
		from := in.UnhealthySince
		if in.RepairGraceFrom.After(from) {
			from = in.RepairGraceFrom
		}
		if now.Sub(from) < grace {
			continue
		}
		budget--
		c.log.Info("repairing instance", "resource", in.ID(), "action", action)
		switch strings.ToLower(action) {
		case "restart", "reimage":
			in.Generation++
			in.Repairs++
			in.UnhealthySince = time.Time{}
			in.RepairGraceFrom = now
			if err := c.save(ctx, ik); err != nil {
				return err
			}
		default: // Replace: delete it; scale-out creates a fresh instance.
			in.Deleting = true
			in.ProvisioningState = resource.Deleting
			if err := c.save(ctx, ik); err != nil {
				return err
			}
			if err := c.remove(ctx, ik); err != nil {
				return err
			}
		}
	}
	return nil
}

// ParseISODuration parses the ISO 8601 durations Azure uses in scale-set
// policies (PT10M, PT1H30M, PT0S, P1D). The empty string is zero.
func ParseISODuration(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	u := strings.ToUpper(s)
	if !strings.HasPrefix(u, "P") {
		return 0, fmt.Errorf("duration %q: must start with P", s)
	}
	u = u[1:]
	var d time.Duration
	inTime := false
	num := ""
	for _, r := range u {
		switch {
		case r == 'T':
			inTime = true
		case (r >= '0' && r <= '9') || r == '.':
			num += string(r)
		default:
			if num == "" {
				return 0, fmt.Errorf("duration %q: missing number before %c", s, r)
			}
			var f float64
			if _, err := fmt.Sscanf(num, "%g", &f); err != nil {
				return 0, fmt.Errorf("duration %q: %w", s, err)
			}
			num = ""
			unit := map[bool]map[rune]time.Duration{
				false: {'D': 24 * time.Hour, 'W': 7 * 24 * time.Hour},
				true:  {'H': time.Hour, 'M': time.Minute, 'S': time.Second},
			}[inTime][r]
			if unit == 0 {
				return 0, fmt.Errorf("duration %q: unsupported unit %c", s, r)
			}
			d += time.Duration(f * float64(unit))
		}
	}
	if num != "" {
		return 0, fmt.Errorf("duration %q: trailing number without unit", s)
	}
	return d, nil
}

func (c *Controller) wasSeenRunning(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.seenRunning[key]
}

func (c *Controller) markSeenRunning(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seenRunning[key] = true
}
