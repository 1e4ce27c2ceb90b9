package template

import (
	"math/big"
	"net/netip"
)

// Network functions: parseCidr, cidrSubnet and cidrHost, for IPv4 and
// IPv6 prefixes.

func parsePrefix(fname string, v any) (netip.Prefix, error) {
	s, ok := v.(string)
	if !ok {
		return netip.Prefix{}, errf("The template function '%s' expects a CIDR String, got %s.", fname, typeName(v))
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errf("The template function '%s' got an invalid CIDR '%s'.", fname, s)
	}
	return p.Masked(), nil
}

// addrAdd returns a + n (n may be negative) within a's family.
func addrAdd(a netip.Addr, n *big.Int) (netip.Addr, bool) {
	b := a.AsSlice()
	v := new(big.Int).SetBytes(b)
	v.Add(v, n)
	if v.Sign() < 0 || v.BitLen() > len(b)*8 {
		return netip.Addr{}, false
	}
	out := make([]byte, len(b))
	v.FillBytes(out)
	r, _ := netip.AddrFromSlice(out)
	return r, true
}

// lastAddr is the last address of p.
func lastAddr(p netip.Prefix) netip.Addr {
	size := new(big.Int).Lsh(big.NewInt(1), uint(p.Addr().BitLen()-p.Bits()))
	a, _ := addrAdd(p.Addr(), size.Sub(size, big.NewInt(1)))
	return a
}

func fnParseCIDR(_ *evaluator, _ *site, a []any) (any, error) {
	p, err := parsePrefix("parseCidr", a[0])
	if err != nil {
		return nil, err
	}
	first, last := p.Addr(), lastAddr(p)
	out := map[string]any{"network": first.String(), "cidr": int64(p.Bits())}
	if first.Is4() {
		var m uint32
		if p.Bits() > 0 {
			m = ^uint32(0) << (32 - p.Bits())
		}
		out["netmask"] = netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
		out["broadcast"] = last.String()
		fu, lu := first, last
		if p.Bits() < 31 {
			fu, _ = addrAdd(first, big.NewInt(1))
			lu, _ = addrAdd(last, big.NewInt(-1))
		}
		out["firstUsable"], out["lastUsable"] = fu.String(), lu.String()
		return out, nil
	}
	out["firstUsable"], out["lastUsable"] = first.String(), last.String()
	return out, nil
}

func fnCIDRSubnet(_ *evaluator, _ *site, a []any) (any, error) {
	p, err := parsePrefix("cidrSubnet", a[0])
	if err != nil {
		return nil, err
	}
	bits, err1 := asInt(a[1])
	idx, err2 := asInt(a[2])
	if err1 != nil || err2 != nil {
		return nil, errf("The template function 'cidrSubnet' expects Integer newCIDR and index.")
	}
	if bits < int64(p.Bits()) || bits > int64(p.Addr().BitLen()) {
		return nil, errf("The template function 'cidrSubnet': newCIDR %d must be between %d and %d.", bits, p.Bits(), p.Addr().BitLen())
	}
	count := new(big.Int).Lsh(big.NewInt(1), uint(bits-int64(p.Bits())))
	if idx < 0 || big.NewInt(idx).Cmp(count) >= 0 {
		return nil, errf("The template function 'cidrSubnet': index %d is out of range for %d subnets.", idx, count)
	}
	off := new(big.Int).Lsh(big.NewInt(idx), uint(int64(p.Addr().BitLen())-bits))
	start, _ := addrAdd(p.Addr(), off)
	return netip.PrefixFrom(start, int(bits)).String(), nil
}

func fnCIDRHost(_ *evaluator, _ *site, a []any) (any, error) {
	p, err := parsePrefix("cidrHost", a[0])
	if err != nil {
		return nil, err
	}
	idx, err := asInt(a[1])
	if err != nil {
		return nil, errf("The template function 'cidrHost' expects an Integer index.")
	}
	// Index 0 is the first usable host (the network address is skipped).
	first := big.NewInt(1)
	if p.Addr().Is4() && p.Bits() >= 31 || p.Addr().Is6() {
		first = big.NewInt(0)
	}
	h, ok := addrAdd(p.Addr(), new(big.Int).Add(first, big.NewInt(idx)))
	if idx < 0 || !ok || !p.Contains(h) || (p.Addr().Is4() && p.Bits() < 31 && h == lastAddr(p)) {
		return nil, errf("The template function 'cidrHost': index %d is outside the usable hosts of %s.", idx, p)
	}
	return h.String(), nil
}
