package rootless

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// The broker protocol: one SOCK_SEQPACKET message per request, "tcp ADDR"
// or "udp ADDR" (ADDR an IP:port the host can bind); one reply, "ok" with
// the bound socket's descriptor attached (SCM_RIGHTS), or "err ERRNO TEXT".
// Requests are answered in order.

// serveBroker answers the child's listen requests on conn until the child
// closes its end (it exited). The parent keeps no socket: each one it
// opens is closed here once sent, so it lives exactly as long as the
// child holds it.
func serveBroker(conn *os.File) {
	buf := make([]byte, 512)
	for {
		n, _, _, _, err := unix.Recvmsg(int(conn.Fd()), buf, nil, 0)
		if err != nil || n == 0 {
			return
		}
		reply, fd := brokerListen(string(buf[:n]))
		var oob []byte
		if fd >= 0 {
			oob = unix.UnixRights(fd)
		}
		err = unix.Sendmsg(int(conn.Fd()), []byte(reply), oob, nil, 0)
		if fd >= 0 {
			unix.Close(fd)
		}
		if err != nil {
			return
		}
	}
}

// brokerListen binds what req asks for on the host and returns the reply
// and the socket's descriptor (-1 on error). Only loopback addresses are
// served: the broker opens nothing a remote host could reach.
func brokerListen(req string) (string, int) {
	network, addr, _ := strings.Cut(req, " ")
	ap, err := netip.ParseAddrPort(addr)
	if err != nil || !ap.Addr().IsLoopback() {
		return "err 22 only loopback addresses are forwarded to the host", -1
	}
	var f *os.File
	switch network {
	case "tcp":
		ln, lerr := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		if err = lerr; err == nil {
			f, err = ln.File()
			ln.Close()
		}
	case "udp":
		pc, lerr := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
		if err = lerr; err == nil {
			f, err = pc.File()
			pc.Close()
		}
	default:
		return "err 22 unknown network " + network, -1
	}
	if err != nil {
		errno := syscall.EINVAL
		errors.As(err, &errno)
		msg := err.Error()
		if errno == syscall.EACCES {
			start := "1024"
			if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
				start = strings.TrimSpace(string(b))
			}
			msg = "ports below " + start + " need privilege on the host (net.ipv4.ip_unprivileged_port_start)"
		}
		return fmt.Sprintf("err %d %s", int(errno), msg), -1
	}
	fd, err := unix.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return fmt.Sprintf("err %d dup: %v", int(syscall.EMFILE), err), -1
	}
	return "ok", fd
}

// broker is the child's end of the broker socket.
type broker struct {
	mu   sync.Mutex
	conn *os.File
}

// listen asks the parent for a socket bound to addr on the host and
// returns it as a file the caller owns.
func (b *broker) listen(network string, addr netip.AddrPort) (*os.File, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	fd := int(b.conn.Fd())
	if err := unix.Sendmsg(fd, []byte(network+" "+addr.String()), nil, nil, 0); err != nil {
		return nil, fmt.Errorf("rootless: ask the host for %s %s: %w", network, addr, err)
	}
	buf, oob := make([]byte, 512), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil || n == 0 {
		return nil, fmt.Errorf("rootless: host listen %s %s: no answer from the parent: %v", network, addr, err)
	}
	reply := string(buf[:n])
	if reply != "ok" {
		f := strings.SplitN(reply, " ", 3)
		code, _ := strconv.Atoi(f[min(1, len(f)-1)])
		msg := ""
		if len(f) == 3 {
			msg = f[2]
		}
		return nil, &HostError{Network: network, Addr: addr, Errno: syscall.Errno(code), Msg: msg}
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("rootless: host listen %s %s: no descriptor in the answer", network, addr)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		return nil, fmt.Errorf("rootless: host listen %s %s: no descriptor in the answer", network, addr)
	}
	return os.NewFile(uintptr(fds[0]), network+":"+addr.String()), nil
}

// HostError is why the host would not bind an address for the child. It
// matches its Errno (errors.Is(err, syscall.EADDRINUSE), EACCES for a port
// below the host's net.ipv4.ip_unprivileged_port_start).
type HostError struct {
	Network string
	Addr    netip.AddrPort
	Errno   syscall.Errno
	Msg     string
}

// Error says what the host refused and why.
func (e *HostError) Error() string {
	return fmt.Sprintf("host listen %s %s: %s", e.Network, e.Addr, e.Msg)
}

// Unwrap returns the errno.
func (e *HostError) Unwrap() error { return e.Errno }
