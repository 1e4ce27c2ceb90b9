package lb

import (
	"net/netip"
)

// SNAT port space of one frontend IP: Azure gives each public frontend IP
// 64,000 ports for SNAT. nimbus uses ports 1024 through 65023.
const (
	SNATFirstPort    = 1024
	SNATPortsPerIP   = 64000
	snatBlockAligned = 8
)

// DefaultOutboundPorts is Azure's default SNAT preallocation per backend
// instance for a pool of poolSize members (implicit rule SNAT and outbound
// rules with allocatedOutboundPorts 0). Azure documents pools up to 1,000;
// beyond that nimbus gives 64,000/poolSize rounded down to a multiple of 8,
// and at least 8.
func DefaultOutboundPorts(poolSize int) int {
	switch {
	case poolSize <= 50:
		return 1024
	case poolSize <= 100:
		return 512
	case poolSize <= 200:
		return 256
	case poolSize <= 400:
		return 128
	case poolSize <= 800:
		return 64
	case poolSize <= 1000:
		return 32
	}
	p := SNATPortsPerIP / poolSize / snatBlockAligned * snatBlockAligned
	if p < snatBlockAligned {
		p = snatBlockAligned
	}
	return p
}

// SNATBlock is one backend's contiguous block of SNAT ports on a frontend.
type SNATBlock struct {
	Backend  int // index into the backends given to AllocateSNAT
	Frontend netip.Addr
	Start    uint16 // inclusive
	End      uint16 // inclusive
}

// AllocateSNAT hands each of nBackends a contiguous block of perBackend
// ports (a positive multiple of 8) on the frontends, consuming one frontend
// IP at a time as Azure does. Ports that inbound rules use on a frontend
// (reserved[frontend]) take their whole aligned 8-port block out of the SNAT
// space. Backends are served in order; those for which no space is left get
// no block (the result is shorter than nBackends), which is what Azure calls
// exhaustion of the allocation. The result is deterministic.
func AllocateSNAT(frontends []netip.Addr, nBackends, perBackend int, reserved map[netip.Addr][]uint16) []SNATBlock {
	if perBackend <= 0 || nBackends <= 0 {
		return nil
	}
	var out []SNATBlock
	b := 0
	for _, fe := range frontends {
		blocked := map[int]bool{}
		for _, p := range reserved[fe] {
			blocked[int(p)/snatBlockAligned] = true
		}
		last := SNATFirstPort + SNATPortsPerIP - 1
		port := SNATFirstPort
		for b < nBackends && port+perBackend-1 <= last {
			start, ok := port, true
			for q := start; q < start+perBackend; q += snatBlockAligned {
				if blocked[q/snatBlockAligned] {
					ok = false
					port = q + snatBlockAligned
					break
				}
			}
			if !ok {
				continue
			}
			out = append(out, SNATBlock{Backend: b, Frontend: fe, Start: uint16(start), End: uint16(start + perBackend - 1)})
			b++
			port = start + perBackend
		}
	}
	return out
}
