package armtest

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// AZBinary is where Debian's azure-cli package installs az.
const AZBinary = "/usr/bin/az"

// LoginAZ prepares an isolated az configuration for node n following
// arm-clients.md §0 (temporary AZURE_CONFIG_DIR, REQUESTS_CA_BUNDLE = the
// node's CA, MSI_ENDPOINT = its managed-identity endpoint, a cloud registered
// with the 2020-09-01-hybrid profile, az login --identity) and returns the
// environment to pass to RunAZ. It skips the test when az is not installed.
func LoginAZ(t *testing.T, n *Node) []string {
	t.Helper()
	if _, err := os.Stat(AZBinary); err != nil {
		t.Skipf("az CLI not installed at %s (apt-get install azure-cli): %v", AZBinary, err)
	}
	env := append(os.Environ(),
		"AZURE_CONFIG_DIR="+t.TempDir(),
		"AZURE_CORE_COLLECT_TELEMETRY=false",
		"AZURE_CORE_NO_COLOR=true",
		"AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE="+n.Endpoint.CAFile,
		"MSI_ENDPOINT="+n.Endpoint.MSIEndpoint,
	)
	RunAZ(t, env, "cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", n.Base, "--profile", "2020-09-01-hybrid")
	RunAZ(t, env, "cloud", "set", "-n", "Nimbus")
	out := RunAZ(t, env, "login", "--identity")
	if !strings.Contains(string(out), n.Sub) {
		t.Fatalf("az login did not list subscription %s: %s", n.Sub, out)
	}
	return env
}

// RunAZ runs az with env and args and returns its standard output; a
// failure fails the test with az's standard error.
func RunAZ(t *testing.T, env []string, args ...string) []byte {
	t.Helper()
	out, stderr, err := TryAZ(t, env, args...)
	if err != nil {
		t.Fatalf("az %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return out
}

// TryAZ runs az and returns stdout, stderr and the exit error (bounded by two minutes).
func TryAZ(t *testing.T, env []string, args ...string) ([]byte, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, AZBinary, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}
