package resource

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// The hostile names of the hardening review: every one was accepted (or
// was a 500) before the naming rules existed.
var hostileNames = map[string]string{
	"nul":          "lb\x00x",
	"space":        "my lb",
	"emoji":        "lb🔥",
	"rtl override": "lb\u202egnp.exe",
	"10k chars":    strings.Repeat("a", 10_000),
	"100k chars":   strings.Repeat("a", 100_000),
	"trailing dot": "lb.",
	"leading dash": "-lb",
	"slash":        "a/b",
	"empty":        "",
	"invalid utf8": "lb\xff",
}

func TestCheckNetworkName(t *testing.T) {
	for _, ok := range []string{"lb", "a", "lb-1.front_end", "lb_", "_lb", "ロードバランサー", strings.Repeat("a", 80), "Lb.2"} {
		if err := CheckNetworkName(ok, 1, MaxNetworkNameLen); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	bad := map[string]string{"81 chars": strings.Repeat("a", 81), "ends with dash": "lb-", "dot first": ".lb"}
	for k, v := range hostileNames {
		bad[k] = v
	}
	for name, n := range bad {
		t.Run(name, func(t *testing.T) {
			err := CheckNetworkName(n, 1, MaxNetworkNameLen)
			e, ok := err.(*Error)
			if !ok || e.Status != 400 || e.Code != "InvalidResourceName" || e.Target != "name" {
				t.Fatalf("CheckNetworkName(%.20q) = %v, want 400 InvalidResourceName", n, err)
			}
			if strings.ContainsAny(e.Message, "\x00\u202e") || utf8.RuneCountInString(e.Message) > 400 {
				t.Errorf("message carries the raw name: %.200q", e.Message)
			}
		})
	}
	if err := CheckNetworkName("a", MinVirtualNetworkNameLen, MaxVirtualNetworkNameLen); err == nil {
		t.Error("a one-character virtual network name was accepted")
	}
	if err := CheckNetworkName(strings.Repeat("v", 65), MinVirtualNetworkNameLen, MaxVirtualNetworkNameLen); err == nil {
		t.Error("a 65-character virtual network name was accepted")
	}
}

func TestCheckResourceGroupName(t *testing.T) {
	for _, ok := range []string{"rg", "r", "my-rg.(1)_x", "グループ", strings.Repeat("g", 90)} {
		if err := CheckResourceGroupName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for name, n := range map[string]string{"91 chars": strings.Repeat("g", 91), "trailing dot": "rg.", "empty": "",
		"nul": "rg\x00", "space": "my rg", "emoji": "rg🔥", "rtl": "rg\u202e", "slash": "a/b", "utf8": "rg\xff"} {
		t.Run(name, func(t *testing.T) {
			e, ok := CheckResourceGroupName(n).(*Error)
			if !ok || e.Status != 400 || e.Code != "InvalidResourceGroup" {
				t.Fatalf("CheckResourceGroupName(%q) = %v, want 400 InvalidResourceGroup", n, e)
			}
		})
	}
}

func TestCheckScaleSetName(t *testing.T) {
	for _, ok := range []string{"web", "w", "web-1", "web_1", "web.1", strings.Repeat("w", 64)} {
		if err := CheckScaleSetName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	bad := map[string]string{"65 chars": strings.Repeat("w", 65), "underscore first": "_web", "ends with dash": "web-",
		"ends with dot": "web.", "at": "web@1"}
	for k, v := range hostileNames {
		if k != "leading dash" { // a scale set name may start with '-'... Azure only forbids the end
			bad[k] = v
		}
	}
	for name, n := range bad {
		t.Run(name, func(t *testing.T) {
			e, ok := CheckScaleSetName(n).(*Error)
			if !ok || e.Status != 400 || e.Code != CodeInvalidParameter || e.Target != "name" {
				t.Fatalf("CheckScaleSetName(%.20q) = %v, want 400 InvalidParameter on name", n, e)
			}
		})
	}
}

func TestCheckComputerNamePrefix(t *testing.T) {
	const f = "properties.virtualMachineProfile.osProfile.computerNamePrefix"
	for _, tc := range []struct {
		prefix  string
		windows bool
		ok      bool
	}{
		{"web", false, true}, {"web-01", false, true}, {strings.Repeat("w", 58), false, true},
		{strings.Repeat("w", 59), false, false}, {"webserver", true, true}, {"webserver1", true, false},
		{"12345", false, false}, {"-web", false, false}, {"web-", false, false}, {"web_1", false, false},
		{"web.1", false, false}, {"", false, false}, {"wéb", false, false},
	} {
		err := CheckComputerNamePrefix(f, tc.prefix, tc.windows)
		if (err == nil) != tc.ok {
			t.Errorf("CheckComputerNamePrefix(%q, windows=%v) = %v, want ok=%v", tc.prefix, tc.windows, err, tc.ok)
		}
		if e, isErr := err.(*Error); err != nil && (!isErr || e.Target != f || e.Code != CodeInvalidParameter) {
			t.Errorf("error %v does not name %s", err, f)
		}
	}
}

// FuzzNames checks that the naming rules never panic, answer either nil or
// a 400 *Error, and never accept a name with a control or format character
// or one longer than the type's limit.
func FuzzNames(f *testing.F) {
	for _, n := range hostileNames {
		f.Add(n)
	}
	for _, n := range []string{"lb1", "rg", "web", "ロード"} {
		f.Add(n)
	}
	f.Fuzz(func(t *testing.T, name string) {
		hostile := !utf8.ValidString(name) || strings.IndexFunc(name, func(r rune) bool {
			return r < 0x20 || r == 0x7f || (r >= 0x200b && r <= 0x200f) || (r >= 0x202a && r <= 0x202e) || r == ' '
		}) >= 0
		n := utf8.RuneCountInString(name)
		for rule, err := range map[string]error{
			"network":     CheckNetworkName(name, 1, MaxNetworkNameLen),
			"group":       CheckResourceGroupName(name),
			"scale set":   CheckScaleSetName(name),
			"prefix":      CheckComputerNamePrefix("p", name, false),
			"vnet (2-64)": CheckNetworkName(name, MinVirtualNetworkNameLen, MaxVirtualNetworkNameLen),
		} {
			if err == nil {
				if hostile || n > MaxResourceGroupNameLen || n == 0 {
					t.Fatalf("%s rule accepted %q", rule, name)
				}
				continue
			}
			if e, ok := err.(*Error); !ok || e.Status != 400 {
				t.Fatalf("%s rule: %v is not a 400 *Error", rule, err)
			}
		}
	})
}
