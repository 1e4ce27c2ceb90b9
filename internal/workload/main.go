package workload

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// Main runs the workload kind (`nimbus workload <kind>`) configured from the
// environment until ctx ends (the caller cancels it on SIGTERM). It reports
// readiness or the error that prevented it on the EnvReadyFD descriptor when
// one is set. Output goes to stdout and stderr.
func Main(ctx context.Context, kind string, getenv func(string) string, environ []string, stdout, stderr io.Writer) error {
	var readyFile *os.File
	if fd := getenv(EnvReadyFD); fd != "" {
		var n int
		if _, err := fmt.Sscan(fd, &n); err != nil || n < 3 {
			return fmt.Errorf("workload: %s=%q is not a descriptor number", EnvReadyFD, fd)
		}
		// Keep it out of the script's processes: the driver waits for
		// the line, and a copy held open elsewhere would hide our exit.
		syscall.CloseOnExec(n)
		readyFile = os.NewFile(uintptr(n), "ready")
		defer readyFile.Close()
	}
	ready := func() {
		if readyFile != nil {
			readyFile.WriteString(ReadyOK + "\n") //nolint:errcheck // the driver may be gone
			readyFile.Close()
			readyFile = nil
		}
	}
	err := run(ctx, kind, getenv, environ, stdout, stderr, ready)
	if err != nil && readyFile != nil {
		readyFile.WriteString(err.Error() + "\n") //nolint:errcheck // the driver may be gone
	}
	return err
}

func run(ctx context.Context, kind string, getenv func(string) string, environ []string, stdout, stderr io.Writer, ready func()) error {
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
		e := &Echo{Config: cfg, Logger: slog.New(slog.NewTextHandler(stderr, nil))}
		return e.Serve(ctx, ready)
	default:
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
