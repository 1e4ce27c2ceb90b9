package arm_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"nimbus/internal/arm/armtest"
)

// The managed-identity endpoint serves root and the owner of the data
// directory only (docs/operations.md, Trust boundary). These tests run a
// second local user, nobody, through curl and az; they need root to start
// processes with its credentials.

const nobodyUID = 65534

// userDir returns a temporary directory owned by uid (for its HOME and az
// configuration), holding a readable copy of the node's CA as ca.pem.
func userDir(t *testing.T, n *armtest.Node, uid int) string {
	t.Helper()
	d, err := os.MkdirTemp("", "nimbus-msi-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	ca, err := os.ReadFile(n.Endpoint.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "ca.pem"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(d, uid, uid); err != nil {
		t.Fatal(err)
	}
	return d
}

// runAs runs name with args as uid and returns stdout, stderr and the exit error.
func runAs(t *testing.T, uid int, env []string, name string, args ...string) ([]byte, string, error) {
	t.Helper()
	cmd := exec.CommandContext(armtest.Ctx(t), name, args...)
	cmd.Env = env
	cmd.Dir = "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(uid)}}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.Bytes(), stderr.String(), err
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another local user")
	}
}

// curlMSI asks the node's managed-identity endpoint for a token as uid,
// with the given header, and returns the HTTP status and body.
func curlMSI(t *testing.T, n *armtest.Node, uid int, method, query string, header string) (int, []byte) {
	t.Helper()
	d := userDir(t, n, uid)
	args := []string{"-sS", "--cacert", filepath.Join(d, "ca.pem"), "-X", method, "-H", header, "-w", "\n%{http_code}"}
	if method == "POST" {
		args = append(args, "--data", url.Values{"resource": {"https://management.core.windows.net/"}}.Encode())
	}
	out, stderr, err := runAs(t, uid, []string{"HOME=" + d, "PATH=/usr/bin:/bin"}, "curl", append(args, n.Endpoint.MSIEndpoint+query)...)
	if err != nil {
		t.Fatalf("curl as uid %d: %v %s", uid, err, stderr)
	}
	i := bytes.LastIndexByte(out, '\n')
	st, err := strconv.Atoi(string(out[i+1:]))
	if err != nil {
		t.Fatalf("curl output %q", out)
	}
	return st, out[:i]
}

type msiAnswer struct {
	AccessToken string `json:"access_token"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func TestManagedIdentityRefusesOtherLocalUsers(t *testing.T) {
	needRoot(t)
	n := armtest.Start(t) // data dir owned by root
	for _, tc := range []struct{ name, method, query, header string }{
		{"az legacy POST", "POST", "", "Metadata: true"},
		{"IMDS GET", "GET", "?resource=https%3A%2F%2Fmanagement.core.windows.net%2F", "Metadata: true"},
		// Even with the identity secret: the boundary is the local user.
		{"azidentity GET", "GET", "?api-version=2019-08-01&resource=https%3A%2F%2Fmanagement.core.windows.net%2F", "X-Identity-Header: " + n.Endpoint.IdentityHeader},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, b := curlMSI(t, n, nobodyUID, tc.method, tc.query, tc.header)
			var a msiAnswer
			if err := json.Unmarshal(b, &a); err != nil || st != http.StatusForbidden || a.AccessToken != "" ||
				a.Error != "access_denied" || !strings.Contains(a.Description, "local user 65534 may not use the managed identity endpoint") {
				t.Fatalf("nobody: %d %s", st, b)
			}
			// The owner (root here) still gets a token the same way.
			st, b = curlMSI(t, n, 0, tc.method, tc.query, tc.header)
			if err := json.Unmarshal(b, &a); err != nil || st != http.StatusOK || a.AccessToken == "" {
				t.Fatalf("root: %d %s", st, b)
			}
		})
	}
}

// TestManagedIdentityServesDataDirOwner: with the data directory owned by
// nobody, nobody is the owner and gets a token; root still does.
func TestManagedIdentityServesDataDirOwner(t *testing.T) {
	needRoot(t)
	dir := t.TempDir()
	if err := os.Chown(dir, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	n := armtest.Start(t, dir)
	st, b := curlMSI(t, n, nobodyUID, "POST", "", "Metadata: true")
	var a msiAnswer
	if err := json.Unmarshal(b, &a); err != nil || st != http.StatusOK || a.AccessToken == "" {
		t.Fatalf("owner nobody: %d %s", st, b)
	}
	if _, err := n.Issuer.Verify(a.AccessToken); err != nil {
		t.Fatalf("token: %v", err)
	}
	if st, _, b := n.Do("POST", "/msi/token", "resource=x", "Authorization", "", "Metadata", "true", "Content-Type", "application/x-www-form-urlencoded"); st != http.StatusOK {
		t.Fatalf("root: %d %s", st, b)
	}
}

// TestManagedIdentityFailsClosed: a loopback request whose connection
// cannot be looked up (here: no local address, as a handler called without
// a listener sees) is refused with the reason.
func TestManagedIdentityFailsClosed(t *testing.T) {
	n := armtest.Start(t)
	req := httptest.NewRequest("POST", "/msi/token", strings.NewReader("resource=x"))
	req.RemoteAddr = "127.0.0.1:40000"
	req.Header.Set("Metadata", "true")
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec := httptest.NewRecorder()
	n.Server.ServeHTTP(rec, req)
	var a msiAnswer
	if err := json.Unmarshal(rec.Body.Bytes(), &a); err != nil || rec.Code != http.StatusForbidden || a.Error != "access_denied" ||
		!strings.Contains(a.Description, "could not determine which local user is calling") {
		t.Fatalf("got %d %s", rec.Code, rec.Body)
	}
}

// azEnvAs is the environment for az run as uid against n, in dir (owned by uid).
func azEnvAs(n *armtest.Node, dir string) []string {
	return []string{
		"HOME=" + dir, "PATH=/usr/bin:/bin",
		"AZURE_CONFIG_DIR=" + filepath.Join(dir, "az"),
		"AZURE_CORE_COLLECT_TELEMETRY=false", "AZURE_CORE_NO_COLOR=true", "AZURE_CORE_ONLY_SHOW_ERRORS=true",
		"REQUESTS_CA_BUNDLE=" + filepath.Join(dir, "ca.pem"),
		"MSI_ENDPOINT=" + n.Endpoint.MSIEndpoint,
	}
}

// azLoginIdentityAs registers the node's cloud and runs az login --identity as uid.
func azLoginIdentityAs(t *testing.T, n *armtest.Node, uid int) ([]byte, string, error) {
	t.Helper()
	env := azEnvAs(n, userDir(t, n, uid))
	for _, args := range [][]string{
		{"cloud", "register", "-n", "Nimbus", "--endpoint-resource-manager", n.Base, "--profile", "2020-09-01-hybrid"},
		{"cloud", "set", "-n", "Nimbus"},
	} {
		if _, stderr, err := runAs(t, uid, env, armtest.AZBinary, args...); err != nil {
			t.Fatalf("az %s as uid %d: %v %s", strings.Join(args, " "), uid, err, stderr)
		}
	}
	return runAs(t, uid, env, armtest.AZBinary, "login", "--identity")
}

// TestAZLoginIdentityOtherUser: az login --identity as a user other than
// the data directory's owner fails; as the owner it works.
func TestAZLoginIdentityOtherUser(t *testing.T) {
	needRoot(t)
	if _, err := os.Stat(armtest.AZBinary); err != nil {
		t.Skipf("az CLI not installed at %s: %v", armtest.AZBinary, err)
	}
	n := armtest.Start(t)
	out, stderr, err := azLoginIdentityAs(t, n, nobodyUID)
	if err == nil || strings.Contains(string(out), n.Sub) {
		t.Fatalf("az login --identity as nobody succeeded: %s %s", out, stderr)
	}
	t.Logf("az as nobody: %s", strings.TrimSpace(stderr))

	dir := t.TempDir()
	if err := os.Chown(dir, nobodyUID, nobodyUID); err != nil {
		t.Fatal(err)
	}
	owned := armtest.Start(t, dir)
	out, stderr, err = azLoginIdentityAs(t, owned, nobodyUID)
	if err != nil || !strings.Contains(string(out), owned.Sub) {
		t.Fatalf("az login --identity as the owner: %v %s %s", err, out, stderr)
	}
}
