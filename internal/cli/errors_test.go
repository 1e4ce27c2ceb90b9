package cli

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestAPIErrorFormat(t *testing.T) {
	tests := []struct {
		name   string
		status int
		header http.Header
		body   string
		want   string
	}{
		{
			name: "ARM envelope", status: 404,
			body: `{"error":{"code":"ResourceNotFound","message":"The Resource 'Microsoft.Network/loadBalancers/x' under resource group 'rg' was not found."}}`,
			want: "(ResourceNotFound) The Resource 'Microsoft.Network/loadBalancers/x' under resource group 'rg' was not found.\n" +
				"Code: ResourceNotFound\nMessage: The Resource 'Microsoft.Network/loadBalancers/x' under resource group 'rg' was not found.",
		},
		{
			name: "target and details", status: 400,
			body: `{"error":{"code":"InvalidParameter","message":"Bad.","target":"properties.x","details":[{"code":"Inner","message":"Why."}]}}`,
			want: "(InvalidParameter) Bad.\nCode: InvalidParameter\nMessage: Bad.\nTarget: properties.x\nException Details:\t(Inner) Why.\n\tCode: Inner\n\tMessage: Why.",
		},
		{
			name: "OData envelope", status: 409,
			body: `{"odata.error":{"code":"Conflict","message":"Busy."}}`,
			want: "(Conflict) Busy.\nCode: Conflict\nMessage: Busy.",
		},
		{
			name: "no JSON: header code and body", status: 503, header: http.Header{"X-Ms-Error-Code": {"ServiceUnavailable"}},
			body: "down",
			want: "(ServiceUnavailable) down\nCode: ServiceUnavailable\nMessage: down",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := tt.header
			if h == nil {
				h = http.Header{}
			}
			e := parseAPIError(tt.status, h, []byte(tt.body))
			if got := e.Error(); got != tt.want {
				t.Errorf("got\n%s\nwant\n%s", got, tt.want)
			}
			if e.ExitCode() != ExitError || e.Status != tt.status {
				t.Errorf("exit %d status %d", e.ExitCode(), e.Status)
			}
		})
	}
}

// TestUsageErrors runs command lines az's parser rejects: they fail before
// any request with exit code 2 and az's message.
func TestUsageErrors(t *testing.T) {
	t.Setenv(EnvEndpoint, "https://127.0.0.1:1")
	t.Setenv(EnvToken, "unused")
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"vmss create without name and image", []string{"vmss", "create", "-g", "rg"}, "the following arguments are required: --name/-n, --image"},
		{"rule create without ports", []string{"network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb", "-n", "r"},
			"the following arguments are required: --frontend-port, --backend-port, --protocol"},
		{"group create without location", []string{"group", "create", "-n", "rg"}, "the following arguments are required: --location/-l"},
		{"bad output", []string{"group", "list", "-o", "xml"}, "argument --output/-o: invalid choice: 'xml'"},
		{"bad query", []string{"group", "list", "--query", "[?"}, "argument --query: invalid jmespath_type value"},
		{"unknown flag", []string{"network", "lb", "list", "--bogus"}, "unknown flag: --bogus"},
		{"unknown verb", []string{"network", "lb", "frobnicate"}, "'frobnicate' is misspelled or not recognized by the system."},
		{"stray word", []string{"network", "lb", "list", "-g", "rg", "extra"}, "unrecognized arguments: extra"},
		{"bad image", []string{"vmss", "create", "-g", "rg", "-n", "v", "--image", "UbuntuLTS"}, "usage error: --image must be a URN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			err := Run(context.Background(), tt.args, &out, &errOut)
			var ue *UsageError
			if !errors.As(err, &ue) || ue.ExitCode() != ExitUsage {
				t.Fatalf("err = %v (%T), want *UsageError", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %q, want %q", err, tt.want)
			}
		})
	}
}

func TestRetryAfter(t *testing.T) {
	c := &Client{PollInterval: 3 * time.Second}
	tests := []struct {
		h    http.Header
		want time.Duration
	}{
		{http.Header{}, 3 * time.Second},
		{http.Header{"Retry-After": {"1"}}, time.Second},
		{http.Header{"Retry-After": {"600"}}, time.Minute},
		{http.Header{"Retry-After-Ms": {"250"}, "Retry-After": {"5"}}, 250 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := c.retryAfter(tt.h); got != tt.want {
			t.Errorf("retryAfter(%v) = %v, want %v", tt.h, got, tt.want)
		}
	}
}

func TestNewClientWithoutServer(t *testing.T) {
	t.Setenv(EnvEndpoint, "")
	t.Setenv(EnvToken, "")
	_, err := NewClient(context.Background(), Config{DataDir: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "nimbus serve") {
		t.Fatalf("err = %v", err)
	}
}
