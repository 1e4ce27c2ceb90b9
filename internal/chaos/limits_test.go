package chaos

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"nimbus/internal/cli"
	"nimbus/internal/poll"
)

// TestDescriptorFlood opens 2,000 connections at a frontend whose backend
// never accepts, with nimbus limited to 1,024 descriptors: the proxy must
// not spend the descriptors the API needs. The API answers every request
// within its bound during the flood, over kept-alive and over new
// connections, and another load balancer keeps serving. (On the kernel path the flood never reaches nimbus's
// descriptors; it runs there to show the same invariants.)
func TestDescriptorFlood(t *testing.T) {
	bothModes(t, func(t *testing.T, m mode) {
		testDescriptorFlood(t, m)
	})
}

func testDescriptorFlood(t *testing.T, m mode) {
	const (
		flood = 2000
		dials = 64 // at once
	)
	n := startNimbus(t, m, "", "/bin/sh", "-c", `ulimit -n 1024 && exec "$0" "$@"`)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := os.WriteFile(ModeFile(n.ctl, "sink_0"), []byte(ModeHang), 0o644); err != nil {
		t.Fatal(err)
	}
	n.setupNetwork(ctx, "rg")
	sink := n.createLB(ctx, lbSpec{rg: "rg", name: "sinklb", port: 8080})
	app := n.createLB(ctx, lbSpec{rg: "rg", name: "applb", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "sink", lb: "sinklb", capacity: 1})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "app", lb: "applb", capacity: 1})
	n.waitInstances(t, "rg", "sink", 1, 30*time.Second)
	apps := n.waitInstances(t, "rg", "app", 1, 30*time.Second)
	waitTraffic(t, app, apps, 20*time.Second)

	// The API and the other load balancer are asked all along.
	stop := make(chan struct{})
	var bg sync.WaitGroup
	var apiFailures, appFailures []string
	var mu sync.Mutex
	bg.Add(1)
	go func() {
		defer bg.Done()
		for i := 0; i < 2000; i++ {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			rctx, rcancel := context.WithTimeout(ctx, 2*apiBound)
			_, err := n.do(rctx, http.MethodGet, n.group("rg"), cli.ResourcesAPIVersion, nil)
			if err == nil {
				_, err = n.doFresh(rctx, http.MethodGet, n.group("rg"), cli.ResourcesAPIVersion, nil)
			}
			rcancel()
			if err != nil {
				mu.Lock()
				apiFailures = append(apiFailures, err.Error())
				mu.Unlock()
			}
			if _, err := hit(ctx, app, 2*time.Second); err != nil {
				mu.Lock()
				appFailures = append(appFailures, err.Error())
				mu.Unlock()
			}
		}
	}()

	var conns []net.Conn
	var dialErrs int
	sem := make(chan struct{}, dials)
	var dwg sync.WaitGroup
	start := time.Now()
	for range flood {
		sem <- struct{}{}
		dwg.Add(1)
		go func() {
			defer func() { <-sem; dwg.Done() }()
			c, err := net.DialTimeout("tcp", sink, 3*time.Second)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				dialErrs++
				return
			}
			conns = append(conns, c)
		}()
	}
	dwg.Wait()
	t.Logf("flood: %d connections open, %d dials failed, in %s", len(conns), dialErrs, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // hold the flood while the API is asked
	for _, c := range conns {
		c.Close()
	}
	close(stop)
	bg.Wait()
	for i, f := range apiFailures {
		if i == 3 {
			t.Errorf("... %d API failures in all", len(apiFailures))
			break
		}
		t.Errorf("API request failed during the flood: %s", f)
	}
	for i, f := range appFailures {
		if i == 3 {
			t.Errorf("... %d failures in all", len(appFailures))
			break
		}
		t.Errorf("the other load balancer failed during the flood: %s", f)
	}
	if !n.alive() {
		t.Fatal("nimbus exited during the flood")
	}
	n.checkAPIBound()
}

// TestHeldFrontendPort holds one load balancer's frontend port with
// another program before nimbus gets to listen on it: only that load
// balancer fails (another keeps serving), and it recovers once the port is
// free. Process mode only: the kernel path forwards with nftables and
// binds no frontend socket.
func TestHeldFrontendPort(t *testing.T) {
	t.Run(processMode.name, func(t *testing.T) {
		testHeldFrontendPort(t, processMode)
	})
	t.Run(kernelMode.name, func(t *testing.T) {
		t.Skip("not applicable: the kernel path binds no frontend socket (nftables forwards)")
	})
}

func testHeldFrontendPort(t *testing.T, m mode) {
	n := startNimbus(t, m, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.setupNetwork(ctx, "rg")
	heldIP := n.createPublicIP(ctx, "rg", "held-ip")
	held := heldIP + ":8080"
	ln, err := net.Listen("tcp", held)
	if err != nil {
		t.Fatalf("hold %s: %v", held, err)
	}
	defer ln.Close()
	// The held LB's operation fails with the code naming the port and its
	// holder; the LB is stored and retried.
	err = n.tryPutLB(ctx, lbSpec{rg: "rg", name: "held", port: 8080})
	if err == nil || !strings.Contains(err.Error(), "FrontendPortInUse") || !strings.Contains(err.Error(), "8080") {
		t.Fatalf("PUT of the LB whose port is held: %v, want FrontendPortInUse naming 8080", err)
	}
	free := n.createLB(ctx, lbSpec{rg: "rg", name: "free", port: 8080})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "heldweb", lb: "held", capacity: 1})
	n.createScaleSet(ctx, vmssSpec{rg: "rg", name: "freeweb", lb: "free", capacity: 1})
	heldNames := n.waitInstances(t, "rg", "heldweb", 1, 30*time.Second)
	freeNames := n.waitInstances(t, "rg", "freeweb", 1, 30*time.Second)
	waitTraffic(t, free, freeNames, 20*time.Second)
	t.Logf("with %s held, the other load balancer serves", held)
	ln.Close()
	waitTraffic(t, held, heldNames, 20*time.Second)
	waitTraffic(t, free, freeNames, 5*time.Second)
	t.Logf("once freed, %s serves too", held)
	n.checkAPIBound()
}

// diskFullGeneric are the error codes that say nothing about a full disk.
var diskFullGeneric = map[string]bool{"": true, "InternalServerError": true, "InternalError": true}

// TestFullDataDir runs nimbus on a small tmpfs, fills it, and writes: a
// write gets a 5xx with a specific code (not a generic internal error),
// reads keep working, nimbus keeps running, and writes resume once space
// is freed. The store is the same in both modes, so it runs in process
// mode only.
func TestFullDataDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a tmpfs data dir needs root")
	}
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=16m,mode=0700", "nbchaos-full", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
	n := startNimbus(t, processMode, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	n.must(ctx, http.MethodPut, n.group("keep"), cli.ResourcesAPIVersion, map[string]any{"location": "eastus", "tags": map[string]string{"k": "v"}})

	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 1<<20)
	for i := 0; i < 64; i++ {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			break
		}
	}
	f.Close()

	// Writes of new, tag-heavy groups until one fails (bounded).
	tags := map[string]string{}
	for i := range 30 {
		tags[fmt.Sprintf("t%02d", i)] = strings.Repeat("x", 256)
	}
	var refused *cli.APIError
	wrote := 0
	for i := 0; i < 300 && refused == nil; i++ {
		_, err := n.do(ctx, http.MethodPut, n.group(fmt.Sprintf("full%d", i)), cli.ResourcesAPIVersion, map[string]any{"location": "eastus", "tags": tags})
		switch {
		case err == nil:
			wrote++
		case errors.As(err, &refused):
		default:
			t.Fatalf("write on a full disk got no answer: %v", err)
		}
	}
	if refused == nil {
		t.Fatalf("%d writes on a full disk all succeeded", wrote)
	}
	t.Logf("on a full disk, %d writes succeeded, then: %d %s: %s", wrote, refused.Status, refused.Code, refused.Message)
	if refused.Status < 500 || diskFullGeneric[refused.Code] {
		t.Errorf("a write on a full disk answered %d %s; want a 5xx with a specific code", refused.Status, refused.Code)
	}
	if _, err := n.do(ctx, http.MethodGet, n.group("keep"), cli.ResourcesAPIVersion, nil); err != nil {
		t.Errorf("read on a full disk: %v", err)
	}
	if !n.alive() {
		t.Fatalf("nimbus exited on a full disk:\n%s", n.output())
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, 10*time.Second, "writes to resume once space is freed", func() error {
		_, err := n.do(ctx, http.MethodPut, n.group("after"), cli.ResourcesAPIVersion, map[string]any{"location": "eastus"})
		return err
	})
	n.checkAPIBound()
	n.stop()
}
