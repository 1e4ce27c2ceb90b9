package dataplane

import (
	"encoding/binary"
	"net/netip"
	"slices"
)

// Admin states (Backend.AdminState). "" and "None" follow the probe.
const (
	AdminUp   = "Up"   // always eligible, probe ignored
	AdminDown = "Down" // never eligible for new flows
)

// Eligible returns the backends of r that may receive new flows under h,
// keeping r.Backends' order (sorted by ID), and whether the list is the
// all-down fallback. A backend is eligible when its AdminState is Up, or when
// it is not Down and its probe reports it up (a missing key counts as up; a
// rule without a probe treats every backend as up). When no backend is
// eligible, AllProbedUp sends to every backend whose AdminState is not Down
// (fallback true) and AllProbedDown (also the zero value) yields none.
// Both engines use this, so they agree on who gets traffic.
func Eligible(r *Rule, h Health) (backends []Backend, fallback bool) {
	out := make([]Backend, 0, len(r.Backends))
	for _, b := range r.Backends {
		if backendUp(r.ProbeID, b, h) {
			out = append(out, b)
		}
	}
	if len(out) > 0 || r.NoHealthyBackends != AllProbedUp {
		return out, false
	}
	for _, b := range r.Backends {
		if b.AdminState != AdminDown {
			out = append(out, b)
		}
	}
	return out, len(out) > 0
}

func backendUp(probeID string, b Backend, h Health) bool {
	switch b.AdminState {
	case AdminUp:
		return true
	case AdminDown:
		return false
	}
	if probeID == "" {
		return true
	}
	up, ok := h[HealthKey{ProbeID: probeID, BackendID: b.ID}]
	return !ok || up
}

// BackendIDs returns the IDs of bs in order; Maglev tables are built over it.
func BackendIDs(bs []Backend) []string {
	ids := make([]string, len(bs))
	for i, b := range bs {
		ids[i] = b.ID
	}
	return ids
}

// SameIDs reports whether a and b list the same backend IDs in the same order.
func SameIDs(a, b []Backend) bool {
	return slices.EqualFunc(a, b, func(x, y Backend) bool { return x.ID == y.ID })
}

// FlowHash hashes the tuple that d selects from a flow (Default: source and
// destination address and port and protocol; SourceIP: the two addresses;
// SourceIPProtocol: the addresses and protocol) with a fixed function, so a
// given tuple hashes the same on every node. An empty d means Default.
func FlowHash(d Distribution, proto Protocol, src, dst netip.AddrPort) uint64 {
	var buf [40]byte
	b := buf[:0]
	s16, d16 := src.Addr().Unmap().As16(), dst.Addr().Unmap().As16()
	b = append(b, s16[:]...)
	b = append(b, d16[:]...)
	switch d {
	case SourceIP:
	case SourceIPProtocol:
		b = append(b, protoByte(proto))
	default:
		b = append(b, protoByte(proto))
		b = binary.BigEndian.AppendUint16(b, src.Port())
		b = binary.BigEndian.AppendUint16(b, dst.Port())
	}
	return hash64(b)
}

func protoByte(p Protocol) byte {
	switch p {
	case TCP:
		return 6
	case UDP:
		return 17
	}
	return 0
}

// hash64 is FNV-1a with the SplitMix64 finaliser (the same function as
// maglev.Hash64, repeated here so this package stays import-free).
func hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
