package template

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Unknown stands for a value that depends on the state of deployed resources
// (a reference() result) and so is not known during Validate. Expr is the
// template expression that produced it; Unknown marshals to that string.
// Values returned by Run never contain Unknown.
type Unknown struct {
	Expr string
}

// MarshalJSON writes the expression the value comes from.
func (u Unknown) MarshalJSON() ([]byte, error) { return json.Marshal(u.Expr) }

func isUnknown(v any) bool {
	_, ok := v.(Unknown)
	return ok
}

// containsUnknown reports whether v or anything inside it is Unknown.
func containsUnknown(v any) bool {
	switch x := v.(type) {
	case Unknown:
		return true
	case []any:
		for _, e := range x {
			if containsUnknown(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if containsUnknown(e) {
				return true
			}
		}
	}
	return false
}

// decodeJSON decodes data into a generic value with integral numbers as int64.
func decodeJSON(data []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("unexpected data after the JSON value")
	}
	return Normalize(v), nil
}

// Normalize converts a value decoded by encoding/json (float64 or
// json.Number numbers) into the engine's form: integral numbers become int64,
// other numbers float64. Maps and slices are copied.
func Normalize(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, _ := x.Float64()
		return f
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int64(x)
		}
		return x
	case float32:
		return Normalize(float64(x))
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = Normalize(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = Normalize(e)
		}
		return out
	}
	return v
}

// typeName is ARM's name for a value's type, as used in error messages.
func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "Null"
	case string:
		return "String"
	case int64:
		return "Integer"
	case float64:
		return "Float"
	case bool:
		return "Boolean"
	case []any:
		return "Array"
	case map[string]any:
		return "Object"
	case Unknown:
		return "Unknown"
	}
	return fmt.Sprintf("%T", v)
}

// toText renders a value as ARM's string() does: strings as is, integers in
// decimal, booleans as True/False, null as empty, arrays and objects as
// compact JSON.
func toText(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case bool:
		if x {
			return "True"
		}
		return "False"
	case Unknown:
		return x.Expr
	}
	return marshalCompact(v)
}

// deepEqual compares two engine values; strings compare case-sensitively,
// object keys case-insensitively.
func deepEqual(a, b any) bool {
	switch x := a.(type) {
	case nil:
		return b == nil
	case string:
		y, ok := b.(string)
		return ok && x == y
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case float64:
			return float64(x) == y
		}
		return false
	case float64:
		switch y := b.(type) {
		case int64:
			return x == float64(y)
		case float64:
			return x == y
		}
		return false
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !deepEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, found := lookupKey(y, k)
			if !found || !deepEqual(v, w) {
				return false
			}
		}
		return true
	}
	return false
}

// lookupKey finds key in m, exactly first and then case-insensitively, as
// ARM's property access does.
func lookupKey(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// sortedKeys returns m's keys in order (case-insensitive, then exact).
func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		li, lj := strings.ToLower(keys[i]), strings.ToLower(keys[j])
		if li != lj {
			return li < lj
		}
		return keys[i] < keys[j]
	})
	return keys
}

// deepCopy copies maps and slices of v.
func deepCopy(v any) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	}
	return v
}
