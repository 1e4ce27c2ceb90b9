// Package ipam allocates IP addresses: public addresses from nimbus's public
// pool and private addresses inside subnets. Allocations are store keys
// (resource.IPAMPrefix) staged on the caller's write, so an allocation
// commits atomically with the resource that holds it. Allocation is
// deterministic: the lowest free address. Functions are safe for concurrent
// use; two writes racing for one address conflict at commit (the key is
// written with store.MustNotExist) and the loser retries.
//
// Key layout:
//
//	/ipam/public/<addr>                      value: owner resource ID
//	/ipam/private/<lower subnet ID>/<addr>   value: owner (IP configuration) ID
//	/ipam/dns/<location>/<label>             value: owner public IP ID
package ipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Reader reads allocations (arm.Tx, arm.StoreReader).
type Reader interface {
	// Get returns the value at key or an error wrapping store.ErrNotFound.
	Get(ctx context.Context, key string) (store.KV, error)
	// List returns every key under prefix.
	List(ctx context.Context, prefix string) ([]store.KV, error)
}

// Txn is the part of a write (arm.Tx) ipam needs: reads that see staged
// writes, and staging.
type Txn interface {
	Reader
	// Put stages a write expecting the given revision.
	Put(key string, value []byte, expected int64)
	// Delete stages a delete expecting the given revision.
	Delete(key string, expected int64)
}

// Key prefixes.
const (
	PublicPrefix  = resource.IPAMPrefix + "/public/"
	PrivatePrefix = resource.IPAMPrefix + "/private/"
	DNSPrefix     = resource.IPAMPrefix + "/dns/"
)

// PublicKey returns the allocation key of a public address.
func PublicKey(a netip.Addr) string { return PublicPrefix + a.String() }

// SubnetPrefix returns the prefix of a subnet's allocation keys.
func SubnetPrefix(subnetID string) string {
	// PrivatePrefix ends with "/" and an ID starts with one: join them once.
	return PrivatePrefix + strings.TrimPrefix(strings.ToLower(normalizeID(subnetID)), "/") + "/"
}

// PrivateKey returns the allocation key of a private address in a subnet.
func PrivateKey(subnetID string, a netip.Addr) string { return SubnetPrefix(subnetID) + a.String() }

func normalizeID(id string) string {
	if p, err := resource.ParseID(id); err == nil {
		return p.String()
	}
	return id
}

// taken returns the addresses allocated under prefix and their owners.
func taken(ctx context.Context, tx Reader, prefix string) (map[netip.Addr]string, error) {
	kvs, err := tx.List(ctx, prefix)
	if err != nil {
		return nil, fmt.Errorf("ipam: list %s: %w", prefix, err)
	}
	m := make(map[netip.Addr]string, len(kvs))
	for _, kv := range kvs {
		a, err := netip.ParseAddr(kv.Key[len(prefix):])
		if err != nil {
			continue
		}
		m[a] = string(kv.Value)
	}
	return m, nil
}

// lastAddr returns the highest address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	a, _ := netip.AddrFromSlice(b)
	return a
}

// PublicRange returns the first and last allocatable address of a pool: the
// pool without its first and last address.
func PublicRange(pool netip.Prefix) (first, last netip.Addr) {
	return pool.Masked().Addr().Next(), lastAddr(pool).Prev()
}

// AllocatePublic stages the allocation of the lowest free address of pool
// for owner (a public IP's ID) and returns it. A full pool is a 400
// PublicIPAddressPoolExhausted error.
func AllocatePublic(ctx context.Context, tx Txn, pool netip.Prefix, owner string) (netip.Addr, error) {
	used, err := taken(ctx, tx, PublicPrefix)
	if err != nil {
		return netip.Addr{}, err
	}
	first, last := PublicRange(pool)
	for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
		if _, ok := used[a]; !ok {
			tx.Put(PublicKey(a), []byte(owner), store.MustNotExist)
			return a, nil
		}
	}
	return netip.Addr{}, resource.BadRequest("PublicIPAddressPoolExhausted",
		"No free address is left in the public IP pool %s for %s.", pool, owner)
}

// ReleasePublic stages the release of a public address (no-op if invalid).
func ReleasePublic(tx Txn, a netip.Addr) {
	if a.IsValid() {
		tx.Delete(PublicKey(a), store.AnyRevision)
	}
}

// SubnetRange returns the first and last usable address of a subnet prefix:
// Azure reserves the first four addresses and the last one.
func SubnetRange(p netip.Prefix) (first, last netip.Addr) {
	a := p.Masked().Addr()
	for range 4 {
		a = a.Next()
	}
	return a, lastAddr(p).Prev()
}

// AllocatePrivate stages the allocation of a private address in a subnet
// (subnetID, with prefix) for owner and returns it. With want zero it picks
// the lowest free usable address; otherwise want must be usable and free
// (or already held by owner). Errors: PrivateIPAddressNotInSubnet,
// PrivateIPAddressInReservedRange, PrivateIPAddressIsAllocated,
// SubnetIsFull (all 400).
func AllocatePrivate(ctx context.Context, tx Txn, subnetID string, prefix netip.Prefix, owner string, want netip.Addr) (netip.Addr, error) {
	used, err := taken(ctx, tx, SubnetPrefix(subnetID))
	if err != nil {
		return netip.Addr{}, err
	}
	first, last := SubnetRange(prefix)
	if want.IsValid() {
		want = want.Unmap()
		if !prefix.Contains(want) {
			return netip.Addr{}, resource.BadRequest("PrivateIPAddressNotInSubnet",
				"IP configuration %s is referencing private IP address %s which does not belong to subnet %s.", owner, want, subnetID)
		}
		if want.Compare(first) < 0 || want.Compare(last) > 0 {
			return netip.Addr{}, resource.BadRequest("PrivateIPAddressInReservedRange",
				"Private static IP address %s falls within reserved IP range of subnet prefix %s.", want, prefix)
		}
		if o, ok := used[want]; ok {
			if strings.EqualFold(o, owner) {
				return want, nil
			}
			return netip.Addr{}, resource.BadRequest("PrivateIPAddressIsAllocated",
				"IP configuration %s is using the private IP address %s which is already allocated to resource %s.", owner, want, o)
		}
		tx.Put(PrivateKey(subnetID, want), []byte(owner), store.MustNotExist)
		return want, nil
	}
	for a, o := range used {
		if strings.EqualFold(o, owner) && prefix.Contains(a) {
			return a, nil
		}
	}
	for a := first; a.IsValid() && a.Compare(last) <= 0; a = a.Next() {
		if _, ok := used[a]; !ok {
			tx.Put(PrivateKey(subnetID, a), []byte(owner), store.MustNotExist)
			return a, nil
		}
	}
	return netip.Addr{}, resource.BadRequest("SubnetIsFull", "Subnet %s with address prefix %s does not have enough capacity for 1 IP address.", subnetID, prefix)
}

// ReleasePrivate stages the release of a private address in a subnet (no-op if invalid).
func ReleasePrivate(tx Txn, subnetID string, a netip.Addr) {
	if a.IsValid() {
		tx.Delete(PrivateKey(subnetID, a), store.AnyRevision)
	}
}

// ReleaseOwner stages the release of every private address owner holds in a subnet.
func ReleaseOwner(ctx context.Context, tx Txn, subnetID, owner string) error {
	used, err := taken(ctx, tx, SubnetPrefix(subnetID))
	if err != nil {
		return err
	}
	for a, o := range used {
		if strings.EqualFold(o, owner) {
			tx.Delete(PrivateKey(subnetID, a), store.AnyRevision)
		}
	}
	return nil
}

// Allocations returns a subnet's allocated addresses and their owners.
func Allocations(ctx context.Context, tx Reader, subnetID string) (map[netip.Addr]string, error) {
	return taken(ctx, tx, SubnetPrefix(subnetID))
}

// dnsKey returns the key reserving a DNS label in a location.
func dnsKey(location, label string) string {
	return DNSPrefix + strings.ToLower(location) + "/" + strings.ToLower(label)
}

// ReserveDNSLabel stages the reservation of a DNS label in a location for
// owner. A label held by another owner is a 400 DnsRecordInUse error.
func ReserveDNSLabel(ctx context.Context, tx Txn, location, label, owner string) error {
	kv, err := tx.Get(ctx, dnsKey(location, label))
	switch {
	case err == nil:
		if strings.EqualFold(string(kv.Value), owner) {
			return nil
		}
		return resource.BadRequest("DnsRecordInUse", "DNS record %s.%s.cloudapp.azure.com is already used by another public IP.", label, location)
	case errors.Is(err, store.ErrNotFound):
		tx.Put(dnsKey(location, label), []byte(owner), store.MustNotExist)
		return nil
	}
	return fmt.Errorf("ipam: dns label: %w", err)
}

// ReleaseDNSLabel stages the release of a DNS label.
func ReleaseDNSLabel(tx Txn, location, label string) {
	if label != "" {
		tx.Delete(dnsKey(location, label), store.AnyRevision)
	}
}
