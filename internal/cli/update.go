package cli

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// UpdateOp is one argument group of az's generic update, applied in
// command-line order: Kind is "set" (Args: KEY=VALUE, each), "add" (Args:
// list path, then values or key=value pairs forming one object) or
// "remove" (Args: path, optionally a list index).
type UpdateOp struct {
	Kind string
	Args []string
}

// ApplyUpdates applies ops to obj (a flattened resource, see Flatten) in
// order, with az's semantics: paths are dotted, with [i] list indexes and
// [key=value] list filters; keys match case-insensitively; values are
// parsed as JSON when they parse, else taken as strings (always strings
// with forceString); --set creates missing objects on the way; --remove of
// a property deletes it (so a PUT drops it), with an index it removes that
// list element. Errors are *UsageError-free CLI errors (exit 1), as in az.
func ApplyUpdates(obj any, ops []UpdateOp, forceString bool) error {
	for _, op := range ops {
		var err error
		switch op.Kind {
		case "set":
			for _, a := range op.Args {
				if err = setProperty(obj, a, forceString); err != nil {
					break
				}
			}
		case "add":
			err = addProperties(obj, op.Args, forceString)
		case "remove":
			err = removeProperty(obj, op.Args)
		default:
			err = fmt.Errorf("unknown update operation %q", op.Kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// splitPath splits "a.b[0].c[name=x]" into a, b, [0], c, [name=x].
func splitPath(p string) []string {
	var parts []string
	var cur strings.Builder
	depth := 0
	flush := func() {
		if cur.Len() > 0 {
			parts = append(parts, cur.String())
			cur.Reset()
		}
	}
	for _, r := range p {
		switch {
		case r == '[' && depth == 0:
			flush()
			depth++
			cur.WriteRune(r)
		case r == ']' && depth > 0:
			depth--
			cur.WriteRune(r)
			if depth == 0 {
				flush()
			}
		case r == '[':
			depth++
			cur.WriteRune(r)
		case r == '.' && depth == 0:
			flush()
		default:
			cur.WriteRune(r)
		}
	}
	flush()
	return parts
}

func isBracket(part string) bool {
	return strings.HasPrefix(part, "[") && strings.HasSuffix(part, "]")
}

// parseValue is az's shell_safe_json_parse: JSON if it parses, else the string.
func parseValue(s string, forceString bool) any {
	if forceString {
		return s
	}
	var v any
	if err := json.Unmarshal([]byte(s), &v); err == nil {
		return v
	}
	return s
}

// dictKey returns the key of m matching name (exact, then
// case-insensitive) and whether it exists.
func dictKey(m map[string]any, name string) (string, bool) {
	if _, ok := m[name]; ok {
		return name, true
	}
	for k := range m {
		if strings.EqualFold(k, name) {
			return k, true
		}
	}
	return name, false
}

// step resolves one path part on v; ok is false when the part is missing.
func step(v any, part string, path []string) (any, bool, error) {
	if isBracket(part) {
		inner := part[1 : len(part)-1]
		list, isList := v.([]any)
		if !isList {
			return nil, false, fmt.Errorf("index or filter %s used on '%s', which is not a list", part, strings.Join(path, "."))
		}
		if k, val, isFilter := strings.Cut(inner, "="); isFilter {
			for _, x := range list {
				if m, ok := x.(map[string]any); ok {
					if key, ok := dictKey(m, k); ok && cellText(m[key]) == val {
						return x, true, nil
					}
				}
			}
			return nil, false, fmt.Errorf("item with value '%s' doesn't exist for key '%s' on %s", val, k, strings.Join(path, "."))
		}
		i, err := strconv.Atoi(inner)
		if err != nil {
			return nil, false, fmt.Errorf("invalid index '%s' on %s", inner, strings.Join(path, "."))
		}
		if i < 0 {
			i += len(list)
		}
		if i < 0 || i >= len(list) {
			return nil, false, fmt.Errorf("index %s doesn't exist on %s", inner, strings.Join(path, "."))
		}
		return list[i], true, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, false, fmt.Errorf("couldn't find '%s' in '%s': it is not an object", part, strings.Join(path, "."))
	}
	k, ok := dictKey(m, part)
	if !ok {
		return nil, false, nil
	}
	return m[k], true, nil
}

// findParent walks all but the last part of parts, creating missing objects
// when create is set, and returns the container of the last part.
func findParent(obj any, parts []string, create bool) (any, error) {
	cur := obj
	for i, part := range parts[:len(parts)-1] {
		next, ok, err := step(cur, part, parts[:i])
		if err != nil {
			return nil, err
		}
		if !ok || next == nil {
			m, isMap := cur.(map[string]any)
			if !create || !isMap || isBracket(part) {
				return nil, fmt.Errorf("couldn't find '%s' in '%s'. Available options: %s", part, strings.Join(parts[:i], "."), options(cur))
			}
			k, _ := dictKey(m, part)
			nm := map[string]any{}
			m[k] = nm
			next = nm
		}
		cur = next
	}
	return cur, nil
}

func options(v any) string {
	m, ok := v.(map[string]any)
	if !ok {
		return "[]"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return "[" + strings.Join(keys, ", ") + "]"
}

func setProperty(obj any, expr string, forceString bool) error {
	key, val, ok := splitKeyValue(expr)
	if !ok || key == "" {
		return fmt.Errorf("invalid syntax: --set KEY=VALUE [KEY=VALUE ...], got '%s'", expr)
	}
	parts := splitPath(key)
	parent, err := findParent(obj, parts, true)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	value := parseValue(val, forceString)
	if isBracket(last) {
		list, ok := parent.([]any)
		i, err := strconv.Atoi(last[1 : len(last)-1])
		if !ok || err != nil {
			return fmt.Errorf("invalid index %s on '%s'", last, key)
		}
		if i < 0 {
			i += len(list)
		}
		if i < 0 || i >= len(list) {
			return fmt.Errorf("index %d doesn't exist on %s", i, strings.Join(parts[:len(parts)-1], "."))
		}
		list[i] = value
		return nil
	}
	m, ok := parent.(map[string]any)
	if !ok {
		return fmt.Errorf("couldn't find '%s' in '%s': it is not an object", last, strings.Join(parts[:len(parts)-1], "."))
	}
	k, _ := dictKey(m, last)
	m[k] = value
	return nil
}

// splitKeyValue splits at the first "=" outside [brackets], as az does.
func splitKeyValue(expr string) (string, string, bool) {
	depth := 0
	for i, r := range expr {
		switch {
		case r == '[':
			depth++
		case r == ']' && depth > 0:
			depth--
		case r == '=' && depth == 0:
			return expr[:i], expr[i+1:], true
		}
	}
	return expr, "", false
}

func addProperties(obj any, args []string, forceString bool) error {
	if len(args) < 2 {
		return fmt.Errorf("invalid syntax: --add LIST KEY=VALUE|VALUE [...]")
	}
	parts := splitPath(args[0])
	parent, err := findParent(obj, parts, true)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	var list []any
	var store func([]any)
	if isBracket(last) {
		cur, _, err := step(parent, last, parts[:len(parts)-1])
		if err != nil {
			return err
		}
		l, ok := cur.([]any)
		if !ok {
			return fmt.Errorf("'%s' is not a list", args[0])
		}
		list = l
		p := parent.([]any)
		i, _ := strconv.Atoi(last[1 : len(last)-1])
		if i < 0 {
			i += len(p)
		}
		store = func(l []any) { p[i] = l }
	} else {
		m, ok := parent.(map[string]any)
		if !ok {
			return fmt.Errorf("couldn't find '%s' in '%s'", last, args[0])
		}
		k, _ := dictKey(m, last)
		switch cur := m[k].(type) {
		case nil:
		case []any:
			list = cur
		default:
			return fmt.Errorf("'%s' is not a list", args[0])
		}
		store = func(l []any) { m[k] = l }
	}
	entry := map[string]any{}
	for _, a := range args[1:] {
		if k, v, ok := strings.Cut(a, "="); ok {
			entry[k] = parseValue(v, forceString)
			continue
		}
		if len(entry) > 0 {
			list = append(list, entry)
			entry = map[string]any{}
		}
		list = append(list, parseValue(a, forceString))
	}
	if len(entry) > 0 {
		list = append(list, entry)
	}
	if list == nil {
		list = []any{}
	}
	store(list)
	return nil
}

func removeProperty(obj any, args []string) error {
	if len(args) < 1 || len(args) > 2 {
		return fmt.Errorf("invalid syntax: --remove PROPERTY [INDEX]")
	}
	parts := splitPath(args[0])
	if len(args) == 2 {
		parent, err := findParent(obj, parts, false)
		if err != nil {
			return err
		}
		cur, ok, err := step(parent, parts[len(parts)-1], parts[:len(parts)-1])
		if err != nil {
			return err
		}
		list, isList := cur.([]any)
		if !ok || !isList {
			return fmt.Errorf("%s doesn't exist", parts[len(parts)-1])
		}
		i, err := strconv.Atoi(args[1])
		if err != nil {
			return fmt.Errorf("invalid index '%s'", args[1])
		}
		if i < 0 {
			i += len(list)
		}
		if i < 0 || i >= len(list) {
			return fmt.Errorf("index %s doesn't exist on %s", args[1], parts[len(parts)-1])
		}
		list = slices.Delete(list, i, i+1)
		return storeAt(parent, parts[len(parts)-1], list)
	}
	parent, err := findParent(obj, parts, false)
	if err != nil {
		return err
	}
	last := parts[len(parts)-1]
	if isBracket(last) {
		list, ok := parent.([]any)
		i, err := strconv.Atoi(last[1 : len(last)-1])
		if !ok || err != nil || i < 0 || i >= len(list) {
			return fmt.Errorf("index %s doesn't exist", last)
		}
		return fmt.Errorf("use --remove %s %d to remove a list element", strings.Join(parts[:len(parts)-1], "."), i)
	}
	m, ok := parent.(map[string]any)
	if !ok {
		return fmt.Errorf("couldn't find '%s' in '%s'", last, strings.Join(parts[:len(parts)-1], "."))
	}
	k, exists := dictKey(m, last)
	if !exists {
		return fmt.Errorf("couldn't find '%s' in '%s'. Available options: %s", last, strings.Join(parts[:len(parts)-1], "."), options(m))
	}
	delete(m, k)
	return nil
}

// storeAt writes list back under part of parent (lists are values in Go).
func storeAt(parent any, part string, list []any) error {
	if isBracket(part) {
		p, ok := parent.([]any)
		i, err := strconv.Atoi(part[1 : len(part)-1])
		if !ok || err != nil {
			return fmt.Errorf("invalid index %s", part)
		}
		if i < 0 {
			i += len(p)
		}
		p[i] = list
		return nil
	}
	m, ok := parent.(map[string]any)
	if !ok {
		return fmt.Errorf("couldn't find '%s'", part)
	}
	k, _ := dictKey(m, part)
	m[k] = list
	return nil
}
