package system

// Address plan: public pool 198.18.132.0/24 routed into the namespace
// "nbkill" over the uplink 198.19.252.0/30; instances in 10.0.0.0/24 inside
// their own namespaces. Traffic goes only into those namespaces.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/cli"
	"nimbus/internal/dataplane/nft"
	"nimbus/internal/driver"
	"nimbus/internal/hostnet"
)

// requireKernelPath skips tb unless the kernel path (netns driver, nft
// engine) can run here: not Linux, not root, or a typed not-supported error
// naming what this kernel lacks (driver.ErrNotSupported from the netns
// driver, nft.ErrUnavailable from the engine's probe). Any other error
// fails tb: as root on Linux the kernel path must work.
func requireKernelPath(tb testing.TB) {
	tb.Helper()
	if runtime.GOOS != "linux" {
		tb.Skipf("the kernel path needs Linux (this is %s)", runtime.GOOS)
	}
	if os.Geteuid() != 0 {
		tb.Skip("the kernel path needs root (network namespaces and nftables)")
	}
	switch _, err := ChooseMode(Netns, NFT); {
	case err == nil:
	case errors.Is(err, driver.ErrNotSupported), errors.Is(err, nft.ErrUnavailable):
		tb.Skipf("this kernel cannot run the kernel path: %v", err)
	default:
		tb.Fatalf("kernel path as root: %v", err)
	}
}

// TestKillNineKernelPath runs the real nimbus binary on the kernel path,
// kills it with SIGKILL while a scale set serves traffic, starts it again
// (traffic flows again: namespace, table and instances adopted), then stops
// it cleanly and checks that nothing it made is left on the host.
func TestKillNineKernelPath(t *testing.T) {
	requireKernelPath(t)
	const ns = "nbkill"
	cleanup := func() {
		names, _ := hostnet.ListNamespaces(ns)
		for _, n := range names {
			_ = hostnet.DeleteNamespace(n)
		}
		_ = exec.Command("ip", "link", "del", ns+"-host").Run()
	}
	cleanup()
	t.Cleanup(cleanup)
	bin := filepath.Join(t.TempDir(), "nimbus")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/nimbus").CombinedOutput(); err != nil {
		t.Fatalf("build nimbus: %v\n%s", err, out)
	}
	dir := t.TempDir()
	serve := func() *exec.Cmd {
		cmd := exec.Command(bin, "serve", "--data-dir", dir, "--listen", "127.0.0.1:0", "--metrics-listen", "off",
			"--driver", "netns", "--dataplane", "nft", "--netns-name", ns, "--netns-uplink", "198.19.252.0/30",
			"--public-pool", "198.18.132.0/24")
		var logs bytes.Buffer
		cmd.Stdout, cmd.Stderr = &logs, &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			_, _ = cmd.Process.Wait()
			if t.Failed() {
				t.Logf("nimbus serve output:\n%s", logs.String())
			}
		})
		return cmd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		if err := cli.Run(ctx, append(args, "--data-dir", dir), &out, &errb); err != nil {
			t.Fatalf("nimbus %s: %v\n%s", strings.Join(args, " "), err, errb.String())
		}
		return strings.TrimSpace(out.String())
	}
	waitUp := func() {
		t.Helper()
		waitFor(t, "nimbus serving", 30*time.Second, func() (bool, string) {
			var out, errb bytes.Buffer
			err := cli.Run(ctx, []string{"group", "list", "-o", "none", "--data-dir", dir}, &out, &errb)
			return err == nil, errb.String()
		})
	}

	first := serve()
	waitUp()
	run("group", "create", "-n", "rg", "-l", "eastus", "-o", "none")
	run("network", "public-ip", "create", "-g", "rg", "-n", "ip", "--sku", "Standard", "-o", "none")
	run("network", "lb", "create", "-g", "rg", "-n", "lb", "--sku", "Standard", "--public-ip-address", "ip",
		"--frontend-ip-name", "fe", "--backend-pool-name", "pool", "-o", "none")
	run("network", "lb", "rule", "create", "-g", "rg", "--lb-name", "lb", "-n", "web", "--protocol", "Tcp",
		"--frontend-port", "80", "--backend-port", "80", "--frontend-ip-name", "fe", "--backend-pool-name", "pool", "-o", "none")
	run("vmss", "create", "-g", "rg", "-n", "web", "--image", "nimbus:workloads:echo:latest", "--instance-count", "2",
		"--lb", "lb", "--backend-pool-name", "pool", "-o", "none")
	ip := run("network", "public-ip", "show", "-g", "rg", "-n", "ip", "--query", "ipAddress", "-o", "tsv")
	traffic := func(what string) {
		t.Helper()
		waitFor(t, what, 30*time.Second, func() (bool, string) {
			s := spread(ip+":80", 20)
			return len(s) == 2 && s["error"] == 0, fmt.Sprint(s)
		})
	}
	traffic("traffic to both instances")

	// kill -9: nothing is cleaned up; the next start adopts it.
	if err := first.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_, _ = first.Process.Wait()
	second := serve()
	waitUp()
	traffic("traffic to both instances after kill -9 and a restart")

	// A clean stop removes everything nimbus made on the host.
	if err := second.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := second.Process.Wait(); done <- err }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("nimbus did not stop within 30 s of SIGTERM")
	}
	if names, _ := hostnet.ListNamespaces(ns); len(names) != 0 {
		t.Errorf("namespaces left after a clean stop: %v", names)
	}
	if err := exec.Command("ip", "link", "show", ns+"-host").Run(); err == nil {
		t.Errorf("veth %s-host left after a clean stop", ns)
	}
	// Workloads run this binary (`<bin> workload echo`): none may be left.
	if out, _ := exec.Command("pgrep", "-f", bin+" workload").Output(); len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("workload processes left after a clean stop: %s", out)
	}
	_ = os.Remove(bin)
}
