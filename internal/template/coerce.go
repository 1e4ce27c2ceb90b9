package template

import (
	"strconv"
	"strings"
)

// Kind is the JSON type a resource property should have, for CoerceScalars.
type Kind int

// Kinds of CoerceScalars.
const (
	// KindInt is an integer property ("50000" becomes 50000).
	KindInt Kind = iota + 1
	// KindBool is a boolean property ("true" becomes true).
	KindBool
)

// CoerceScalars returns a copy of a resource body in which every property
// whose name (case-insensitive) is in fields and whose value is a string
// spelling a value of that kind is converted: az sends
// "frontendPortRangeStart": "50000" and "primary": "true", which Azure's
// providers accept. Other values are left alone, so the provider's own
// validation still reports them. fields is keyed by lower-case property
// name; it applies at every depth of the body.
func CoerceScalars(v any, fields map[string]Kind) any {
	switch x := v.(type) {
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = CoerceScalars(e, fields)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if s, ok := e.(string); ok {
				switch fields[strings.ToLower(k)] {
				case KindInt:
					if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
						out[k] = n
						continue
					}
				case KindBool:
					switch strings.ToLower(strings.TrimSpace(s)) {
					case "true":
						out[k] = true
						continue
					case "false":
						out[k] = false
						continue
					}
				}
			}
			out[k] = CoerceScalars(e, fields)
		}
		return out
	}
	return v
}
