package rootless

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Host is a rootless child's way to the host's network: it opens
// listeners on the host's loopback through the parent. It is safe for
// concurrent use. A nil *Host means nimbus is not a rootless child.
type Host struct {
	b *broker
	// NetnsDir is where this child keeps its named network namespaces: a
	// tmpfs of its own mount namespace (hostnet.NetnsDir is set to it), so
	// the host's /run/netns is neither seen nor touched.
	NetnsDir string
	// UID and GID are the host's ids of the user nimbus runs as; root of
	// the child's user namespace stands for them.
	UID, GID int
	// NetDir is a directory holding the host's socket tables (tcp, tcp6)
	// as this child sees them: the host user's sockets show uid 0, other
	// users' the overflow uid. It is for peercred.NetDirs, so the
	// managed-identity endpoint checks who is calling from the host.
	NetDir string
}

// Enter prepares a rootless child right at the start of main, before any
// other goroutine runs: it makes the child's mounts private, mounts a /proc
// of its pid namespace, a private tmpfs for its named network namespaces,
// brings loopback up and keeps the broker socket away from instances
// (close-on-exec). Outside a child (EnvChild unset) it returns nil, nil.
func Enter() (*Host, error) {
	if os.Getenv(EnvChild) != "1" {
		return nil, nil
	}
	os.Unsetenv(EnvChild)
	if os.Getpid() != 1 {
		return nil, fmt.Errorf("rootless: %s=1 but this is not the init of a pid namespace", EnvChild)
	}
	uid, uok := outerID("/proc/self/uid_map")
	gid, gok := outerID("/proc/self/gid_map")
	if !uok || !gok {
		return nil, errors.New("rootless: not root of a one-id user namespace")
	}
	unix.CloseOnExec(brokerFd)
	unix.CloseOnExec(hostNet)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("rootless: make mounts private: %w", err)
	}
	if err := unix.Mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return nil, fmt.Errorf("rootless: mount /proc of the pid namespace: %w", err)
	}
	dir := "/run/netns"
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		dir = filepath.Join(os.TempDir(), fmt.Sprintf("nimbus-rootless-%d", uid), "netns")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("rootless: namespace directory: %w", err)
		}
	}
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "mode=0755,size=1m"); err != nil {
		return nil, fmt.Errorf("rootless: mount %s: %w", dir, err)
	}
	lo, err := netlink.LinkByName("lo")
	if err == nil {
		err = netlink.LinkSetUp(lo)
	}
	if err != nil {
		return nil, fmt.Errorf("rootless: loopback up: %w", err)
	}
	return &Host{b: &broker{conn: os.NewFile(brokerFd, "broker")}, NetnsDir: dir, UID: uid, GID: gid,
		NetDir: fmt.Sprintf("/proc/self/fd/%d", hostNet)}, nil
}

// outerID parses an id map of one line "0 OUTER 1".
func outerID(path string) (int, bool) {
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

// loopbackAddr parses a listen address for the host: IP:port with a
// loopback IP, or localhost:port.
func loopbackAddr(address string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("rootless: listen address %q: %w", address, err)
	}
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip, err := netip.ParseAddr(host)
	p, perr := strconv.ParseUint(port, 10, 16)
	if err != nil || perr != nil || !ip.IsLoopback() {
		return netip.AddrPort{}, fmt.Errorf("rootless: listen address %q: a rootless nimbus listens on the host's loopback only (127.0.0.1:PORT)", address)
	}
	return netip.AddrPortFrom(ip, uint16(p)), nil
}

// Listen listens for TCP on address (a loopback IP:port, or localhost:port)
// both on the host, through the parent, and inside the child's network
// namespace: connections from the host and from nimbus's own namespace (the
// demo's client) arrive on the one listener. Port 0 takes a free port on the
// host and the same port inside. Addr is the host's.
func (h *Host) Listen(network, address string) (net.Listener, error) {
	if network != "tcp" && network != "tcp4" {
		return nil, fmt.Errorf("rootless: listen %s: only tcp", network)
	}
	ap, err := loopbackAddr(address)
	if err != nil {
		return nil, err
	}
	hl, err := h.listenTCP(ap)
	if err != nil {
		return nil, err
	}
	ap = hl.Addr().(*net.TCPAddr).AddrPort()
	ll, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		hl.Close()
		return nil, fmt.Errorf("rootless: listen inside on %s: %w", ap, err)
	}
	return newDualListener(hl, ll), nil
}

// listenTCP returns a TCP listener on the host's ap.
func (h *Host) listenTCP(ap netip.AddrPort) (*net.TCPListener, error) {
	f, err := h.b.listen("tcp", ap)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	l, err := net.FileListener(f)
	if err != nil {
		return nil, fmt.Errorf("rootless: host listener %s: %w", ap, err)
	}
	return l.(*net.TCPListener), nil
}

// listenUDP returns a UDP socket bound to the host's ap.
func (h *Host) listenUDP(ap netip.AddrPort) (*net.UDPConn, error) {
	f, err := h.b.listen("udp", ap)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("rootless: host socket %s: %w", ap, err)
	}
	return c.(*net.UDPConn), nil
}

// dualListener accepts from two listeners.
type dualListener struct {
	ls    [2]net.Listener
	conns chan net.Conn
	done  chan struct{}
	once  sync.Once
	wg    sync.WaitGroup
}

func newDualListener(a, b net.Listener) *dualListener {
	d := &dualListener{ls: [2]net.Listener{a, b}, conns: make(chan net.Conn), done: make(chan struct{})}
	for _, l := range d.ls {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for {
				c, err := l.Accept()
				if err != nil {
					var ne net.Error
					if errors.As(err, &ne) && ne.Timeout() {
						continue
					}
					return
				}
				select {
				case d.conns <- c:
				case <-d.done:
					c.Close()
					return
				}
			}
		}()
	}
	return d
}

// Accept returns the next connection from either listener.
func (d *dualListener) Accept() (net.Conn, error) {
	select {
	case c := <-d.conns:
		return c, nil
	case <-d.done:
		return nil, net.ErrClosed
	}
}

// Close closes both listeners and waits for their accept loops.
func (d *dualListener) Close() error {
	var err error
	d.once.Do(func() {
		close(d.done)
		err = errors.Join(d.ls[0].Close(), d.ls[1].Close())
		d.wg.Wait()
	})
	return err
}

// Addr is the host listener's address.
func (d *dualListener) Addr() net.Addr { return d.ls[0].Addr() }
