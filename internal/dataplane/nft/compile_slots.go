package nft

import (
	"fmt"
	"strings"

	"github.com/google/nftables"

	"nimbus/internal/dataplane"
	"nimbus/internal/maglev"
)

// Slot maps: a pool's Maglev table as an nft map, slot -> backend address
// (or slot -> route mark for floating IP). The rule chains hash a flow
// into it (compile_lb.go); a health change rewrites only these maps.

// slotSizes are the Maglev table sizes (primes) chosen by pool size: at
// least 100 slots per backend, at most 65537.
var slotSizes = []uint64{251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65537}

// SlotTableSize returns the slot-table size used for a pool of n backends
// when no size is configured.
func SlotTableSize(n int) uint64 {
	for _, s := range slotSizes {
		if s >= uint64(n)*100 {
			return s
		}
	}
	return slotSizes[len(slotSizes)-1]
}

// slotGroupKey identifies the rules that can share one slot map: same table
// size, same value kind, same probe view and the same backends (with their
// admin states). Such rules have the same eligible backends under every
// health snapshot, so sharing never turns a health change into a structure
// change.
func slotGroupKey(r *dataplane.Rule, size uint64, floating bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%v|%s|%s", size, floating, r.ProbeID, r.NoHealthyBackends)
	for _, be := range r.Backends {
		fmt.Fprintf(&b, "|%s=%s/%s", be.ID, dialIP(be), be.AdminState)
	}
	return b.String()
}

// slotCache keeps built slot maps by content, so a health change rebuilds
// only the maps whose eligible backends changed, and flipping back is free.
// Not safe for concurrent use (the engine's mutex guards it).
type slotCache struct {
	m     map[string]*setSpec
	elems int // elements held, bounded by maxCachedSlots
}

// maxCachedSlots bounds the cache's memory (about 16 tables of 65,537).
const maxCachedSlots = 1 << 20

func (c *slotCache) get(k string) *setSpec {
	if c == nil {
		return nil
	}
	return c.m[k]
}

func (c *slotCache) put(k string, s *setSpec) {
	if c == nil {
		return
	}
	if c.elems+s.count() > maxCachedSlots {
		clear(c.m)
		c.elems = 0
	}
	c.m[k] = s
	c.elems += s.count()
}

// slotMap builds (or reuses) the slot map of a rule: slot -> backend
// address, or slot -> route mark for floating IP.
// The map is named after the first rule (by ID) of its group, so a pool
// membership change that moves all of a group's rules together keeps the
// name and is an element update.
func slotMap(r *dataplane.Rule, health dataplane.Health, o compileOptions, size uint64, floating bool, group, name string) *setSpec {
	eligible, _ := dataplane.Eligible(r, health)
	key := slotCacheKey(eligible, o, floating, group, name)
	if s := o.slots.get(key); s != nil {
		return s
	}
	slots := &setSpec{
		name:    name,
		comment: fmt.Sprintf("Maglev slots (%d) of %s and the rules sharing its pool", size, r.ID),
		keyText: "mark",
		key:     nftables.TypeMark,
		isMap:   true,
		native:  true,
		elems:   map[string]element{},
	}
	if floating {
		slots.dataText, slots.data = "mark", nftables.TypeMark
	} else {
		slots.dataText, slots.data = "ipv4_addr", nftables.TypeIPAddr
	}
	if len(eligible) > 0 {
		slots.dense = slotElems(eligible, o, size, floating)
	}
	o.slots.put(key, slots)
	return slots
}

// slotCacheKey identifies a built slot map: its group, the eligible
// backends (and their route marks), its name and whether it has texts.
func slotCacheKey(eligible []dataplane.Backend, o compileOptions, floating bool, group, name string) string {
	var ck strings.Builder
	ck.WriteString(group)
	ck.WriteString("#")
	for _, b := range eligible {
		ck.WriteString(b.ID)
		ck.WriteString(",")
	}
	if floating {
		for _, b := range eligible {
			fmt.Fprintf(&ck, "%x,", o.floatMark(dialIP(b)))
		}
	}
	ck.WriteString("#" + name)
	if o.withText {
		ck.WriteString("#text")
	}
	return ck.String()
}

// slotElems fills the Maglev table of size slots over the eligible
// backends (at least one).
func slotElems(eligible []dataplane.Backend, o compileOptions, size uint64, floating bool) []element {
	vals := make([][]byte, len(eligible))
	texts := make([]string, len(eligible))
	for i, b := range eligible {
		ip := dialIP(b)
		if floating {
			m := o.floatMark(ip)
			vals[i], texts[i] = markBytes(m), fmt.Sprintf("0x%08x", m)
		} else {
			vals[i], texts[i] = ipBytes(ip), ip.String()
		}
	}
	table := maglev.New(dataplane.BackendIDs(eligible), size).Slots()
	elems := make([]element, len(table))
	for i, bi := range table {
		e := element{key: slotKey(i), val: vals[bi]}
		if o.withText {
			e.text = fmt.Sprintf("%d : %s", i, texts[bi])
		}
		elems[i] = e
	}
	return elems
}
