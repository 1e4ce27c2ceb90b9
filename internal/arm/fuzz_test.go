package arm_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// exampleBodies returns every request and response body in
// the providers' testdata/arm-examples (Azure REST API spec examples).
func exampleBodies(t testing.TB) [][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "rp", "*", "testdata", "arm-examples", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples: %v", err)
	}
	var out [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex struct {
			Parameters map[string]json.RawMessage `json:"parameters"`
			Responses  map[string]struct {
				Body json.RawMessage `json:"body"`
			} `json:"responses"`
		}
		if err := json.Unmarshal(b, &ex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, p := range ex.Parameters {
			if len(p) > 0 && p[0] == '{' {
				out = append(out, p)
			}
		}
		for _, r := range ex.Responses {
			if len(r.Body) > 0 {
				out = append(out, r.Body)
			}
		}
	}
	return out
}

// FuzzDecodeBody feeds request bodies to the decoder and the validation of
// nimbus's own resource types: each input either decodes or yields a 400
// InvalidRequestContent, validation either passes or yields a 4xx
// *resource.Error, and nothing panics.
func FuzzDecodeBody(f *testing.F) {
	for _, b := range exampleBodies(f) {
		f.Add(b)
	}
	f.Add([]byte(`{"location":"eastus","properties":{"addressSpace":{"addressPrefixes":["10.0.0.0/16"]},"subnets":[{"name":"a","properties":{"addressPrefix":"10.0.0.0/24"}}]}}`))
	f.Add([]byte(`{"location":"eastus","sku":{"name":"Standard"},"properties":{"idleTimeoutInMinutes":"x"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		targets := []struct {
			v        any
			validate func() error
		}{}
		pip := &resource.PublicIPAddress{}
		vn := &resource.VirtualNetwork{}
		rg := &resource.ResourceGroup{}
		targets = append(targets,
			struct {
				v        any
				validate func() error
			}{pip, pip.Normalize},
			struct {
				v        any
				validate func() error
			}{vn, vn.Normalize},
			struct {
				v        any
				validate func() error
			}{rg, func() error { rg.Name = "rg"; return rg.Validate() }},
		)
		for _, tg := range targets {
			err := arm.DecodeBody(body, tg.v)
			if err != nil {
				var re *resource.Error
				if !errors.As(err, &re) || re.Status != http.StatusBadRequest || re.Code != "InvalidRequestContent" || re.Message == "" {
					t.Fatalf("decode error %v (%T) is not a 400 InvalidRequestContent", err, err)
				}
				continue
			}
			if !json.Valid(body) {
				t.Fatalf("invalid JSON %q decoded without error", body)
			}
			if err := tg.validate(); err != nil {
				var re *resource.Error
				if !errors.As(err, &re) || re.Status < 400 || re.Status >= 500 || re.Code == "" {
					t.Fatalf("validation error %v (%T) is not a 4xx *resource.Error", err, err)
				}
			}
		}
	})
}

func TestExampleBodiesDecode(t *testing.T) {
	for _, b := range exampleBodies(t) {
		var v map[string]any
		if err := arm.DecodeBody(b, &v); err != nil {
			t.Errorf("example body rejected: %v\n%s", err, b)
		}
	}
}
