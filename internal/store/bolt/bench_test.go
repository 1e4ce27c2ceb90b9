package bolt_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// benchStore opens a store in a temporary directory with n keys
// "bench/%06d" of valueSize bytes, written in Txns of 1000.
func benchStore(b *testing.B, n, valueSize int) *bolt.Store {
	b.Helper()
	s := openAt(b, filepath.Join(b.TempDir(), "nimbus.db"))
	value := make([]byte, valueSize)
	for start := 0; start < n; start += 1000 {
		var ops []store.Op
		for i := start; i < min(start+1000, n); i++ {
			ops = append(ops, store.Op{Key: fmt.Sprintf("bench/%06d", i), Value: value, Expected: store.AnyRevision})
		}
		if _, err := s.Txn(b.Context(), ops); err != nil {
			b.Fatal(err)
		}
	}
	return s
}

// BenchmarkPut measures one fsynced Put of a new key.
func BenchmarkPut(b *testing.B) {
	for _, size := range []int{128, 4096} {
		b.Run(fmt.Sprintf("value=%dB", size), func(b *testing.B) {
			s := benchStore(b, 0, 0)
			value := make([]byte, size)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := s.Put(b.Context(), fmt.Sprintf("put/%09d", i), value, store.AnyRevision); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkGet measures Get of existing 128-byte values in a 10,000-key store.
func BenchmarkGet(b *testing.B) {
	const n = 10000
	s := benchStore(b, n, 128)
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("bench/%06d", (i*7919)%n)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := s.Get(b.Context(), keys[i%n]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkList measures List of a prefix matching n of 10,000 keys.
func BenchmarkList(b *testing.B) {
	const total = 10000
	s := benchStore(b, total, 128)
	for _, tc := range []struct {
		prefix string
		n      int
	}{{"bench/00000", 10}, {"bench/0000", 100}, {"bench/000", 1000}, {"bench/", total}} {
		b.Run(fmt.Sprintf("keys=%d", tc.n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				kvs, _, err := s.List(b.Context(), tc.prefix)
				if err != nil || len(kvs) != tc.n {
					b.Fatalf("List(%q) = %d keys, %v; want %d", tc.prefix, len(kvs), err, tc.n)
				}
			}
		})
	}
}
