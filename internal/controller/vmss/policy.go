package vmss

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"nimbus/internal/resource"
)

// ErrPortRangeExhausted is returned (wrapped) by AssignNATPorts when a NAT
// pool's frontend port range has fewer free ports than instances need it.
var ErrPortRangeExhausted = errors.New("vmss: inbound NAT pool port range exhausted")

// AssignNATPorts gives every instance in instances one frontend port from the
// inclusive range [start, end] of one NAT pool (or NAT rule v2).
//
// The policy is deterministic and documented in docs/guide.md: an
// instance that already holds a port in the range (current) keeps it, so
// survivors of a scale-in keep their mapping; the others, in ascending
// instance-id order, take the lowest free port. Ports in reserved (used by
// other rules on the same frontend) are never handed out. When the range is
// too small the result is an error wrapping ErrPortRangeExhausted and nothing
// is assigned.
func AssignNATPorts(start, end uint16, current map[string]uint16, instances []string, reserved map[uint16]bool) (map[string]uint16, error) {
	if end < start {
		return nil, fmt.Errorf("assign nat ports: range %d-%d: %w", start, end, ErrPortRangeExhausted)
	}
	out := make(map[string]uint16, len(instances))
	used := make(map[uint16]bool, len(instances))
	ids := append([]string(nil), instances...)
	sortInstanceIDs(ids)
	for _, id := range ids {
		if p, ok := current[id]; ok && p >= start && p <= end && !reserved[p] && !used[p] {
			out[id] = p
			used[p] = true
		}
	}
	next := uint32(start)
	for _, id := range ids {
		if _, ok := out[id]; ok {
			continue
		}
		for next <= uint32(end) && (used[uint16(next)] || reserved[uint16(next)]) {
			next++
		}
		if next > uint32(end) {
			return nil, fmt.Errorf("assign nat ports: %d instances, range %d-%d: %w", len(ids), start, end, ErrPortRangeExhausted)
		}
		out[id] = uint16(next)
		used[uint16(next)] = true
		next++
	}
	return out, nil
}

// sortInstanceIDs orders instance ids numerically when they are numbers
// (Uniform scale sets) and lexically otherwise.
func sortInstanceIDs(ids []string) {
	sort.Slice(ids, func(i, j int) bool { return resource.LessInstanceID(ids[i], ids[j]) })
}

// ScaleInCandidate is an instance as the scale-in policy sees it.
type ScaleInCandidate struct {
	InstanceID string
	Created    time.Time
	Zone       string
	// Protected is protectionPolicy.protectFromScaleIn (or
	// protectFromScaleSetActions, which implies it).
	Protected bool
}

// Scale-in policy rules (scaleInPolicy.rules[0]).
const (
	ScaleInDefault  = "Default"
	ScaleInNewestVM = "NewestVM"
	ScaleInOldestVM = "OldestVM"
)

// SelectForScaleIn returns the ids of at most n instances to remove, in
// removal order, following Azure's scale-in policies for Uniform scale sets:
// protected instances are never chosen; the set is first balanced across
// zones (an instance is taken from the zone that has the most instances
// left); within that, Default removes the highest instance id, NewestVM the
// most recently created, OldestVM the least recently created (ties broken by
// the highest instance id). Fewer than n ids come back when too many
// instances are protected.
func SelectForScaleIn(cands []ScaleInCandidate, n int, rule string) []string {
	if n <= 0 {
		return nil
	}
	byZone := map[string][]ScaleInCandidate{}
	zoneCount := map[string]int{}
	for _, c := range cands {
		zoneCount[c.Zone]++
		if !c.Protected {
			byZone[c.Zone] = append(byZone[c.Zone], c)
		}
	}
	prefer := func(a, b ScaleInCandidate) bool { // true if a goes before b
		switch strings.ToLower(rule) {
		case strings.ToLower(ScaleInNewestVM):
			if !a.Created.Equal(b.Created) {
				return a.Created.After(b.Created)
			}
		case strings.ToLower(ScaleInOldestVM):
			if !a.Created.Equal(b.Created) {
				return a.Created.Before(b.Created)
			}
		}
		return resource.LessInstanceID(b.InstanceID, a.InstanceID)
	}
	for z := range byZone {
		list := byZone[z]
		sort.Slice(list, func(i, j int) bool { return prefer(list[i], list[j]) })
	}
	var out []string
	for len(out) < n {
		best := ""
		found := false
		for z, list := range byZone {
			if len(list) == 0 {
				continue
			}
			if !found || zoneCount[z] > zoneCount[best] || (zoneCount[z] == zoneCount[best] && prefer(list[0], byZone[best][0])) {
				best, found = z, true
			}
		}
		if !found {
			break
		}
		out = append(out, byZone[best][0].InstanceID)
		byZone[best] = byZone[best][1:]
		zoneCount[best]--
	}
	return out
}

// BatchSize is the number of instances a rolling upgrade takes down at once:
// maxBatchInstancePercent of the scale set, at least one.
func BatchSize(total, maxBatchPercent int) int {
	if maxBatchPercent <= 0 {
		maxBatchPercent = 20
	}
	n := total * maxBatchPercent / 100
	if n < 1 {
		n = 1
	}
	return n
}

// RepairBatchSize is how many instances automatic repairs may repair at once:
// at most 5% of the scale set, and one at a time below 20 instances.
func RepairBatchSize(total int) int {
	n := total * 5 / 100
	if n < 1 {
		n = 1
	}
	return n
}

// UnhealthyPercentExceeded reports whether unhealthy out of total is more
// than maxPercent percent (rolling upgrade's maxUnhealthyInstancePercent and
// maxUnhealthyUpgradedInstancePercent checks).
func UnhealthyPercentExceeded(unhealthy, total, maxPercent int) bool {
	if total == 0 {
		return false
	}
	return unhealthy*100 > maxPercent*total
}

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
