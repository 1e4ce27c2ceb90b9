package template

import (
	"math"
	"strconv"
)

// Integers in templates are 64-bit, as in ARM. Arithmetic that would leave
// that range is refused (an InvalidTemplate error naming the expression)
// instead of wrapping around.

// errOverflow is the error of an integer function whose result is outside
// the Integer range; op describes the computation ("9223372036854775807 + 1").
func errOverflow(fn, op string) error {
	return errf("The template language function '%s' overflows: %s is outside the Integer range %d to %d.", fn, op, int64(math.MinInt64), int64(math.MaxInt64))
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// addInt returns a + b, or an overflow error of function fn.
func addInt(fn string, a, b int64) (int64, error) {
	if (b > 0 && a > math.MaxInt64-b) || (b < 0 && a < math.MinInt64-b) {
		return 0, errOverflow(fn, itoa(a)+" + "+itoa(b))
	}
	return a + b, nil
}

// subInt returns a - b, or an overflow error of function fn.
func subInt(fn string, a, b int64) (int64, error) {
	if (b < 0 && a > math.MaxInt64+b) || (b > 0 && a < math.MinInt64+b) {
		return 0, errOverflow(fn, itoa(a)+" - "+itoa(b))
	}
	return a - b, nil
}

// mulInt returns a * b, or an overflow error of function fn.
func mulInt(fn string, a, b int64) (int64, error) {
	if a == 0 || b == 0 {
		return 0, nil
	}
	c := a * b
	if (a == -1 && b == math.MinInt64) || (b == -1 && a == math.MinInt64) || c/b != a {
		return 0, errOverflow(fn, itoa(a)+" * "+itoa(b))
	}
	return c, nil
}

// divInt returns a / b (truncated), refusing division by zero and the one
// overflowing quotient, MinInt64 / -1.
func divInt(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errf("The template language function 'div' cannot divide by zero.")
	}
	if a == math.MinInt64 && b == -1 {
		return 0, errOverflow("div", itoa(a)+" / "+itoa(b))
	}
	return a / b, nil
}

// modInt returns a % b (the sign of a), refusing division by zero.
// MinInt64 % -1 is 0, which Go computes without overflow.
func modInt(a, b int64) (int64, error) {
	if b == 0 {
		return 0, errf("The template language function 'mod' cannot divide by zero.")
	}
	return a % b, nil
}

// floatToInt converts f, truncated toward zero, to an Integer; ok is false
// for NaN, infinities and values outside the Integer range.
func floatToInt(f float64) (n int64, ok bool) {
	// -2^63 is exact in float64; 2^63 is the first value above the range.
	if math.IsNaN(f) || f < math.MinInt64 || f >= -math.MinInt64 {
		return 0, false
	}
	return int64(f), true
}

// magnitude returns |n| as an unsigned integer (|MinInt64| does not fit in int64).
func magnitude(n int64) uint64 {
	if n < 0 {
		return uint64(-(n + 1)) + 1
	}
	return uint64(n)
}
