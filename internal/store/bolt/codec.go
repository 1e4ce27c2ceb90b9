package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"nimbus/internal/store"
)

// On-disk layout (all integers big-endian unless noted):
//
//	meta/rev        current store revision (8 bytes)
//	meta/compacted  highest revision removed from the change log (8 bytes)
//	kv/<key>        modRev (8) | createRev (8) | value
//	log/<rev (8)>   the events committed at rev: a sequence of records
//	                type (1) | uvarint len(key) | key | createRev (8) | uvarint len(value) | value
//
// A log record's revision is its log key; a delete record's value is the
// key's last value.

var (
	bucketMeta = []byte("meta")
	bucketKV   = []byte("kv")
	bucketLog  = []byte("log")

	metaRev       = []byte("rev")
	metaCompacted = []byte("compacted")
)

// kvHeaderLen is the size of the revision header in front of a kv value.
const kvHeaderLen = 16

var errCorrupt = errors.New("corrupt record")

func u64(v int64) []byte {
	return binary.BigEndian.AppendUint64(make([]byte, 0, 8), uint64(v))
}

func readU64(b []byte) (int64, error) {
	if b == nil {
		return 0, nil
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("integer of %d bytes: %w", len(b), errCorrupt)
	}
	return int64(binary.BigEndian.Uint64(b)), nil
}

// encodeKV returns the kv bucket value for a key modified at modRev.
func encodeKV(modRev, createRev int64, value []byte) []byte {
	b := make([]byte, kvHeaderLen, kvHeaderLen+len(value))
	binary.BigEndian.PutUint64(b[0:8], uint64(modRev))
	binary.BigEndian.PutUint64(b[8:16], uint64(createRev))
	return append(b, value...)
}

// decodeKV parses a kv bucket value, copying the value out of b (which bbolt
// owns only for the life of the transaction).
func decodeKV(key, b []byte) (store.KV, error) {
	if len(b) < kvHeaderLen {
		return store.KV{}, fmt.Errorf("kv %q of %d bytes: %w", key, len(b), errCorrupt)
	}
	return store.KV{
		Key:            string(key),
		Value:          append([]byte{}, b[kvHeaderLen:]...),
		Revision:       int64(binary.BigEndian.Uint64(b[0:8])),
		CreateRevision: int64(binary.BigEndian.Uint64(b[8:16])),
	}, nil
}

// appendEvent appends one log record for ev to b.
func appendEvent(b []byte, ev store.Event) []byte {
	b = append(b, byte(ev.Type))
	b = binary.AppendUvarint(b, uint64(len(ev.KV.Key)))
	b = append(b, ev.KV.Key...)
	b = binary.BigEndian.AppendUint64(b, uint64(ev.KV.CreateRevision))
	b = binary.AppendUvarint(b, uint64(len(ev.KV.Value)))
	return append(b, ev.KV.Value...)
}

// decodeEvents parses the log records committed at rev, keeping those whose
// key has the given prefix. Values are copied out of b.
func decodeEvents(rev int64, b []byte, prefix string, dst []store.Event) ([]store.Event, error) {
	for len(b) > 0 {
		typ := store.EventType(b[0])
		if typ != store.EventPut && typ != store.EventDelete {
			return dst, fmt.Errorf("log %d: event type %d: %w", rev, typ, errCorrupt)
		}
		b = b[1:]
		klen, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < klen {
			return dst, fmt.Errorf("log %d: key length: %w", rev, errCorrupt)
		}
		key := b[n : n+int(klen)]
		b = b[n+int(klen):]
		if len(b) < 8 {
			return dst, fmt.Errorf("log %d: create revision: %w", rev, errCorrupt)
		}
		createRev := int64(binary.BigEndian.Uint64(b[:8]))
		b = b[8:]
		vlen, n := binary.Uvarint(b)
		if n <= 0 || uint64(len(b)-n) < vlen {
			return dst, fmt.Errorf("log %d: value length: %w", rev, errCorrupt)
		}
		value := b[n : n+int(vlen)]
		b = b[n+int(vlen):]
		if !hasPrefix(key, prefix) {
			continue
		}
		dst = append(dst, store.Event{Type: typ, KV: store.KV{
			Key:            string(key),
			Value:          append([]byte{}, value...),
			Revision:       rev,
			CreateRevision: createRev,
		}})
	}
	return dst, nil
}

func hasPrefix(key []byte, prefix string) bool {
	return len(key) >= len(prefix) && string(key[:len(prefix)]) == prefix
}
