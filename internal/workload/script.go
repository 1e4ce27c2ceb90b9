package workload

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Shell is the interpreter of the script image.
const Shell = "/bin/sh"

// Script is the script image: it runs Config.CustomData once with Shell, the
// way cloud-init runs a user-data script at first boot, and then stays up
// like a booted VM until ctx ends, whether the script finished or not. What
// the script started in the background keeps running; a driver ends all of
// it by signalling the process group.
type Script struct {
	Config Config
	// Environ is the base environment of the script (os.Environ() in
	// production). EnvCustomData and EnvReadyFD are removed from it and the
	// NIMBUS_INSTANCE_* / NIMBUS_*_IP variables set from Config, and
	// HOME to Config.Dir when it is set.
	Environ []string
	// Stdout and Stderr receive the script's output; Stderr also gets one
	// line with the script's exit status. Nil discards.
	Stdout, Stderr io.Writer
}

// Serve decodes the script (an error if it is not base64), starts it, calls
// ready (if not nil), runs Config.Commands one after the other once it
// ends, and waits until ctx ends. When ctx ends a program still running
// gets SIGTERM, then SIGKILL 5 s later.
func (s *Script) Serve(ctx context.Context, ready func()) error {
	src, err := DecodeCustomData(s.Config.CustomData)
	if err != nil {
		return fmt.Errorf("script: %w", err)
	}
	type program struct{ name, src string }
	progs := []program{{"customData script", string(src)}}
	for i, c := range s.Config.Commands {
		progs = append(progs, program{fmt.Sprintf("extension command %d", i), c})
	}
	for i, p := range progs {
		cmd := exec.CommandContext(ctx, Shell, "-c", p.src, "customdata")
		cmd.Env = s.environ()
		cmd.Stdout, cmd.Stderr = s.Stdout, s.Stderr
		cmd.Dir = s.Config.Dir
		if cmd.Dir == "" {
			cmd.Dir = "/"
		}
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = 5 * time.Second
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("script: start %s: %w", Shell, err)
		}
		if i == 0 && ready != nil {
			ready()
		}
		werr := cmd.Wait()
		if ctx.Err() != nil {
			return nil
		}
		if s.Stderr != nil {
			var ee *exec.ExitError
			switch {
			case werr == nil:
				fmt.Fprintf(s.Stderr, "nimbus: %s exited with status 0\n", p.name)
			case errors.As(werr, &ee):
				fmt.Fprintf(s.Stderr, "nimbus: %s ended: %v\n", p.name, ee.ProcessState)
			default:
				fmt.Fprintf(s.Stderr, "nimbus: %s: %v\n", p.name, werr)
			}
		}
	}
	<-ctx.Done()
	return nil
}

func (s *Script) environ() []string {
	drop := map[string]bool{
		EnvCustomData: true, EnvReadyFD: true,
		EnvInstanceName: true, EnvInstanceID: true, EnvPrivateIP: true, EnvBindIP: true,
		EnvConfine: true, EnvPorts: true, EnvCommands: true,
	}
	if s.Config.Dir != "" {
		drop["HOME"] = true
	}
	var env []string
	for _, kv := range s.Environ {
		k, _, _ := strings.Cut(kv, "=")
		if !drop[k] {
			env = append(env, kv)
		}
	}
	if s.Config.Dir != "" {
		env = append(env, "HOME="+s.Config.Dir)
	}
	return append(env,
		EnvInstanceName+"="+s.Config.Name,
		EnvInstanceID+"="+s.Config.InstanceID,
		EnvPrivateIP+"="+s.Config.PrivateIP.String(),
		EnvBindIP+"="+s.Config.BindIP.String(),
	)
}
