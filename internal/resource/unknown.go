package resource

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
)

// Round-trip fidelity: every property a client sends is stored and
// returned, whether or not nimbus's Go types declare it. A type that keeps
// unknown properties embeds an Unknown field and implements
// UnmarshalJSON / MarshalJSON with DecodeKeeping / EncodeMerging:
// decoding records, beside the typed fields, every property (at any depth
// below the type) that the Go type does not declare; encoding merges them
// back into the typed JSON. The stored form is the encoded form, so the
// unknown properties survive the store, read-modify-write clients and
// nimbus's own edits of the typed fields.
//
// Nested types that keep their own unknown properties (they implement
// json.Unmarshaler) own them: a child resource replaced by a child PUT
// takes its own unknown properties, never its predecessor's. Elements of
// arrays are matched by "name" when they have one, else by position.

// Unknown holds the properties of a decoded JSON object that its Go type
// does not declare. The zero value holds none. It is never changed after
// decoding, so copies of a value share it safely.
type Unknown struct {
	tree *extraObj
}

// extraObj is the unknown part of one JSON object: props are properties
// the Go type does not declare (kept as decoded); nested are the unknown
// parts below declared properties.
type extraObj struct {
	props  map[string]any
	nested map[string]extraNode
}

// extraList is the unknown part of a JSON array's elements.
type extraList struct {
	items []extraNode // nil where an element has none
	names []string    // the element's "name", "" when none
}

// extraNode is *extraObj or *extraList.
type extraNode any

// IsZero reports whether u holds no unknown properties.
func (u Unknown) IsZero() bool { return u.tree == nil }

// DecodeKeeping decodes b into v (a pointer to a struct, typically a
// method-less alias of the caller's type) and returns the unknown
// properties of b relative to v's type.
func DecodeKeeping(b []byte, v any) (Unknown, error) {
	if err := json.Unmarshal(b, v); err != nil {
		return Unknown{}, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return Unknown{}, err
	}
	n := unknownOf(reflect.TypeOf(v).Elem(), doc)
	if o, ok := n.(*extraObj); ok {
		return Unknown{tree: o}, nil
	}
	return Unknown{}, nil
}

// EncodeMerging encodes v (typically a method-less alias of the caller's
// type) and merges u's properties into the result: a property the typed
// JSON already has is left as it is; the unknown parts below a property
// the typed JSON dropped are dropped too.
func EncodeMerging(v any, u Unknown) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil || u.tree == nil {
		return b, err
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var doc any
	if err := d.Decode(&doc); err != nil {
		return nil, err
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		return b, nil
	}
	mergeObj(obj, u.tree)
	return json.Marshal(obj)
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// ownsUnknown reports whether values of t decode themselves (and so keep
// their own unknown properties, or have none: RawMessage, time.Time, ...).
func ownsUnknown(t reflect.Type) bool {
	return t.Implements(unmarshalerType) || reflect.PointerTo(t).Implements(unmarshalerType)
}

// unknownOf returns the unknown part of doc decoded as type t, or nil.
func unknownOf(t reflect.Type, doc any) extraNode {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if ownsUnknown(t) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := doc.(map[string]any)
		if !ok {
			return nil
		}
		fields := JSONFields(t)
		var o *extraObj
		for k, v := range m {
			ft, known := fields[strings.ToLower(k)]
			if !known {
				if v == nil {
					continue // Azure drops nulls
				}
				if o == nil {
					o = &extraObj{}
				}
				if o.props == nil {
					o.props = map[string]any{}
				}
				o.props[k] = v
				continue
			}
			if sub := unknownOf(ft, v); sub != nil {
				if o == nil {
					o = &extraObj{}
				}
				if o.nested == nil {
					o.nested = map[string]extraNode{}
				}
				o.nested[k] = sub
			}
		}
		if o == nil {
			return nil
		}
		return o
	case reflect.Slice, reflect.Array:
		arr, ok := doc.([]any)
		if !ok {
			return nil
		}
		var l *extraList
		for i, el := range arr {
			sub := unknownOf(t.Elem(), el)
			if sub == nil {
				continue
			}
			if l == nil {
				l = &extraList{items: make([]extraNode, len(arr)), names: make([]string, len(arr))}
			}
			l.items[i] = sub
			if m, ok := el.(map[string]any); ok {
				l.names[i], _ = m["name"].(string)
			}
		}
		if l == nil {
			return nil
		}
		return l
	case reflect.Map:
		m, ok := doc.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			return nil
		}
		var o *extraObj
		for k, v := range m {
			if sub := unknownOf(t.Elem(), v); sub != nil {
				if o == nil {
					o = &extraObj{nested: map[string]extraNode{}}
				}
				o.nested[k] = sub
			}
		}
		if o == nil {
			return nil
		}
		return o
	}
	return nil
}

// fieldCache maps a struct type to its JSON properties (lower-cased name →
// Go type), promoted fields of embedded structs included.
var fieldCache sync.Map

// JSONFields maps the lower-case JSON names of struct type t's fields
// (embedded structs flattened, the outer name winning) to their types. The
// result is cached per type; callers must not modify it. Safe for
// concurrent use.
func JSONFields(t reflect.Type) map[string]reflect.Type {
	if f, ok := fieldCache.Load(t); ok {
		return f.(map[string]reflect.Type)
	}
	out := map[string]reflect.Type{}
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, _, _ := strings.Cut(tag, ",")
		if f.Anonymous && name == "" {
			ft := f.Type
			if ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				for k, v := range JSONFields(ft) {
					if _, dup := out[k]; !dup {
						out[k] = v
					}
				}
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		out[strings.ToLower(name)] = f.Type
	}
	fieldCache.Store(t, out)
	return out
}

// lookupKey finds k in m case-insensitively (the typed JSON spells
// properties canonically; the client may not have).
func lookupKey(m map[string]any, k string) (string, bool) {
	if _, ok := m[k]; ok {
		return k, true
	}
	for mk := range m {
		if strings.EqualFold(mk, k) {
			return mk, true
		}
	}
	return "", false
}

func mergeObj(doc map[string]any, o *extraObj) {
	for k, v := range o.props {
		if _, ok := lookupKey(doc, k); !ok {
			doc[k] = v
		}
	}
	for k, sub := range o.nested {
		dk, ok := lookupKey(doc, k)
		if !ok {
			continue
		}
		mergeNode(doc[dk], sub)
	}
}

func mergeNode(doc any, n extraNode) {
	switch x := n.(type) {
	case *extraObj:
		if m, ok := doc.(map[string]any); ok {
			mergeObj(m, x)
		}
	case *extraList:
		arr, ok := doc.([]any)
		if !ok {
			return
		}
		for i, sub := range x.items {
			if sub == nil {
				continue
			}
			j := -1
			if name := x.names[i]; name != "" {
				for k, el := range arr {
					if m, ok := el.(map[string]any); ok {
						if s, _ := m["name"].(string); strings.EqualFold(s, name) {
							j = k
							break
						}
					}
				}
			} else if len(arr) == len(x.items) {
				j = i
			}
			if j >= 0 {
				mergeNode(arr[j], sub)
			}
		}
	}
}
