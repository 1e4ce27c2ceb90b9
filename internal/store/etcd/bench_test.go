package etcd_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
	"nimbus/internal/store/etcd"
	"nimbus/internal/store/etcd/etcdtest"
)

// backends are the stores the benchmarks compare: the embedded bbolt file
// and a one-member etcd on loopback, both on the same disk (the test's
// temp directory), both fsyncing every acknowledged write.
var backends = []struct {
	name string
	open func(b *testing.B) store.Store
}{
	{"bolt", func(b *testing.B) store.Store {
		s, err := bolt.Open(b.Context(), filepath.Join(b.TempDir(), "nimbus.db"))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}},
	{"etcd", func(b *testing.B) store.Store { return open(b, etcdtest.Start(b), etcd.Config{}) }},
}

// fill writes n keys "bench/%06d" of valueSize bytes in Txns of 100 (under
// etcd's default --max-txn-ops of 128).
func fill(b *testing.B, s store.Store, n, valueSize int) {
	b.Helper()
	value := make([]byte, valueSize)
	for start := 0; start < n; start += 100 {
		var ops []store.Op
		for i := start; i < min(start+100, n); i++ {
			ops = append(ops, store.Op{Key: fmt.Sprintf("bench/%06d", i), Value: value, Expected: store.AnyRevision})
		}
		if _, err := s.Txn(b.Context(), ops); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPut measures one acknowledged (fsynced) Put of a new
// 128-byte value.
func BenchmarkPut(b *testing.B) {
	for _, be := range backends {
		b.Run("backend="+be.name, func(b *testing.B) {
			s := be.open(b)
			value := make([]byte, 128)
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

// BenchmarkTxn measures a Txn as nimbus's API writes one: 10 ops, each
// guarded by its key's expected revision (a resource and its children).
func BenchmarkTxn(b *testing.B) {
	const ops = 10
	for _, be := range backends {
		b.Run("backend="+be.name, func(b *testing.B) {
			s := be.open(b)
			txn := make([]store.Op, ops)
			for j := range txn {
				txn[j] = store.Op{Key: fmt.Sprintf("txn/%02d", j), Value: make([]byte, 128), Expected: store.MustNotExist}
			}
			b.ReportAllocs()
			for b.Loop() {
				rev, err := s.Txn(b.Context(), txn)
				if err != nil {
					b.Fatal(err)
				}
				for j := range txn {
					txn[j].Expected = rev
				}
			}
		})
	}
}

// BenchmarkList measures List of a prefix matching n of 10,000 128-byte
// values.
func BenchmarkList(b *testing.B) {
	const total = 10000
	for _, be := range backends {
		b.Run("backend="+be.name, func(b *testing.B) {
			s := be.open(b)
			fill(b, s, total, 128)
			for _, tc := range []struct {
				prefix string
				n      int
			}{{"bench/0000", 100}, {"bench/000", total / 10}, {"bench/", total}} {
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
		})
	}
}
