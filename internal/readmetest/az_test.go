package readmetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/poll"
)

// TestReadmeAZQuickStart runs the README's az quick start as written, with
// Debian's az 2.45, against `nimbus serve` started as the README says
// (default data directory under a temporary HOME, default port): the load
// balancer, its rule and the scale set carry traffic to all three instances,
// and the group is deleted at the end.
func TestReadmeAZQuickStart(t *testing.T) {
	needKernelPath(t)
	for _, tool := range []string{"bash", "curl", "go", "az"} {
		if _, err := exec.LookPath(tool); errors.Is(err, exec.ErrNotFound) {
			t.Skipf("the az quick start needs %s: %v", tool, err)
		} else if err != nil {
			t.Fatal(err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	script := block(t, filepath.Join(root, "README.md"), "az-quickstart")
	home := t.TempDir()
	bin := filepath.Join(t.TempDir(), "nimbus")
	build := exec.Command("go", "build", "-o", bin, "./cmd/nimbus")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	env := append(os.Environ(), "HOME="+home)
	env = slicesWithout(env, "NIMBUS_DATA_DIR=")

	var log bytes.Buffer
	serve := exec.Command(bin, "serve")
	serve.Env, serve.Stdout, serve.Stderr = env, &log, &log
	serve.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- serve.Wait() }()
	t.Cleanup(func() {
		_ = syscall.Kill(-serve.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = syscall.Kill(-serve.Process.Pid, syscall.SIGKILL)
			<-exited
		}
	})
	poll.Until(t, time.Minute, "nimbus serve to listen on 127.0.0.1:8443", func() error {
		select {
		case err := <-exited:
			t.Fatalf("nimbus serve exited: %v\n%s", err, log.String())
		default:
		}
		c, err := net.DialTimeout("tcp", "127.0.0.1:8443", time.Second)
		if err != nil {
			return err
		}
		c.Close()
		if _, err := os.Stat(filepath.Join(home, ".local", "share", "nimbus", "endpoint.json")); err != nil {
			return fmt.Errorf("no endpoint.json yet: %w", err)
		}
		return nil
	})

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
	cmd.Dir, cmd.Env = t.TempDir(), env
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	t.Log("\n" + out.String())
	if err != nil {
		t.Fatalf("az quick start failed: %v\nnimbus serve:\n%s", err, log.String())
	}
	for _, name := range []string{`"name":"web_0"`, `"name":"web_1"`, `"name":"web_2"`} {
		if !strings.Contains(out.String(), name) {
			t.Errorf("the quick start's traffic never reached %s", name)
		}
	}
}

// slicesWithout returns env without the variables starting with prefix.
func slicesWithout(env []string, prefix string) []string {
	out := env[:0:0]
	for _, e := range env {
		if !strings.HasPrefix(e, prefix) {
			out = append(out, e)
		}
	}
	return out
}
