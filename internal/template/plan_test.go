package template

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sort"
	"strings"
	"testing"
)

func validate(t *testing.T, tmpl, params string) (*Plan, error) {
	t.Helper()
	in := Input{Template: json.RawMessage(tmpl), Scope: testScope}
	if params != "" {
		in.Parameters = json.RawMessage(params)
	}
	return Validate(context.Background(), in, newFakeEnv())
}

func mustRun(t *testing.T, tmpl, params string) (*fakeEnv, map[string]Output, []Operation) {
	t.Helper()
	p, err := validate(t, tmpl, params)
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	env := newFakeEnv()
	outs, ops, err := p.Run(context.Background(), env, nil)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	return env, outs, ops
}

func TestValidateErrors(t *testing.T) {
	const pip = `{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1", "location": "eastus", "properties": {}}`
	tests := []struct {
		name, tmpl, params string
		target, want       string
	}{
		{
			name:   "missing parameter",
			tmpl:   `{"parameters": {"adminPassword": {"type": "securestring"}}, "resources": []}`,
			target: "parameters.adminPassword",
			want:   "The value for the template parameter 'adminPassword' is not provided",
		},
		{
			name:   "wrong type int",
			tmpl:   `{"parameters": {"count": {"type": "int"}}, "resources": []}`,
			params: `{"count": {"value": "many"}}`,
			target: "parameters.count",
			want:   "Expected a value of type 'Int', but received a value of type 'String'",
		},
		{
			name:   "wrong type string",
			tmpl:   `{"parameters": {"name": {"type": "string"}}, "resources": []}`,
			params: `{"name": {"value": 5}}`,
			target: "parameters.name",
			want:   "Expected a value of type 'String', but received a value of type 'Integer'",
		},
		{
			name:   "wrong type bool",
			tmpl:   `{"parameters": {"on": {"type": "bool"}}, "resources": []}`,
			params: `{"on": {"value": "yes"}}`,
			target: "parameters.on",
			want:   "Expected a value of type 'Bool'",
		},
		{
			name:   "wrong type object",
			tmpl:   `{"parameters": {"o": {"type": "object"}}, "resources": []}`,
			params: `{"o": {"value": [1]}}`,
			target: "parameters.o",
			want:   "Expected a value of type 'Object', but received a value of type 'Array'",
		},
		{
			name:   "not allowed",
			tmpl:   `{"parameters": {"sku": {"type": "string", "allowedValues": ["Basic", "Standard"]}}, "resources": []}`,
			params: `{"sku": {"value": "Premium"}}`,
			target: "parameters.sku",
			want:   "The provided value 'Premium' for the template parameter 'sku' is not valid. The parameter value is not part of the allowed value(s): 'Basic,Standard'",
		},
		{
			name:   "array element not allowed",
			tmpl:   `{"parameters": {"zones": {"type": "array", "allowedValues": ["1", "2", "3"]}}, "resources": []}`,
			params: `{"zones": {"value": ["1", "4"]}}`,
			target: "parameters.zones",
			want:   "The provided value '4'",
		},
		{
			name:   "below minValue",
			tmpl:   `{"parameters": {"n": {"type": "int", "minValue": 1, "maxValue": 5}}, "resources": []}`,
			params: `{"n": {"value": 0}}`,
			target: "parameters.n",
			want:   "less than the minimum value of '1'",
		},
		{
			name:   "above maxValue",
			tmpl:   `{"parameters": {"n": {"type": "int", "minValue": 1, "maxValue": 5}}, "resources": []}`,
			params: `{"n": {"value": "6"}}`,
			target: "parameters.n",
			want:   "greater than the maximum value of '5'",
		},
		{
			name:   "too short",
			tmpl:   `{"parameters": {"s": {"type": "string", "minLength": 3}}, "resources": []}`,
			params: `{"s": {"value": "ab"}}`,
			target: "parameters.s",
			want:   "less than the minimum length of '3'",
		},
		{
			name:   "too long",
			tmpl:   `{"parameters": {"s": {"type": "array", "maxLength": 1}}, "resources": []}`,
			params: `{"s": {"value": [1, 2]}}`,
			target: "parameters.s",
			want:   "greater than the maximum length of '1'",
		},
		{
			name:   "undeclared parameter",
			tmpl:   `{"parameters": {"a": {"type": "string", "defaultValue": "x"}}, "resources": []}`,
			params: `{"b": {"value": "y"}}`,
			target: "parameters",
			want:   "The template parameters 'b' in the parameters file are not valid",
		},
		{
			name:   "key vault reference",
			tmpl:   `{"parameters": {"a": {"type": "securestring"}}, "resources": []}`,
			params: `{"a": {"reference": {"keyVault": {"id": "x"}, "secretName": "s"}}}`,
			target: "parameters.a",
			want:   "Key Vault reference",
		},
		{
			name:   "unknown parameter type",
			tmpl:   `{"parameters": {"a": {"type": "float"}}, "resources": []}`,
			target: "parameters.a",
			want:   "has the type 'float'",
		},
		{
			name:   "bad default",
			tmpl:   `{"parameters": {"a": {"type": "string", "defaultValue": "[nope()]"}}, "resources": []}`,
			target: "parameters.a",
			want:   "The template function 'nope' is not valid",
		},
		{
			name:   "unknown function in a resource property",
			tmpl:   `{"resources": [` + pip + `, ` + pip + `, {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "properties": {"frontendIPConfigurations": [{"name": "fe", "properties": {"publicIPAddress": {"id": "[resourceIdent('Microsoft.Network/publicIPAddresses', 'pip1')]"}}}]}}]}`,
			target: "resources[2].properties.frontendIPConfigurations[0].properties.publicIPAddress.id",
			want:   "The template resource 'lb1' at 'resources[2].properties.frontendIPConfigurations[0].properties.publicIPAddress.id' is not valid: The template function 'resourceIdent' is not valid",
		},
		{
			name:   "bad expression syntax",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "tags": {"t": "[concat('a', ]"}}]}`,
			target: "resources[0].tags.t",
			want:   "The language expression 'concat('a', ' is not valid",
		},
		{
			name:   "integer overflow",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "tags": {"t": "[string(add(9223372036854775807, 1))]"}}]}`,
			target: "resources[0].tags.t",
			want:   "The language expression '[string(add(9223372036854775807, 1))]' is not valid: The template language function 'add' overflows: 9223372036854775807 + 1 is outside the Integer range",
		},
		{
			name:   "copyIndex offset overflow",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "[concat('lb', copyIndex(9223372036854775807))]", "copy": {"name": "c", "count": 2}}]}`,
			target: "resources[0].name",
			want:   "'copyIndex' overflows: 1 + 9223372036854775807",
		},
		{
			name:   "evaluation failure",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "sku": {"name": "[parameters('sku')]"}}]}`,
			target: "resources[0].sku.name",
			want:   "The template parameter 'sku' is not found",
		},
		{
			name:   "unknown function in outputs",
			tmpl:   `{"resources": [], "outputs": {"o": {"type": "string", "value": "[frob()]"}}}`,
			target: "outputs.o.value",
			want:   "The template output 'o' is not valid: The template function 'frob' is not valid",
		},
		{
			name:   "unknown function in variables",
			tmpl:   `{"variables": {"v": "[frob()]"}, "resources": []}`,
			target: "variables.v",
			want:   "The template variable 'v' is not valid",
		},
		{
			name:   "variable cycle",
			tmpl:   `{"variables": {"a": "[variables('b')]", "b": "[variables('a')]"}, "resources": []}`,
			target: "variables.b",
			want:   "The template variable 'a' refers to itself",
		},
		{
			name:   "reference in variables",
			tmpl:   `{"variables": {"a": "[reference('x')]"}, "resources": []}`,
			target: "variables.a",
			want:   "'reference' is not expected in variables",
		},
		{
			name:   "dependsOn unknown resource",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "dependsOn": ["pipX"]}]}`,
			target: "resources[0].dependsOn[0]",
			want:   "The resource 'pipX' is not defined in the template",
		},
		{
			name:   "reference unknown resource",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "properties": {"x": "[reference('pipX').ipAddress]"}}]}`,
			target: "resources[0]",
			want:   "refers to the resource 'pipX', which is not defined",
		},
		{
			name:   "reference unknown resource in outputs",
			tmpl:   `{"resources": [], "outputs": {"o": {"type": "object", "value": "[reference('lbX')]"}}}`,
			target: "outputs.o.value",
			want:   "refers to the resource 'lbX'",
		},
		{
			name: "cycle",
			tmpl: `{"resources": [
				{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "a", "dependsOn": ["c"]},
				{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "b", "dependsOn": ["a"]},
				{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "c", "dependsOn": ["[resourceId('Microsoft.Network/virtualNetworks', 'b')]"]}]}`,
			target: "resources[0]",
			want:   "Circular dependency detected on resource: '" + rgID + "/providers/Microsoft.Network/virtualNetworks/a'. The cycle is Microsoft.Network/virtualNetworks/a -> Microsoft.Network/virtualNetworks/c -> Microsoft.Network/virtualNetworks/b -> Microsoft.Network/virtualNetworks/a",
		},
		{
			name:   "self reference cycle",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "a", "properties": {"x": "[reference('a').y]"}}]}`,
			target: "resources[0]",
			want:   "Circular dependency detected",
		},
		{
			name:   "missing apiVersion",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "name": "a"}]}`,
			target: "resources[0]",
			want:   "the 'apiVersion' property is required",
		},
		{
			name:   "bad type",
			tmpl:   `{"resources": [{"type": "virtualNetworks", "apiVersion": "2018-11-01", "name": "a"}]}`,
			target: "resources[0].type",
			want:   "is not a fully qualified type",
		},
		{
			name:   "name segments",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2018-11-01", "name": "a"}]}`,
			target: "resources[0].name",
			want:   "has 1 segment(s) but the type 'Microsoft.Network/virtualNetworks/subnets' needs 2",
		},
		{
			name:   "name from reference",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "[reference('/subscriptions/s/resourceGroups/r/providers/A.B/c/d', '1').n]"}]}`,
			target: "resources[0].name",
			want:   "must be known at the start of the deployment",
		},
		{
			name:   "copy count too large",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "[concat('v', copyIndex())]", "copy": {"name": "l", "count": 801}}]}`,
			target: "resources[0].copy.count",
			want:   "between 0 and 800",
		},
		{
			name:   "copy count not an int",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "[concat('v', copyIndex())]", "copy": {"name": "l", "count": "[createArray()]"}}]}`,
			target: "resources[0].copy.count",
			want:   "must be an Integer",
		},
		{
			name:   "bad copy mode",
			tmpl:   `{"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "[concat('v', copyIndex())]", "copy": {"name": "l", "count": 2, "mode": "sometimes"}}]}`,
			target: "resources[0].copy.mode",
			want:   "must be 'Serial' or 'Parallel'",
		},
		{
			name:   "condition not bool",
			tmpl:   `{"resources": [{"condition": "[parameters('n')]", "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "v"}], "parameters": {"n": {"type": "int", "defaultValue": 1}}}`,
			target: "resources[0].condition",
			want:   "the condition must be a Boolean",
		},
		{
			name:   "output type mismatch",
			tmpl:   `{"resources": [], "outputs": {"o": {"type": "int", "value": "abc"}}}`,
			target: "outputs.o.value",
			want:   "does not match the declared type 'int'",
		},
		{
			name:   "template not JSON",
			tmpl:   `{"resources": [`,
			target: "template",
			want:   "not valid JSON",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p, err := validate(t, tc.tmpl, tc.params)
			if err == nil {
				t.Fatalf("Validate succeeded with %d resources; want an error", len(p.Resources()))
			}
			var te *Error
			if !errors.As(err, &te) {
				t.Fatalf("error %T %v is not an *Error", err, err)
			}
			if te.Code != CodeInvalidTemplate || te.StatusCode != http.StatusBadRequest {
				t.Errorf("code = %s/%d", te.Code, te.StatusCode)
			}
			if te.Target != tc.target {
				t.Errorf("target = %q, want %q", te.Target, tc.target)
			}
			if !strings.Contains(te.Message, tc.want) {
				t.Errorf("message %q does not contain %q", te.Message, tc.want)
			}
			if !strings.HasPrefix(te.Message, "Deployment template validation failed: '") {
				t.Errorf("message %q lacks ARM's prefix", te.Message)
			}
		})
	}
}

func TestParameterCoercionAndDefaults(t *testing.T) {
	tmpl := `{
	  "parameters": {
	    "count": {"type": "int"},
	    "on": {"type": "bool"},
	    "obj": {"type": "object"},
	    "loc": {"type": "string", "defaultValue": "[resourceGroup().location]"},
	    "name": {"type": "string", "defaultValue": "[concat('vm-', parameters('count'))]"}
	  },
	  "resources": [],
	  "outputs": {
	    "count": {"type": "int", "value": "[parameters('count')]"},
	    "on": {"type": "bool", "value": "[parameters('on')]"},
	    "a": {"type": "int", "value": "[parameters('obj').a]"},
	    "loc": {"type": "string", "value": "[parameters('loc')]"},
	    "name": {"type": "string", "value": "[parameters('name')]"}
	  }
	}`
	_, outs, _ := mustRun(t, tmpl, `{"count": {"value": "50000"}, "on": {"value": "true"}, "obj": {"value": "{\"a\": 1}"}}`)
	want := map[string]Output{
		"count": {Type: "Int", Value: int64(50000)},
		"on":    {Type: "Bool", Value: true},
		"a":     {Type: "Int", Value: int64(1)},
		"loc":   {Type: "String", Value: "eastus"},
		"name":  {Type: "String", Value: "vm-50000"},
	}
	for k, w := range want {
		if g := outs[k]; g.Type != w.Type || !deepEqual(g.Value, w.Value) {
			t.Errorf("output %s = %+v, want %+v", k, g, w)
		}
	}
}

func TestCopyLoopsAndConditions(t *testing.T) {
	tmpl := `{
	  "parameters": {"n": {"type": "int", "defaultValue": 3}, "withPip": {"type": "bool", "defaultValue": false}},
	  "variables": {"names": ["web", "api", "db"]},
	  "resources": [
	    {
	      "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01",
	      "name": "[concat('vnet-', variables('names')[copyIndex()])]",
	      "location": "[resourceGroup().location]",
	      "copy": {"name": "vnets", "count": "[parameters('n')]"},
	      "properties": {
	        "addressSpace": {"addressPrefixes": ["[format('10.{0}.0.0/16', copyIndex(1))]"]},
	        "copy": [{"name": "subnets", "count": 2, "input": {
	          "name": "[concat('s', copyIndex('subnets'))]",
	          "properties": {"addressPrefix": "[format('10.{0}.{1}.0/24', copyIndex(1), copyIndex('subnets'))]"}
	        }}]
	      }
	    },
	    {
	      "condition": "[parameters('withPip')]",
	      "type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1"
	    },
	    {
	      "type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1",
	      "dependsOn": ["vnets", "pip1"],
	      "properties": {"x": "[if(parameters('withPip'), reference('pip1').ipAddress, 'none')]"}
	    }
	  ],
	  "outputs": {
	    "ids": {"type": "array", "copy": {"count": "[parameters('n')]", "input": "[resourceId('Microsoft.Network/virtualNetworks', concat('vnet-', variables('names')[copyIndex()]))]"}},
	    "skipped": {"type": "string", "condition": "[parameters('withPip')]", "value": "[reference('pip1').ipAddress]"}
	  }
	}`
	env, outs, ops := mustRun(t, tmpl, "")
	ids := env.putIDs()
	if len(ids) != 4 || len(ops) != 4 {
		t.Fatalf("puts = %v", ids)
	}
	lb := rgID + "/providers/Microsoft.Network/loadBalancers/lb1"
	if indexOf(ids, lb) != 3 {
		t.Errorf("lb1 was not put last: %v", ids)
	}
	api := env.put(t, rgID+"/providers/Microsoft.Network/virtualNetworks/vnet-api")
	props := api.Body["properties"].(map[string]any)
	if got := props["addressSpace"].(map[string]any)["addressPrefixes"].([]any)[0]; got != "10.2.0.0/16" {
		t.Errorf("address prefix = %v", got)
	}
	subnets := props["subnets"].([]any)
	if len(subnets) != 2 || subnets[1].(map[string]any)["name"] != "s1" ||
		subnets[1].(map[string]any)["properties"].(map[string]any)["addressPrefix"] != "10.2.1.0/24" {
		t.Errorf("subnets = %v", subnets)
	}
	if _, has := props["copy"]; has {
		t.Error("the property copy was left in the body")
	}
	if api.Location != "eastus" {
		t.Errorf("location = %q", api.Location)
	}
	if got := env.put(t, lb).Body["properties"].(map[string]any)["x"]; got != "none" {
		t.Errorf("lb x = %v", got)
	}
	arr := outs["ids"].Value.([]any)
	if len(arr) != 3 || arr[2] != rgID+"/providers/Microsoft.Network/virtualNetworks/vnet-db" {
		t.Errorf("ids output = %v", arr)
	}
	if _, ok := outs["skipped"]; ok {
		t.Error("an output with a false condition was reported")
	}
}

func TestSerialCopyBatches(t *testing.T) {
	tmpl := `{"resources": [{
	  "type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01",
	  "name": "[concat('pip', copyIndex())]",
	  "copy": {"name": "pips", "count": 5, "mode": "serial", "batchSize": 2}
	}]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	deps := map[string][]string{}
	for _, r := range p.Resources() {
		var d []string
		for _, id := range r.DependsOn {
			d = append(d, id[strings.LastIndex(id, "/")+1:])
		}
		sort.Strings(d)
		deps[r.Name] = d
	}
	want := map[string][]string{"pip0": nil, "pip1": nil, "pip2": {"pip0", "pip1"}, "pip3": {"pip0", "pip1"}, "pip4": {"pip2", "pip3"}}
	for k, w := range want {
		if strings.Join(deps[k], ",") != strings.Join(w, ",") {
			t.Errorf("%s depends on %v, want %v", k, deps[k], w)
		}
	}
}

func TestNestedChildResources(t *testing.T) {
	tmpl := `{"resources": [{
	  "type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "vn",
	  "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}},
	  "resources": [
	    {"type": "subnets", "apiVersion": "2018-11-01", "name": "a", "properties": {"addressPrefix": "10.0.1.0/24"}},
	    {"type": "Microsoft.Network/virtualNetworks/subnets", "apiVersion": "2018-11-01", "name": "vn/b", "dependsOn": ["a"], "properties": {"addressPrefix": "10.0.2.0/24"}}
	  ]
	}]}`
	env, _, _ := mustRun(t, tmpl, "")
	ids := env.putIDs()
	want := []string{
		rgID + "/providers/Microsoft.Network/virtualNetworks/vn",
		rgID + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/a",
		rgID + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/b",
	}
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Fatalf("puts = %v, want %v", ids, want)
	}
	if r := env.put(t, want[1]); r.Type != "Microsoft.Network/virtualNetworks/subnets" || r.Name != "vn/a" {
		t.Errorf("child = %+v", r)
	}
}

func TestReferenceImplicitDependency(t *testing.T) {
	tmpl := `{"resources": [
	  {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1",
	   "properties": {"pipState": "[reference('pip1').provisioningState]", "full": "[reference(resourceId('Microsoft.Network/publicIPAddresses', 'pip1'), '2018-11-01', 'Full').location]"}},
	  {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1", "location": "westus", "properties": {}}
	], "outputs": {"pipId": {"type": "string", "value": "[reference('pip1', '2018-11-01', 'Full').resourceId]"}}}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	planned := p.Resources()
	if planned[0].Body["properties"].(map[string]any)["pipState"] != (Unknown{Expr: "[reference('pip1').provisioningState]"}) {
		t.Errorf("planned body = %v", planned[0].Body)
	}
	if b, _ := json.Marshal(planned[0].Body["properties"]); !strings.Contains(string(b), `"pipState":"[reference('pip1').provisioningState]"`) {
		t.Errorf("Unknown marshals as %s", b)
	}
	env := newFakeEnv()
	outs, _, err := p.Run(context.Background(), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := env.putIDs()
	if !strings.HasSuffix(ids[0], "/pip1") {
		t.Fatalf("puts = %v; pip1 must come first", ids)
	}
	props := env.put(t, ids[1]).Body["properties"].(map[string]any)
	if props["pipState"] != "Succeeded" || props["full"] != "westus" {
		t.Errorf("lb properties = %v", props)
	}
	if outs["pipId"].Value != ids[0] {
		t.Errorf("pipId = %v", outs["pipId"])
	}
}

func TestParallelIndependentResources(t *testing.T) {
	tmpl := `{"resources": [
	  {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "[concat('pip', copyIndex())]", "copy": {"name": "pips", "count": 3}},
	  {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "vn"},
	  {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb", "dependsOn": ["pips", "vn"]}
	]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv()
	env.gate = 4 // the three pips and the vnet must be in flight together
	var progress []Operation
	_, ops, err := p.Run(context.Background(), env, func(op Operation) { progress = append(progress, op) })
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if env.maxIn != 4 {
		t.Errorf("max concurrent puts = %d, want 4", env.maxIn)
	}
	if ids := env.putIDs(); !strings.HasSuffix(ids[4], "/lb") {
		t.Errorf("lb was not put last: %v", ids)
	}
	if len(ops) != 5 || len(progress) != 10 {
		t.Errorf("ops = %d, progress reports = %d", len(ops), len(progress))
	}
	for _, op := range ops {
		if op.ProvisioningState != StateSucceeded || op.StatusCode != "Created" || op.OperationID == "" || !strings.HasPrefix(op.Duration, "PT") {
			t.Errorf("op = %+v", op)
		}
	}
}

func TestRunFailureStopsScheduling(t *testing.T) {
	tmpl := `{"resources": [
	  {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1"},
	  {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb1", "dependsOn": ["pip1"]}
	]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv()
	pip := rgID + "/providers/Microsoft.Network/publicIPAddresses/pip1"
	env.fail[strings.ToLower(pip)] = &Error{Code: "InvalidParameter", Message: "publicIPAllocationMethod is bad", StatusCode: http.StatusBadRequest}
	outs, ops, err := p.Run(context.Background(), env, nil)
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeDeploymentFailed || outs != nil {
		t.Fatalf("Run = %v, %v", outs, err)
	}
	if len(te.Details) != 1 || te.Details[0].Code != "InvalidParameter" || te.Details[0].Target != pip {
		t.Errorf("details = %+v", te.Details)
	}
	if ids := env.putIDs(); len(ids) != 1 {
		t.Errorf("puts after the failure: %v", ids)
	}
	if len(ops) != 1 || ops[0].ProvisioningState != StateFailed || ops[0].StatusCode != "BadRequest" {
		t.Errorf("ops = %+v", ops)
	}
	msg, _ := json.Marshal(ops[0].StatusMessage)
	if !strings.Contains(string(msg), `"code":"InvalidParameter"`) {
		t.Errorf("statusMessage = %s", msg)
	}
}

func TestRunOutputFailure(t *testing.T) {
	tmpl := `{"resources": [{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1"}],
	  "outputs": {"ip": {"type": "string", "value": "[reference('pip1').nope]"}}}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = p.Run(context.Background(), newFakeEnv(), nil)
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeOutputEvaluationFailed || !strings.Contains(te.Details[0].Message, "'nope' doesn't exist") {
		t.Fatalf("Run error = %v", err)
	}
}

func TestRunCanceled(t *testing.T) {
	tmpl := `{"resources": [{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "pip1"}]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	env := newFakeEnv()
	_, ops, err := p.Run(ctx, env, nil)
	if !errors.Is(err, context.Canceled) || len(ops) != 0 || len(env.putIDs()) != 0 {
		t.Fatalf("Run = %v, ops %v", err, ops)
	}
}

func TestUserFunctionsAndDependsOnForms(t *testing.T) {
	tmpl := `{
	  "functions": [{"namespace": "nb", "members": {"name": {
	    "parameters": [{"name": "base", "type": "string"}, {"name": "i", "type": "int"}],
	    "output": {"type": "string", "value": "[format('{0}-{1:D2}', parameters('base'), parameters('i'))]"}}}}],
	  "resources": [
	    {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "[nb.name('pip', 1)]"},
	    {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2018-11-01", "name": "vn"},
	    {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb",
	     "dependsOn": ["Microsoft.Network/publicIpAddresses/pip-01", "[resourceId('Microsoft.Network/virtualNetworks', 'VN')]"]}
	  ]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	rs := p.Resources()
	if rs[0].Name != "pip-01" || len(rs[2].DependsOn) != 2 {
		t.Fatalf("resources = %+v", rs)
	}
}

func TestCoerceScalars(t *testing.T) {
	in := map[string]any{
		"frontendPortRangeStart": "50000",
		"list":                   []any{map[string]any{"primary": "true", "name": "x"}},
		"backendPort":            "eighty",
	}
	got := CoerceScalars(in, map[string]Kind{"frontendportrangestart": KindInt, "primary": KindBool, "backendport": KindInt}).(map[string]any)
	if got["frontendPortRangeStart"] != int64(50000) || got["list"].([]any)[0].(map[string]any)["primary"] != true || got["backendPort"] != "eighty" {
		t.Fatalf("got %v", got)
	}
	if in["frontendPortRangeStart"] != "50000" {
		t.Fatal("CoerceScalars changed its input")
	}
}

func TestNestedDeployments(t *testing.T) {
	tmpl := `{
	  "parameters": {"prefix": {"type": "string", "defaultValue": "web"}},
	  "resources": [
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "inner",
	     "properties": {
	       "mode": "Incremental",
	       "expressionEvaluationOptions": {"scope": "inner"},
	       "parameters": {"name": {"value": "[concat(parameters('prefix'), '-pip')]"}},
	       "template": {
	         "parameters": {"name": {"type": "string"}},
	         "resources": [{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "[parameters('name')]"}],
	         "outputs": {"id": {"type": "string", "value": "[resourceId('Microsoft.Network/publicIPAddresses', parameters('name'))]"}}
	       }
	     }},
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "outer", "resourceGroup": "other",
	     "dependsOn": ["inner"],
	     "properties": {
	       "mode": "Incremental",
	       "template": {
	         "resources": [{"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "[concat(parameters('prefix'), '-pip2')]"}]
	       }
	     }}
	  ]}`
	env, _, _ := mustRun(t, tmpl, "")
	inner := env.put(t, rgID+"/providers/Microsoft.Resources/deployments/inner")
	props := inner.Body["properties"].(map[string]any)
	if props["parameters"].(map[string]any)["name"].(map[string]any)["value"] != "web-pip" {
		t.Errorf("inner parameters = %v", props["parameters"])
	}
	res := props["template"].(map[string]any)["resources"].([]any)[0].(map[string]any)
	if res["name"] != "[parameters('name')]" {
		t.Errorf("inner-scope template was evaluated: %v", res)
	}
	outer := env.put(t, "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/other/providers/Microsoft.Resources/deployments/outer")
	res = outer.Body["properties"].(map[string]any)["template"].(map[string]any)["resources"].([]any)[0].(map[string]any)
	if res["name"] != "web-pip2" {
		t.Errorf("outer-scope template was not evaluated: %v", res)
	}
	if _, ok := outer.Body["resourceGroup"]; ok {
		t.Errorf("resourceGroup left in the body: %v", outer.Body)
	}
}

// blockingEnv holds every put of block until ctx ends, after signaling
// started.
type blockingEnv struct {
	*fakeEnv
	block   string
	started chan struct{}
}

func (b *blockingEnv) PutResource(ctx context.Context, r Resource) (PutResult, error) {
	if strings.HasSuffix(r.ID, "/"+b.block) {
		close(b.started)
		<-ctx.Done()
		return PutResult{}, ctx.Err()
	}
	return b.fakeEnv.PutResource(ctx, r)
}

func TestRunCancelMidway(t *testing.T) {
	tmpl := `{"resources": [
	  {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2018-11-01", "name": "slow"},
	  {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2018-11-01", "name": "lb", "dependsOn": ["slow"]}
	]}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	env := &blockingEnv{fakeEnv: newFakeEnv(), block: "slow", started: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-env.started
		cancel()
	}()
	_, ops, err := p.Run(ctx, env, nil)
	var te *Error
	if !errors.As(err, &te) || te.Code != CodeDeploymentFailed || te.Details[0].Code != "Canceled" {
		t.Fatalf("Run = %v", err)
	}
	if len(ops) != 1 || ops[0].ProvisioningState != StateFailed || len(env.putIDs()) != 0 {
		t.Errorf("ops = %+v, puts = %v", ops, env.putIDs())
	}
}

func TestSymbolicNames(t *testing.T) {
	tmpl := `{
	  "languageVersion": "2.0",
	  "resources": {
	    "vnet": {"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "name": "vn", "existing": true},
	    "pips": {"type": "Microsoft.Network/publicIPAddresses", "apiVersion": "2022-07-01", "name": "[format('pip{0}', copyIndex())]",
	             "copy": {"name": "pips", "count": 2}},
	    "lb": {"type": "Microsoft.Network/loadBalancers", "apiVersion": "2022-07-01", "name": "lb", "dependsOn": ["pips"],
	           "properties": {"vnetState": "[reference('vnet').provisioningState]", "pip1": "[reference('pips[1]', '2022-07-01', 'Full').name]"}}
	  },
	  "outputs": {"lbId": {"type": "string", "value": "[reference('lb', '2022-07-01', 'Full').resourceId]"}}
	}`
	p, err := validate(t, tmpl, "")
	if err != nil {
		t.Fatal(err)
	}
	if rs := p.Resources(); len(rs) != 3 || len(rs[0].DependsOn) != 2 {
		t.Fatalf("resources = %+v", rs)
	}
	env := newFakeEnv()
	vn := rgID + "/providers/Microsoft.Network/virtualNetworks/vn"
	env.store[strings.ToLower(vn)] = map[string]any{"id": vn, "properties": map[string]any{"provisioningState": "Succeeded"}}
	outs, ops, err := p.Run(context.Background(), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3 || indexOf(env.putIDs(), vn) >= 0 {
		t.Errorf("puts = %v", env.putIDs())
	}
	props := env.put(t, rgID+"/providers/Microsoft.Network/loadBalancers/lb").Body["properties"].(map[string]any)
	if props["vnetState"] != "Succeeded" || props["pip1"] != "pip1" {
		t.Errorf("lb properties = %v", props)
	}
	if outs["lbId"].Value != rgID+"/providers/Microsoft.Network/loadBalancers/lb" {
		t.Errorf("outputs = %v", outs)
	}
}

func TestSubscriptionScope(t *testing.T) {
	tmpl := `{
	  "parameters": {"rgName": {"type": "string", "defaultValue": "app"}},
	  "resources": [
	    {"type": "Microsoft.Resources/resourceGroups", "apiVersion": "2021-04-01", "name": "[parameters('rgName')]", "location": "[deployment().location]"},
	    {"type": "Microsoft.Resources/deployments", "apiVersion": "2021-04-01", "name": "net", "resourceGroup": "[parameters('rgName')]",
	     "dependsOn": ["[subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('rgName'))]"],
	     "properties": {"mode": "Incremental", "expressionEvaluationOptions": {"scope": "inner"},
	       "template": {"resources": [{"type": "Microsoft.Network/virtualNetworks", "apiVersion": "2022-07-01", "name": "vn", "location": "[resourceGroup().location]"}]}}}
	  ],
	  "outputs": {
	    "rgId": {"type": "string", "value": "[reference(subscriptionResourceId('Microsoft.Resources/resourceGroups', parameters('rgName')), '2021-04-01', 'Full').resourceId]"},
	    "vnId": {"type": "string", "value": "[resourceId(parameters('rgName'), 'Microsoft.Network/virtualNetworks', 'vn')]"},
	    "sub": {"type": "string", "value": "[resourceId('Microsoft.Network/virtualNetworks', 'vn')]"}
	  }
	}`
	sc := testScope
	sc.ResourceGroup = ""
	p, err := Validate(context.Background(), Input{Template: json.RawMessage(tmpl), Scope: sc}, newFakeEnv())
	if err != nil {
		t.Fatal(err)
	}
	env := newFakeEnv()
	outs, _, err := p.Run(context.Background(), env, nil)
	if err != nil {
		t.Fatal(err)
	}
	const sub = "/subscriptions/00000000-0000-0000-0000-000000000001"
	ids := env.putIDs()
	if len(ids) != 2 || ids[0] != sub+"/resourceGroups/app" || ids[1] != sub+"/resourceGroups/app/providers/Microsoft.Resources/deployments/net" {
		t.Fatalf("puts = %v", ids)
	}
	if rg := env.put(t, ids[0]); rg.Location != "eastus" {
		t.Errorf("group location = %q", rg.Location)
	}
	if outs["rgId"].Value != sub+"/providers/Microsoft.Resources/resourceGroups/app" && outs["rgId"].Value != sub+"/resourceGroups/app" {
		t.Errorf("rgId = %v", outs["rgId"])
	}
	if outs["vnId"].Value != sub+"/resourceGroups/app/providers/Microsoft.Network/virtualNetworks/vn" || outs["sub"].Value != sub+"/providers/Microsoft.Network/virtualNetworks/vn" {
		t.Errorf("outputs = %v", outs)
	}
	_, err = Validate(context.Background(), Input{Template: json.RawMessage(`{"resources": [], "outputs": {"x": {"type": "string", "value": "[resourceGroup().name]"}}}`), Scope: sc}, newFakeEnv())
	if err == nil || !strings.Contains(err.Error(), "not expected in a subscription-scope deployment") {
		t.Errorf("resourceGroup() at subscription scope: %v", err)
	}
}

func TestUserDefinedTypes(t *testing.T) {
	tmpl := `{
	  "languageVersion": "2.0",
	  "definitions": {
	    "sku": {"type": "string", "allowedValues": ["Basic", "Standard"]},
	    "settings": {"type": "object", "properties": {"size": {"type": "int"}}}
	  },
	  "parameters": {
	    "sku": {"$ref": "#/definitions/sku", "defaultValue": "Standard"},
	    "settings": {"$ref": "#/definitions/settings"},
	    "tag": {"type": "string", "nullable": true}
	  },
	  "resources": {},
	  "outputs": {
	    "sku": {"$ref": "#/definitions/sku", "value": "[parameters('sku')]"},
	    "tagMissing": {"type": "bool", "value": "[equals(parameters('tag'), null())]"}
	  }
	}`
	_, outs, _ := mustRun(t, tmpl, `{"settings": {"value": {"size": 3}}}`)
	if outs["sku"].Value != "Standard" || outs["sku"].Type != "String" || outs["tagMissing"].Value != true {
		t.Errorf("outputs = %v", outs)
	}
	if _, err := validate(t, tmpl, `{"settings": {"value": {}}, "sku": {"value": "Premium"}}`); err == nil || !strings.Contains(err.Error(), "allowed value(s): 'Basic,Standard'") {
		t.Errorf("a definition's allowedValues: %v", err)
	}
	if _, err := validate(t, `{"parameters": {"x": {"$ref": "#/definitions/nope"}}, "resources": []}`, `{"x": {"value": 1}}`); err == nil || !strings.Contains(err.Error(), "does not name a definition") {
		t.Errorf("unknown $ref: %v", err)
	}
}
