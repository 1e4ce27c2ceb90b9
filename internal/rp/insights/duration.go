package insights

import (
	"errors"
	"strconv"
	"strings"
	"time"
)

// ParseDuration parses an ISO 8601 duration as Azure Monitor writes them:
// P[nW][nD][T[nH][nM][n[.f]S]] (PT1M, PT5M, PT1H, P1D, P7D, PT0.5S). Years
// and months are refused (they have no fixed length).
func ParseDuration(s string) (time.Duration, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	rest, ok := strings.CutPrefix(u, "P")
	if !ok || rest == "" {
		return 0, errors.New("duration: want ISO 8601 such as PT5M")
	}
	var d time.Duration
	inTime, any := false, false
	for rest != "" {
		if rest[0] == 'T' {
			if inTime {
				return 0, errors.New("duration: two T separators")
			}
			inTime, rest = true, rest[1:]
			continue
		}
		i := strings.IndexFunc(rest, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
		if i <= 0 {
			return 0, errors.New("duration: want a number before each unit")
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil || n < 0 {
			return 0, errors.New("duration: bad number")
		}
		var unit time.Duration
		switch c := rest[i]; {
		case !inTime && c == 'W':
			unit = 7 * 24 * time.Hour
		case !inTime && c == 'D':
			unit = 24 * time.Hour
		case inTime && c == 'H':
			unit = time.Hour
		case inTime && c == 'M':
			unit = time.Minute
		case inTime && c == 'S':
			unit = time.Second
		default:
			return 0, errors.New("duration: unsupported unit " + string(c))
		}
		if n > float64(200*365*24*time.Hour)/float64(unit) {
			return 0, errors.New("duration: too long")
		}
		d += time.Duration(n * float64(unit))
		rest, any = rest[i+1:], true
	}
	if !any {
		return 0, errors.New("duration: no value")
	}
	return d, nil
}

// FormatDuration writes d as ISO 8601 (PT1M, PT1H, P1D, PT30S).
func FormatDuration(d time.Duration) string {
	if d <= 0 {
		return "PT0S"
	}
	var b strings.Builder
	b.WriteString("P")
	if days := d / (24 * time.Hour); days > 0 {
		b.WriteString(strconv.FormatInt(int64(days), 10) + "D")
		d -= days * 24 * time.Hour
	}
	if d > 0 {
		b.WriteString("T")
		if h := d / time.Hour; h > 0 {
			b.WriteString(strconv.FormatInt(int64(h), 10) + "H")
			d -= h * time.Hour
		}
		if m := d / time.Minute; m > 0 {
			b.WriteString(strconv.FormatInt(int64(m), 10) + "M")
			d -= m * time.Minute
		}
		if d > 0 {
			b.WriteString(strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "S")
		}
	}
	return b.String()
}
