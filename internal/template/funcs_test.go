package template

import (
	"context"
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"
)

// funcTemplate declares the parameters and variables the function table
// uses.
const funcTemplate = `{
  "parameters": {
    "name":  {"type": "string", "defaultValue": "web"},
    "count": {"type": "int", "defaultValue": 3},
    "flag":  {"type": "bool", "defaultValue": true},
    "obj":   {"type": "object", "defaultValue": {"a": 1, "Nested": {"x": "y"}}},
    "arr":   {"type": "array", "defaultValue": ["a", "b", "c"]},
    "stamp": {"type": "string", "defaultValue": "[utcNow('yyyyMMdd')]"}
  },
  "variables": {
    "prefix": "[concat(parameters('name'), '-')]",
    "list": ["x", "y"],
    "copy": [{"name": "disks", "count": 2, "input": {"lun": "[copyIndex('disks')]"}}]
  },
  "resources": []
}`

func testEvaluator(t *testing.T) *evaluator {
	t.Helper()
	p, err := Validate(context.Background(), Input{
		Template: json.RawMessage(funcTemplate),
		Scope:    testScope,
		Now:      time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
	}, newFakeEnv())
	if err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return p.ev
}

func TestFunctions(t *testing.T) {
	ev := testEvaluator(t)
	tests := []struct {
		expr string
		want any
	}{
		// Literals, escapes, access.
		{"plain", "plain"},
		{"[[notAnExpression]", "[notAnExpression]"},
		{"['it''s']", "it's"},
		{"[42]", int64(42)},
		{"[-7]", int64(-7)},
		{"[true]", true},
		{"[null]", nil},
		{"[parameters('obj').a]", int64(1)},
		{"[parameters('obj').nested.X]", "y"},
		{"[parameters('obj')['Nested']['x']]", "y"},
		{"[parameters('arr')[1]]", "b"},
		{"[ concat( 'a' , 'b' ) ]", "ab"},
		// Deployment values.
		{"[parameters('NAME')]", "web"},
		{"[parameters('count')]", int64(3)},
		{"[parameters('stamp')]", "20261126"},
		{"[variables('prefix')]", "web-"},
		{"[variables('list')[0]]", "x"},
		{"[variables('disks')[1].lun]", int64(1)},
		{"[resourceGroup().name]", "rg"},
		{"[resourceGroup().location]", "eastus"},
		{"[resourceGroup().id]", rgID},
		{"[subscription().subscriptionId]", "00000000-0000-0000-0000-000000000001"},
		{"[subscription().id]", "/subscriptions/00000000-0000-0000-0000-000000000001"},
		{"[subscription().tenantId]", "00000000-0000-0000-0000-0000000000aa"},
		{"[subscription().displayName]", "nimbus"},
		{"[tenant().tenantId]", "00000000-0000-0000-0000-0000000000aa"},
		{"[deployment().name]", "dep1"},
		{"[environment().suffixes.storage]", "core.windows.net"},
		{"[providers('Microsoft.Compute', 'virtualMachineScaleSets').apiVersions[0]]", "2020-06-01"},
		{"[providers('Microsoft.Compute', 'virtualMachineScaleSets').resourceType]", "virtualMachineScaleSets"},
		{"[providers('Microsoft.Compute', 'virtualMachineScaleSets').locations[0]]", "eastus"},
		// Resource ids.
		{"[resourceId('Microsoft.Network/loadBalancers', 'lb1')]", rgID + "/providers/Microsoft.Network/loadBalancers/lb1"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vn', 'default')]", rgID + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vn/default')]", rgID + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"},
		{"[resourceId('other', 'Microsoft.Network/loadBalancers', 'lb1')]", "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/other/providers/Microsoft.Network/loadBalancers/lb1"},
		{"[resourceId('sub2', 'other', 'Microsoft.Network/loadBalancers', 'lb1')]", "/subscriptions/sub2/resourceGroups/other/providers/Microsoft.Network/loadBalancers/lb1"},
		// A trailing '/' in the type, as 13 of Azure's quickstart templates write it.
		{"[resourceId('Microsoft.Network/publicIPAddresses/', 'pip')]", rgID + "/providers/Microsoft.Network/publicIPAddresses/pip"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets/', 'vn/', 'default')]", rgID + "/providers/Microsoft.Network/virtualNetworks/vn/subnets/default"},
		{"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions/', 'r1')]", "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/r1"},
		{"[extensionResourceId(resourceId('Microsoft.Network/loadBalancers/', 'lb1'), 'Microsoft.Insights/diagnosticSettings/', 'd')]", rgID + "/providers/Microsoft.Network/loadBalancers/lb1/providers/Microsoft.Insights/diagnosticSettings/d"},
		{"[tenantResourceId('/Microsoft.Management/managementGroups/', 'mg')]", "/providers/Microsoft.Management/managementGroups/mg"},
		{"[subscriptionResourceId('Microsoft.Authorization/roleDefinitions', 'r1')]", "/subscriptions/00000000-0000-0000-0000-000000000001/providers/Microsoft.Authorization/roleDefinitions/r1"},
		{"[subscriptionResourceId('sub2', 'Microsoft.Authorization/roleDefinitions', 'r1')]", "/subscriptions/sub2/providers/Microsoft.Authorization/roleDefinitions/r1"},
		{"[tenantResourceId('Microsoft.Management/managementGroups', 'mg')]", "/providers/Microsoft.Management/managementGroups/mg"},
		{"[extensionResourceId('/subscriptions/s/resourceGroups/r', 'Microsoft.Authorization/locks', 'l')]", "/subscriptions/s/resourceGroups/r/providers/Microsoft.Authorization/locks/l"},
		// Hashes.
		{"[length(uniqueString(resourceGroup().id))]", int64(13)},
		{"[equals(uniqueString('a', 'b'), uniqueString('a', 'b'))]", true},
		{"[equals(uniqueString('a', 'b'), uniqueString('a', 'c'))]", false},
		{"[uniqueString('nimbus')]", UniqueString("nimbus")},
		{"[guid('a', 'b')]", GUID("a", "b")},
		{"[length(guid(resourceGroup().id))]", int64(36)},
		// Logic.
		{"[if(parameters('flag'), 'yes', 'no')]", "yes"},
		{"[if(false, parameters('nope'), 'lazy')]", "lazy"},
		{"[equals(1, 1)]", true},
		{"[equals('a', 'A')]", false},
		{"[equals(createArray(1, 'x'), createArray(1, 'x'))]", true},
		{"[equals(parameters('obj'), json('{\"A\":1,\"nested\":{\"x\":\"y\"}}'))]", true},
		{"[not(true)]", false},
		{"[and(true, true, false)]", false},
		{"[or(false, false, true)]", true},
		{"[less(1, 2)]", true},
		{"[lessOrEquals(2, 2)]", true},
		{"[greater('b', 'a')]", true},
		{"[greaterOrEquals(1, 2)]", false},
		{"[coalesce(null(), null(), 'c')]", "c"},
		{"[coalesce(null())]", nil},
		{"[true()]", true},
		{"[false()]", false},
		// Numbers.
		{"[add(1, 2)]", int64(3)},
		{"[sub(1, 2)]", int64(-1)},
		{"[mul(3, 4)]", int64(12)},
		{"[div(7, 2)]", int64(3)},
		{"[mod(7, 2)]", int64(1)},
		{"[min(3, 1, 2)]", int64(1)},
		{"[max(createArray(3, 9, 2))]", int64(9)},
		{"[range(5, 3)]", []any{int64(5), int64(6), int64(7)}},
		{"[int('42')]", int64(42)},
		// The edges of the Integer range are reachable, not beyond (TestIntegerOverflow).
		{"[add(9223372036854775806, 1)]", int64(math.MaxInt64)},
		{"[sub(-9223372036854775807, 1)]", int64(math.MinInt64)},
		{"[add(-9223372036854775808, 9223372036854775807)]", int64(-1)},
		{"[mul(-3037000499, 3037000499)]", int64(-3037000499 * 3037000499)},
		{"[mul(-1, 9223372036854775807)]", int64(-math.MaxInt64)},
		{"[div(-9223372036854775808, 1)]", int64(math.MinInt64)},
		{"[mod(-9223372036854775808, -1)]", int64(0)},
		{"[range(9223372036854775806, 2)]", []any{int64(math.MaxInt64 - 1), int64(math.MaxInt64)}},
		{"[range(9223372036854775807, 0)]", []any{}},
		{"[int(float('-9223372036854775808'))]", int64(math.MinInt64)},
		{"[int('-9223372036854775808')]", int64(math.MinInt64)},
		{"[format('{0:D}|{0:000}', -9223372036854775808)]", "-9223372036854775808|-9223372036854775808"},
		{"[float('1.5')]", 1.5},
		// Strings.
		{"[concat('a', 'b', 1)]", "ab1"},
		{"[concat(createArray(1), createArray(2, 3))]", []any{int64(1), int64(2), int64(3)}},
		{"[format('{0}-{1:D3}', 'vm', 7)]", "vm-007"},
		{"[format('{0:X}', 255)]", "FF"},
		{"[format('{0:N0}', 1234567)]", "1,234,567"},
		{"[format('{0:N2}', 1234)]", "1,234.00"},
		{"[format('{{{0}}}', 'x')]", "{x}"},
		{"[format('{0,4}|{1,-3}|', 'ab', 'c')]", "  ab|c  |"},
		{"[format('{0:000}', 5)]", "005"},
		{"[format('{0} {1}', true, 'x')]", "True x"},
		{"[string(5)]", "5"},
		{"[string(true)]", "True"},
		{"[string(parameters('arr'))]", `["a","b","c"]`},
		{"[string(createObject('a', 1))]", `{"a":1}`},
		{"[bool('TRUE')]", true},
		{"[bool(0)]", false},
		{"[toLower('AbC')]", "abc"},
		{"[toUpper('AbC')]", "ABC"},
		{"[trim('  x  ')]", "x"},
		{"[split('a,b;c', createArray(',', ';'))]", []any{"a", "b", "c"}},
		{"[split('a.b', '.')[1]]", "b"},
		{"[replace('a-b-c', '-', '')]", "abc"},
		{"[join(createArray('a', 'b', 3), '/')]", "a/b/3"},
		{"[substring('hello', 1, 3)]", "ell"},
		{"[substring('hello', 2)]", "llo"},
		{"[padLeft('7', 3, '0')]", "007"},
		{"[padLeft(7, 3)]", "  7"},
		{"[padLeft('long', 2, '0')]", "long"},
		{"[startsWith('Nimbus', 'nim')]", true},
		{"[endsWith('Nimbus', 'BUS')]", true},
		{"[endsWith('Nimbus', 'x')]", false},
		{"[indexOf('abcabc', 'C')]", int64(2)},
		{"[lastIndexOf('abcabc', 'c')]", int64(5)},
		{"[indexOf(createArray('a', 'b'), 'b')]", int64(1)},
		{"[indexOf('abc', 'z')]", int64(-1)},
		{"[base64('hi')]", "aGk="},
		{"[base64ToString('aGk=')]", "hi"},
		{"[base64ToJson('eyJhIjoxfQ==').a]", int64(1)},
		{"[dataUri('hi')]", "data:text/plain;charset=utf8;base64,aGk="},
		{"[dataUriToString('data:text/plain;charset=utf8;base64,aGk=')]", "hi"},
		{"[uri('http://example.com/a/', 'b')]", "http://example.com/a/b"},
		{"[uriComponent('a b&c')]", "a+b%26c"},
		{"[uriComponentToString('a+b%26c')]", "a b&c"},
		{"[json('{\"a\": [1, 2]}').a[1]]", int64(2)},
		{"[json('null')]", nil},
		// Arrays and objects.
		{"[createArray()]", []any{}},
		{"[createArray('a', 1, true)]", []any{"a", int64(1), true}},
		{"[createObject('k', 'v').k]", "v"},
		{"[array('x')]", []any{"x"}},
		{"[array(createArray('x'))]", []any{"x"}},
		{"[length('héllo')]", int64(5)},
		{"[length(parameters('arr'))]", int64(3)},
		{"[length(parameters('obj'))]", int64(2)},
		{"[empty('')]", true},
		{"[empty(createArray())]", true},
		{"[empty(createObject())]", true},
		{"[empty(null())]", true},
		{"[empty(parameters('arr'))]", false},
		{"[contains('abc', 'b')]", true},
		{"[contains('abc', 'B')]", false},
		{"[contains(parameters('arr'), 'c')]", true},
		{"[contains(parameters('obj'), 'NESTED')]", true},
		{"[first(parameters('arr'))]", "a"},
		{"[last(parameters('arr'))]", "c"},
		{"[first('xyz')]", "x"},
		{"[last('xyz')]", "z"},
		{"[first(createArray())]", nil},
		{"[take(parameters('arr'), 2)]", []any{"a", "b"}},
		{"[skip(parameters('arr'), 2)]", []any{"c"}},
		{"[take('abc', 10)]", "abc"},
		{"[skip('abc', -1)]", "abc"},
		{"[union(createArray(1, 2), createArray(2, 3))]", []any{int64(1), int64(2), int64(3)}},
		{"[union(createObject('a', 1, 'o', createObject('x', 1)), createObject('b', 2, 'o', createObject('y', 2)))]",
			map[string]any{"a": int64(1), "b": int64(2), "o": map[string]any{"x": int64(1), "y": int64(2)}}},
		{"[intersection(createArray(1, 2, 3), createArray(3, 2))]", []any{int64(2), int64(3)}},
		{"[intersection(createObject('a', 1, 'b', 2), createObject('a', 1, 'b', 3))]", map[string]any{"a": int64(1)}},
		{"[items(createObject('b', 2, 'a', 1))[0].key]", "a"},
		{"[objectKeys(createObject('b', 2, 'a', 1))]", []any{"a", "b"}},
		{"[tryGet(parameters('obj'), 'Nested', 'x')]", "y"},
		{"[tryGet(parameters('obj'), 'missing', 'x')]", nil},
		{"[tryGet(parameters('arr'), 7)]", nil},
		{"[flatten(createArray(createArray(1), createArray(2, 3)))]", []any{int64(1), int64(2), int64(3)}},
		{"[shallowMerge(createArray(createObject('a', 1), createObject('a', 2, 'b', 3)))]", map[string]any{"a": int64(2), "b": int64(3)}},
		// Lambdas.
		{"[filter(range(0, 6), lambda('n', equals(mod(lambdaVariables('n'), 2), 0)))]", []any{int64(0), int64(2), int64(4)}},
		{"[map(parameters('arr'), lambda('s', toUpper(lambdaVariables('s'))))]", []any{"A", "B", "C"}},
		{"[reduce(range(1, 4), 0, lambda('acc', 'n', add(lambdaVariables('acc'), lambdaVariables('n'))))]", int64(10)},
		{"[sort(createArray(3, 1, 2), lambda('a', 'b', less(lambdaVariables('a'), lambdaVariables('b'))))]", []any{int64(1), int64(2), int64(3)}},
		{"[toObject(parameters('arr'), lambda('k', lambdaVariables('k')), lambda('k', length(lambdaVariables('k')))).b]", int64(1)},
		{"[map(createArray(createArray(1, 2)), lambda('x', map(lambdaVariables('x'), lambda('y', add(lambdaVariables('y'), 1)))))]", []any{[]any{int64(2), int64(3)}}},
		// Networks.
		{"[parseCidr('10.144.0.0/20').netmask]", "255.255.240.0"},
		{"[parseCidr('10.144.0.0/20').broadcast]", "10.144.15.255"},
		{"[parseCidr('10.144.0.0/20').firstUsable]", "10.144.0.1"},
		{"[parseCidr('10.144.0.0/20').lastUsable]", "10.144.15.254"},
		{"[parseCidr('10.144.3.7/20').network]", "10.144.0.0"},
		{"[parseCidr('10.144.0.0/20').cidr]", int64(20)},
		{"[cidrSubnet('10.144.0.0/20', 24, 3)]", "10.144.3.0/24"},
		{"[cidrSubnet('fd00::/48', 64, 1)]", "fd00:0:0:1::/64"},
		{"[cidrHost('10.144.3.0/24', 0)]", "10.144.3.1"},
		{"[cidrHost('10.144.3.0/24', 253)]", "10.144.3.254"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := ev.evalString(&site{ctx: context.Background(), section: "resources"}, tc.expr)
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !deepEqual(got, tc.want) {
				t.Fatalf("got %#v (%s), want %#v", got, typeName(got), tc.want)
			}
		})
	}
}

func TestFunctionErrors(t *testing.T) {
	ev := testEvaluator(t)
	tests := []struct {
		expr string
		want string // substring of the error
	}{
		{"[]", "empty expression"},
		{"[concat('a']", "expected ',' or ')'"},
		{"[concat('a)]", "unterminated string"},
		{"[foo('x')]", "The template function 'foo' is not valid"},
		{"[ns.func()]", "The template function 'ns.func' is not valid"},
		{"[listKeys('x', '2020-01-01')]", "The template function 'listKeys' is not valid"},
		{"[parameters('nope')]", "The template parameter 'nope' is not found"},
		{"[variables('nope')]", "The template variable 'nope' is not found"},
		{"[parameters('obj').missing]", "The language expression property 'missing' doesn't exist, available properties are 'a, Nested'"},
		{"[parameters('arr')[3]]", "array index '3' is out of bounds"},
		{"[parameters('arr')['x']]", "an array can only be indexed with an Integer"},
		{"[parameters('name').x]", "can't be evaluated"},
		{"[add(1)]", "must have 2 argument(s), got 1"},
		{"[add('1', 2)]", "'add' expects Integer arguments"},
		{"[div(1, 0)]", "cannot divide by zero"},
		{"[substring('abc', 1, 9223372036854775807)]", "The length parameter"},
		{"[mod(1, 0)]", "cannot divide by zero"},
		{"[not('x')]", "expects Boolean arguments"},
		{"[if('x', 1, 2)]", "expects a Boolean condition"},
		{"[int('x')]", "cannot convert 'x'"},
		{"[bool('maybe')]", "cannot convert 'maybe'"},
		{"[concat(createArray(1), 'x')]", "cannot mix arrays"},
		{"[format('{1}', 'a')]", "Index (zero based)"},
		{"[format('{0', 'a')]", "unclosed '{'"},
		{"[format('{0:Q}', 1)]", "does not support the format 'Q'"},
		{"[resourceId('rg', 'lb1')]", "fully qualified resource type"},
		{"[resourceId('Microsoft.Network/loadBalancers', 'a', 'b')]", "got 2 resource name segment(s)"},
		{"[resourceId('Microsoft.Network/virtualNetworks/subnets', 'vn')]", "got 1 resource name segment(s)"},
		{"[substring('abc', 2, 5)]", "The length parameter"},
		{"[substring('abc', 4)]", "The index parameter"},
		{"[padLeft('a', 3, 'xy')]", "single padding character"},
		{"[base64ToString('%%%')]", "invalid base64"},
		{"[json('{')]", "invalid JSON"},
		{"[createObject('a')]", "even number of arguments"},
		{"[length(1)]", "'length' expects a String, an array or an object"},
		{"[union(createArray(1), createObject())]", "all arguments to be arrays or all to be objects"},
		{"[copyIndex()]", "'copyIndex' is not expected at this location"},
		{"[copyIndex('loop')]", "copy loop 'loop', which is not in scope"},
		{"[utcNow()]", "can only be used in the default value of a parameter"},
		{"[newGuid()]", "can only be used in the default value of a parameter"},
		{"[less(1, 'a')]", "two Integers or two Strings"},
		{"[range(0, -1)]", "count between 0 and 10000"},
		{"[replace('a', '', 'b')]", "cannot replace an empty String"},
		{"[providers('Microsoft.Nope', 'things')]", "'providers' failed"},
		{"[split(1, ',')]", "expects a String to split"},
		{"[concat('a' 'b')]", "expected ',' or ')'"},
		{"[concat('a'))]", "unexpected \")\""},
		{"[99999999999999999999]", "out of range"},
		{"[concat('a'). ]", "expected a property name"},
		{"[parameters('arr')[0]", "not valid"},
		{"[lambda('x', 1)]", "can only be an argument of"},
		{"[filter(createArray(1), 1)]", "expects a lambda"},
		{"[filter(createArray(1), lambda('x', 1))]", "must return a Boolean"},
		{"[map(createArray(1), lambda('a', 'b', 1))]", "must have 1 parameter(s)"},
		{"[lambdaVariables('x')]", "The lambda variable 'x' is not defined"},
		{"[cidrSubnet('10.0.0.0/24', 16, 0)]", "newCIDR 16 must be between 24 and 32"},
		{"[cidrSubnet('10.0.0.0/24', 26, 4)]", "index 4 is out of range"},
		{"[cidrHost('10.0.0.0/30', 2)]", "outside the usable hosts"},
		{"[parseCidr('10.0.0.0')]", "invalid CIDR"},
	}
	for _, tc := range tests {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := ev.evalString(&site{ctx: context.Background(), section: "resources"}, tc.expr)
			if err == nil {
				if tc.expr == "[parameters('arr')[0]" {
					// Not an expression: no closing bracket, so a literal.
					if got != tc.expr {
						t.Fatalf("literal = %v", got)
					}
					return
				}
				t.Fatalf("got %#v, want an error containing %q", got, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

// TestIntegerOverflow: integer functions refuse results outside the 64-bit
// Integer range instead of wrapping, naming the expression.
func TestIntegerOverflow(t *testing.T) {
	ev := testEvaluator(t)
	for _, tc := range []struct{ expr, want string }{
		{"[add(9223372036854775807, 1)]", "'add' overflows: 9223372036854775807 + 1"},
		{"[add(-9223372036854775808, -1)]", "'add' overflows: -9223372036854775808 + -1"},
		{"[sub(-9223372036854775808, 1)]", "'sub' overflows: -9223372036854775808 - 1"},
		{"[sub(9223372036854775807, -1)]", "'sub' overflows: 9223372036854775807 - -1"},
		{"[sub(0, -9223372036854775808)]", "'sub' overflows"},
		{"[mul(3037000500, 3037000500)]", "'mul' overflows: 3037000500 * 3037000500"},
		{"[mul(-1, -9223372036854775808)]", "'mul' overflows"},
		{"[mul(-9223372036854775808, -1)]", "'mul' overflows"},
		{"[mul(4611686018427387904, 2)]", "'mul' overflows"},
		{"[mul(-4611686018427387905, 2)]", "'mul' overflows"},
		{"[div(-9223372036854775808, -1)]", "'div' overflows: -9223372036854775808 / -1"},
		{"[range(9223372036854775807, 2)]", "'range' overflows: the last element 9223372036854775807 + 1"},
		{"[int('9223372036854775808')]", "'int' overflows: '9223372036854775808'"},
		{"[int(float('1e19'))]", "'int' overflows: 1e+19"},
		{"[int(float('-9.3e18'))]", "'int' overflows"},
		{"[add(add(9223372036854775800, 7), 1)]", "'add' overflows"},
	} {
		t.Run(tc.expr, func(t *testing.T) {
			got, err := ev.evalString(&site{ctx: context.Background(), section: "resources"}, tc.expr)
			if err == nil {
				t.Fatalf("got %#v, want an overflow error", got)
			}
			want := "The language expression '" + tc.expr + "' is not valid: The template language function "
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), "outside the Integer range") {
				t.Fatalf("error %q, want %q… containing %q", err, want, tc.want)
			}
		})
	}
}
