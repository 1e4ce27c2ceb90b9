//go:build linux

package process

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nimbus/internal/driver"
)

// linuxOS runs process groups with pidfds (Linux 5.3+) and identifies
// processes by /proc/<pid>/stat start time.
type linuxOS struct{}

func newOS() (osOps, error) {
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return nil, fmt.Errorf("process: pidfd_open: %w (Linux 5.3 or later is needed)", err)
	}
	unix.Close(fd)
	return linuxOS{}, nil
}

// spawn starts argv as the leader of a new process group with files as its
// descriptors 0, 1, 2, 3..., and returns a handle on it.
func (linuxOS) spawn(argv, env []string, dir string, iso isolation, files []*os.File) (*proc, error) {
	fds := make([]uintptr, len(files))
	for i, f := range files {
		fds[i] = f.Fd()
	}
	pidfd := -1
	sys := iso.sysProcAttr()
	sys.Setpgid, sys.PidFD = true, &pidfd
	attr := &syscall.ProcAttr{Dir: dir, Env: env, Files: fds, Sys: sys}
	pid, err := syscall.ForkExec(argv[0], argv, attr)
	runtime.KeepAlive(files)
	if err != nil {
		return nil, fmt.Errorf("exec %s: %w", argv[0], err)
	}
	if pidfd < 0 {
		// The kernel has no CLONE_PIDFD: pidfd_open right away; the child
		// cannot have been reaped because only we wait for it.
		if pidfd, err = unix.PidfdOpen(pid, 0); err != nil {
			syscall.Kill(-pid, syscall.SIGKILL)
			var ws syscall.WaitStatus
			syscall.Wait4(pid, &ws, 0, nil)
			return nil, fmt.Errorf("process: pidfd_open %d: %w", pid, err)
		}
	}
	ticks, err := startTicks(pid)
	if err != nil {
		unix.Close(pidfd)
		syscall.Kill(-pid, syscall.SIGKILL)
		var ws syscall.WaitStatus
		syscall.Wait4(pid, &ws, 0, nil)
		return nil, err
	}
	return newProc(pid, ticks, pidfd)
}

// adopt opens a handle on pid if it is still the process that started at
// ticks; errGone otherwise.
func (linuxOS) adopt(pid int, ticks uint64) (*proc, error) {
	if pid <= 0 {
		return nil, errGone
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if errors.Is(err, unix.ESRCH) {
		return nil, errGone
	}
	if err != nil {
		return nil, fmt.Errorf("process: pidfd_open %d: %w", pid, err)
	}
	// The pidfd pins the identity: check the start time after opening it.
	if t, err := startTicks(pid); err != nil || t != ticks {
		unix.Close(fd)
		return nil, errGone
	}
	return newProc(pid, ticks, fd)
}

func newProc(pid int, ticks uint64, pidfd int) (*proc, error) {
	if err := unix.SetNonblock(pidfd, true); err != nil {
		unix.Close(pidfd)
		return nil, fmt.Errorf("process: pidfd: %w", err)
	}
	// A non-blocking descriptor makes a pollable os.File: waiting for the
	// exit parks a goroutine in the runtime poller, not a thread.
	return &proc{pid: pid, ticks: ticks, pidfd: os.NewFile(uintptr(pidfd), "pidfd:"+strconv.Itoa(pid))}, nil
}

// waitExit blocks until p's leader exits or p.pidfd is closed (detach:
// errDetached). On exit it kills what is left of the group, then reaps the
// leader if it is our child and reports how it ended.
func (linuxOS) waitExit(p *proc) (exit, error) {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return exit{}, err
	}
	err = rc.Read(func(fd uintptr) bool {
		n, perr := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
		return perr == nil && n > 0
	})
	if err != nil {
		return exit{}, errDetached
	}
	// The leader is a zombie (our child) or gone (adopted): its PID still
	// names the group while any member is alive, so the group kill cannot
	// hit anyone else.
	killGroup(p.pid, p.ticks, syscall.SIGKILL)
	var ws syscall.WaitStatus
	wpid, werr := syscall.Wait4(p.pid, &ws, syscall.WNOHANG, nil)
	p.pidfd.Close()
	switch {
	case werr == nil && wpid == p.pid && ws.Exited():
		return exit{code: ws.ExitStatus(), known: true, msg: fmt.Sprintf("exited with code %d", ws.ExitStatus())}, nil
	case werr == nil && wpid == p.pid && ws.Signaled():
		sig := ws.Signal()
		return exit{code: 128 + int(sig), known: true, msg: "killed by signal " + unix.SignalName(sig)}, nil
	}
	return exit{code: -1, msg: "exited while not a child of this nimbus process; exit status unknown"}, nil
}

func (linuxOS) hasExited(p *proc) bool {
	rc, err := p.pidfd.SyscallConn()
	if err != nil {
		return false
	}
	var n int
	rc.Control(func(fd uintptr) {
		n, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
	})
	return n > 0
}

// signalGroup sends sig to the group p leads; the pidfd guarantees the
// leader's PID was not reused while we hold it unreaped or open.
func (linuxOS) signalGroup(p *proc, sig syscall.Signal) error {
	err := syscall.Kill(-p.pid, sig)
	if err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("process: kill group %d: %w", p.pid, err)
	}
	return nil
}

// reapGroup kills what is left of the group whose leader (pid, ticks) is
// gone: used for records of instances that ended while nimbus was down.
func (linuxOS) reapGroup(pid int, ticks uint64) {
	killGroup(pid, ticks, syscall.SIGKILL)
}

// killGroup sends sig to process group pgid unless pgid now names an
// unrelated process (the leader's PID reused: then no member of the old
// group can exist, since a PID is not reused while it names a live group).
func killGroup(pgid int, ticks uint64, sig syscall.Signal) {
	if pgid <= 1 {
		return
	}
	if t, err := startTicks(pgid); err == nil && t != ticks {
		return
	}
	syscall.Kill(-pgid, sig)
}

func (linuxOS) groupMembers(pgid int, ticks uint64) []int {
	if t, err := startTicks(pgid); err == nil && t != ticks {
		return nil
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' || st.pgrp != pgid {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}

func (linuxOS) sweep(marker string, keep map[int]bool) []int {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(marker)
	var killed []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		st, err := readStat(pid)
		if err != nil || st.state == 'Z' || st.state == 'X' || keep[st.pgrp] || st.pgrp <= 1 {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(kv []byte) bool { return bytes.Equal(kv, want) }) {
			continue
		}
		syscall.Kill(-st.pgrp, syscall.SIGKILL)
		keep[st.pgrp] = true // once per group
		killed = append(killed, st.pgrp)
	}
	return killed
}

func (linuxOS) bootID() string {
	b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

type stat struct {
	state byte
	pgrp  int
	ticks uint64
}

// readStat parses /proc/<pid>/stat. The command name (field 2) may hold
// spaces and parentheses, so parsing starts after its last ')'.
func readStat(pid int) (stat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return stat{}, err
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return stat{}, fmt.Errorf("process: malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	// f[0] is field 3 (state), f[2] field 5 (pgrp), f[19] field 22 (starttime).
	if len(f) < 20 {
		return stat{}, fmt.Errorf("process: short /proc/%d/stat", pid)
	}
	pgrp, err1 := strconv.Atoi(f[2])
	ticks, err2 := strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || len(f[0]) != 1 {
		return stat{}, fmt.Errorf("process: malformed /proc/%d/stat", pid)
	}
	return stat{state: f[0][0], pgrp: pgrp, ticks: ticks}, nil
}

func startTicks(pid int) (uint64, error) {
	st, err := readStat(pid)
	if err != nil {
		return 0, fmt.Errorf("process: start time of %d: %w", pid, err)
	}
	return st.ticks, nil
}

// isolation is how spawn confines a workload: the namespaces it is born in
// and, for a user namespace, the id maps and the ambient capabilities it
// execs with. The zero value confines nothing.
type isolation struct {
	cloneflags     uintptr
	uidMap, gidMap []syscall.SysProcIDMap
	ambient        []uintptr
}

// rootIsolation: new mount, pid and IPC namespaces; the workload starts
// as root and switches to the instance user itself (workload.ConfineRoot).
func rootIsolation() isolation {
	return isolation{cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC}
}

// userNSIsolation: new user, mount, pid and IPC namespaces mapping inner
// (the workload's ids in its namespace) to outer (nimbus's own ids; they
// are the same unless nimbus itself is root of a one-id user namespace),
// with CAP_SYS_ADMIN of the new user namespace (to mount its /proc) as an
// ambient capability the workload then sheds (workload.ConfineUserNS).
func userNSIsolation(inner, outer driver.User) isolation {
	return isolation{
		cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID | syscall.CLONE_NEWIPC,
		uidMap:     []syscall.SysProcIDMap{{ContainerID: inner.UID, HostID: outer.UID, Size: 1}},
		gidMap:     []syscall.SysProcIDMap{{ContainerID: inner.GID, HostID: outer.GID, Size: 1}},
		ambient:    []uintptr{unix.CAP_SYS_ADMIN},
	}
}

func (iso isolation) sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{
		Cloneflags:  iso.cloneflags,
		UidMappings: iso.uidMap,
		GidMappings: iso.gidMap,
		AmbientCaps: iso.ambient,
		// An unprivileged process may map its gid only after denying
		// setgroups in the new namespace.
		GidMappingsEnableSetgroups: false,
	}
}

// probe starts `/bin/sh -c "exit 0"` confined by iso and waits for it.
func (linuxOS) probe(iso isolation) error {
	attr := &syscall.ProcAttr{Dir: "/", Sys: iso.sysProcAttr()}
	pid, err := syscall.ForkExec("/bin/sh", []string{"/bin/sh", "-c", "exit 0"}, attr)
	if err != nil {
		return err
	}
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(pid, &ws, 0, nil); err != nil {
		return err
	}
	if !ws.Exited() || ws.ExitStatus() != 0 {
		return fmt.Errorf("probe process ended with status %v", ws)
	}
	return nil
}
