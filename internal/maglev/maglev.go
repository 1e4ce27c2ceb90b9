// Package maglev builds Maglev consistent-hashing lookup tables (Eisenbud et
// al., "Maglev: A Fast and Reliable Software Network Load Balancer", NSDI
// 2016) over backend IDs.
//
// A table depends only on the backend IDs, their weights and the table size:
// the hash is a fixed, seedless function (FNV-1a followed by a SplitMix64
// finaliser), so every node that builds a table from the same input gets the
// same slots, and any data-plane node sends a flow to the same backend.
package maglev

import (
	"math"
)

// DefaultSize is the default table size, a prime (65,537). Lookups spread over
// this many slots; each backend owns about DefaultSize/N of them.
const DefaultSize = 65537

// Table is an immutable Maglev lookup table. It is safe for concurrent use.
type Table struct {
	ids   []string
	slots []int32
}

// New builds a table of size slots (0 means DefaultSize) over backendIDs, all
// with the same weight. The index returned by Lookup is the position of the
// backend in backendIDs. Callers that want the same table on every node must
// pass the IDs in the same order (nimbus sorts them). Duplicate IDs are
// treated as distinct backends. With no backends, every Lookup returns -1.
//
// Any size works; a prime size (the default) gives every backend a full
// permutation cheaply, other sizes pick for each backend a step coprime with
// the size.
func New(backendIDs []string, size uint64) *Table {
	return NewWeighted(backendIDs, nil, size)
}

// NewWeighted is New with a weight per backend: a backend with weight w owns
// about w/sum(weights) of the slots. weights may be nil (all equal); otherwise
// it must have one entry per backend. Backends of weight 0 own no slot; if all
// weights are 0, every Lookup returns -1.
func NewWeighted(backendIDs []string, weights []uint32, size uint64) *Table {
	if size == 0 {
		size = DefaultSize
	}
	if size > math.MaxInt32 {
		size = math.MaxInt32
	}
	t := &Table{ids: append([]string(nil), backendIDs...), slots: make([]int32, size)}
	for i := range t.slots {
		t.slots[i] = -1
	}
	n := len(backendIDs)
	if n == 0 {
		return t
	}
	if weights != nil && len(weights) != n {
		weights = nil
	}
	var maxW uint32
	for _, w := range weights {
		maxW = max(maxW, w)
	}
	if weights != nil && maxW == 0 {
		return t
	}

	m := size
	offset := make([]uint64, n)
	skip := make([]uint64, n)
	next := make([]uint64, n)
	for i, id := range backendIDs {
		h := fnv1a(id)
		offset[i] = mix(h^seedOffset) % m
		if m == 1 {
			skip[i] = 1
			continue
		}
		s := mix(h^seedSkip)%(m-1) + 1
		for gcd(s, m) != 1 {
			s = s%(m-1) + 1
		}
		skip[i] = s
	}
	// credit[i] accumulates weight[i]/maxW per round; a backend takes a slot
	// each time its credit reaches 1 (weighted Maglev).
	var credit []float64
	if weights != nil {
		credit = make([]float64, n)
	}
	var filled uint64
	for filled < m {
		for i := 0; i < n && filled < m; i++ {
			if credit != nil {
				credit[i] += float64(weights[i]) / float64(maxW)
				if credit[i] < 1 {
					continue
				}
				credit[i]--
			}
			c := (offset[i] + next[i]*skip[i]) % m
			for t.slots[c] >= 0 {
				next[i]++
				c = (offset[i] + next[i]*skip[i]) % m
			}
			t.slots[c] = int32(i)
			next[i]++
			filled++
		}
	}
	return t
}

// Lookup returns the index (into the IDs given to New) of the backend owning
// hash, or -1 when the table has no backends.
func (t *Table) Lookup(hash uint64) int {
	return int(t.slots[hash%uint64(len(t.slots))])
}

// LookupID is Lookup returning the backend ID ("" when there is none).
func (t *Table) LookupID(hash uint64) string {
	i := t.Lookup(hash)
	if i < 0 {
		return ""
	}
	return t.ids[i]
}

// Size returns the number of slots.
func (t *Table) Size() int { return len(t.slots) }

// Backends returns a copy of the backend IDs the table was built over, in
// their original order.
func (t *Table) Backends() []string { return append([]string(nil), t.ids...) }

// Slots returns a copy of the slot array: slot i holds the index of the
// backend that owns hash values ≡ i (mod Size), or -1 when there are no
// backends. The kernel engine loads it into a map.
func (t *Table) Slots() []int32 { return append([]int32(nil), t.slots...) }

// Fixed constants for the two permutation hashes. They are part of the table
// format: changing them changes every table.
const (
	seedOffset = 0x9e3779b97f4a7c15
	seedSkip   = 0xc2b2ae3d27d4eb4f
)

// fnv1a is the 64-bit FNV-1a hash of s.
func fnv1a(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// mix is the SplitMix64 finaliser: it spreads FNV's weak low bits.
func mix(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Hash64 is the package's fixed 64-bit hash of b (FNV-1a with the SplitMix64
// finaliser). Engines may use it to hash flow tuples; it is the same on every
// node and in every process.
func Hash64(b []byte) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range b {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h)
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
