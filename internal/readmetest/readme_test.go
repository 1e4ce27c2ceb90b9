// Package readmetest runs the README's quick start exactly as written, so
// the first commands a newcomer types keep working.
package readmetest

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/rootless"
)

// quickstart returns the shell commands between the quickstart markers of
// README.md, without the code fence.
func quickstart(t *testing.T, readme string) string { return block(t, readme, "quickstart") }

// block returns the shell commands between the <!-- name:begin --> and
// <!-- name:end --> markers of README.md, without the code fence.
func block(t *testing.T, readme, name string) string {
	t.Helper()
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	begin, end := strings.Index(s, "<!-- "+name+":begin -->"), strings.Index(s, "<!-- "+name+":end -->")
	if begin < 0 || end < begin {
		t.Fatalf("README.md has no %s block", name)
	}
	block := s[begin:end]
	block = block[strings.Index(block, "```sh")+len("```sh") : strings.LastIndex(block, "```")]
	return block
}

// needKernelPath skips unless the quick start's instances can bind ports 80
// and 22: as root, or as a normal user whom the kernel gives a user
// namespace with nftables (nimbus serve then runs rootless).
func needKernelPath(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if err := rootless.Probe(); err != nil {
		t.Skipf("the quick start's echo instances bind ports 80 and 22: run as root, or where a normal user gets a user namespace with nftables (%v)", err)
	}
}

func TestReadmeQuickStart(t *testing.T) {
	needKernelPath(t)
	for _, tool := range []string{"bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); errors.Is(err, exec.ErrNotFound) {
			t.Skipf("the quick start needs %s: %v", tool, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := quickstart(t, filepath.Join(root, "README.md"))
	// Run it in a copy of nothing but the module: the block builds ./cmd/nimbus
	// from the working directory, so run it at the repository root, with a
	// fresh data directory.
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "NIMBUS_DATA_DIR="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Cleanup(func() {
		// Whatever happened, stop a server the script left behind (SIGTERM
		// first: on the kernel path a clean shutdown removes its namespace).
		if cmd.Process != nil {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		}
		_ = os.Remove(filepath.Join(root, "nimbus.log"))
		_ = os.Remove(filepath.Join(root, "nimbus"))
	})
	t.Log("\n" + out.String())
	if err != nil {
		if b, rerr := os.ReadFile(filepath.Join(root, "nimbus.log")); rerr == nil {
			t.Log("nimbus.log:\n" + string(b))
		}
		t.Fatalf("quick start failed: %v", err)
	}
	for _, name := range []string{`"name":"web_0"`, `"name":"web_1"`, `"name":"web_2"`} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("the quick start's traffic never reached %s", name)
		}
	}
}
