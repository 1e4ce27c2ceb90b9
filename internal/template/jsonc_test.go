package template

import (
	"encoding/json"
	"testing"
)

func TestStandardJSON(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"a": 1}`, `{"a":1}`},
		{`{template:{"x": [1, 2,],}, mode: "Incremental"}`, `{"mode":"Incremental","template":{"x":[1,2]}}`},
		{"{\n // a comment\n \"a\": /* inline */ 1 // end\n}", `{"a":1}`},
		{`{'a': 'it\'s "quoted"'}`, `{"a":"it's \"quoted\""}`},
		{`{"url": "https://x//y", "c": "/* not a comment */"}`, `{"c":"/* not a comment */","url":"https://x//y"}`},
		{`{"v": [true, false, null], $schema: "s", _k1: 2}`, `{"$schema":"s","_k1":2,"v":[true,false,null]}`},
		{`{"e": "a\\\"b"}`, `{"e":"a\\\"b"}`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			b, err := StandardJSON([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			got, _ := json.Marshal(v)
			if string(got) != tc.want {
				t.Fatalf("got %s, want %s", got, tc.want)
			}
		})
	}
	for _, bad := range []string{`{"a": "open`, `{/* open`, `{'a`} {
		if _, err := StandardJSON([]byte(bad)); err == nil {
			t.Errorf("StandardJSON(%q) succeeded", bad)
		}
	}
}

// FuzzStandardJSON checks that StandardJSON never panics and leaves
// standard JSON meaning the same.
func FuzzStandardJSON(f *testing.F) {
	for _, s := range []string{`{"a": [1, {"b": "c"}]}`, `{a: 1, // x` + "\n}", `['x', "y",]`, `"s\"t"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, err := StandardJSON([]byte(s))
		if err != nil {
			return
		}
		var a, b any
		if json.Unmarshal([]byte(s), &a) == nil {
			if err := json.Unmarshal(out, &b); err != nil {
				t.Fatalf("standard JSON %q became invalid %q: %v", s, out, err)
			}
			ja, _ := json.Marshal(a)
			jb, _ := json.Marshal(b)
			if string(ja) != string(jb) {
				t.Fatalf("%q changed meaning: %s vs %s", s, ja, jb)
			}
		}
	})
}
