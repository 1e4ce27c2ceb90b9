package resource

import (
	"fmt"
	"net/http"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file holds Azure's naming rules per resource type
// (learn.microsoft.com: azure-resource-manager/management/resource-name-rules)
// and the codes Azure answers with. Lengths count characters, not bytes.
//
// "Word character" is .NET's \w, which the network provider's rule is
// written in: a Unicode letter, a decimal digit, a non-spacing mark or a
// connector punctuation such as '_'. Spaces, control and format characters
// (NUL, RTL overrides), emoji and symbols are none of these.

// Name length limits.
const (
	// MaxNetworkNameLen is the network provider's limit for load
	// balancers, public IPs, NSGs, subnets and every LB child.
	MaxNetworkNameLen = 80
	// MaxVirtualNetworkNameLen and MinVirtualNetworkNameLen bound
	// virtual network names.
	MaxVirtualNetworkNameLen = 64
	MinVirtualNetworkNameLen = 2
	// MaxResourceGroupNameLen bounds resource group names.
	MaxResourceGroupNameLen = 90
	// MaxScaleSetNameLen bounds scale set names (Linux; the resource name,
	// not the computer names).
	MaxScaleSetNameLen = 64
	// MaxLinuxComputerNamePrefixLen and MaxWindowsComputerNamePrefixLen
	// bound osProfile.computerNamePrefix: the computer name (64 / 15
	// characters) less the 6 characters of the instance suffix.
	MaxLinuxComputerNamePrefixLen   = 58
	MaxWindowsComputerNamePrefixLen = 9
)

// isWordChar reports whether r is a .NET \w character.
func isWordChar(r rune) bool {
	return unicode.IsLetter(r) || unicode.Is(unicode.Nd, r) || unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Pc, r)
}

// CheckNetworkName applies the network provider's naming rule to name:
// minLen to maxLen characters, beginning with a word character, ending with
// a word character or '_', and word characters, '.', '-' and '_' between.
// A violation is Azure's 400 InvalidResourceName.
func CheckNetworkName(name string, minLen, maxLen int) error {
	n := utf8.RuneCountInString(name)
	ok := utf8.ValidString(name) && n >= minLen && n <= maxLen
	for i, r := range []rune(name) {
		if !ok {
			break
		}
		switch {
		case isWordChar(r):
		case (r == '.' || r == '-') && i > 0 && i < n-1:
		default:
			ok = false
		}
	}
	if ok {
		return nil
	}
	lead := ""
	if minLen > 1 {
		lead = fmt.Sprintf("at least %d and ", minLen)
	}
	return &Error{Status: http.StatusBadRequest, Code: "InvalidResourceName", Target: "name",
		Message: fmt.Sprintf("Resource name %s is invalid. The name can be %sup to %d characters long. It must begin with a word character, and it must end with a word character or with '_'. The name may contain word characters or '.', '-', '_'.",
			quoteName(name), lead, maxLen)}
}

// CheckResourceGroupName applies Azure's rule for resource group names: 1
// to 90 characters, letters, digits, '-', '.', '(', ')' and '_', not ending
// with '.'. A violation is Azure's 400 InvalidResourceGroup.
func CheckResourceGroupName(name string) error {
	var bad []string
	seen := map[rune]bool{}
	for _, r := range name {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || strings.ContainsRune("-.()_", r) || seen[r] {
			continue
		}
		seen[r] = true
		bad = append(bad, string(r))
	}
	switch {
	case !utf8.ValidString(name) || len(bad) > 0:
		return BadRequest("InvalidResourceGroup",
			"The provided resource group name %s has these invalid characters: %s. The name can only be a letter, digit, '-', '.', '(', ')' or '_'.",
			quoteName(name), quoteName(strings.Join(bad, "")))
	case name == "" || utf8.RuneCountInString(name) > MaxResourceGroupNameLen:
		return BadRequest("InvalidResourceGroup",
			"The provided resource group name %s is invalid: it must be 1 to %d characters long.", quoteName(name), MaxResourceGroupNameLen)
	case strings.HasSuffix(name, "."):
		return BadRequest("InvalidResourceGroup",
			"The provided resource group name %s is invalid: it cannot end with a period.", quoteName(name))
	}
	return nil
}

// scaleSetForbidden are the characters the compute provider refuses in
// scale set names, besides spaces and control characters.
const scaleSetForbidden = "`~!@#$%^&*()=+[]{}\\|;:'\",<>/?"

// CheckScaleSetName applies the compute provider's rule for scale set
// names: 1 to 64 characters; letters, digits, '-', '_' and '.', none of
// spaces, control characters or `~!@#$%^&*()=+[]{}\|;:'",<>/?; not starting
// with '_' and not ending with '.' or '-'. A violation is a 400
// InvalidParameter naming the name.
func CheckScaleSetName(name string) error {
	n := utf8.RuneCountInString(name)
	ok := utf8.ValidString(name) && n >= 1 && n <= MaxScaleSetNameLen &&
		!strings.HasSuffix(name, "-") && !strings.HasSuffix(name, ".") && !strings.HasPrefix(name, "_")
	for _, r := range name {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.Is(unicode.Mn, r) || strings.ContainsRune("-_.", r)) {
			ok = false
		}
	}
	if ok {
		return nil
	}
	return InvalidParameter("name",
		"The virtual machine scale set name %s is invalid: it must be 1 to %d characters long, cannot contain spaces, control characters or the characters %s, cannot start with '_' and cannot end with '.' or '-'.",
		quoteName(name), MaxScaleSetNameLen, scaleSetForbidden)
}

// CheckComputerNamePrefix applies the compute provider's rule for
// osProfile.computerNamePrefix: 1 to 58 characters (9 for Windows images),
// not entirely numeric, letters, digits and '-' only (a host name), not
// starting or ending with '-'. A violation is a 400 InvalidParameter on the
// field.
func CheckComputerNamePrefix(field, prefix string, windows bool) error {
	maxLen, os := MaxLinuxComputerNamePrefixLen, "Linux"
	if windows {
		maxLen, os = MaxWindowsComputerNamePrefixLen, "Windows"
	}
	n := utf8.RuneCountInString(prefix)
	ok := n >= 1 && n <= maxLen && !strings.HasPrefix(prefix, "-") && !strings.HasSuffix(prefix, "-")
	digits := true
	for _, r := range prefix {
		if !(r < utf8.RuneSelf && (r == '-' || unicode.IsLetter(r) || unicode.IsDigit(r))) {
			ok = false
		}
		digits = digits && unicode.IsDigit(r)
	}
	if ok && !digits {
		return nil
	}
	return InvalidParameter(field,
		"%s computer name prefix %s is invalid: it must be 1 to %d characters long, cannot be entirely numeric, and may contain only letters, digits and '-' (not first or last).",
		os, quoteName(prefix), maxLen)
}

// quoteName quotes a name for an error message: invalid UTF-8, control and
// format characters (NUL, bidirectional overrides) escaped so the message
// cannot hide or reorder text, and long names cut to 100 characters.
func quoteName(name string) string {
	const max = 100
	var b strings.Builder
	n := 0
	for _, r := range name {
		if n == max {
			b.WriteString("…")
			break
		}
		n++
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			fmt.Fprintf(&b, "\\u%04x", r)
			continue
		}
		b.WriteRune(r)
	}
	return "'" + b.String() + "'"
}
