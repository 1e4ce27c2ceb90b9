package peercred

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Address plan: everything is on loopback (127.0.0.1, ::1); the parser
// cases use 127.0.0.1/127.0.0.2 and 2001:db8::1 as text only.

const header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n"

// littleEndian reports whether the kernel prints addresses byte-swapped
// (as it does on x86 and arm64), which the fixed texts below assume.
func littleEndian() bool {
	return binary.NativeEndian.Uint16([]byte{1, 0}) == 1
}

func TestParseTable(t *testing.T) {
	if !littleEndian() {
		t.Skip("the fixed tables are the text of a little-endian kernel")
	}
	for _, tc := range []struct {
		name  string
		text  string
		want  []Entry
		isErr bool
	}{
		{"header only", header, nil, false},
		{"ipv4 listen and established", header +
			"   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n" +
			"   1: 0200007F:B569 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 67890 1 0000000000000000 20 4 30 10 -1\n",
			[]Entry{
				{Local: ap("127.0.0.1:8080"), Remote: ap("0.0.0.0:0"), State: Listen, UID: 0, Inode: 12345},
				{Local: ap("127.0.0.2:46441"), Remote: ap("127.0.0.1:8080"), State: Established, UID: 1000, Inode: 67890},
			}, false},
		{"ipv6 loopback and mapped", header +
			"   0: 00000000000000000000000001000000:20FB 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000 65534        0 4242 1 0000000000000000 20 4 30 10 -1\n" +
			"   1: 0000000000000000FFFF00000100007F:20FB 0000000000000000FFFF00000100007F:D432 08 00000000:00000000 00:00000000 00000000     0        0 4243 1 0000000000000000 20 4 30 10 -1\n" +
			"   2: B80D0120000000000000000001000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0000000000000000 20 4 30 10 -1\n",
			[]Entry{
				{Local: ap("[::1]:8443"), Remote: ap("[::1]:54321"), State: Established, UID: 65534, Inode: 4242},
				{Local: ap("[::ffff:127.0.0.1]:8443"), Remote: ap("[::ffff:127.0.0.1]:54322"), State: CloseWait, UID: 0, Inode: 4243},
				{Local: ap("[2001:db8::1]:80"), Remote: ap("[::]:0"), State: Listen, Inode: 1},
			}, false},
		{"time wait", header +
			"   3: 0202587F:B569 0100587F:93F9 06 00000000:00000000 03:000002CB 00000000     0        0 0 3 0000000059af1e11\n",
			[]Entry{{Local: ap("127.88.2.2:46441"), Remote: ap("127.88.0.1:37881"), State: TimeWait}}, false},
		{"empty", "", nil, true},
		{"wrong header", "hello world\n", nil, true},
		{"short line", header + "   0: 0100007F:1F90 00000000:0000 0A\n", nil, true},
		{"bad address", header + "   0: 0100007G:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n", nil, true},
		{"bad port", header + "   0: 0100007F:1F9 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n", nil, true},
		{"mixed families", header + "   0: 0100007F:1F90 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n", nil, true},
		{"negative uid", header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 -1 0 1 1\n", nil, true},
		{"uid too large", header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 4294967296 0 1 1\n", nil, true},
		{"bad state", header + "   0: 0100007F:1F90 00000000:0000 X 00000000:00000000 00:00000000 00000000 0 0 1 1\n", nil, true},
		{"no slot colon", header + "   0 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1 1\n", nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseTable([]byte(tc.text))
			if (err != nil) != tc.isErr {
				t.Fatalf("err = %v, want error %v", err, tc.isErr)
			}
			if err != nil {
				if got != nil {
					t.Fatalf("entries %v with error", got)
				}
				return
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d entries %v, want %v", len(got), got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Errorf("entry %d = %+v, want %+v", i, got[i], tc.want[i])
				}
			}
		})
	}
}

func ap(s string) netip.AddrPort { return netip.MustParseAddrPort(s) }

func TestFindPeer(t *testing.T) {
	srv, cli := ap("127.0.0.1:8443"), ap("127.0.0.1:50000")
	ours := Entry{Local: srv, Remote: cli, State: Established, UID: 0}
	peer := Entry{Local: cli, Remote: srv, State: Established, UID: 1000}
	mapped := func(e Entry) Entry {
		e.Local = netip.AddrPortFrom(netip.AddrFrom16(e.Local.Addr().As16()), e.Local.Port())
		e.Remote = netip.AddrPortFrom(netip.AddrFrom16(e.Remote.Addr().As16()), e.Remote.Port())
		return e
	}
	with := func(e Entry, st State) Entry { e.State = st; return e }
	for _, tc := range []struct {
		name    string
		entries []Entry
		uid     uint32
		found   bool
	}{
		{"both ends", []Entry{ours, peer}, 1000, true},
		{"peer half-closed", []Entry{ours, with(peer, FinWait2)}, 1000, true},
		{"dual-stack listener, ipv4 client", []Entry{mapped(ours), peer}, 1000, true},
		{"peer gone", []Entry{ours}, 0, false},
		{"peer in time wait (uid 0 there)", []Entry{ours, with(with(peer, TimeWait), TimeWait)}, 0, false},
		{"our end missing (another namespace)", []Entry{peer}, 0, false},
		{"listener is not a peer", []Entry{ours, {Local: cli, Remote: ap("0.0.0.0:0"), State: Listen}}, 0, false},
		{"two peers", []Entry{ours, peer, peer}, 0, false},
		{"unrelated", []Entry{{Local: ap("127.0.0.2:1"), Remote: ap("127.0.0.3:2"), State: Established, UID: 7}}, 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uid, err := FindPeer(tc.entries, srv, cli)
			if tc.found {
				if err != nil || uid != tc.uid {
					t.Fatalf("FindPeer = %d, %v; want %d", uid, err, tc.uid)
				}
				return
			}
			if !errors.Is(err, ErrNotFound) {
				t.Fatalf("FindPeer = %d, %v; want ErrNotFound", uid, err)
			}
		})
	}
}

// accept dials network addr and returns the server end of the connection.
func accept(t *testing.T, network, addr string) (server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("listen %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func addrs(c net.Conn) (local, remote netip.AddrPort) {
	return c.LocalAddr().(*net.TCPAddr).AddrPort(), c.RemoteAddr().(*net.TCPAddr).AddrPort()
}

func TestLookupOwnConnection(t *testing.T) {
	for _, tc := range []struct{ name, network, addr string }{
		{"ipv4", "tcp4", "127.0.0.1:0"},
		{"ipv6", "tcp6", "[::1]:0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := accept(t, tc.network, tc.addr)
			l, r := addrs(s)
			uid, err := Lookup(l, r)
			if err != nil || uid != uint32(os.Geteuid()) {
				t.Fatalf("Lookup(%s, %s) = %d, %v; want %d", l, r, uid, err, os.Geteuid())
			}
			// A connection nobody has is not found.
			if _, err := Lookup(netip.AddrPortFrom(l.Addr(), l.Port()+1), r); !errors.Is(err, ErrNotFound) {
				t.Fatalf("unknown tuple: %v, want ErrNotFound", err)
			}
		})
	}
}

// TestLookupFromThreadInAnotherNamespace: a lookup made on a thread that
// has moved to another network namespace (as the netns driver's threads
// do) still finds the connection, in the process's namespace.
func TestLookupFromThreadInAnotherNamespace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to unshare a network namespace")
	}
	s := accept(t, "tcp4", "127.0.0.1:0")
	l, r := addrs(s)
	type result struct {
		uid uint32
		err error
	}
	done := make(chan result, 1)
	work := func(done chan<- result) {
		// Locked for good: the runtime discards this (non-main) thread
		// when the goroutine ends, with the namespace it is in.
		runtime.LockOSThread()
		if err := syscall.Unshare(syscall.CLONE_NEWNET); err != nil {
			done <- result{err: err}
			return
		}
		if own, err := readTables("/proc/thread-self/net"); err != nil || len(own) != 0 {
			done <- result{err: fmt.Errorf("new namespace has %d sockets (%v), want none", len(own), err)}
			return
		}
		uid, err := Lookup(l, r)
		done <- result{uid, err}
	}
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if syscall.Gettid() != os.Getpid() {
			work(done)
			return
		}
		// On the main thread, which must not enter the namespace (/proc/self
		// would follow it): holding it, run the work on another thread.
		inner := make(chan result, 1)
		go work(inner)
		done <- <-inner
	}()
	res := <-done
	if res.err != nil || res.uid != uint32(os.Geteuid()) {
		t.Fatalf("Lookup from another namespace = %d, %v; want %d", res.uid, res.err, os.Geteuid())
	}
}

// TestLookupTriesEveryNamespace: when the first directory's tables are
// another namespace's (here: empty, as when the main thread was left in a
// namespace of its own) or unreadable, Lookup goes on to the next.
func TestLookupTriesEveryNamespace(t *testing.T) {
	s := accept(t, "tcp4", "127.0.0.1:0")
	l, r := addrs(s)
	empty := t.TempDir()
	if err := os.WriteFile(empty+"/tcp", []byte(header), 0o644); err != nil {
		t.Fatal(err)
	}
	defer func(d []string) { NetDirs = d }(NetDirs)
	for _, tc := range []struct {
		name string
		dirs []string
		ok   bool
	}{
		{"empty namespace first", []string{empty, "/proc/thread-self/net"}, true},
		{"missing directory first", []string{t.TempDir() + "/none", "/proc/thread-self/net"}, true},
		{"only the empty namespace", []string{empty}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			NetDirs = tc.dirs
			uid, err := Lookup(l, r)
			if tc.ok && (err != nil || uid != uint32(os.Geteuid())) {
				t.Fatalf("Lookup = %d, %v; want %d", uid, err, os.Geteuid())
			}
			if !tc.ok && !errors.Is(err, ErrNotFound) {
				t.Fatalf("Lookup = %d, %v; want ErrNotFound", uid, err)
			}
		})
	}
}

// TestLookupOtherUser has a child process running as nobody connect, and
// finds nobody's uid. It needs root (to set the child's credentials).
func TestLookupOtherUser(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a child as another user")
	}
	const nobody = 65534
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// bash opens the connection (/dev/tcp) and holds it until the parent closes.
	port := ln.Addr().(*net.TCPAddr).Port
	cmd := exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d && read -r -u 3 x", port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	if err := ln.(*net.TCPListener).SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	l, r := addrs(s)
	uid, err := Lookup(l, r)
	if err != nil || uid != nobody {
		t.Fatalf("Lookup = %d, %v; want %d", uid, err, nobody)
	}
}

// FuzzParseTable checks "error xor result": a table either parses into
// entries whose two addresses share a family, or fails with no entries.
func FuzzParseTable(f *testing.F) {
	f.Add([]byte(header))
	f.Add([]byte(header + "   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 12345 1 0000000000000000 100 0 0 10 0\n"))
	f.Add([]byte(header + "   0: 00000000000000000000000001000000:20FB 00000000000000000000000001000000:D431 01 00000000:00000000 00:00000000 00000000 65534        0 4242 1 0000000000000000 20 4 30 10 -1\n"))
	if b, err := os.ReadFile("/proc/net/tcp"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		es, err := ParseTable(b)
		if err != nil {
			if es != nil {
				t.Fatalf("error %v and %d entries", err, len(es))
			}
			return
		}
		for _, e := range es {
			if !e.Local.IsValid() || !e.Remote.IsValid() || e.Local.Addr().Is4() != e.Remote.Addr().Is4() {
				t.Fatalf("entry %+v", e)
			}
		}
	})
}
