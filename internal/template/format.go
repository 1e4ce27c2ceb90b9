package template

import (
	"strconv"
	"strings"
)

// fnFormat implements format(): .NET composite formatting with {index},
// {index,alignment} and {index:spec}; "{{" and "}}" are literal braces.
// Integer specs: D[n], X/x[n], N[n], F[n], and custom zero patterns such as
// "000". Other values ignore the spec.
func fnFormat(_ *evaluator, _ *site, a []any) (any, error) {
	f, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'format' expects a String format, got %s.", typeName(a[0]))
	}
	args := a[1:]
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		c := f[i]
		switch c {
		case '{':
			if i+1 < len(f) && f[i+1] == '{' {
				b.WriteByte('{')
				i++
				continue
			}
			end := strings.IndexByte(f[i:], '}')
			if end < 0 {
				return nil, errf("The template language function 'format' got an unclosed '{' in '%s'.", f)
			}
			item := f[i+1 : i+end]
			i += end
			s, err := formatItem(item, args)
			if err != nil {
				return nil, err
			}
			b.WriteString(s)
		case '}':
			if i+1 < len(f) && f[i+1] == '}' {
				b.WriteByte('}')
				i++
				continue
			}
			return nil, errf("The template language function 'format' got an unmatched '}' in '%s'.", f)
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), nil
}

func formatItem(item string, args []any) (string, error) {
	spec := ""
	if k := strings.IndexByte(item, ':'); k >= 0 {
		item, spec = item[:k], item[k+1:]
	}
	align := 0
	if k := strings.IndexByte(item, ','); k >= 0 {
		n, err := strconv.Atoi(strings.TrimSpace(item[k+1:]))
		if err != nil || n > 1000 || n < -1000 {
			return "", errf("The template language function 'format' got a bad alignment in '{%s}'.", item)
		}
		item, align = item[:k], n
	}
	idx, err := strconv.Atoi(strings.TrimSpace(item))
	if err != nil {
		return "", errf("The template language function 'format' got a bad format item '{%s}'.", item)
	}
	if idx < 0 || idx >= len(args) {
		return "", errf("The template language function 'format' failed: Index (zero based) must be greater than or equal to zero and less than the size of the argument list.")
	}
	s, err := formatValue(args[idx], spec)
	if err != nil {
		return "", err
	}
	if w := abs(align); len(s) < w {
		pad := strings.Repeat(" ", w-len(s))
		if align > 0 {
			s = pad + s
		} else {
			s += pad
		}
	}
	return s, nil
}

func abs(n int) int {
	if n < 0 {
		return -n
	}
	return n
}

func formatValue(v any, spec string) (string, error) {
	n, isInt := v.(int64)
	if !isInt || spec == "" {
		if f, isFloat := v.(float64); isFloat && spec != "" {
			return formatFloat(f, spec)
		}
		return toText(v), nil
	}
	letter := spec[0]
	prec := -1
	if len(spec) > 1 {
		p, err := strconv.Atoi(spec[1:])
		if err != nil || p > 100 {
			if isZeroPattern(spec) {
				return zeroPattern(n, spec), nil
			}
			return "", errf("The template language function 'format' does not support the format '%s'.", spec)
		}
		prec = p
	}
	switch letter {
	case 'D', 'd':
		s := strconv.FormatUint(magnitude(n), 10)
		if prec > len(s) {
			s = strings.Repeat("0", prec-len(s)) + s
		}
		if n < 0 {
			s = "-" + s
		}
		return s, nil
	case 'X', 'x':
		s := strconv.FormatUint(uint64(n), 16)
		if letter == 'X' {
			s = strings.ToUpper(s)
		}
		if prec > len(s) {
			s = strings.Repeat("0", prec-len(s)) + s
		}
		return s, nil
	case 'N', 'n', 'F', 'f':
		return formatFloat(float64(n), spec)
	}
	if isZeroPattern(spec) {
		return zeroPattern(n, spec), nil
	}
	return "", errf("The template language function 'format' does not support the format '%s'.", spec)
}

func formatFloat(f float64, spec string) (string, error) {
	prec := 2
	if len(spec) > 1 {
		p, err := strconv.Atoi(spec[1:])
		if err != nil || p > 100 {
			return "", errf("The template language function 'format' does not support the format '%s'.", spec)
		}
		prec = p
	}
	switch spec[0] {
	case 'F', 'f':
		return strconv.FormatFloat(f, 'f', prec, 64), nil
	case 'N', 'n':
		s := strconv.FormatFloat(f, 'f', prec, 64)
		neg := strings.HasPrefix(s, "-")
		s = strings.TrimPrefix(s, "-")
		intPart, frac, _ := strings.Cut(s, ".")
		var b strings.Builder
		for i, c := range intPart {
			if i > 0 && (len(intPart)-i)%3 == 0 {
				b.WriteByte(',')
			}
			b.WriteRune(c)
		}
		out := b.String()
		if frac != "" {
			out += "." + frac
		}
		if neg {
			out = "-" + out
		}
		return out, nil
	}
	return toText(f), nil
}

func isZeroPattern(spec string) bool {
	if spec == "" {
		return false
	}
	for _, c := range spec {
		if c != '0' && c != '#' {
			return false
		}
	}
	return true
}

func zeroPattern(n int64, spec string) string {
	zeros := strings.Count(spec, "0")
	s := strconv.FormatUint(magnitude(n), 10)
	if zeros > len(s) {
		s = strings.Repeat("0", zeros-len(s)) + s
	}
	if n < 0 {
		s = "-" + s
	}
	return s
}
