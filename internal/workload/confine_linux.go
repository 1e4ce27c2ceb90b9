package workload

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"nimbus/internal/driver"
)

// confine does what EnvConfine asks of a workload the driver started in
// its own pid and mount namespaces, before anything else runs: make every
// mount private (nothing propagates to the host), mount a /proc of the new
// pid namespace over the host's (the instance sees only its own processes),
// cover the EnvHide paths (nimbus's data directory) with an empty tmpfs
// and hide the other instances' directories (a tmpfs over their parent with
// only this instance's directory bound back in).
//
// For ConfineRoot it returns the function that switches to the instance
// user; Main calls it once the echo image has bound its ports (below 1024
// on the host's loopback for the process driver) and before the script
// image runs customer code. For ConfineUserNS it does not return on
// success: it re-executes the workload without capabilities. Without
// EnvConfine it does nothing. It must run on the thread that later starts
// the customData script (Main locks it): no_new_privs is set on it.
func confine(getenv func(string) string, environ []string) (drop func() error, err error) {
	mode, dir := getenv(EnvConfine), getenv(EnvDir)
	switch mode {
	case "":
		return func() error { return nil }, nil
	case ConfineRoot, ConfineUserNS:
	default:
		return nil, fmt.Errorf("workload: %s=%q: want %s or %s", EnvConfine, mode, ConfineRoot, ConfineUserNS)
	}
	if os.Getpid() != 1 {
		return nil, fmt.Errorf("workload: %s=%s but this is not PID 1 of its own pid namespace", EnvConfine, mode)
	}
	var hide []string
	if h := getenv(EnvHide); h != "" {
		hide = strings.Split(h, ":")
	}
	if err := mountOwn(dir, hide); err != nil {
		return nil, fmt.Errorf("workload: confine: %w", err)
	}
	if mode == ConfineUserNS {
		return nil, reexecUnprivileged(dir, environ)
	}
	u, err := driver.ParseUser(getenv(EnvUser))
	if err != nil {
		return nil, fmt.Errorf("workload: %s: %w", EnvUser, err)
	}
	return func() error { return dropTo(u, dir) }, nil
}

// mountOwn gives the mount namespace its own /proc, covers the paths of
// hide and hides the siblings of dir.
func mountOwn(dir string, hide []string) error {
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mount /proc: %w", err)
	}
	for _, p := range hide {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("hide %q: not an absolute path", p)
		}
		err := unix.Mount("tmpfs", p, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0555,size=4k")
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("hide %s: %w", p, err)
		}
	}
	if dir == "" {
		return nil
	}
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("open instance directory: %w", err)
	}
	defer unix.Close(fd)
	parent := filepath.Dir(dir)
	if err := unix.Mount("tmpfs", parent, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755,size=64k"); err != nil {
		return fmt.Errorf("hide other instances: %w", err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return fmt.Errorf("hide other instances: %w", err)
	}
	if err := unix.Mount(fmt.Sprintf("/proc/self/fd/%d", fd), dir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind instance directory: %w", err)
	}
	return nil
}

// dropTo switches every thread to u with no supplementary groups (setuid
// from root clears all capabilities), checks that root cannot be regained,
// sets no_new_privs on this thread (so setuid programs of the host cannot
// raise what the script starts from it) and enters dir.
func dropTo(u driver.User, dir string) error {
	if err := syscall.Setgroups([]int{}); err != nil {
		return fmt.Errorf("workload: drop privileges: setgroups: %w", err)
	}
	if err := syscall.Setgid(u.GID); err != nil {
		return fmt.Errorf("workload: drop privileges: setgid %d: %w", u.GID, err)
	}
	if err := syscall.Setuid(u.UID); err != nil {
		return fmt.Errorf("workload: drop privileges: setuid %d: %w", u.UID, err)
	}
	if os.Getuid() != u.UID || os.Geteuid() != u.UID || os.Getgid() != u.GID || os.Getegid() != u.GID {
		return fmt.Errorf("workload: drop privileges: still uid %d gid %d", os.Geteuid(), os.Getegid())
	}
	if syscall.Setuid(0) == nil {
		return errors.New("workload: drop privileges: root could be regained")
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("workload: no_new_privs: %w", err)
	}
	return enter(dir)
}

// reexecUnprivileged executes this program again, in place (same PID), from
// a thread with no ambient capabilities and no_new_privs: the uid is not 0
// in the user namespace, so the new program holds no capability at all.
func reexecUnprivileged(dir string, environ []string) error {
	runtime.LockOSThread() // the thread that execs is the one prepared here
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("workload: no_new_privs: %w", err)
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil {
		return fmt.Errorf("workload: clear ambient capabilities: %w", err)
	}
	if err := enter(dir); err != nil {
		return err
	}
	env := make([]string, 0, len(environ))
	for _, kv := range environ {
		if !strings.HasPrefix(kv, EnvConfine+"=") {
			env = append(env, kv)
		}
	}
	err := syscall.Exec("/proc/self/exe", os.Args, env)
	return fmt.Errorf("workload: re-execute without capabilities: %w", err)
}

func enter(dir string) error {
	if dir == "" {
		dir = "/"
	}
	if err := os.Chdir(dir); err != nil {
		return fmt.Errorf("workload: enter instance directory: %w", err)
	}
	return nil
}
