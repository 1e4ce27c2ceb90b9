package template

import (
	"context"
	"testing"
)

// BenchmarkAzVMSSCreate validates and runs the az vmss create body against
// the in-memory fake: the engine's own cost per deployment.
func BenchmarkAzVMSSCreate(b *testing.B) {
	tmpl, params := loadDeploymentB(b, "az-vmss-create.json")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		env := newFakeEnv()
		p, err := Validate(ctx, Input{Template: tmpl, Parameters: params, Scope: testScope}, env)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Run(ctx, env, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExpression evaluates a typical resource-id expression.
func BenchmarkExpression(b *testing.B) {
	ev := testEvaluatorB(b)
	s := &site{ctx: context.Background(), section: "resources"}
	const expr = "[concat(resourceId('Microsoft.Network/loadBalancers', 'vmss1LB'), '/frontendIPConfigurations/', format('{0}-{1:D3}', 'fe', 7))]"
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ev.evalString(s, expr); err != nil {
			b.Fatal(err)
		}
	}
}
