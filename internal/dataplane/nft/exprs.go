package nft

import (
	"encoding/binary"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/binaryutil"
	"github.com/google/nftables/expr"
	"golang.org/x/sys/unix"
)

// 32-bit registers (NFT_REG32_00 ...). Concatenations occupy consecutive
// registers, every member padded to 4 bytes.
const (
	reg0 uint32 = 8 + iota
	reg1
	reg2
	reg3
	reg4
)

// Payload offsets.
const (
	offSaddr = 12
	offDaddr = 16
	offSport = 0
	offDport = 2
)

func saddr(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offSaddr, Len: 4}
}

func daddr(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseNetworkHeader, Offset: offDaddr, Len: 4}
}

func sport(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offSport, Len: 2}
}

func dport(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: offDport, Len: 2}
}

// ackSeq loads the TCP acknowledgment number (network order).
func ackSeq(reg uint32) expr.Any {
	return &expr.Payload{OperationType: expr.PayloadLoad, DestRegister: reg, Base: expr.PayloadBaseTransportHeader, Offset: 8, Len: 4}
}

func l4proto(reg uint32) expr.Any {
	return &expr.Meta{Key: expr.MetaKeyL4PROTO, Register: reg}
}

// protoIs matches meta l4proto == p.
func protoIs(p byte) []expr.Any {
	return []expr.Any{l4proto(reg0), &expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: []byte{p}}}
}

// oifname matches the output interface name.
func oifname(name string) []expr.Any {
	return []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: reg0},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: ifname(name)},
	}
}

func ifname(n string) []byte {
	b := make([]byte, 16)
	copy(b, n)
	return b
}

// ctStateIn matches ct state with any of the bits.
func ctStateIn(bits uint32) []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATE, Register: reg0},
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(bits), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: make([]byte, 4)},
	}
}

// ctStatusDNAT matches ct status dnat.
func ctStatusDNAT() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeySTATUS, Register: reg0},
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(ipsDstNAT), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: reg0, Data: make([]byte, 4)},
	}
}

// ctOriginal matches ct direction original.
func ctOriginal() []expr.Any {
	return []expr.Any{
		&expr.Ct{Key: expr.CtKeyDIRECTION, Register: reg0},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: []byte{0}},
	}
}

// markIsFloating matches (reg & floatMask) == floatTag for the meta or ct mark.
func markIsFloating(ct bool) []expr.Any {
	var load expr.Any = &expr.Meta{Key: expr.MetaKeyMARK, Register: reg0}
	if ct {
		load = &expr.Ct{Key: expr.CtKeyMARK, Register: reg0}
	}
	return []expr.Any{
		load,
		&expr.Bitwise{SourceRegister: reg0, DestRegister: reg0, Len: 4, Mask: binaryutil.NativeEndian.PutUint32(floatMask), Xor: make([]byte, 4)},
		&expr.Cmp{Op: expr.CmpOpEq, Register: reg0, Data: binaryutil.NativeEndian.PutUint32(floatTag)},
	}
}

// lookup matches when the key in reg0.. is in set s.
func lookup(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: reg0, SetName: s.Name, SetID: s.ID}
}

// mapTo looks the key in reg0.. up in map s and writes the value to reg0...
func mapTo(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: reg0, DestRegister: reg0, IsDestRegSet: true, SetName: s.Name, SetID: s.ID}
}

// vmap looks the key up in a verdict map.
func vmap(s *nftables.Set) expr.Any {
	return &expr.Lookup{SourceRegister: reg0, DestRegister: 0, IsDestRegSet: true, SetName: s.Name, SetID: s.ID}
}

func drop() expr.Any   { return &expr.Verdict{Kind: expr.VerdictDrop} }
func accept() expr.Any { return &expr.Verdict{Kind: expr.VerdictAccept} }

func tcpReset() expr.Any {
	return &expr.Reject{Type: unix.NFT_REJECT_TCP_RST}
}

// Element encodings. Addresses and ports are in network order, every
// concatenation member is padded to 4 bytes; jhash slot keys are host order.

func ipBytes(a netip.Addr) []byte { b := a.As4(); return b[:] }

func portBytes(p uint16) []byte {
	b := make([]byte, 4)
	binary.BigEndian.PutUint16(b, p)
	return b
}

func protoBytes(p byte) []byte { return []byte{p, 0, 0, 0} }

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// slotKey is the map key of slot i (host byte order). Keys of the largest
// table are built once and shared (they are never modified).
func slotKey(i int) []byte {
	if i < len(slotKeys) {
		return slotKeys[i]
	}
	return binaryutil.NativeEndian.PutUint32(uint32(i))
}

var slotKeys = func() [][]byte {
	const n = 65537
	buf := make([]byte, 4*n)
	keys := make([][]byte, n)
	for i := range keys {
		k := buf[4*i : 4*i+4 : 4*i+4]
		copy(k, binaryutil.NativeEndian.PutUint32(uint32(i)))
		keys[i] = k
	}
	return keys
}()

func markBytes(m uint32) []byte { return binaryutil.NativeEndian.PutUint32(m) }

func protoName(p byte) string {
	switch p {
	case unix.IPPROTO_TCP:
		return "tcp"
	case unix.IPPROTO_UDP:
		return "udp"
	}
	return "unknown"
}

// ipsDstNAT is IPS_DST_NAT from linux/netfilter/nf_conntrack_common.h.
const ipsDstNAT = 1 << 5

// dynsetOpDelete is NFT_DYNSET_OP_DELETE (Linux 5.12), missing from x/sys.
const dynsetOpDelete = 2
