package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	jmespath "github.com/jmespath-community/go-jmespath"
	"github.com/jmespath-community/go-jmespath/pkg/parsing"
)

// Output formats (az's --output values nimbus supports).
const (
	FormatJSON  = "json"
	FormatJSONC = "jsonc"
	FormatTable = "table"
	FormatTSV   = "tsv"
	FormatNone  = "none"
)

// Formats lists the accepted --output values.
var Formats = []string{FormatJSON, FormatJSONC, FormatNone, FormatTable, FormatTSV}

// Cell is one named value of a table row.
type Cell struct {
	Name  string
	Value any
}

// Row is one table row, its cells in column order.
type Row []Cell

// TableFunc turns a command's result into table rows, as az's per-command
// table transformers do. It is used only for -o table without --query.
type TableFunc func(v any) []Row

// Printer writes command results as az does: --query (JMESPath) first, then
// the chosen format. The zero Format is json.
type Printer struct {
	Out    io.Writer
	Format string
	Query  string
}

// Validate checks Format and compiles Query, returning a *UsageError.
func (p *Printer) Validate() error {
	if p.Format != "" && !slices.Contains(Formats, p.Format) {
		return usagef("argument --output/-o: invalid choice: '%s' (choose from %s)", p.Format, quoteList(Formats))
	}
	if p.Query != "" {
		if _, err := jmespath.Compile(p.Query); err != nil {
			return usagef("argument --query: invalid jmespath_type value: '%s'", p.Query)
		}
	}
	return nil
}

func quoteList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "'" + x + "'"
	}
	return strings.Join(q, ", ")
}

// Print writes v (a JSON-shaped value: maps, slices, strings, float64,
// bools, nil; or anything json.Marshal accepts) in the printer's format.
// Like az, it adds "resourceGroup" next to every "id" naming one, and
// prints nothing for a nil result.
func (p *Printer) Print(v any, table TableFunc) error {
	v, err := normalize(v)
	if err != nil {
		return err
	}
	addResourceGroup(v)
	var order []string
	if p.Query != "" {
		if v, err = jmespath.Search(p.Query, v); err != nil {
			return fmt.Errorf("query %q: %w", p.Query, err)
		}
		order = queryKeyOrder(p.Query)
	}
	if v == nil {
		return nil
	}
	switch p.Format {
	case "", FormatJSON:
		b, err := marshalJSON(v)
		if err != nil {
			return err
		}
		_, err = p.Out.Write(b)
		return err
	case FormatJSONC:
		var b bytes.Buffer
		writeJSONC(&b, v, 0)
		b.WriteByte('\n')
		_, err := p.Out.Write(b.Bytes())
		return err
	case FormatTable:
		var rows []Row
		if table != nil && p.Query == "" {
			rows = table(v)
		} else {
			rows = autoRows(v, order)
		}
		_, err := io.WriteString(p.Out, renderTable(rows))
		return err
	case FormatTSV:
		_, err := io.WriteString(p.Out, renderTSV(v, order))
		return err
	case FormatNone:
		return nil
	}
	return usagef("argument --output/-o: invalid choice: '%s'", p.Format)
}

// normalize converts v to plain JSON values (map[string]any, []any, ...).
func normalize(v any) (any, error) {
	switch v.(type) {
	case nil, map[string]any, []any, string, float64, bool:
		return v, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("encode result: %w", err)
	}
	return out, nil
}

// marshalJSON renders v as az's json output: two-space indent, keys
// sorted, non-ASCII and <>& unescaped, trailing newline.
func marshalJSON(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("encode output: %w", err)
	}
	return b.Bytes(), nil
}

// addResourceGroup adds "resourceGroup" (parsed from "id") to every object
// that has an id naming a resource group and no resourceGroup key, at any
// depth, as az does before --query.
func addResourceGroup(v any) {
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			addResourceGroup(x)
		}
	case map[string]any:
		has := false
		for k := range t {
			if strings.EqualFold(k, "resourceGroup") {
				has = true
			}
		}
		if id, ok := t["id"].(string); ok && !has {
			if rg := idResourceGroup(id); rg != "" {
				t["resourceGroup"] = rg
			}
		}
		for k, x := range t {
			if k != "sourceVault" {
				addResourceGroup(x)
			}
		}
	}
}

// idResourceGroup returns the resource group named in an ARM resource id,
// or "". Like az's _parse_id it wants /subscriptions/{s}/resourceGroups/{rg}/
// followed by at least a provider and type (so a group's own id has none).
func idResourceGroup(id string) string {
	parts := strings.Split(id, "/")
	if len(parts) < 8 || parts[3] != "resourceGroups" {
		return ""
	}
	return parts[4]
}

// queryKeyOrder returns the keys of the multi-select hash that produces a
// query's result objects, in the order written ("[].{Name:name, Port:port}"
// → Name, Port), or nil. az keeps that order in table and tsv output.
func queryKeyOrder(q string) []string {
	ast, err := parsing.NewParser().Parse(q)
	if err != nil {
		return nil
	}
	n := ast
	for depth := 0; depth < 64; depth++ {
		switch n.NodeType {
		case parsing.ASTMultiSelectHash:
			var keys []string
			for _, kv := range n.Children {
				if s, ok := kv.Value.(string); ok {
					keys = append(keys, s)
				}
			}
			return keys
		case parsing.ASTFilterProjection: // left, right, condition
			if len(n.Children) < 2 {
				return nil
			}
			n = n.Children[1]
		case parsing.ASTProjection, parsing.ASTValueProjection,
			parsing.ASTSubexpression, parsing.ASTPipe, parsing.ASTIndexExpression:
			if len(n.Children) == 0 {
				return nil
			}
			n = n.Children[len(n.Children)-1]
		default:
			return nil
		}
	}
	return nil
}

// tableSkipKeys are the keys az's automatic table leaves out.
var tableSkipKeys = []string{"id", "type", "etag"}

// autoRows is az's automatic table: one row per element (an object is one
// row), columns are the scalar fields minus id/type/etag with the first
// letter capitalised; keys sorted unless a query gave their order. A
// non-object element becomes a "Result" column.
func autoRows(v any, order []string) []Row {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	rows := make([]Row, 0, len(items))
	for _, it := range items {
		m, ok := it.(map[string]any)
		if !ok {
			rows = append(rows, Row{{Name: "Result", Value: it}})
			continue
		}
		var r Row
		for _, k := range orderedKeys(m, order) {
			x := m[k]
			if slices.Contains(tableSkipKeys, k) || x == nil {
				continue
			}
			switch x.(type) {
			case map[string]any, []any:
				continue
			}
			r = append(r, Cell{Name: capitalize(k), Value: x})
		}
		rows = append(rows, r)
	}
	return rows
}

// orderedKeys returns m's keys: those of order first (when a query gave
// them), then the rest sorted.
func orderedKeys(m map[string]any, order []string) []string {
	var keys []string
	for _, k := range order {
		if _, ok := m[k]; ok && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var rest []string
	for k := range m {
		if !slices.Contains(keys, k) {
			rest = append(rest, k)
		}
	}
	slices.Sort(rest)
	return append(keys, rest...)
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	r, n := utf8.DecodeRuneInString(s)
	return strings.ToUpper(string(r)) + s[n:]
}

// cellText renders a scalar as az's table and tsv do (Python's str()).
func cellText(v any) string {
	switch t := v.(type) {
	case nil:
		return ""
	case string:
		return t
	case bool:
		if t {
			return "True"
		}
		return "False"
	case float64:
		return strconv.FormatFloat(t, 'f', -1, 64)
	case int:
		return strconv.Itoa(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case []any, map[string]any:
		b, _ := json.Marshal(t)
		return string(b)
	}
	return fmt.Sprint(v)
}

func isNumber(v any) bool {
	switch v.(type) {
	case float64, int, int64:
		return true
	}
	return false
}

// renderTable renders rows in tabulate's "simple" format, as az does: a
// header line, a line of dashes per column, then the rows; columns two
// spaces apart, numbers right-aligned.
func renderTable(rows []Row) string {
	var cols []string
	for _, r := range rows {
		for _, c := range r {
			if !slices.Contains(cols, c.Name) {
				cols = append(cols, c.Name)
			}
		}
	}
	if len(cols) == 0 {
		return ""
	}
	width := make([]int, len(cols))
	numeric := make([]bool, len(cols))
	for i, c := range cols {
		width[i] = utf8.RuneCountInString(c)
		numeric[i] = true
	}
	cells := make([][]string, len(rows))
	for ri, r := range rows {
		cells[ri] = make([]string, len(cols))
		for _, c := range r {
			i := slices.Index(cols, c.Name)
			s := cellText(c.Value)
			cells[ri][i] = s
			width[i] = max(width[i], utf8.RuneCountInString(s))
			if c.Value != nil && !isNumber(c.Value) {
				numeric[i] = false
			}
		}
	}
	pad := func(s string, i int) string {
		n := width[i] - utf8.RuneCountInString(s)
		if numeric[i] {
			return strings.Repeat(" ", n) + s
		}
		return s + strings.Repeat(" ", n)
	}
	var b strings.Builder
	line := func(vals []string) {
		parts := make([]string, len(vals))
		for i, s := range vals {
			parts[i] = pad(s, i)
		}
		b.WriteString(strings.TrimRight(strings.Join(parts, "  "), " "))
		b.WriteByte('\n')
	}
	line(cols)
	dashes := make([]string, len(cols))
	for i := range cols {
		dashes[i] = strings.Repeat("-", width[i])
	}
	line(dashes)
	for _, r := range cells {
		line(r)
	}
	return b.String()
}

// renderTSV renders v as az's tsv: one line per element (an object or a
// scalar is one element); an object's values tab-separated in key order
// (the query's order, else sorted), a nested list as its length and a
// nested object as an empty field.
func renderTSV(v any, order []string) string {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var b strings.Builder
	obj := func(x any) {
		switch t := x.(type) {
		case []any:
			b.WriteString(strconv.Itoa(len(t)))
		case map[string]any:
		default:
			b.WriteString(cellText(t))
		}
	}
	for _, it := range items {
		switch t := it.(type) {
		case map[string]any:
			for i, k := range orderedKeys(t, order) {
				if i > 0 {
					b.WriteByte('\t')
				}
				obj(t[k])
			}
		case []any:
			for i, x := range t {
				if i > 0 {
					b.WriteByte('\t')
				}
				obj(x)
			}
		default:
			obj(t)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// ANSI colours of jsonc output.
const (
	colorKey    = "\x1b[94m"
	colorString = "\x1b[32m"
	colorNumber = "\x1b[36m"
	colorLit    = "\x1b[95m"
	colorReset  = "\x1b[0m"
)

// writeJSONC writes v as indented JSON with ANSI colours (az's jsonc).
func writeJSONC(b *bytes.Buffer, v any, indent int) {
	ind := func(n int) { b.WriteString(strings.Repeat("  ", n)) }
	str := func(s string) string {
		var sb bytes.Buffer
		enc := json.NewEncoder(&sb)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		return strings.TrimSuffix(sb.String(), "\n")
	}
	switch t := v.(type) {
	case map[string]any:
		if len(t) == 0 {
			b.WriteString("{}")
			return
		}
		keys := orderedKeys(t, nil)
		b.WriteString("{\n")
		for i, k := range keys {
			ind(indent + 1)
			b.WriteString(colorKey + str(k) + colorReset + ": ")
			writeJSONC(b, t[k], indent+1)
			if i < len(keys)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		ind(indent)
		b.WriteByte('}')
	case []any:
		if len(t) == 0 {
			b.WriteString("[]")
			return
		}
		b.WriteString("[\n")
		for i, x := range t {
			ind(indent + 1)
			writeJSONC(b, x, indent+1)
			if i < len(t)-1 {
				b.WriteByte(',')
			}
			b.WriteByte('\n')
		}
		ind(indent)
		b.WriteByte(']')
	case string:
		b.WriteString(colorString + str(t) + colorReset)
	case float64:
		b.WriteString(colorNumber + cellText(t) + colorReset)
	case bool, nil:
		s, _ := json.Marshal(t)
		b.WriteString(colorLit + string(s) + colorReset)
	default:
		s, _ := json.Marshal(t)
		b.Write(s)
	}
}
