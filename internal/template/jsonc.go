package template

import (
	"bytes"
	"errors"
	"fmt"
)

// StandardJSON rewrites the relaxed JSON that ARM accepts (Newtonsoft's
// reader) as standard JSON: // and /* */ comments are removed, trailing
// commas dropped, single-quoted strings and unquoted property names
// (identifiers) quoted. az 2.45 relies on this: `az deployment group
// create --template-file` sends the file's text as `template:{...}`, with
// an unquoted key, comments and all. Standard JSON passes through
// unchanged. The result is not checked further; decode it as usual.
func StandardJSON(b []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(b))
	// expectKey is true right after '{' or ',' inside an object.
	var stack []byte
	expectKey := false
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c == '"' || c == '\'':
			end, err := copyString(&out, b, i)
			if err != nil {
				return nil, err
			}
			i = end
			expectKey = false
		case c == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
			if i < len(b) {
				out.WriteByte('\n')
			}
		case c == '/' && i+1 < len(b) && b[i+1] == '*':
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				return nil, errors.New("unterminated /* comment")
			}
			i += end + 3
			out.WriteByte(' ')
		case c == ',':
			if next := skipSpaceComments(b, i+1); next < len(b) && (b[next] == '}' || b[next] == ']') {
				continue // trailing comma
			}
			out.WriteByte(c)
			expectKey = len(stack) > 0 && stack[len(stack)-1] == '{'
		case c == '{' || c == '[':
			stack = append(stack, c)
			out.WriteByte(c)
			expectKey = c == '{'
		case c == '}' || c == ']':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
			out.WriteByte(c)
			expectKey = false
		case expectKey && isIdentStart(c):
			start := i
			for i+1 < len(b) && isIdentChar(b[i+1]) {
				i++
			}
			out.WriteByte('"')
			out.Write(b[start : i+1])
			out.WriteByte('"')
			expectKey = false
		default:
			out.WriteByte(c)
			if c != ' ' && c != '\t' && c != '\n' && c != '\r' {
				expectKey = false
			}
		}
	}
	return out.Bytes(), nil
}

// copyString copies the string literal starting at b[i] (quoted with b[i])
// to out as a double-quoted JSON string and returns the index of its
// closing quote.
func copyString(out *bytes.Buffer, b []byte, i int) (int, error) {
	q := b[i]
	out.WriteByte('"')
	for j := i + 1; j < len(b); j++ {
		c := b[j]
		switch {
		case c == '\\' && j+1 < len(b):
			if q == '\'' && b[j+1] == '\'' {
				out.WriteByte('\'')
			} else {
				out.WriteByte(c)
				out.WriteByte(b[j+1])
			}
			j++
		case c == q:
			out.WriteByte('"')
			return j, nil
		case c == '"': // only inside a single-quoted string
			out.WriteString(`\"`)
		default:
			out.WriteByte(c)
		}
	}
	return 0, fmt.Errorf("unterminated string starting at offset %d", i)
}

// skipSpaceComments returns the index of the next byte at or after i that
// is neither white space nor inside a comment.
func skipSpaceComments(b []byte, i int) int {
	for i < len(b) {
		switch {
		case b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r':
			i++
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '/':
			for i < len(b) && b[i] != '\n' {
				i++
			}
		case b[i] == '/' && i+1 < len(b) && b[i+1] == '*':
			end := bytes.Index(b[i+2:], []byte("*/"))
			if end < 0 {
				return len(b)
			}
			i += end + 4
		default:
			return i
		}
	}
	return i
}
