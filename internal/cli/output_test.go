package cli

import (
	"bytes"
	"errors"
	"strings"
	"testing"
)

// lbList is a load balancer list as the API returns it (wire form).
func lbList() []any {
	return []any{
		map[string]any{
			"id":       "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1",
			"name":     "lb1",
			"type":     "Microsoft.Network/loadBalancers",
			"location": "eastus",
			"etag":     `W/"1"`,
			"sku":      map[string]any{"name": "Standard"},
			"properties": map[string]any{
				"provisioningState": "Succeeded",
				"probes": []any{map[string]any{
					"id":         "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/probes/p1",
					"name":       "p1",
					"properties": map[string]any{"port": float64(80), "protocol": "Http"},
				}},
			},
		},
		map[string]any{
			"id":         "/subscriptions/s1/resourceGroups/rg2/providers/Microsoft.Network/loadBalancers/lb22",
			"name":       "lb22",
			"type":       "Microsoft.Network/loadBalancers",
			"location":   "westus",
			"properties": map[string]any{"provisioningState": "Updating", "probes": []any{}},
		},
	}
}

func TestPrinter(t *testing.T) {
	tests := []struct {
		name    string
		format  string
		query   string
		value   any
		table   TableFunc
		flatten bool
		want    string
	}{
		{
			name: "json sorted keys, resourceGroup added, no html escaping", format: "json",
			value: map[string]any{"name": "a<b>", "id": "/subscriptions/s/resourceGroups/g/providers/P/t/a", "b": float64(50000)},
			want:  "{\n  \"b\": 50000,\n  \"id\": \"/subscriptions/s/resourceGroups/g/providers/P/t/a\",\n  \"name\": \"a<b>\",\n  \"resourceGroup\": \"g\"\n}\n",
		},
		{
			name: "group id gets no resourceGroup", format: "json",
			value: map[string]any{"id": "/subscriptions/s/resourceGroups/g"},
			want:  "{\n  \"id\": \"/subscriptions/s/resourceGroups/g\"\n}\n",
		},
		{
			name: "default format is json", format: "",
			value: []any{"x"}, want: "[\n  \"x\"\n]\n",
		},
		{
			name: "query over flattened children", format: "json", query: "[0].probes[].port", flatten: true,
			value: lbList(), want: "[\n  80\n]\n",
		},
		{
			name: "query scalar tsv", format: "tsv", query: "[].name", flatten: true,
			value: lbList(), want: "lb1\nlb22\n",
		},
		{
			name: "auto table: scalar fields sorted, id/type/etag skipped", format: "table", flatten: true,
			value: lbList(),
			want: "Location  Name  ProvisioningState  ResourceGroup\n" +
				"--------  ----  -----------------  -------------\n" +
				"eastus    lb1   Succeeded          rg\n" +
				"westus    lb22  Updating           rg2\n",
		},
		{
			name: "table keeps the query's key order, numbers right-aligned", format: "table", flatten: true,
			query: "[0].probes[].{Probe:name, Port:port}", value: lbList(),
			want: "Probe  Port\n-----  ----\np1       80\n",
		},
		{
			name: "tsv keeps the query's key order", format: "tsv", flatten: true,
			query: "[].{n:name, l:location}", value: lbList(),
			want: "lb1\teastus\nlb22\twestus\n",
		},
		{
			name: "tsv: nested list is its length, nested object empty, bools as Python", format: "tsv",
			value: map[string]any{"a": []any{1.0, 2.0}, "b": map[string]any{"x": 1.0}, "c": true, "d": nil},
			want:  "2\t\tTrue\t\n",
		},
		{
			name: "table transformer without query", format: "table",
			value: []any{map[string]any{"name": "rg", "location": "eastus", "properties": map[string]any{"provisioningState": "Succeeded"}}},
			table: groupTable,
			want:  "Name  Location  Status\n----  --------  ---------\nrg    eastus    Succeeded\n",
		},
		{
			name: "vnet table", format: "table", flatten: true, table: vnetTable,
			value: []any{map[string]any{"id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vn", "name": "vn", "location": "eastus",
				"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []any{"10.0.0.0/16", "10.1.0.0/16"}},
					"subnets": []any{map[string]any{"name": "default"}}, "enableDdosProtection": false}}},
			want: "Name  ResourceGroup  Location  NumSubnets  Prefixes                  DnsServers  DDOSProtection  VMProtection\n" +
				"----  -------------  --------  ----------  ------------------------  ----------  --------------  ------------\n" +
				"vn    rg             eastus             1  10.0.0.0/16, 10.1.0.0/16              False\n",
		},
		{
			name: "table of scalars is a Result column", format: "table", value: []any{"a", "bb"},
			want: "Result\n------\na\nbb\n",
		},
		{
			name: "jsonc colours keys, strings, numbers and literals", format: "jsonc",
			value: map[string]any{"a": "x", "b": 1.0, "c": nil},
			want: "{\n  \x1b[94m\"a\"\x1b[0m: \x1b[32m\"x\"\x1b[0m,\n  \x1b[94m\"b\"\x1b[0m: \x1b[36m1\x1b[0m,\n" +
				"  \x1b[94m\"c\"\x1b[0m: \x1b[95mnull\x1b[0m\n}\n",
		},
		{name: "none prints nothing", format: "none", value: lbList(), want: ""},
		{name: "nil prints nothing", format: "json", value: nil, want: ""},
		{name: "query yielding null prints nothing", format: "json", query: "nothing", value: map[string]any{"a": 1.0}, want: ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b bytes.Buffer
			p := &Printer{Out: &b, Format: tt.format, Query: tt.query}
			if err := p.Validate(); err != nil {
				t.Fatal(err)
			}
			v := tt.value
			if tt.flatten {
				v = Flatten(v).Value
			}
			if err := p.Print(v, tt.table); err != nil {
				t.Fatal(err)
			}
			if got := b.String(); got != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestTableDashesMatchHeader(t *testing.T) {
	// tabulate pads a column to its widest cell, header included; the
	// dashes run the width of the column.
	out := renderTable([]Row{{{"Name", "a-much-longer-name"}, {"N", 5.0}}})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || lines[1] != strings.Repeat("-", 18)+"  -" {
		t.Fatalf("table:\n%s", out)
	}
}

func TestPrinterValidate(t *testing.T) {
	tests := []struct {
		name, format, query string
		wantErr             string
	}{
		{name: "ok", format: "table", query: "[].name"},
		{name: "bad format", format: "xml", wantErr: "argument --output/-o: invalid choice: 'xml'"},
		{name: "bad query", format: "json", query: "[?", wantErr: "argument --query: invalid jmespath_type value: '[?'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := (&Printer{Format: tt.format, Query: tt.query}).Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			var ue *UsageError
			if !errors.As(err, &ue) || ue.ExitCode() != ExitUsage || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want usage error containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestQueryKeyOrder(t *testing.T) {
	tests := []struct {
		q    string
		want string
	}{
		{"[].{Name:name, Port:port}", "Name,Port"},
		{"{z:a, a:b}", "z,a"},
		{"probes[?port==`80`].{b:name, a:port}", "b,a"},
		{"inboundNatRules[*].{x:name} | [0]", ""},
		{"[].name", ""},
	}
	for _, tt := range tests {
		t.Run(tt.q, func(t *testing.T) {
			if got := strings.Join(queryKeyOrder(tt.q), ","); got != tt.want {
				t.Errorf("queryKeyOrder(%q) = %q, want %q", tt.q, got, tt.want)
			}
		})
	}
}
