package ipam

import (
	"context"
	"net/netip"
	"path/filepath"
	"testing"

	"nimbus/internal/store/bolt"
)

func TestStageAllocatesManyInOneCommit(t *testing.T) {
	ctx := context.Background()
	st, err := bolt.Open(ctx, filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	const subnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"
	pfx := netip.MustParsePrefix("198.18.10.0/24")
	tx := NewStage(st)
	seen := map[netip.Addr]bool{}
	for i := range 5 {
		a, err := AllocatePrivate(ctx, tx, subnet, pfx, "owner"+string(rune('a'+i)), netip.Addr{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[a] {
			t.Fatalf("address %s handed out twice within one stage", a)
		}
		seen[a] = true
	}
	if got, _ := Allocations(ctx, NewStage(st), subnet); len(got) != 0 {
		t.Fatalf("nothing may be visible before Commit, got %v", got)
	}
	if _, err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	got, err := Allocations(ctx, NewStage(st), subnet)
	if err != nil || len(got) != 5 || got[netip.MustParseAddr("198.18.10.4")] == "" {
		t.Fatalf("after commit: %v, %v", got, err)
	}
	// A second stage racing for the same lowest address conflicts at commit.
	a, b := NewStage(st), NewStage(st)
	x, _ := AllocatePrivate(ctx, a, subnet, pfx, "x", netip.Addr{})
	y, _ := AllocatePrivate(ctx, b, subnet, pfx, "y", netip.Addr{})
	if x != y {
		t.Fatalf("both stages should pick the lowest free address, got %s and %s", x, y)
	}
	if _, err := a.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Commit(ctx); err == nil {
		t.Fatal("the losing stage must conflict, not double-allocate")
	}
}
