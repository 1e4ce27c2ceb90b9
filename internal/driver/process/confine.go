package process

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"nimbus/internal/driver"
	"nimbus/internal/workload"
)

// confinement is how the driver confines every workload, fixed at New.
//
// As root, a workload is born as root in new mount, pid and IPC
// namespaces, mounts its own /proc, covers the hidden paths, then switches
// to the instance user (no supplementary groups, no capabilities,
// no_new_privs) before it serves or runs customer code. Not as root, the
// workload runs as nimbus's own user, in a new user namespace as well when
// the kernel allows one (it holds no privilege outside it), else
// unconfined as before.
type confinement struct {
	mode         string // workload.ConfineRoot, workload.ConfineUserNS, or "": not confined
	why          string // when mode is "": why not
	user         driver.User
	iso          isolation
	instancesDir string
	hide         []string
}

func (d *Driver) confinement(ops osOps) (confinement, error) {
	c := confinement{user: d.opts.User, instancesDir: d.opts.InstancesDir}
	if c.user == (driver.User{}) {
		c.user = driver.DefaultUser
	}
	if c.instancesDir == "" {
		c.instancesDir = filepath.Join(os.TempDir(), "nimbus-instances-"+fileID(d.opts.StateDir)[:8])
	}
	var err error
	if c.instancesDir, err = filepath.Abs(c.instancesDir); err != nil {
		return c, fmt.Errorf("process: instances dir: %w", err)
	}
	c.hide = []string{d.opts.StateDir}
	for _, h := range d.opts.Hide {
		if h, err = filepath.Abs(h); err != nil {
			return c, fmt.Errorf("process: hide: %w", err)
		}
		if strings.Contains(h, ":") {
			return c, fmt.Errorf("process: hide %q: paths with ':' are not supported", h)
		}
		c.hide = append(c.hide, h)
	}
	for _, h := range c.hide {
		if within(c.instancesDir, h) || within(h, c.instancesDir) {
			return c, fmt.Errorf("process: instances dir %s and hidden directory %s must not contain each other", c.instancesDir, h)
		}
	}
	outer, mapped := singleIDNamespace()
	root := os.Geteuid() == 0 && !mapped
	switch {
	case root:
		if c.user.UID <= 0 || c.user.GID <= 0 {
			return c, fmt.Errorf("process: instance user %s: instances never run as root", c.user)
		}
		c.mode, c.iso = workload.ConfineRoot, rootIsolation()
	default:
		c.user = driver.User{UID: os.Geteuid(), GID: os.Getegid()}
		inner := c.user
		if mapped {
			// Root of a user namespace mapping one id (rootless nimbus):
			// it cannot switch to another user, so the workload gets a
			// user namespace of its own as for any unprivileged nimbus,
			// where it is the host user it really is, never uid 0. The
			// capabilities nimbus holds there are its namespace's, which
			// the workload's namespace cannot use.
			inner = outer
		}
		iso := userNSIsolation(inner, c.user)
		if hasNetBindService() && !mapped {
			// A capability of nimbus's (setcap on the binary) lets its
			// workloads bind ports 22 and 80; in a user namespace of
			// their own they would lose it for the host's network.
			c.why = "nimbus holds CAP_NET_BIND_SERVICE, which a user namespace would take from its workloads"
		} else if err := ops.probe(iso); err != nil {
			c.why = fmt.Sprintf("no user namespace for an unprivileged user here: %v", err)
		} else {
			c.mode, c.iso = workload.ConfineUserNS, iso
		}
	}
	mode := os.FileMode(0o711)
	if err := os.Mkdir(c.instancesDir, mode); err != nil && !os.IsExist(err) {
		return c, fmt.Errorf("process: instances dir: %w", err)
	}
	if err := checkOwned(c.instancesDir, os.Geteuid()); err != nil {
		return c, fmt.Errorf("process: instances dir: %w", err)
	}
	if err := os.Chmod(c.instancesDir, mode); err != nil {
		return c, fmt.Errorf("process: instances dir: %w", err)
	}
	return c, nil
}

// singleIDNamespace reports whether this process runs in a user namespace
// that maps exactly one user and one group (as `unshare -Ur` and rootless
// nimbus make), and returns the host's ids they stand for. Such a root
// holds capabilities over its own namespaces but can become no other user.
func singleIDNamespace() (outer driver.User, ok bool) {
	uid, uok := singleMapping("/proc/self/uid_map")
	gid, gok := singleMapping("/proc/self/gid_map")
	if !uok || !gok || uid == 0 || gid == 0 {
		return driver.User{}, false
	}
	return driver.User{UID: uid, GID: gid}, true
}

// singleMapping parses an id map of one line "0 OUTER 1".
func singleMapping(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(b))
	if len(f) != 3 || f[0] != "0" || f[2] != "1" {
		return 0, false
	}
	n, err := strconv.Atoi(f[1])
	return n, err == nil
}

// hasNetBindService reports whether this process holds CAP_NET_BIND_SERVICE
// (bit 10 of CapEff in /proc/self/status).
func hasNetBindService() bool {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(b), "\n") {
		if hex, ok := strings.CutPrefix(line, "CapEff:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
			return err == nil && n&(1<<10) != 0
		}
	}
	return false
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// checkOwned fails unless path is a directory (not a symlink) owned by uid.
func checkOwned(path string, uid int) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != uid {
		return fmt.Errorf("%s must be a directory owned by uid %d (not a symlink)", path, uid)
	}
	return nil
}

// instanceDir returns the instance key's own directory, creating it owned
// by the instance user with mode 0700: the instance can write there and
// no other user can (the parent is nimbus's, mode 0711).
func (d *Driver) instanceDir(key string) (string, error) {
	dir := filepath.Join(d.conf.instancesDir, fileID(key))
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("instance dir: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("instance dir: %w", err)
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("instance dir %s is not a directory", dir)
	}
	if d.conf.mode == workload.ConfineRoot {
		if err := os.Lchown(dir, d.conf.user.UID, d.conf.user.GID); err != nil {
			return "", fmt.Errorf("instance dir: %w", err)
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return "", fmt.Errorf("instance dir: %w", err)
	}
	return dir, nil
}

// InstanceUser is the host identity this driver's workloads run as.
func (d *Driver) InstanceUser() driver.User { return d.conf.user }
