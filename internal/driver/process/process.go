// Package process is the portable instance driver: every instance is a
// supervised process group running `<nimbus> workload <image>` on the host's
// own network stack.
//
// Processes share the host's addresses, so each instance's customer address
// (its private IP, as the API reports it) is mapped 1:1 to a provider
// address on loopback from a pool (127.100.0.0/16 by default); the workload
// listens on the provider address and is told both. The data plane sends an
// instance's traffic to its provider address.
//
// Each instance's record (spec, provider address, PID and process start
// time) lives in the state directory, so a new driver over the same
// directory (nimbus restarted) re-adopts instances that are still running
// and reports the others as exited. An instance is its whole process group:
// when its main process ends, the rest of the group is killed, and Stop and
// Destroy kill the group, also for re-adopted instances. Killing nimbus
// leaves instances running, for re-adoption.
//
// It needs Linux 5.3 or later (pidfd); elsewhere New fails with
// driver.ErrNotSupported.
package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"nimbus/internal/driver"
	"nimbus/internal/workload"
)

// Defaults for Options.
var (
	// DefaultPool is the provider address pool on Linux, where all of
	// 127.0.0.0/8 answers on lo. (macOS only has 127.0.0.1: add aliases,
	// see docs/workloads.md.)
	DefaultPool = netip.MustParsePrefix("127.100.0.0/16")
)

const (
	// DefaultStopTimeout is how long Stop waits after SIGTERM before
	// SIGKILL when ctx has no deadline.
	DefaultStopTimeout = 5 * time.Second
	// DefaultReadyTimeout bounds how long Start waits for a workload to
	// report it serves.
	DefaultReadyTimeout = 30 * time.Second
	// killWait bounds the wait for a group to vanish after SIGKILL.
	killWait = 10 * time.Second
)

// Options configure a Driver. Only StateDir is required.
type Options struct {
	// StateDir holds the instance records and logs; it is created if
	// missing. One Driver at a time may use it (a lock file enforces it).
	StateDir string
	// Command is the program and leading arguments of a workload;
	// "workload" and the image kind are appended. Nil means the running
	// executable (os.Executable()), which is the nimbus binary in
	// production and the test binary in tests (see workload.RunIfReexec).
	Command []string
	// Env is extra environment for every workload, e.g.
	// {workload.ReexecEnv: "1"} in tests. A workload's environment is
	// otherwise clean: PATH, then Env, then the spec's Env, then the
	// NIMBUS_* variables.
	Env map[string]string
	// Pool is the provider address range; zero means DefaultPool.
	Pool netip.Prefix
	// StopTimeout is the grace between SIGTERM and SIGKILL when the Stop
	// context has no deadline; zero means DefaultStopTimeout.
	StopTimeout time.Duration
	// ReadyTimeout bounds Start's wait for the workload to serve; zero means
	// DefaultReadyTimeout.
	ReadyTimeout time.Duration
	// Logger receives instance lifecycle events; nil discards them.
	Logger *slog.Logger
	// User is the host identity workloads run as when nimbus runs as
	// root: its uid and gid, no supplementary groups. The zero value
	// means driver.DefaultUser (nobody, 65534:65534). When nimbus is not
	// root, workloads necessarily run as nimbus's own user and User is
	// ignored.
	User driver.User
	// InstancesDir is the parent of the instances' own directories (one
	// per instance, owned by the instance user, its working directory and
	// HOME; kept by Stop, removed by Destroy). It must lie outside Hide
	// and StateDir; it is created (mode 0711, owned by nimbus) if missing
	// and refused if it is a symlink or owned by another user. Empty means
	// <os.TempDir()>/nimbus-instances-<hash of StateDir>.
	InstancesDir string
	// Hide lists directories a workload must not see, such as nimbus's
	// data directory: each instance's mount namespace covers them (and
	// always StateDir) with an empty read-only tmpfs.
	Hide []string
}

// Driver runs instances as process groups. It is safe for concurrent use.
type Driver struct {
	opts Options
	log  *slog.Logger
	os   osOps
	lock *os.File
	boot string // the machine's boot id, see record.BootID
	conf confinement

	mu     sync.Mutex // guards everything below and every instance's rec and run
	insts  map[string]*instance
	pool   *pool
	closed bool
	wg     sync.WaitGroup // watch goroutines
}

// instance is one key's state. op serializes Start, Stop and Destroy of the
// key; rec and run are guarded by Driver.mu.
type instance struct {
	op   sync.Mutex
	gone bool // destroyed: callers holding it must look the key up again
	rec  *record
	run  *running // nil unless a watcher follows the process
}

// running follows one live process.
type running struct {
	p        *proc
	stopping bool          // Stop sent the signals: the end is a stop, not an exit
	done     chan struct{} // closed when the watcher has recorded the end or detached
}

var (
	_ driver.Driver    = (*Driver)(nil)
	_ driver.Describer = (*Driver)(nil)
	_ driver.Closer    = (*Driver)(nil)
)

// New opens the state directory, recovers the instances recorded there
// (re-adopting those still running, marking the others exited and killing
// what is left of their process groups) and returns the driver. ctx bounds
// the recovery only.
func New(ctx context.Context, opts Options) (*Driver, error) {
	if opts.StateDir == "" {
		return nil, errors.New("process: Options.StateDir is required")
	}
	ops, err := newOS()
	if err != nil {
		return nil, err
	}
	if opts.Command == nil {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("process: find own executable: %w", err)
		}
		opts.Command = []string{exe}
	}
	if !opts.Pool.IsValid() {
		opts.Pool = DefaultPool
	}
	if opts.StopTimeout <= 0 {
		opts.StopTimeout = DefaultStopTimeout
	}
	if opts.ReadyTimeout <= 0 {
		opts.ReadyTimeout = DefaultReadyTimeout
	}
	d := &Driver{
		opts:  opts,
		log:   opts.Logger,
		os:    ops,
		insts: make(map[string]*instance),
		pool:  newPool(opts.Pool),
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	d.boot = ops.bootID()
	if d.opts.StateDir, err = filepath.Abs(d.opts.StateDir); err != nil {
		return nil, fmt.Errorf("process: state dir: %w", err)
	}
	if d.conf, err = d.confinement(ops); err != nil {
		return nil, err
	}
	if d.conf.mode == "" {
		d.log.Warn("instances are not confined: they run as nimbus's user and see its processes", "reason", d.conf.why)
	}
	for _, sub := range []string{instancesDir, logsDir} {
		if err := os.MkdirAll(filepath.Join(opts.StateDir, sub), 0o755); err != nil {
			return nil, fmt.Errorf("process: state dir: %w", err)
		}
	}
	if d.lock, err = lockDir(opts.StateDir); err != nil {
		return nil, err
	}
	if err := d.recover(ctx); err != nil {
		d.lock.Close()
		return nil, err
	}
	return d, nil
}

func lockDir(dir string) (*os.File, error) {
	f, err := os.OpenFile(filepath.Join(dir, lockName), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("process: lock state dir: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("process: state dir %s is in use by another driver", dir)
		}
		return nil, fmt.Errorf("process: lock state dir: %w", err)
	}
	return f, nil
}

// recover loads every record and re-adopts or settles it.
func (d *Driver) recover(ctx context.Context) error {
	// Watchers of re-adopted instances wait for the recovery to finish.
	d.mu.Lock()
	defer d.mu.Unlock()
	recs, err := d.loadRecords()
	if err != nil {
		return err
	}
	for _, r := range recs {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("process: recover: %w", err)
		}
		if r.ProviderIP.IsValid() {
			if err := d.pool.claim(r.ProviderIP, r.Key); err != nil {
				d.log.Warn("instance address not recovered", "instance", r.Key, "err", err)
				r.ProviderIP = netip.Addr{}
			}
		}
		inst := &instance{rec: r}
		d.insts[r.Key] = inst
		if r.State != driver.StateRunning {
			continue
		}
		p, err := d.os.adopt(r.PID, r.StartTicks)
		if err == nil && r.BootID != d.boot {
			p.pidfd.Close()
			p, err = nil, errGone
		}
		switch {
		case err == nil && !d.os.hasExited(p):
			d.log.Info("instance re-adopted", "instance", r.Key, "pid", r.PID)
			d.follow(inst, p)
			continue
		case err == nil:
			// A zombie: it ended unwatched but is still our child (a
			// driver closed and reopened in one process). Reap it now.
			ex, _ := d.os.waitExit(p)
			r.ExitCode, r.Message = ex.code, "exited while no driver watched it: "+ex.msg
		case errors.Is(err, errGone):
			if r.BootID == d.boot {
				d.os.reapGroup(r.PID, r.StartTicks)
			}
			r.ExitCode, r.Message = -1, "exited while nimbus was not running; exit status unknown"
		default:
			return fmt.Errorf("process: recover %s: %w", r.Key, err)
		}
		r.State = driver.StateExited
		d.log.Info("instance ended while nimbus was down", "instance", r.Key, "pid", r.PID)
		if err := d.save(r); err != nil {
			return err
		}
	}
	// Workloads without a record (nimbus died between starting one and
	// saving its record) carry the marker: end them.
	keep := make(map[int]bool)
	for _, inst := range d.insts {
		if inst.run != nil {
			keep[inst.run.p.pid] = true
		}
	}
	for _, pgid := range d.os.sweep(d.marker(), keep) {
		d.log.Warn("orphan workload killed", "pgid", pgid)
	}
	return nil
}

// marker is the environment entry that tags this driver's workloads:
// envOwner with the state directory's absolute path.
func (d *Driver) marker() string {
	return envOwner + "=" + d.opts.StateDir
}

// envOwner tags every workload with the state directory of the driver that
// started it, so a restarted driver can find workloads it has no record of.
const envOwner = "NIMBUS_PROCESS_STATE_DIR"

// follow starts the watcher of p for inst. Called with d.mu held.
func (d *Driver) follow(inst *instance, p *proc) *running {
	run := &running{p: p, done: make(chan struct{})}
	inst.run = run
	d.wg.Add(1)
	go d.watch(inst, run)
	return run
}

// watch waits for the process to end and records how, or returns when the
// driver detaches (Close without stopping).
func (d *Driver) watch(inst *instance, run *running) {
	defer d.wg.Done()
	defer close(run.done)
	ex, err := d.os.waitExit(run.p)
	if err != nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if inst.run == run {
		inst.run = nil
	}
	r := inst.rec
	r.ExitCode = ex.code
	if run.stopping {
		r.State = driver.StateStopped
		r.Message = "stopped (" + ex.msg + ")"
	} else {
		r.State = driver.StateExited
		r.Message = ex.msg
		if line := lastLine(d.LogPath(r.Key), 300); line != "" {
			r.Message += ": " + line
		}
		d.log.Warn("instance exited", "instance", r.Key, "pid", r.PID, "reason", r.Message)
	}
	if inst.gone {
		return
	}
	if err := d.save(r); err != nil {
		d.log.Error("instance state not saved", "instance", r.Key, "err", err)
	}
}

// lookup returns key's instance with its op lock held, creating it if
// create is set; nil if it does not exist.
func (d *Driver) lookup(key string, create bool) (*instance, error) {
	for {
		d.mu.Lock()
		if d.closed {
			d.mu.Unlock()
			return nil, errors.New("process: driver is closed")
		}
		inst := d.insts[key]
		if inst == nil && create {
			inst = &instance{}
			d.insts[key] = inst
		}
		d.mu.Unlock()
		if inst == nil {
			return nil, nil
		}
		inst.op.Lock()
		if !inst.gone {
			return inst, nil
		}
		inst.op.Unlock()
	}
}

// Start runs spec's workload, or returns the status of the instance if it
// is already running. It returns once the workload serves (echo: every port
// bound; script: the script started), or with the workload's error, for
// example a port it may not bind (wrapping workload.ErrPrivilegedPort and
// driver.ErrNotSupported). An unknown image wraps driver.ErrUnknownImage.
// A stopped or exited instance starts again from spec, keeping its provider
// address; a running one keeps the spec it was started with (Stop, then
// Start, to apply a new one, as a reimage does).
func (d *Driver) Start(ctx context.Context, spec driver.InstanceSpec) (driver.Status, error) {
	if spec.Key == "" {
		return driver.Status{}, errors.New("process: start: empty instance key")
	}
	kind, err := workload.Resolve(spec.Image)
	if err != nil {
		return driver.Status{}, fmt.Errorf("process: start %s: %w", spec.Key, err)
	}
	if !spec.PrivateIP.IsValid() {
		return driver.Status{}, fmt.Errorf("process: start %s: no private IP", spec.Key)
	}
	if kind == workload.KindScript {
		if _, err := workload.DecodeCustomData(spec.CustomData); err != nil {
			return driver.Status{}, fmt.Errorf("process: start %s: %w", spec.Key, err)
		}
	}
	inst, err := d.lookup(spec.Key, true)
	if err != nil {
		return driver.Status{}, err
	}
	defer inst.op.Unlock()

	d.mu.Lock()
	if inst.run != nil {
		st := inst.rec.status()
		d.mu.Unlock()
		return st, nil
	}
	// Work on a copy: List and Inspect read inst.rec meanwhile.
	r := &record{Key: spec.Key}
	if inst.rec != nil {
		cp := *inst.rec
		r = &cp
	}
	allocated := false
	if !r.ProviderIP.IsValid() {
		if r.ProviderIP, err = d.pool.alloc(spec.Key); err != nil {
			if inst.rec == nil {
				d.dropLocked(inst, spec.Key)
			}
			d.mu.Unlock()
			return driver.Status{}, fmt.Errorf("process: start %s: %w", spec.Key, err)
		}
		allocated = true
	}
	d.mu.Unlock()

	p, ready, err := d.spawn(r, spec, kind)
	d.mu.Lock()
	if err != nil {
		if allocated {
			d.pool.release(r.ProviderIP, spec.Key)
		}
		if inst.rec == nil {
			d.dropLocked(inst, spec.Key)
		}
		d.mu.Unlock()
		return driver.Status{}, fmt.Errorf("process: start %s: %w", spec.Key, err)
	}
	inst.rec = r
	run := d.follow(inst, p)
	d.mu.Unlock()
	d.log.Info("instance started", "instance", spec.Key, "pid", r.PID, "providerIp", r.ProviderIP, "image", kind)

	if err := d.awaitReady(ctx, ready, inst, run); err != nil {
		d.stop(ctx, inst)
		d.mu.Lock()
		if run.stopping {
			// The workload failed on its own: report it as exited with
			// its error rather than as stopped by us.
			inst.rec.State = driver.StateExited
			inst.rec.Message = err.Error()
			d.save(inst.rec) //nolint:errcheck // the start error is what matters
		}
		d.mu.Unlock()
		return driver.Status{}, fmt.Errorf("process: start %s: %w", spec.Key, err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return inst.rec.status(), nil
}

// dropLocked forgets a never-started instance entry.
func (d *Driver) dropLocked(inst *instance, key string) {
	inst.gone = true
	if d.insts[key] == inst {
		delete(d.insts, key)
	}
}

// spawn starts the workload process for r (updating and saving r) and
// returns the read end of its ready pipe.
func (d *Driver) spawn(r *record, spec driver.InstanceSpec, kind workload.Kind) (*proc, *os.File, error) {
	logf, err := os.OpenFile(d.LogPath(spec.Key), os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("open log: %w", err)
	}
	defer logf.Close()
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, nil, err
	}
	defer devnull.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer readyW.Close()

	home, err := d.instanceDir(spec.Key)
	if err != nil {
		return nil, nil, err
	}
	argv := append(slices.Clone(d.opts.Command), "workload", string(kind))
	p, err := d.os.spawn(argv, d.environ(spec, r.ProviderIP, home), home, d.conf.iso, []*os.File{devnull, logf, logf, readyW})
	if err != nil {
		readyR.Close()
		return nil, nil, err
	}
	r.Spec, r.Kind = spec, kind
	r.State, r.PID, r.StartTicks, r.BootID = driver.StateRunning, p.pid, p.ticks, d.boot
	r.User = &d.conf.user
	r.StartedAt = time.Now().UTC().Truncate(time.Millisecond)
	r.ExitCode, r.Message = 0, ""
	if err := d.save(r); err != nil {
		// Without a record the process could be orphaned by a restart.
		d.os.signalGroup(p, syscall.SIGKILL) //nolint:errcheck // best effort on the error path
		d.os.waitExit(p)                     //nolint:errcheck // reaps
		readyR.Close()
		return nil, nil, err
	}
	return p, readyR, nil
}

func (d *Driver) environ(spec driver.InstanceSpec, pa netip.Addr, home string) []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	env := map[string]string{"PATH": path}
	maps.Copy(env, d.opts.Env)
	maps.Copy(env, spec.Env)
	env[workload.EnvInstanceName] = spec.Name
	env[workload.EnvInstanceID] = spec.InstanceID
	env[workload.EnvPrivateIP] = spec.PrivateIP.String()
	env[workload.EnvBindIP] = pa.String()
	env[workload.EnvReadyFD] = "3"
	env[envOwner] = d.opts.StateDir
	env[workload.EnvDir] = home
	for _, k := range []string{workload.EnvConfine, workload.EnvUser, workload.EnvHide} {
		delete(env, k)
	}
	if d.conf.mode != "" {
		env[workload.EnvConfine] = d.conf.mode
		env[workload.EnvUser] = d.conf.user.String()
		env[workload.EnvHide] = strings.Join(d.conf.hide, ":")
	}
	delete(env, workload.EnvCustomData)
	if spec.CustomData != "" {
		env[workload.EnvCustomData] = spec.CustomData
	}
	out := make([]string, 0, len(env))
	for _, k := range slices.Sorted(maps.Keys(env)) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// awaitReady reads the workload's ready pipe: "ok" means it serves;
// anything else, or the pipe closing without it, is the workload's error.
func (d *Driver) awaitReady(ctx context.Context, ready *os.File, inst *instance, run *running) error {
	defer ready.Close()
	deadline := time.Now().Add(d.opts.ReadyTimeout)
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	ready.SetReadDeadline(deadline) //nolint:errcheck // pipes are pollable
	stop := context.AfterFunc(ctx, func() { ready.SetReadDeadline(time.Now()) })
	defer stop()
	// The first line is "ok" or the start of the workload's error; an
	// error is followed by the workload's exit, which closes the pipe.
	br := bufio.NewReader(io.LimitReader(ready, 64<<10))
	first, err := br.ReadString('\n')
	if strings.TrimSpace(first) == workload.ReadyOK {
		return nil
	}
	rest, rerr := io.ReadAll(br)
	if err == nil {
		err = rerr
	}
	if errors.Is(err, io.EOF) {
		err = nil
	}
	msg := strings.TrimSpace(first + string(rest))
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("waiting for the workload to serve: %w", ctx.Err())
	case err != nil:
		return fmt.Errorf("workload did not report ready within %s: %w", d.opts.ReadyTimeout, err)
	case msg != "":
		return workloadError(msg)
	}
	// Closed without a word: it died before it could tell.
	<-run.done
	d.mu.Lock()
	defer d.mu.Unlock()
	return fmt.Errorf("workload ended before it served: %s", inst.rec.Message)
}

// startError is a workload's own error, as text from its ready pipe.
type startError struct {
	msg string
	is  []error
}

func (e *startError) Error() string   { return e.msg }
func (e *startError) Unwrap() []error { return e.is }

func workloadError(msg string) error {
	e := &startError{msg: msg}
	if strings.Contains(msg, workload.ErrPrivilegedPort.Error()) {
		e.is = []error{workload.ErrPrivilegedPort, driver.ErrNotSupported}
	}
	return e
}

// Stop ends the instance's process group: SIGTERM, then SIGKILL when ctx's
// deadline (or Options.StopTimeout) passes, and returns once no process of
// the group is left. The record stays, in state stopped. Unknown keys and
// instances not running succeed.
func (d *Driver) Stop(ctx context.Context, key string) error {
	inst, err := d.lookup(key, false)
	if err != nil || inst == nil {
		return err
	}
	defer inst.op.Unlock()
	return d.stop(ctx, inst)
}

// stop does Stop with inst.op held.
func (d *Driver) stop(ctx context.Context, inst *instance) error {
	d.mu.Lock()
	run := inst.run
	if run == nil {
		if r := inst.rec; r != nil && r.State == driver.StateRunning {
			r.State = driver.StateStopped
			d.save(r) //nolint:errcheck // best effort: the process is already gone
		}
		d.mu.Unlock()
		return nil
	}
	run.stopping = true
	key, pid := inst.rec.Key, run.p.pid
	d.mu.Unlock()

	grace := d.opts.StopTimeout
	if dl, ok := ctx.Deadline(); ok {
		grace = time.Until(dl)
	}
	if err := d.os.signalGroup(run.p, syscall.SIGTERM); err != nil {
		return fmt.Errorf("process: stop %s: %w", key, err)
	}
	t := time.NewTimer(max(grace, 0))
	defer t.Stop()
	killed := false
	select {
	case <-run.done:
	case <-t.C:
		killed = true
	case <-ctx.Done():
		killed = true
	}
	if killed {
		if err := d.os.signalGroup(run.p, syscall.SIGKILL); err != nil {
			return fmt.Errorf("process: stop %s: %w", key, err)
		}
		select {
		case <-run.done:
		case <-time.After(killWait):
			return fmt.Errorf("process: stop %s: pid %d did not die after SIGKILL", key, pid)
		}
	}
	// The watcher killed the rest of the group when the leader ended; wait
	// until the kernel has them gone.
	if err := d.awaitGroupGone(run.p); err != nil {
		return fmt.Errorf("process: stop %s: %w", key, err)
	}
	d.log.Info("instance stopped", "instance", key, "pid", pid, "killed", killed)
	return nil
}

// awaitGroupGone waits until no process of p's group is alive, killing
// stragglers again, for at most killWait.
func (d *Driver) awaitGroupGone(p *proc) error {
	deadline := time.Now().Add(killWait)
	for {
		left := d.os.groupMembers(p.pid, p.ticks)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("processes %v of group %d survived SIGKILL", left, p.pid)
		}
		d.os.reapGroup(p.pid, p.ticks)
		time.Sleep(5 * time.Millisecond)
	}
}

// Destroy stops the instance and forgets it: its record, log and provider
// address. Unknown keys succeed.
func (d *Driver) Destroy(ctx context.Context, key string) error {
	inst, err := d.lookup(key, false)
	if err != nil || inst == nil {
		return err
	}
	defer inst.op.Unlock()
	if err := d.stop(ctx, inst); err != nil {
		return fmt.Errorf("process: destroy: %w", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.forget(key); err != nil {
		return err
	}
	if err := os.RemoveAll(filepath.Join(d.conf.instancesDir, fileID(key))); err != nil {
		return fmt.Errorf("process: remove instance directory %s: %w", key, err)
	}
	if inst.rec != nil {
		d.pool.release(inst.rec.ProviderIP, key)
	}
	d.dropLocked(inst, key)
	d.log.Info("instance destroyed", "instance", key)
	return nil
}

// Inspect reports the instance's status; an unknown key is an error
// wrapping driver.ErrNotFound.
func (d *Driver) Inspect(ctx context.Context, key string) (driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if inst := d.insts[key]; inst != nil && inst.rec != nil {
		return inst.rec.status(), nil
	}
	return driver.Status{}, fmt.Errorf("process: inspect %s: %w", key, driver.ErrNotFound)
}

// List reports every instance with a record, sorted by key, including
// those recovered from the state directory.
func (d *Driver) List(ctx context.Context) ([]driver.Status, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	out := make([]driver.Status, 0, len(d.insts))
	for _, inst := range d.insts {
		if inst.rec != nil {
			out = append(out, inst.rec.status())
		}
	}
	slices.SortFunc(out, func(a, b driver.Status) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

// ProviderIP returns the provider address the instance key holds.
func (d *Driver) ProviderIP(key string) (netip.Addr, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if inst := d.insts[key]; inst != nil && inst.rec != nil {
		return inst.rec.ProviderIP, true
	}
	return netip.Addr{}, false
}

// Capabilities reports that addresses are mapped and client addresses are
// not preserved (the data plane proxies to loopback).
func (d *Driver) Capabilities() driver.Capabilities {
	return driver.Capabilities{RealAddresses: false, PreservesClientIP: false}
}

// Name is "process".
func (d *Driver) Name() string { return "process" }

// Close releases the driver. With stopAll it first stops every instance
// (in parallel); without, instances keep running for the next driver over
// the same state directory to re-adopt. Calls after Close fail.
func (d *Driver) Close(ctx context.Context, stopAll bool) error {
	var errs []error
	if stopAll {
		d.mu.Lock()
		keys := slices.Collect(maps.Keys(d.insts))
		d.mu.Unlock()
		var wg sync.WaitGroup
		var emu sync.Mutex
		for _, k := range keys {
			wg.Go(func() {
				if err := d.Stop(ctx, k); err != nil {
					emu.Lock()
					errs = append(errs, err)
					emu.Unlock()
				}
			})
		}
		wg.Wait()
	}
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return errors.Join(errs...)
	}
	d.closed = true
	var runs []*running
	for _, inst := range d.insts {
		if inst.run != nil {
			runs = append(runs, inst.run)
		}
	}
	d.mu.Unlock()
	// Wait for in-flight operations, then detach the watchers.
	for _, inst := range d.snapshot() {
		inst.op.Lock()
		inst.op.Unlock() //nolint:staticcheck // barrier: no operation is running past this
	}
	for _, run := range runs {
		run.p.pidfd.Close()
	}
	d.wg.Wait()
	if stopAll {
		os.Remove(d.conf.instancesDir) // best effort: only when no instance kept its directory
	}
	errs = append(errs, d.lock.Close())
	return errors.Join(errs...)
}

func (d *Driver) snapshot() []*instance {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Collect(maps.Values(d.insts))
}
