package lb

import (
	"net/netip"
	"testing"
)

func TestDefaultOutboundPorts(t *testing.T) {
	for _, tt := range []struct{ n, want int }{{1, 1024}, {50, 1024}, {51, 512}, {100, 512}, {101, 256}, {200, 256},
		{201, 128}, {400, 128}, {401, 64}, {800, 64}, {801, 32}, {1000, 32}, {2000, 32}, {9000, 8}} {
		if got := DefaultOutboundPorts(tt.n); got != tt.want {
			t.Errorf("DefaultOutboundPorts(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

func TestAllocateSNAT(t *testing.T) {
	fe1 := netip.MustParseAddr("198.18.0.10")
	fe2 := netip.MustParseAddr("198.18.0.11")
	t.Run("contiguous blocks on one frontend", func(t *testing.T) {
		got := AllocateSNAT([]netip.Addr{fe1}, 3, 1024, nil)
		want := []SNATBlock{{0, fe1, 1024, 2047}, {1, fe1, 2048, 3071}, {2, fe1, 3072, 4095}}
		if len(got) != len(want) {
			t.Fatalf("got %v", got)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("block %d = %v, want %v", i, got[i], want[i])
			}
		}
	})
	t.Run("one IP at a time, then the next", func(t *testing.T) {
		got := AllocateSNAT([]netip.Addr{fe1, fe2}, 3, 32000, nil)
		if len(got) != 3 || got[0].Frontend != fe1 || got[1].Frontend != fe1 || got[2].Frontend != fe2 || got[2].Start != 1024 {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("exhaustion leaves the rest without ports", func(t *testing.T) {
		got := AllocateSNAT([]netip.Addr{fe1}, 100, 1024, nil)
		if len(got) != 62 { // 64000/1024 = 62.5
			t.Fatalf("got %d blocks, want 62", len(got))
		}
	})
	t.Run("rule ports take their aligned block out", func(t *testing.T) {
		got := AllocateSNAT([]netip.Addr{fe1}, 2, 8, map[netip.Addr][]uint16{fe1: {1027}})
		if got[0].Start != 1032 || got[1].Start != 1040 {
			t.Fatalf("got %v", got)
		}
		for _, b := range got {
			if b.Start <= 1027 && 1027 <= b.End {
				t.Fatalf("block %v contains reserved port", b)
			}
		}
	})
	t.Run("no overlap and within range", func(t *testing.T) {
		got := AllocateSNAT([]netip.Addr{fe1, fe2}, 500, 200, map[netip.Addr][]uint16{fe1: {5000, 50000}, fe2: {80}})
		seen := map[netip.Addr][][2]int{}
		for _, b := range got {
			if int(b.End)-int(b.Start)+1 != 200 || b.Start < SNATFirstPort || int(b.End) >= SNATFirstPort+SNATPortsPerIP {
				t.Fatalf("bad block %v", b)
			}
			for _, r := range seen[b.Frontend] {
				if int(b.Start) <= r[1] && r[0] <= int(b.End) {
					t.Fatalf("overlap %v with %v", b, r)
				}
			}
			seen[b.Frontend] = append(seen[b.Frontend], [2]int{int(b.Start), int(b.End)})
		}
	})
}
