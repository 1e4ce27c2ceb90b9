package resource

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

// seedBodies adds the request bodies of the conformance examples and of the
// test fixtures to f.
func seedBodies(f *testing.F, files ...string) {
	for _, name := range files {
		raw, err := os.ReadFile(filepath.Join("../rp/network/testdata/arm-examples", name))
		if errors.Is(err, fs.ErrNotExist) {
			raw, err = os.ReadFile(filepath.Join("../rp/compute/testdata/arm-examples", name))
		}
		if err != nil {
			f.Fatalf("seed %s: %v", name, err)
		}
		var ex struct {
			Parameters map[string]json.RawMessage `json:"parameters"`
		}
		if json.Unmarshal(raw, &ex) != nil {
			continue
		}
		for k, v := range ex.Parameters {
			if len(v) > 0 && v[0] == '{' && k != "" {
				f.Add([]byte(v))
			}
		}
	}
}

// FuzzLoadBalancerBody: decoding, normalizing, validating and rendering any
// body never panics, and validation returns an ARM error xor a result that
// renders and re-encodes.
func FuzzLoadBalancerBody(f *testing.F) {
	b, _ := json.Marshal(baseLB())
	f.Add(b)
	f.Add([]byte(`{"properties":{"frontendIPConfigurations":[{"name":"a"}],"loadBalancingRules":[{"name":"r","properties":{"frontendPort":"x"}}]}}`))
	f.Add([]byte(`{"properties":{"inboundNatPools":[{"name":"p","properties":{"frontendPortRangeStart":5,"frontendPortRangeEnd":1}}]}}`))
	seedBodies(f, "LoadBalancerCreate.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		lb, err := DecodeLoadBalancer(body)
		if err != nil {
			return
		}
		if err := NormalizeLoadBalancer(lb, tLB, "lb1"); err != nil {
			if codeOf(err) == "" {
				t.Fatalf("normalize returned a non-ARM error: %v", err)
			}
			return
		}
		old := stored(t, baseLB())
		err = ValidateLoadBalancer(lb, old, baseCtx())
		if err != nil {
			var e *Error
			if !asErr(err, &e) || e.Status != 400 || e.Code == "" {
				t.Fatalf("validation error is not a 400 ARM error: %v", err)
			}
			return
		}
		AssignEtags(lb, old, NewEtag)
		Render(lb, LBInstanceView{})
		if _, err := json.Marshal(lb); err != nil {
			t.Fatalf("valid LB does not encode: %v", err)
		}
	})
}

// FuzzScaleSetBody is FuzzLoadBalancerBody for scale-set models.
func FuzzScaleSetBody(f *testing.F) {
	b, _ := json.Marshal(baseVMSS())
	f.Add(b)
	f.Add([]byte(`{"sku":{"capacity":-1},"properties":{"upgradePolicy":{"mode":"rolling"}}}`))
	seedBodies(f, "VirtualMachineScaleSet_Create_WithAzureLoadBalancer.json")
	f.Fuzz(func(t *testing.T, body []byte) {
		v, err := DecodeScaleSet(body)
		if err != nil {
			return
		}
		if err := NormalizeScaleSet(v, nil, tVMSS, "vmss1"); err != nil {
			if codeOf(err) == "" {
				t.Fatalf("normalize returned a non-ARM error: %v", err)
			}
			return
		}
		lb := stored(t, baseLB())
		c := &VMSSContext{LoadBalancers: map[string]*LoadBalancer{NormalizeRefID(tLB): lb}, Subnets: baseCtx().Subnets}
		if err := ValidateScaleSet(v, nil, c); err != nil {
			var e *Error
			if !asErr(err, &e) || e.Status != 400 {
				t.Fatalf("validation error is not a 400 ARM error: %v", err)
			}
			return
		}
		v.ScrubSecrets()
		if _, err := json.Marshal(v); err != nil {
			t.Fatal(err)
		}
	})
}

func asErr(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}
