package template

import (
	"context"
	"testing"
)

// FuzzExpression checks that parsing never panics, that a parse yields an
// error xor a tree, that a tree prints to text that parses back to the same
// tree, and that evaluating never panics and yields an error xor a value.
func FuzzExpression(f *testing.F) {
	seeds := []string{
		"concat(resourceId('Microsoft.Network/loadBalancers', 'vmss1LB'), '/frontendIPConfigurations/', 'loadBalancerFrontEnd')",
		"reference(resourceId('Microsoft.Compute/virtualMachineScaleSets', 'vmss1'),providers('Microsoft.Compute', 'virtualMachineScaleSets').apiVersions[0])",
		"parameters('obj')['Nested'].x",
		"format('{0:D3}', copyIndex(1))",
		"if(equals(1, 1), 'it''s', null)",
		"ns.fn(-1, 2.5, true, false)",
		"createArray(1, 2)[0]",
		"",
		"(",
		"'",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	ev := testEvaluatorF(f)
	f.Fuzz(func(t *testing.T, src string) {
		n, err := parseExpression(src)
		if (n == nil) == (err == nil) {
			t.Fatalf("parseExpression(%q) = %v, %v: want an error xor a tree", src, n, err)
		}
		if err != nil {
			return
		}
		printed := n.String()
		again, err := parseExpression(printed)
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", src, printed, err)
		}
		if again.String() != printed {
			t.Fatalf("%q: round trip %q != %q", src, again.String(), printed)
		}
		v, err := ev.evalString(&site{ctx: context.Background(), section: "resources"}, "["+src+"]")
		if err != nil && v != nil {
			t.Fatalf("evalString(%q) = %v and %v", src, v, err)
		}
	})
}

func testEvaluatorF(f *testing.F) *evaluator { return testEvaluatorB(f) }

// testEvaluatorB is an evaluator over funcTemplate for fuzz targets and
// benchmarks.
func testEvaluatorB(tb testing.TB) *evaluator {
	tb.Helper()
	p, err := Validate(context.Background(), Input{Template: []byte(funcTemplate), Scope: testScope}, newFakeEnv())
	if err != nil {
		tb.Fatal(err)
	}
	return p.ev
}
