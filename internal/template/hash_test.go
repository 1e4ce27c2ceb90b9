package template

import (
	"strings"
	"testing"
)

// TestUniqueStringAzureValues checks uniqueString against values Azure
// itself produced. Each case names where its expected value was published.
func TestUniqueStringAzureValues(t *testing.T) {
	tests := []struct {
		in     []string
		want   string
		source string
	}{
		// Outputs of a deployed template ("example output" of
		// uniqueString('aaa') etc.), KingslandConsulting/Kingsland.ArmLinter
		// src/Kingsland.ArmLinter/Functions/ArmFunctions_UniqueString.cs.
		{[]string{"aaa"}, "zavj67f3en4hc", "Kingsland.ArmLinter, Azure output"},
		{[]string{"bbb"}, "w5eragfxe33cy", "Kingsland.ArmLinter, Azure output"},
		{[]string{"zzz"}, "cryksdzzzawae", "Kingsland.ArmLinter, Azure output"},
		{[]string{"xxx", "yyy", "zzz"}, "lghi7k5js7itq", "Kingsland.ArmLinter, Azure output"},
		// microsoft/commercial-marketplace-offer-deploy, test class
		// Modm.Tests.UnitTests.ArmFunctionsTests
		// (UniqueStringShouldEqualValueCreatedFromArmTemplate): the value
		// Azure's own engine (Azure.Deployments.Expression's
		// ExpressionBuiltInFunctions, which Modm.Azure.ArmFunctions calls)
		// returns. Another stored version of that test (namespace Modm.Tests)
		// expects "yeygmhukyx3qg" for the same input; the value here is the
		// one consistent with every other source in this table.
		{[]string{"/subscriptions/31e9f9a0-9fd2-4294-a0a3-0101246d9700/resourceGroups/rg-modm201-20230913120256/providers/Microsoft.Compute/virtualMachines/bobjacmodm201"},
			"yvjxno3je5on2", "commercial-marketplace-offer-deploy, Azure.Deployments.Expression"},
		// Azure/terraform-provider-azapi
		// internal/services/functions/unique_string_function_test.go.
		{[]string{"/subscriptions/00000000-0000-0000-0000-000000000000", "resource-id"}, "cwvxuqg24sifi", "terraform-provider-azapi"},
		// "verified against Bicep uniqueString() output":
		// philsphicas/aztunnel e2e/infra/uniquestring.sh (--test).
		{[]string{"test"}, "rbgf3xv4ufgzg", "aztunnel, Bicep output"},
		{[]string{"hello", "world"}, "a7wkljktk6wne", "aztunnel, Bicep output"},
		{[]string{"abc"}, "cgtzqvhu4i23s", "aztunnel, Bicep output"},
		{[]string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/my-rg"}, "bmg7c6xu4tw46", "aztunnel, Bicep output"},
		{[]string{"foo", "bar", "baz"}, "xzi4ioaxtmth4", "aztunnel, Bicep output"},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.in, "-"), func(t *testing.T) {
			if got := UniqueString(tc.in...); got != tc.want {
				t.Errorf("UniqueString(%q) = %q, want %q (%s)", tc.in, got, tc.want, tc.source)
			}
		})
	}
}

// TestUniqueStringShape checks the form of every output: 13 characters of
// the alphabet, deterministic, every tail length of the hash covered.
func TestUniqueStringShape(t *testing.T) {
	for n := 0; n < 20; n++ {
		in := strings.Repeat("x", n)
		s := UniqueString(in)
		if len(s) != 13 || strings.Trim(s, uniqueAlphabet) != "" {
			t.Errorf("UniqueString(%q) = %q", in, s)
		}
		if s != UniqueString(in) {
			t.Errorf("UniqueString(%q) is not deterministic", in)
		}
		if n > 0 && s == UniqueString(strings.Repeat("x", n-1)) {
			t.Errorf("UniqueString(%q) equals the value for one byte less", in)
		}
	}
	if UniqueString("a", "b") != UniqueString("a-b") {
		t.Error("the inputs are not joined by '-'")
	}
}

// TestGUID checks guid() against the algorithm Azure documents for it (a
// name-based SHA-1 UUID of the arguments joined by '-' in namespace
// 11fb06fb-712d-4ddd-98c7-e71bbd588830), with values from an independent
// implementation, Python's uuid.uuid5. No value Azure produced is
// published that we found; Terraform users rely on the same
// uuidv5(namespace, join("-", ...)) to reproduce Bicep's role-assignment
// names (for example the azapi role-assignment modules).
func TestGUID(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{[]string{"a", "b"}, "2d796349-8c7e-55ec-9624-54ece82ed031"},
		{[]string{"/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg-reader"}, "7eff629c-5159-5da4-8090-b0b36e5c2629"},
	}
	for _, tc := range tests {
		if got := GUID(tc.in...); got != tc.want {
			t.Errorf("GUID(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
