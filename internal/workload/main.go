package workload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"golang.org/x/sync/errgroup"
)

// Main runs the workload kind (`nimbus workload <kind>`) configured from the
// environment until ctx ends (the caller cancels it on SIGTERM). It reports
// readiness or the error that prevented it on the EnvReadyFD descriptor when
// one is set. Output goes to stdout and stderr.
func Main(ctx context.Context, kind string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	readyFD := -1
	if fd := getenv(EnvReadyFD); fd != "" {
		if _, err := fmt.Sscan(fd, &readyFD); err != nil || readyFD < 3 {
			return fmt.Errorf("workload: %s=%q is not a descriptor number", EnvReadyFD, fd)
		}
	}
	// Confinement sets no_new_privs on this thread, and the customData
	// script is started from it: keep this goroutine on it.
	runtime.LockOSThread()
	// Before the ready descriptor is marked close-on-exec: a re-execution
	// (ConfineUserNS) keeps it.
	drop, cerr := confine(getenv, environ)
	var readyFile *os.File
	if readyFD >= 0 {
		// Keep it out of the script's processes: the driver waits for
		// the line, and a copy held open elsewhere would hide our exit.
		syscall.CloseOnExec(readyFD)
		readyFile = os.NewFile(uintptr(readyFD), "ready")
		defer readyFile.Close()
	}
	ready := func() {
		if readyFile != nil {
			readyFile.WriteString(ReadyOK + "\n") //nolint:errcheck // the driver may be gone
			readyFile.Close()
			readyFile = nil
		}
	}
	err := cerr
	if err == nil {
		err = run(ctx, kind, getenv, environ, stdout, stderr, ready, drop)
	}
	if err != nil && readyFile != nil {
		readyFile.WriteString(err.Error() + "\n") //nolint:errcheck // the driver may be gone
	}
	return err
}

// run serves the workload; drop switches to the instance user (see
// confine): after the echo image bound its ports, before the script runs.
func run(ctx context.Context, kind string, getenv func(string) string, environ []string, stdout, stderr io.Writer, ready func(), drop func() error) error {
	k, err := ParseKind(kind)
	if err != nil {
		return err
	}
	cfg, err := ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	switch k {
	case KindEcho:
		log := slog.New(slog.NewTextHandler(stderr, nil))
		e := &Echo{Config: cfg, Ports: cfg.Ports, Logger: log, Bound: drop}
		if cfg.CustomData == "" && len(cfg.Commands) == 0 {
			return e.Serve(ctx, ready)
		}
		// customData (and extensions) the image map runs: after the
		// ports are bound and privileges dropped, beside the servers.
		g, gctx := errgroup.WithContext(ctx)
		e.Bound = func() error {
			if err := drop(); err != nil {
				return err
			}
			s := &Script{Config: cfg, Environ: environ, Stdout: stdout, Stderr: stderr}
			g.Go(func() error { return s.Serve(gctx, nil) })
			return nil
		}
		g.Go(func() error { return e.Serve(gctx, ready) })
		return g.Wait()
	default:
		if err := drop(); err != nil {
			return err
		}
		s := &Script{Config: cfg, Environ: environ, Stdout: stdout, Stderr: stderr}
		return s.Serve(ctx, ready)
	}
}

// ReexecEnv marks a test binary that a driver re-executes as a workload: the
// driver's command is the test binary itself and its environment carries
// ReexecEnv=1. See RunIfReexec.
const ReexecEnv = "NIMBUS_WORKLOAD_REEXEC"

// RunIfReexec makes a test binary double as the nimbus binary's hidden
// `workload` verb. When ReexecEnv is "1" and the arguments are
// "workload <kind>", it runs that workload until SIGTERM or SIGINT and exits
// the process; otherwise it returns at once. Call it first thing in TestMain
// of a package whose tests start instances with the process driver.
func RunIfReexec() {
	if os.Getenv(ReexecEnv) != "1" || len(os.Args) != 3 || os.Args[1] != "workload" {
		return
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := Main(ctx, os.Args[2], os.Getenv, os.Environ(), os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "ERROR:", err)
		os.Exit(2)
	}
	os.Exit(0)
}
