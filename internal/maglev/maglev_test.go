package maglev

import (
	"fmt"
	"math"
	"slices"
	"testing"
)

func ids(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("/subscriptions/s/resourcegroups/rg/providers/microsoft.compute/virtualmachinescalesets/vmss/virtualmachines/%d/networkinterfaces/nic/ipconfigurations/ipconfig1", i)
	}
	return out
}

func shares(tb *Table, n int) []int {
	c := make([]int, n)
	for _, s := range tb.slots {
		c[s]++
	}
	return c
}

func TestEvenSpread(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		size uint64
	}{
		{"3 backends default size", 3, 0},
		{"10 backends default size", 10, 0},
		{"100 backends default size", 100, 0},
		{"7 backends non-prime size", 7, 65536},
		{"5 backends small prime", 5, 5003},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tb := New(ids(tc.n), tc.size)
			size := tb.Size()
			even := float64(size) / float64(tc.n)
			for i, c := range shares(tb, tc.n) {
				// Within 1% of the table (i.e. of all traffic) of the even share.
				if d := math.Abs(float64(c)-even) / float64(size); d > 0.01 {
					t.Errorf("backend %d owns %d slots, even is %.0f (off by %.2f%% of the table)", i, c, even, d*100)
				}
			}
			if slices.Contains(tb.slots, -1) {
				t.Errorf("table has empty slots")
			}
		})
	}
}

func TestEvenSpreadRelative(t *testing.T) {
	// For small N the share must also be within 1% of the even share itself.
	for _, n := range []int{2, 3, 4, 5, 8} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			tb := New(ids(n), 0)
			even := float64(tb.Size()) / float64(n)
			for i, c := range shares(tb, n) {
				if d := math.Abs(float64(c)-even) / even; d > 0.01 {
					t.Errorf("backend %d owns %d slots, %.2f%% off the even %.0f", i, c, d*100, even)
				}
			}
		})
	}
}

func TestRemovalChurn(t *testing.T) {
	for _, n := range []int{2, 3, 5, 10, 50, 100} {
		for _, victim := range []int{0, n / 2, n - 1} {
			t.Run(fmt.Sprintf("n=%d remove=%d", n, victim), func(t *testing.T) {
				all := ids(n)
				before := New(all, 0)
				rest := slices.Delete(slices.Clone(all), victim, victim+1)
				after := New(rest, 0)
				moved := 0
				for i := range before.slots {
					if all[before.slots[i]] != rest[after.slots[i]] {
						moved++
					}
				}
				frac := float64(moved) / float64(before.Size())
				if limit := 1/float64(n) + 0.01; frac > limit {
					t.Errorf("removing 1 of %d remapped %.4f of the slots, limit %.4f", n, frac, limit)
				}
			})
		}
	}
}

func TestDeterministic(t *testing.T) {
	a := New(ids(20), 0)
	b := New(ids(20), 0)
	if !slices.Equal(a.Slots(), b.Slots()) {
		t.Fatal("same input gave different tables")
	}
	// Pin the table format: the first slots for a fixed input never change
	// across processes, machines or releases (other nodes compute the same).
	tb := New([]string{"a", "b", "c"}, 13)
	got := tb.Slots()
	want := goldenSmall
	if !slices.Equal(got, want) {
		t.Fatalf("table for [a b c] size 13 = %v, want %v", got, want)
	}
}

var goldenSmall = []int32{0, 2, 2, 1, 0, 0, 0, 1, 2, 1, 2, 0, 1}

func TestEmptyAndWeights(t *testing.T) {
	tb := New(nil, 0)
	if got := tb.Lookup(12345); got != -1 {
		t.Errorf("empty table lookup = %d, want -1", got)
	}
	if got := tb.LookupID(1); got != "" {
		t.Errorf("empty table LookupID = %q", got)
	}
	w := NewWeighted(ids(3), []uint32{1, 2, 1}, 0)
	c := shares(w, 3)
	if d := math.Abs(float64(c[1])/float64(w.Size()) - 0.5); d > 0.01 {
		t.Errorf("weight 2 of 4 owns %d slots (%.3f), want 0.5", c[1], float64(c[1])/float64(w.Size()))
	}
	z := NewWeighted(ids(2), []uint32{0, 0}, 0)
	if got := z.Lookup(7); got != -1 {
		t.Errorf("all-zero weights lookup = %d, want -1", got)
	}
	one := New(ids(1), 1)
	if got := one.Lookup(99); got != 0 {
		t.Errorf("size-1 lookup = %d", got)
	}
}

func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{100, 1000} {
		in := ids(n)
		b.Run(fmt.Sprintf("size=65537/backends=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				New(in, DefaultSize)
			}
		})
	}
}

func BenchmarkLookup(b *testing.B) {
	tb := New(ids(100), 0)
	var key [36]byte
	b.ReportAllocs()
	var sink int
	i := uint64(0)
	for b.Loop() {
		key[0], key[1] = byte(i), byte(i>>8)
		sink += tb.Lookup(Hash64(key[:]))
		i++
	}
	_ = sink
}
