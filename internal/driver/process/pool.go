package process

import (
	"fmt"
	"net/netip"
)

// pool hands out provider addresses from a prefix, one per instance key,
// lowest free first. The prefix's first address is never handed out (it
// names the network) and neither is an IPv4 prefix's last one. Not safe for
// concurrent use: the Driver's mutex guards it.
type pool struct {
	prefix netip.Prefix
	owner  map[netip.Addr]string // address -> instance key
}

func newPool(prefix netip.Prefix) *pool {
	return &pool{prefix: prefix.Masked(), owner: make(map[netip.Addr]string)}
}

// claim records that key holds a (recovered from the state directory). It
// fails if a is outside the pool or held by another key.
func (p *pool) claim(a netip.Addr, key string) error {
	if !p.usable(a) {
		return fmt.Errorf("process: provider address %s is outside the pool %s", a, p.prefix)
	}
	if k, ok := p.owner[a]; ok && k != key {
		return fmt.Errorf("process: provider address %s is held by %s", a, k)
	}
	p.owner[a] = key
	return nil
}

// alloc gives key the lowest free address.
func (p *pool) alloc(key string) (netip.Addr, error) {
	for a := p.prefix.Addr().Next(); p.usable(a); a = a.Next() {
		if _, taken := p.owner[a]; !taken {
			p.owner[a] = key
			return a, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("process: provider address pool %s is exhausted (%d in use)", p.prefix, len(p.owner))
}

// release frees a if key holds it.
func (p *pool) release(a netip.Addr, key string) {
	if p.owner[a] == key {
		delete(p.owner, a)
	}
}

func (p *pool) usable(a netip.Addr) bool {
	if !a.IsValid() || !p.prefix.Contains(a) || a == p.prefix.Addr() {
		return false
	}
	if a.Is4() && !a.Next().IsValid() || a.Is4() && !p.prefix.Contains(a.Next()) {
		return false // the last address of an IPv4 prefix
	}
	return true
}
