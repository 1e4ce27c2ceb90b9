package process

import (
	"errors"
	"os"
	"syscall"
)

// osOps is the operating-system part of the driver: process groups, exit
// notification and process identity. newOS returns the one for this OS or
// an error wrapping driver.ErrNotSupported.
type osOps interface {
	// spawn starts argv as the leader of a new process group, confined
	// by iso, with files as its descriptors 0, 1, 2, 3...
	spawn(argv, env []string, dir string, iso isolation, files []*os.File) (*proc, error)
	// probe reports whether a process can be started confined by iso
	// (user namespaces may be disabled or restricted for unprivileged
	// users).
	probe(iso isolation) error
	// adopt returns a handle on pid if it is still the process that started
	// at ticks, else an error wrapping errGone.
	adopt(pid int, ticks uint64) (*proc, error)
	// waitExit blocks until the leader exits (then kills the rest of its
	// group and reaps the leader if it is our child) or the handle is
	// closed (errDetached).
	waitExit(p *proc) (exit, error)
	// hasExited reports, without blocking, whether p's leader has exited.
	hasExited(p *proc) bool
	// signalGroup signals every process of p's group.
	signalGroup(p *proc, sig syscall.Signal) error
	// reapGroup kills what remains of the group of a leader (pid, ticks)
	// that is gone.
	reapGroup(pid int, ticks uint64)
	// groupMembers lists the live processes of the group of leader (pid,
	// ticks), none if pid now names another process (then the group's ID
	// was free to reuse, so the group is empty).
	groupMembers(pid int, ticks uint64) []int
	// sweep kills the process groups of live processes whose environment
	// holds the entry marker ("NAME=value"), except the groups in keep, and
	// returns the groups it killed.
	sweep(marker string, keep map[int]bool) []int
	// bootID names the current boot of the machine ("" if unknown).
	bootID() string
}

// proc is a handle on a running group leader. Closing pidfd detaches a
// waitExit in progress.
type proc struct {
	pid   int
	ticks uint64
	pidfd *os.File
}

// exit is how a leader ended.
type exit struct {
	code  int
	known bool // false when the leader was not our child: code is -1
	msg   string
}

var (
	errGone     = errors.New("process: gone")
	errDetached = errors.New("process: detached")
)
