package compute

import (
	"slices"
	"testing"

	"nimbus/internal/arm"
)

// FuzzInstanceIDs checks the instanceIds body parser of the instance
// actions: an error or a result; "*" means all; explicit ids are non-empty,
// unique and never "*"; a required list is never empty.
func FuzzInstanceIDs(f *testing.F) {
	for _, seed := range []string{``, `{}`, `{"instanceIds":["*"]}`, `{"instanceIds":["0","1","0"]}`, `{"instanceIds":[]}`,
		`{"instanceIds":[" 2 ",""]}`, `{"instanceIds":"0"}`, `{"instanceIds":[0]}`, `[`, `{"instanceIds":["1"],"tempDisk":true}`} {
		f.Add([]byte(seed), false)
		f.Add([]byte(seed), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, required bool) {
		ids, all, err := parseInstanceIDs(&arm.Request{Body: body}, required)
		if err != nil {
			if ids != nil || all {
				t.Fatalf("error %v with result %v %v", err, ids, all)
			}
			if arm.AsARMError(err).Status != 400 {
				t.Fatalf("error %v is not a 400", err)
			}
			return
		}
		if all {
			if ids != nil {
				t.Fatalf("all with ids %v", ids)
			}
			return
		}
		if len(ids) == 0 {
			t.Fatalf("no ids and not all (required %v)", required)
		}
		for i, id := range ids {
			if id == "" || id == "*" || slices.Contains(ids[i+1:], id) {
				t.Fatalf("bad id list %q", ids)
			}
		}
	})
}
