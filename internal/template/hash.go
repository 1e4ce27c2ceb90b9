package template

import (
	"math/bits"
	"strings"

	"github.com/google/uuid"
)

// uniqueAlphabet is the base-32 alphabet of uniqueString (RFC 4648's,
// lower case).
const uniqueAlphabet = "abcdefghijklmnopqrstuvwxyz234567"

// UniqueString is the template function uniqueString, as Azure computes
// it: the inputs joined by "-" (UTF-8), hashed with murmurHash64 and
// written as 13 base-32 characters (alphabet a–z2–7), the hash's bits from
// the most significant down, 5 at a time (the 65th bit is zero).
func UniqueString(inputs ...string) string {
	h := murmurHash64([]byte(strings.Join(inputs, "-")))
	out := make([]byte, 13)
	for i := range out {
		out[i] = uniqueAlphabet[h>>59]
		h <<= 5
	}
	return string(out)
}

// Constants of murmurHash64: MurmurHash3's x86 32-bit constants, two lanes.
const (
	murC1 uint32 = 0x239b961b // 597399067
	murC2 uint32 = 0xab0e9789 // 2869860233
	murF1 uint32 = 0x85ebca6b // fmix32 multipliers
	murF2 uint32 = 0xc2b2ae35
	murN1 uint32 = 0x561ccd1b // 1444728091
	murN2 uint32 = 0x0bcaa747 // 197830471
)

// murmurHash64 is the 64-bit MurmurHash variant Azure Resource Manager's
// uniqueString uses (seed 0): MurmurHash3's x86 block mixing on two 32-bit
// lanes of 8-byte little-endian blocks, a tail of up to 7 bytes, and
// MurmurHash3's finalizer on each lane. Its public descriptions: the
// uniqueString function of Azure/terraform-provider-azapi
// (internal/services/functions/unique_string_function.go) and
// philsphicas/aztunnel (e2e/infra/uniquestring.sh).
func murmurHash64(data []byte) uint64 {
	le := func(b []byte) uint32 {
		var v uint32
		for i := len(b) - 1; i >= 0; i-- {
			v = v<<8 | uint32(b[i])
		}
		return v
	}
	mix1 := func(k uint32) uint32 { return bits.RotateLeft32(k*murC1, 15) * murC2 }
	mix2 := func(k uint32) uint32 { return bits.RotateLeft32(k*murC2, 17) * murC1 }
	var h1, h2 uint32
	n := len(data)
	i := 0
	for ; i+8 <= n; i += 8 {
		h1 ^= mix1(le(data[i : i+4]))
		h1 = (bits.RotateLeft32(h1, 19)+h2)*5 + murN1
		h2 ^= mix2(le(data[i+4 : i+8]))
		h2 = (bits.RotateLeft32(h2, 13)+h1)*5 + murN2
	}
	if tail := data[i:]; len(tail) > 0 {
		h1 ^= mix1(le(tail[:min(4, len(tail))]))
		if len(tail) > 4 {
			h2 ^= mix2(le(tail[4:]))
		}
	}
	fmix := func(h uint32) uint32 {
		h ^= h >> 16
		h *= murF1
		h ^= h >> 13
		h *= murF2
		return h ^ h>>16
	}
	h1 ^= uint32(n)
	h2 ^= uint32(n)
	h1 += h2
	h2 += h1
	h1, h2 = fmix(h1), fmix(h2)
	h1 += h2
	h2 += h1
	return uint64(h2)<<32 | uint64(h1)
}

// guidNamespace is the namespace of guid()'s name-based UUIDs.
var guidNamespace = uuid.MustParse("11fb06fb-712d-4ddd-98c7-e71bbd588830")

// GUID is the template function guid, as Azure computes it: the
// name-based (SHA-1, version 5, RFC 4122 §4.3) UUID of the inputs joined
// by "-" (UTF-8) in the namespace 11fb06fb-712d-4ddd-98c7-e71bbd588830.
func GUID(inputs ...string) string {
	return uuid.NewSHA1(guidNamespace, []byte(strings.Join(inputs, "-"))).String()
}
