package system

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"nimbus/internal/ipam"
	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// addressBook gives the scale-set controller subnet prefixes and address
// allocations, through the same ipam keys the API uses for load-balancer
// frontends and public IPs, so the two never hand out one address twice.
type addressBook struct {
	st store.Store
}

func newAddressBook(st store.Store) *addressBook { return &addressBook{st: st} }

// SubnetPrefix reads a subnet's addressPrefix from its virtual network.
func (a *addressBook) SubnetPrefix(ctx context.Context, subnetID string) (netip.Prefix, error) {
	id, err := resource.ParseID(subnetID)
	if err != nil || len(id.Types) != 2 || !strings.EqualFold(id.Types[1], "subnets") {
		return netip.Prefix{}, fmt.Errorf("subnet id %q: not a subnet", subnetID)
	}
	kv, err := a.st.Get(ctx, resource.Key(id))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, err)
	}
	var vnet struct {
		Properties struct {
			Subnets []struct {
				Name       string `json:"name"`
				Properties struct {
					AddressPrefix   string   `json:"addressPrefix"`
					AddressPrefixes []string `json:"addressPrefixes"`
				} `json:"properties"`
			} `json:"subnets"`
		} `json:"properties"`
	}
	if err := json.Unmarshal(kv.Value, &vnet); err != nil {
		return netip.Prefix{}, fmt.Errorf("decode virtual network of %s: %w", subnetID, err)
	}
	for _, sn := range vnet.Properties.Subnets {
		if !strings.EqualFold(sn.Name, id.Names[1]) {
			continue
		}
		p := sn.Properties.AddressPrefix
		if p == "" && len(sn.Properties.AddressPrefixes) > 0 {
			p = sn.Properties.AddressPrefixes[0]
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("subnet %s prefix %q: %w", subnetID, p, err)
		}
		return pfx.Masked(), nil
	}
	return netip.Prefix{}, fmt.Errorf("subnet %s: %w", subnetID, store.ErrNotFound)
}

// stage is an ipam.Txn over the store: reads go to the store, writes are
// staged and committed together by commit.
type stage struct {
	st  store.Store
	ops []store.Op
}

func (t *stage) Get(ctx context.Context, key string) (store.KV, error) { return t.st.Get(ctx, key) }

func (t *stage) List(ctx context.Context, prefix string) ([]store.KV, error) {
	kvs, _, err := t.st.List(ctx, prefix)
	return kvs, err
}

func (t *stage) Put(key string, value []byte, expected int64) {
	t.ops = append(t.ops, store.Op{Key: key, Value: value, Expected: expected})
}

func (t *stage) Delete(key string, expected int64) {
	t.ops = append(t.ops, store.Op{Key: key, Delete: true, Expected: expected})
}

// allocate runs fn on a fresh stage and commits it, retrying when another
// writer took the same address first.
func allocate(ctx context.Context, st store.Store, what string, fn func(tx *stage) (netip.Addr, error)) (netip.Addr, error) {
	for range 16 {
		tx := &stage{st: st}
		addr, err := fn(tx)
		if err != nil {
			return netip.Addr{}, err
		}
		if _, err := st.Txn(ctx, tx.ops); err != nil {
			var ce *store.ConflictError
			if errors.As(err, &ce) {
				continue
			}
			return netip.Addr{}, fmt.Errorf("allocate %s: %w", what, err)
		}
		return addr, nil
	}
	return netip.Addr{}, fmt.Errorf("allocate %s: too much contention", what)
}

// release commits the staged release of an address; a missing allocation
// is already released.
func release(ctx context.Context, st store.Store, fn func(tx *stage)) error {
	tx := &stage{st: st}
	fn(tx)
	for i := range tx.ops {
		tx.ops[i].Expected = store.AnyRevision
	}
	if _, err := st.Txn(ctx, tx.ops); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	return nil
}

// AllocatePrivate takes the lowest free usable address of the subnet.
func (a *addressBook) AllocatePrivate(ctx context.Context, subnetID, owner string) (netip.Addr, error) {
	pfx, err := a.SubnetPrefix(ctx, subnetID)
	if err != nil {
		return netip.Addr{}, err
	}
	return allocate(ctx, a.st, "in "+subnetID, func(tx *stage) (netip.Addr, error) {
		return ipam.AllocatePrivate(ctx, tx, subnetID, pfx, owner, netip.Addr{})
	})
}

// ReleasePrivate frees an address of the subnet.
func (a *addressBook) ReleasePrivate(ctx context.Context, subnetID string, addr netip.Addr) error {
	return release(ctx, a.st, func(tx *stage) { ipam.ReleasePrivate(tx, subnetID, addr) })
}

// public returns the allocator of instance-level public IPs from pool.
func (a *addressBook) public(pool netip.Prefix) *publicBook {
	return &publicBook{st: a.st, pool: pool}
}

type publicBook struct {
	st   store.Store
	pool netip.Prefix
}

func (p *publicBook) AllocatePublic(ctx context.Context, owner string) (netip.Addr, error) {
	return allocate(ctx, p.st, "public ip", func(tx *stage) (netip.Addr, error) {
		return ipam.AllocatePublic(ctx, tx, p.pool, owner)
	})
}

func (p *publicBook) ReleasePublic(ctx context.Context, addr netip.Addr) error {
	return release(ctx, p.st, func(tx *stage) { ipam.ReleasePublic(tx, addr) })
}
