package rootless

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"nimbus/internal/dataplane/nft"
)

// init runs Probe's helper when this program was started as one: whatever
// the binary (nimbus or a test), it never gets to main.
func init() {
	if os.Getenv(EnvChild) != "probe" {
		return
	}
	if err := probeInside(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

var probeOnce struct {
	sync.Once
	err error
}

// Probe reports whether this user can run the kernel path rootless here: it
// runs this program again as root of new user, network, mount and pid
// namespaces, where the helper mounts a /proc and creates an nftables
// table with everything the engine needs (nft.Available). nil means yes;
// the error says what the kernel refused (user namespaces disabled, no
// nf_tables, a container that masks /proc). The answer is cached.
func Probe() error {
	probeOnce.Do(func() { probeOnce.err = probe() })
	return probeOnce.err
}

func probe() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("rootless: needs Linux (this is %s)", runtime.GOOS)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Env = append(withoutEnv(os.Environ(), EnvChild), EnvChild+"=probe")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = sysProcAttr(cloneFlags)
	if err := cmd.Run(); err != nil {
		if msg := strings.TrimSpace(out.String()); msg != "" {
			return fmt.Errorf("rootless: %s", msg)
		}
		return fmt.Errorf("rootless: no user namespace with its own network for this user: %w", err)
	}
	return nil
}

// probeInside is the helper's check, as root of the new namespaces.
func probeInside() error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc in a user namespace: %w", err)
	}
	if err := nft.Available(); err != nil {
		var ue *nft.UnavailableError
		if errors.As(err, &ue) {
			return fmt.Errorf("nftables in a user namespace: %w", err)
		}
		return err
	}
	return nil
}
