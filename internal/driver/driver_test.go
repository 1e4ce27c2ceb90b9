package driver

import (
	"os/user"
	"testing"
)

func TestParseUser(t *testing.T) {
	nobody := User{}
	if pw, err := user.Lookup("nobody"); err == nil {
		nobody, _ = ParseUser(pw.Uid + ":" + pw.Gid)
	}
	tests := []struct {
		in   string
		want User // zero: an error
	}{
		{"65534", User{65534, 65534}},
		{"1000:1001", User{1000, 1001}},
		{" 4242 ", User{4242, 4242}},
		{"nobody", nobody},
		{"0", User{}},
		{"root", User{}},
		{"1000:0", User{}},
		{"0:1000", User{}},
		{"-5", User{}},
		{"", User{}},
		{"1000:", User{}},
		{":1000", User{}},
		{"no-such-user-nimbus", User{}},
		{"1000:no-such-group-nimbus", User{}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseUser(tt.in)
			if tt.want == (User{}) {
				if err == nil {
					t.Fatalf("ParseUser(%q) = %v; want an error", tt.in, got)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("ParseUser(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
			}
		})
	}
	if got := DefaultUser.String(); got != "65534:65534" {
		t.Errorf("DefaultUser = %s", got)
	}
}
