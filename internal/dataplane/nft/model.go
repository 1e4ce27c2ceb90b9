package nft

import (
	"fmt"
	"sort"
	"strings"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
)

// ruleset is the whole desired table as a plain value: the structure (chains,
// rules, set declarations, ct timeout objects) and the contents of every set.
// Both the netlink batch and the golden text form are rendered from it, so
// the text is a faithful picture of what the kernel gets.
type ruleset struct {
	table  string
	objs   []timeoutObj
	sets   []*setSpec
	chains []*chainSpec
	// counters are the named counter objects (network security rules), by
	// name, with what each counts.
	counters map[string]securityCounter
}

// timeoutObj is a ct timeout object for TCP flows: established flows expire
// after idle seconds without a packet.
type timeoutObj struct {
	name string
	idle uint32
}

// setSpec is one named set or map. Elements are keyed by their raw key
// bytes so two renders can be diffed element by element.
type setSpec struct {
	name     string
	comment  string
	keyText  string // nft type text, e.g. "ipv4_addr . inet_proto . inet_service"
	dataText string // "" for a plain set
	key      nftables.SetDatatype
	data     nftables.SetDatatype
	isMap    bool
	native   bool // key in host byte order (jhash output)
	dynamic  bool // filled by the packet path (update with timeout), never by apply
	// interval: elements are ranges (an element at the start, an end
	// element after the last value); an update replaces every element.
	interval bool
	elems    map[string]element
	// dense holds a slot map's elements by slot index instead of elems
	// (65,537 of them are diffed on every health change).
	dense []element
}

// each calls fn for every element.
func (s *setSpec) each(fn func(e element)) {
	for _, e := range s.elems {
		fn(e)
	}
	for _, e := range s.dense {
		fn(e)
	}
}

// count is the number of elements.
func (s *setSpec) count() int { return len(s.elems) + len(s.dense) }

// element is one set element: raw key and value plus its text form.
type element struct {
	key, val    []byte
	verdict     *expr.Verdict
	text        string
	intervalEnd bool // the end of an interval (interval sets; no text)
}

// chainSpec is one chain; base chains have a hook.
type chainSpec struct {
	name     string
	comment  string
	hook     *nftables.ChainHook
	hookText string
	prio     *nftables.ChainPriority
	prioText string
	typ      nftables.ChainType
	rules    []ruleSpec
}

// ruleSpec is one rule: its nft text and a builder for its expressions (the
// builder needs the batch's set handles for lookups).
type ruleSpec struct {
	text  string
	exprs func(sets setRefs) []expr.Any
}

// setRefs resolves a set name to the handle created in the current batch.
type setRefs func(name string) *nftables.Set

func (rs *ruleset) set(name string) *setSpec {
	for _, s := range rs.sets {
		if s.name == name {
			return s
		}
	}
	panic("nft: unknown set " + name)
}

func (s *setSpec) add(e element) {
	k := string(e.key)
	if _, dup := s.elems[k]; dup {
		return // first writer wins; callers add in a deterministic order
	}
	s.elems[k] = e
}

// addEnd adds an interval's end element (keyed apart from starts).
func (s *setSpec) addEnd(e element) {
	s.elems["end:"+string(e.key)] = e
}

// structure renders everything except set contents: equal structures mean
// a change can be applied as element updates only.
func (rs *ruleset) structure() string { return rs.render(false) }

// Text renders the ruleset in nft syntax with elements sorted, the stable
// form used by golden tests and the README.
func (rs *ruleset) text() string { return rs.render(true) }

func (rs *ruleset) render(withElems bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "table ip %s {\n", rs.table)
	for _, o := range rs.objs {
		fmt.Fprintf(&b, "\tct timeout %s {\n\t\tprotocol tcp; l3proto ip;\n\t\tpolicy = { established: %d }\n\t}\n\n", o.name, o.idle)
	}
	counters := make([]string, 0, len(rs.counters))
	for n := range rs.counters {
		counters = append(counters, n)
	}
	sort.Strings(counters)
	for _, n := range counters {
		fmt.Fprintf(&b, "\tcounter %s { } # %s\n", n, rs.counters[n].RuleID)
	}
	if len(counters) > 0 {
		b.WriteString("\n")
	}
	for _, s := range rs.sets {
		kind := "set"
		typ := s.keyText
		if s.isMap {
			kind = "map"
			typ += " : " + s.dataText
		}
		if s.comment != "" {
			fmt.Fprintf(&b, "\t# %s\n", s.comment)
		}
		fmt.Fprintf(&b, "\t%s %s {\n\t\ttype %s\n", kind, s.name, typ)
		if s.interval {
			b.WriteString("\t\tflags interval\n")
		}
		if withElems && s.count() > 0 {
			texts := make([]string, 0, s.count())
			s.each(func(e element) {
				if !e.intervalEnd {
					texts = append(texts, e.text)
				}
			})
			sortNatural(texts)
			fmt.Fprintf(&b, "\t\telements = {\n")
			for _, t := range texts {
				fmt.Fprintf(&b, "\t\t\t%s,\n", t)
			}
			fmt.Fprintf(&b, "\t\t}\n")
		}
		fmt.Fprintf(&b, "\t}\n\n")
	}
	for i, c := range rs.chains {
		if c.comment != "" {
			fmt.Fprintf(&b, "\t# %s\n", c.comment)
		}
		fmt.Fprintf(&b, "\tchain %s {\n", c.name)
		if c.hook != nil {
			fmt.Fprintf(&b, "\t\ttype %s hook %s priority %s; policy accept;\n", c.typ, c.hookText, c.prioText)
		}
		for _, r := range c.rules {
			fmt.Fprintf(&b, "\t\t%s\n", r.text)
		}
		fmt.Fprintf(&b, "\t}\n")
		if i < len(rs.chains)-1 {
			b.WriteString("\n")
		}
	}
	b.WriteString("}\n")
	return b.String()
}

// sortNatural sorts element texts so that numbers compare by value
// (slot 2 before slot 10), which keeps golden files readable.
func sortNatural(s []string) {
	sort.Slice(s, func(i, j int) bool { return naturalLess(s[i], s[j]) })
}

func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		da, db := digitPrefix(a), digitPrefix(b)
		if da != "" && db != "" {
			if len(da) != len(db) {
				return len(da) < len(db)
			}
			if da != db {
				return da < db
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func digitPrefix(s string) string {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i]
}
