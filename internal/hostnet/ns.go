package hostnet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// NetnsDir is where named network namespaces are bind-mounted: by default
// the place iproute2 uses, so `ip netns list` shows them. A rootless nimbus
// (internal/rootless) sets it, before it makes any namespace, to a tmpfs of
// its own mount namespace; nothing else changes it.
var NetnsDir = "/run/netns"

// Namespace is an open named network namespace. It keeps one *os.File on the
// namespace for its whole lifetime: netlink sockets dialled "into" a
// namespace by fd number must never see that number closed and reused (a
// reused fd once sent an nftables batch into the root namespace). Close
// releases the file; the namespace itself lives on until Delete.
// A Namespace is safe for concurrent use.
type Namespace struct {
	name string
	file *os.File
	h    *netlink.Handle
}

// Name returns the namespace name (the file name under NetnsDir).
func (ns *Namespace) Name() string { return ns.name }

// File returns the open namespace file. It stays valid until Close; callers
// must not close it.
func (ns *Namespace) File() *os.File { return ns.file }

// Fd returns the namespace file descriptor (valid until Close).
func (ns *Namespace) Fd() int { return int(ns.file.Fd()) }

// Handle returns a netlink handle whose sockets live inside the namespace.
func (ns *Namespace) Handle() *netlink.Handle { return ns.h }

// Close releases the netlink handle and the namespace file. The namespace
// itself is not removed (see Delete).
func (ns *Namespace) Close() error {
	if ns.h != nil {
		ns.h.Close()
		ns.h = nil
	}
	if ns.file == nil {
		return nil
	}
	err := ns.file.Close()
	ns.file = nil
	if err != nil {
		return fmt.Errorf("hostnet: close namespace %s: %w", ns.name, err)
	}
	return nil
}

// Do runs fn on an OS thread that has entered the namespace. The thread is
// discarded afterwards (the goroutine exits while still locked), so no other
// goroutine ever runs in the namespace by accident. Anything fn creates
// synchronously (sockets, child processes forked from this thread) belongs
// to the namespace.
func (ns *Namespace) Do(fn func() error) error {
	return doInNamespace(ns.file, fn)
}

func doInNamespace(f *os.File, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// The thread goes back to its own namespace before it is unlocked;
		// if it cannot, it stays locked and the runtime discards it when
		// the goroutine returns. (It must not stay elsewhere: were it the
		// main thread, which never exits, /proc/self/net would show the
		// other namespace for good.)
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			errc <- fmt.Errorf("hostnet: open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("hostnet: setns: %w", err)
			return
		}
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		errc <- fn()
	}()
	return <-errc
}

// Sysctl writes value to /proc/sys/<key> (key with slashes, e.g.
// "net/ipv4/ip_forward") inside the namespace.
func (ns *Namespace) Sysctl(key, value string) error {
	return ns.Do(func() error { return writeSysctl(key, value) })
}

func writeSysctl(key, value string) error {
	p := filepath.Join("/proc/sys", key)
	if err := os.WriteFile(p, []byte(value), 0o644); err != nil {
		return fmt.Errorf("hostnet: sysctl %s=%s: %w", key, value, err)
	}
	return nil
}

// OpenCurrentNamespace opens the namespace ordinary goroutines of this
// process run in. It reads the calling thread's link, never /proc/self: the
// process's main thread may be a wedged thread that a locked goroutine left
// inside another namespace, so /proc/self/ns/net can name the wrong one.
func OpenCurrentNamespace() (*os.File, error) {
	type res struct {
		f   *os.File
		err error
	}
	c := make(chan res, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		c <- res{f, err}
	}()
	r := <-c
	if r.err != nil {
		return nil, fmt.Errorf("hostnet: open current namespace: %w", r.err)
	}
	return r.f, nil
}

// NamespaceExists reports whether a named namespace is mounted.
func NamespaceExists(name string) bool {
	_, err := os.Stat(filepath.Join(NetnsDir, name))
	return err == nil
}

// OpenNamespace opens an existing named namespace.
func OpenNamespace(name string) (*Namespace, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	f, err := os.Open(filepath.Join(NetnsDir, name))
	if err != nil {
		return nil, fmt.Errorf("hostnet: open namespace %s: %w", name, err)
	}
	return newNamespace(name, f)
}

func newNamespace(name string, f *os.File) (*Namespace, error) {
	h, err := netlink.NewHandleAt(netns.NsHandle(int(f.Fd())))
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("hostnet: netlink handle in %s: %w", name, err)
	}
	return &Namespace{name: name, file: f, h: h}, nil
}

// EnsureNamespace opens the named namespace, creating it (bind-mounted under
// NetnsDir like `ip netns add`) when it does not exist. created reports
// whether it was new.
func EnsureNamespace(name string) (ns *Namespace, created bool, err error) {
	if err := validName(name); err != nil {
		return nil, false, err
	}
	if NamespaceExists(name) {
		ns, err := OpenNamespace(name)
		return ns, false, err
	}
	if err := os.MkdirAll(NetnsDir, 0o755); err != nil {
		return nil, false, fmt.Errorf("hostnet: %w", err)
	}
	target := filepath.Join(NetnsDir, name)
	errc := make(chan error, 1)
	go func() {
		// The thread moves into the new namespace. It goes back to the
		// original one before it is unlocked; if that fails it stays locked
		// and dies with the goroutine. (Were it the main thread, which can
		// never die, the process's /proc/self/net would show the new
		// namespace for good.)
		runtime.LockOSThread()
		orig, err := os.Open(fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid()))
		if err != nil {
			errc <- fmt.Errorf("hostnet: open current namespace: %w", err)
			return
		}
		defer orig.Close()
		if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("hostnet: unshare: %w", err)
			return
		}
		defer func() {
			if unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET) == nil {
				runtime.UnlockOSThread()
			}
		}()
		f, err := os.OpenFile(target, os.O_CREATE|os.O_EXCL|os.O_RDONLY, 0o444)
		if err != nil {
			errc <- fmt.Errorf("hostnet: create %s: %w", target, err)
			return
		}
		f.Close()
		src := fmt.Sprintf("/proc/%d/task/%d/ns/net", os.Getpid(), unix.Gettid())
		if err := unix.Mount(src, target, "none", unix.MS_BIND, ""); err != nil {
			os.Remove(target)
			errc <- fmt.Errorf("hostnet: bind mount %s: %w", target, err)
			return
		}
		errc <- nil
	}()
	if err := <-errc; err != nil {
		return nil, false, err
	}
	ns, err = OpenNamespace(name)
	if err != nil {
		return nil, true, err
	}
	// A fresh namespace starts with lo down.
	if lo, err := ns.h.LinkByName("lo"); err == nil {
		if err := ns.h.LinkSetUp(lo); err != nil {
			ns.Close()
			return nil, true, fmt.Errorf("hostnet: lo up in %s: %w", name, err)
		}
	}
	return ns, true, nil
}

// DeleteNamespace unmounts and removes a named namespace. The kernel frees it
// (and every interface inside, including veth peers elsewhere) once no
// process or open file references it. Deleting a missing namespace succeeds.
func DeleteNamespace(name string) error {
	if err := validName(name); err != nil {
		return err
	}
	p := filepath.Join(NetnsDir, name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("hostnet: unmount %s: %w", p, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hostnet: remove %s: %w", p, err)
	}
	return nil
}

// ListNamespaces returns the names of mounted namespaces starting with prefix.
func ListNamespaces(prefix string) ([]string, error) {
	ents, err := os.ReadDir(NetnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("hostnet: list namespaces: %w", err)
	}
	var out []string
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out, nil
}

func validName(name string) error {
	if name == "" || strings.ContainsAny(name, "/\x00") || name == "." || name == ".." {
		return fmt.Errorf("hostnet: invalid namespace name %q", name)
	}
	return nil
}
