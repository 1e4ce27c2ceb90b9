// Package rootless runs nimbus's kernel path for a user who is not root.
// Linux lets an unprivileged user create a user namespace and, owned by
// it, network, mount and pid namespaces in which that user is root (as
// rootless containers do). Run re-executes nimbus that way; inside, the
// netns driver and the nft engine work exactly as they do for root, on
// namespaces and a table nimbus owns.
//
//	host namespaces (the user)          nimbus's user+net+mount+pid namespaces
//	┌──────────────────────────┐        ┌───────────────────────────────────────┐
//	│ nimbus (parent): broker  │ unix   │ nimbus (child, pid 1, uid 0 inside)   │
//	│  opens host listeners ───┼─fds───►│  API, metrics, forwarder accept there │
//	│  127.0.0.1:8443, 127.77… │ socket │  forwarder dials 198.18.… ──► nimbus0 │
//	└──────────────────────────┘        │   (veth) ─► nft table ─► instances    │
//	                                    └───────────────────────────────────────┘
//
// The parent stays in the host's namespaces and does one job: it opens
// listening sockets on the host's loopback when the child asks (the ARM
// API, metrics, and one per public frontend port for the Forwarder) and
// passes them over a unix socket, so every connection from the host is
// accepted by the child on a socket of the host's network. It forwards
// SIGINT and SIGTERM and exits with the child's status. The child is killed
// when the parent dies (PDEATHSIG) and, being init of its pid namespace,
// takes every instance with it: nothing of a rootless nimbus outlives it,
// and the next start recreates the instances from their records.
package rootless

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// EnvChild is set (to "1") in the environment of the re-executed child and
// to "probe" for Probe's helper. Enter and the probe hook remove it, so
// instances and later re-executions do not inherit it.
const EnvChild = "NIMBUS_ROOTLESS"

// The child's inherited descriptors.
const (
	brokerFd = 3 // SOCK_SEQPACKET to the parent's broker
	hostNet  = 4 // the parent's /proc/<pid>/net directory (host socket tables)
)

// cloneFlags are the namespaces of the child.
const cloneFlags = syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID

// ExitError is Run's error when the child exited unsuccessfully; it carries
// the child's exit code (main exits with it).
type ExitError struct{ Code int }

// Error says how the child ended.
func (e *ExitError) Error() string { return "" }

// ExitCode returns the child's exit code.
func (e *ExitError) ExitCode() int { return e.Code }

// sysProcAttr maps the caller's uid and gid to root of new namespaces.
func sysProcAttr(flags uintptr) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  flags,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		// An unprivileged user may map its gid only with setgroups denied.
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
}

// Run re-executes this program with args (os.Args[1:] for the same verb)
// as root of new user, network, mount and pid namespaces, serves its
// listener requests until it exits and returns nil, an *ExitError with its
// exit code, or the error that kept it from starting. When ctx ends the
// child gets SIGTERM (it stops as serve does on Ctrl-C) and Run waits for it.
// Stdin, stdout and stderr are the child's.
func Run(ctx context.Context, args []string) error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("rootless: needs Linux (this is %s)", runtime.GOOS)
	}
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("rootless: socketpair: %w", err)
	}
	ours, theirs := os.NewFile(uintptr(pair[0]), "broker"), os.NewFile(uintptr(pair[1]), "broker-child")
	defer ours.Close()
	netDir, err := os.Open(fmt.Sprintf("/proc/%d/net", os.Getpid()))
	if err != nil {
		theirs.Close()
		return fmt.Errorf("rootless: open the host's socket tables: %w", err)
	}
	cmd := exec.Command("/proc/self/exe", args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(withoutEnv(os.Environ(), EnvChild), EnvChild+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{theirs, netDir}
	cmd.SysProcAttr = sysProcAttr(cloneFlags)

	// PDEATHSIG follows the thread that forked, not the process: that
	// thread stays locked to this goroutine until the child is reaped.
	started, done := make(chan error, 1), make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		done <- cmd.Wait()
	}()
	err = <-started
	theirs.Close()
	netDir.Close()
	if err != nil {
		return fmt.Errorf("rootless: start nimbus in a user namespace: %w", err)
	}
	go serveBroker(ours)
	var waitErr error
	select {
	case waitErr = <-done:
	case <-ctx.Done():
		_ = cmd.Process.Signal(syscall.SIGTERM)
		waitErr = <-done
	}
	var ee *exec.ExitError
	if errors.As(waitErr, &ee) {
		code := ee.ExitCode()
		if code < 0 {
			code = 1 // killed by a signal
			if ctx.Err() != nil {
				code = 0
			}
		}
		if code == 0 {
			return nil
		}
		return &ExitError{Code: code}
	}
	return waitErr
}

func withoutEnv(env []string, key string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}
