package ipam_test

import (
	"context"
	"errors"
	"net/netip"
	"path/filepath"
	"testing"

	"nimbus/internal/arm"
	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// Address plan: subnet 10.0.0.0/29 (usable .4-.6), public pool 198.18.0.0/30
// (allocatable .1-.2). Nothing is sent anywhere; addresses live in the store.

const subnetID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vn/subnets/a"

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(context.Background(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func code(err error) string {
	var re *resource.Error
	if errors.As(err, &re) {
		return re.Code
	}
	return ""
}

func TestPrivateAllocation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	prefix := netip.MustParsePrefix("10.0.0.0/29")
	alloc := func(owner, want string) (string, error) {
		tx := arm.NewTx(st)
		var w netip.Addr
		if want != "" {
			w = netip.MustParseAddr(want)
		}
		a, err := ipam.AllocatePrivate(ctx, tx, subnetID, prefix, owner, w)
		if err != nil {
			return "", err
		}
		if _, err := tx.Commit(ctx, st); err != nil {
			return "", err
		}
		return a.String(), nil
	}
	steps := []struct {
		name, owner, want, addr, code string
	}{
		{"first usable is .4", "ipc1", "", "10.0.0.4", ""},
		{"same owner gets its address", "ipc1", "", "10.0.0.4", ""},
		{"next lowest", "ipc2", "", "10.0.0.5", ""},
		{"static free", "ipc3", "10.0.0.6", "10.0.0.6", ""},
		{"full", "ipc4", "", "", "SubnetIsFull"},
		{"static reserved low", "ipc4", "10.0.0.3", "", "PrivateIPAddressInReservedRange"},
		{"static broadcast", "ipc4", "10.0.0.7", "", "PrivateIPAddressInReservedRange"},
		{"static outside", "ipc4", "10.0.1.4", "", "PrivateIPAddressNotInSubnet"},
		{"static taken", "ipc4", "10.0.0.5", "", "PrivateIPAddressIsAllocated"},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			a, err := alloc(s.owner, s.want)
			if a != s.addr || code(err) != s.code {
				t.Fatalf("got %q %v, want %q %q", a, err, s.addr, s.code)
			}
		})
	}
	tx := arm.NewTx(st)
	ipam.ReleasePrivate(tx, subnetID, netip.MustParseAddr("10.0.0.4"))
	if err := ipam.ReleaseOwner(ctx, tx, subnetID, "ipc3"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, st); err != nil {
		t.Fatal(err)
	}
	if a, err := alloc("ipc5", ""); err != nil || a != "10.0.0.4" {
		t.Fatalf("after release: %q %v", a, err)
	}
	got, err := ipam.Allocations(ctx, arm.NewTx(st), subnetID)
	if err != nil || len(got) != 2 || got[netip.MustParseAddr("10.0.0.5")] != "ipc2" {
		t.Fatalf("allocations %v %v", got, err)
	}
}

func TestPublicAllocation(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	pool := netip.MustParsePrefix("198.18.0.0/30")
	var got []string
	for _, owner := range []string{"p1", "p2", "p3"} {
		tx := arm.NewTx(st)
		a, err := ipam.AllocatePublic(ctx, tx, pool, owner)
		if err != nil {
			got = append(got, code(err))
			continue
		}
		if _, err := tx.Commit(ctx, st); err != nil {
			t.Fatal(err)
		}
		got = append(got, a.String())
	}
	want := []string{"198.18.0.1", "198.18.0.2", "PublicIPAddressPoolExhausted"}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("allocations %v, want %v", got, want)
		}
	}
	// Two writes racing for the lowest free address: one commit conflicts.
	tx := arm.NewTx(st)
	ipam.ReleasePublic(tx, netip.MustParseAddr("198.18.0.1"))
	if _, err := tx.Commit(ctx, st); err != nil {
		t.Fatal(err)
	}
	a, b := arm.NewTx(st), arm.NewTx(st)
	ia, err := ipam.AllocatePublic(ctx, a, pool, "x")
	if err != nil {
		t.Fatal(err)
	}
	ib, err := ipam.AllocatePublic(ctx, b, pool, "y")
	if err != nil || ia != ib {
		t.Fatalf("%v %v %v", ia, ib, err)
	}
	if _, err := a.Commit(ctx, st); err != nil {
		t.Fatal(err)
	}
	var ce *store.ConflictError
	if _, err := b.Commit(ctx, st); !errors.As(err, &ce) {
		t.Fatalf("second commit: %v, want a conflict", err)
	}
}

func TestDNSLabels(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	tx := arm.NewTx(st)
	if err := ipam.ReserveDNSLabel(ctx, tx, "eastus", "web", "p1"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(ctx, st); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ loc, label, owner, code string }{
		{"eastus", "web", "p1", ""},
		{"eastus", "WEB", "p2", "DnsRecordInUse"},
		{"westus", "web", "p2", ""},
	} {
		if err := ipam.ReserveDNSLabel(ctx, arm.NewTx(st), tc.loc, tc.label, tc.owner); code(err) != tc.code {
			t.Fatalf("%+v: %v", tc, err)
		}
	}
}

func TestRanges(t *testing.T) {
	for _, tc := range []struct{ prefix, first, last string }{
		{"10.0.0.0/24", "10.0.0.4", "10.0.0.254"},
		{"10.0.0.0/29", "10.0.0.4", "10.0.0.6"},
		{"fd00::/64", "fd00::4", "fd00::ffff:ffff:ffff:fffe"},
	} {
		f, l := ipam.SubnetRange(netip.MustParsePrefix(tc.prefix))
		if f.String() != tc.first || l.String() != tc.last {
			t.Errorf("%s: %s-%s", tc.prefix, f, l)
		}
	}
	f, l := ipam.PublicRange(netip.MustParsePrefix("127.77.0.0/16"))
	if f.String() != "127.77.0.1" || l.String() != "127.77.255.254" {
		t.Errorf("pool range %s-%s", f, l)
	}
}

func TestReleaseTwiceIsHarmless(t *testing.T) {
	ctx := context.Background()
	st := openStore(t)
	tx := arm.NewTx(st)
	ipam.ReleasePublic(tx, netip.MustParseAddr("198.18.0.9"))
	ipam.ReleasePrivate(tx, subnetID, netip.MustParseAddr("10.0.0.9"))
	ipam.ReleaseDNSLabel(tx, "eastus", "gone")
	if _, err := tx.Commit(ctx, st); err != nil {
		t.Fatalf("releasing what is not allocated: %v", err)
	}
}
