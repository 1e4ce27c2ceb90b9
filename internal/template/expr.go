package template

import (
	"fmt"
	"strconv"
	"strings"
)

// An expression is the text between the brackets of a template string
// "[...]". Grammar:
//
//	expr    = primary { "." ident | "[" expr "]" }
//	primary = string | number | "true" | "false" | "null" | call | "(" expr ")"
//	call    = ident [ "." ident ] "(" [ expr { "," expr } ] ")"
//	string  = "'" { any character, "''" for a quote } "'"
//	number  = [ "-" ] digits [ "." digits ]
//
// Function names are case-insensitive.

// node is a parsed expression.
type node interface {
	String() string
}

type litNode struct{ v any }

type callNode struct {
	name string // as written
	args []node
}

type memberNode struct {
	x    node
	name string
}

type indexNode struct {
	x, i node
}

func (n *litNode) String() string {
	switch v := n.v.(type) {
	case string:
		return "'" + strings.ReplaceAll(v, "'", "''") + "'"
	case nil:
		return "null"
	case bool:
		return strconv.FormatBool(v)
	case float64:
		f := strconv.FormatFloat(v, 'f', -1, 64)
		if !strings.Contains(f, ".") {
			f += ".0"
		}
		return f
	}
	return toText(n.v)
}

func (n *callNode) String() string {
	parts := make([]string, len(n.args))
	for i, a := range n.args {
		parts[i] = a.String()
	}
	return n.name + "(" + strings.Join(parts, ", ") + ")"
}

func (n *memberNode) String() string { return n.x.String() + "." + n.name }
func (n *indexNode) String() string  { return n.x.String() + "[" + n.i.String() + "]" }

// SyntaxError is a malformed expression: Offset is the byte offset in Expr
// where parsing failed.
type SyntaxError struct {
	Expr   string
	Offset int
	Msg    string
}

// Error names the expression and where parsing stopped.
func (e *SyntaxError) Error() string {
	return fmt.Sprintf("The language expression '%s' is not valid: %s at position %d", e.Expr, e.Msg, e.Offset)
}

// isExpression reports whether a template string is an expression and
// returns the expression's text, or the literal the string stands for
// ("[[" at the start escapes a literal "[").
func isExpression(s string) (expr string, literal string, ok bool) {
	if len(s) >= 2 && s[0] == '[' && s[len(s)-1] == ']' {
		if s[1] == '[' {
			return "", s[1:], false
		}
		return s[1 : len(s)-1], "", true
	}
	return "", s, false
}

// parseExpression parses the text between the brackets of a template string.
func parseExpression(src string) (node, error) {
	p := &parser{src: src}
	p.skipSpace()
	if p.pos >= len(p.src) {
		return nil, p.errf("empty expression")
	}
	n, err := p.expr(0)
	if err != nil {
		return nil, err
	}
	p.skipSpace()
	if p.pos < len(p.src) {
		return nil, p.errf("unexpected %q", p.src[p.pos:p.pos+1])
	}
	return n, nil
}

type parser struct {
	src string
	pos int
}

// maxDepth bounds nesting so hostile input cannot exhaust the stack.
const maxDepth = 200

func (p *parser) errf(format string, args ...any) error {
	return &SyntaxError{Expr: p.src, Offset: p.pos, Msg: fmt.Sprintf(format, args...)}
}

func (p *parser) skipSpace() {
	for p.pos < len(p.src) && (p.src[p.pos] == ' ' || p.src[p.pos] == '\t' || p.src[p.pos] == '\n' || p.src[p.pos] == '\r') {
		p.pos++
	}
}

func (p *parser) peek() byte {
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func isIdentStart(c byte) bool {
	return c == '_' || c == '$' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

func isIdentChar(c byte) bool {
	return isIdentStart(c) || (c >= '0' && c <= '9')
}

func (p *parser) ident() string {
	start := p.pos
	for p.pos < len(p.src) && isIdentChar(p.src[p.pos]) {
		p.pos++
	}
	return p.src[start:p.pos]
}

func (p *parser) expr(depth int) (node, error) {
	if depth > maxDepth {
		return nil, p.errf("expression nested too deeply")
	}
	n, err := p.primary(depth)
	if err != nil {
		return nil, err
	}
	for {
		p.skipSpace()
		switch p.peek() {
		case '.':
			p.pos++
			p.skipSpace()
			if !isIdentStart(p.peek()) {
				return nil, p.errf("expected a property name after '.'")
			}
			n = &memberNode{x: n, name: p.ident()}
		case '[':
			p.pos++
			p.skipSpace()
			i, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			p.skipSpace()
			if p.peek() != ']' {
				return nil, p.errf("expected ']'")
			}
			p.pos++
			n = &indexNode{x: n, i: i}
		default:
			return n, nil
		}
	}
}

func (p *parser) primary(depth int) (node, error) {
	p.skipSpace()
	c := p.peek()
	switch {
	case c == 0:
		return nil, p.errf("unexpected end of expression")
	case c == '\'':
		return p.str()
	case c == '-' || (c >= '0' && c <= '9'):
		return p.number()
	case c == '(':
		p.pos++
		n, err := p.expr(depth + 1)
		if err != nil {
			return nil, err
		}
		p.skipSpace()
		if p.peek() != ')' {
			return nil, p.errf("expected ')'")
		}
		p.pos++
		return n, nil
	case isIdentStart(c):
		start := p.pos
		name := p.ident()
		p.skipSpace()
		if p.peek() == '.' {
			// A user-defined function: namespace.name(...).
			save := p.pos
			p.pos++
			p.skipSpace()
			if isIdentStart(p.peek()) {
				member := p.ident()
				p.skipSpace()
				if p.peek() == '(' {
					name = name + "." + member
				} else {
					p.pos = save
				}
			} else {
				p.pos = save
			}
		}
		if p.peek() != '(' {
			switch strings.ToLower(name) {
			case "true":
				return &litNode{v: true}, nil
			case "false":
				return &litNode{v: false}, nil
			case "null":
				return &litNode{v: nil}, nil
			}
			p.pos = start
			return nil, p.errf("expected '(' after %q", name)
		}
		p.pos++
		call := &callNode{name: name}
		p.skipSpace()
		if p.peek() == ')' {
			p.pos++
			return call, nil
		}
		for {
			a, err := p.expr(depth + 1)
			if err != nil {
				return nil, err
			}
			call.args = append(call.args, a)
			p.skipSpace()
			switch p.peek() {
			case ',':
				p.pos++
			case ')':
				p.pos++
				return call, nil
			default:
				return nil, p.errf("expected ',' or ')' in the arguments of %q", name)
			}
		}
	}
	return nil, p.errf("unexpected %q", string(c))
}

func (p *parser) str() (node, error) {
	p.pos++ // opening quote
	var b strings.Builder
	for {
		if p.pos >= len(p.src) {
			return nil, p.errf("unterminated string literal")
		}
		c := p.src[p.pos]
		p.pos++
		if c == '\'' {
			if p.peek() == '\'' {
				b.WriteByte('\'')
				p.pos++
				continue
			}
			return &litNode{v: b.String()}, nil
		}
		b.WriteByte(c)
	}
}

func (p *parser) number() (node, error) {
	start := p.pos
	if p.peek() == '-' {
		p.pos++
	}
	digits := p.pos
	for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
		p.pos++
	}
	if p.pos == digits {
		return nil, p.errf("expected a digit")
	}
	isFloat := false
	if p.peek() == '.' && p.pos+1 < len(p.src) && p.src[p.pos+1] >= '0' && p.src[p.pos+1] <= '9' {
		isFloat = true
		p.pos++
		for p.pos < len(p.src) && p.src[p.pos] >= '0' && p.src[p.pos] <= '9' {
			p.pos++
		}
	}
	text := p.src[start:p.pos]
	if isFloat {
		f, err := strconv.ParseFloat(text, 64)
		if err != nil {
			return nil, p.errf("bad number %q", text)
		}
		return &litNode{v: f}, nil
	}
	i, err := strconv.ParseInt(text, 10, 64)
	if err != nil {
		return nil, p.errf("integer %q out of range", text)
	}
	return &litNode{v: i}, nil
}

// walkCalls calls fn for every function call in n.
func walkCalls(n node, fn func(*callNode)) {
	switch x := n.(type) {
	case *callNode:
		fn(x)
		for _, a := range x.args {
			walkCalls(a, fn)
		}
	case *memberNode:
		walkCalls(x.x, fn)
	case *indexNode:
		walkCalls(x.x, fn)
		walkCalls(x.i, fn)
	}
}
