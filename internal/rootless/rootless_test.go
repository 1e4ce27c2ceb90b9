package rootless

// Address plan: everything is on loopback. Forwards listen on 127.0.0.1
// and targets are echo servers on 127.0.0.1 (ports picked by the kernel);
// the broker binds 127.0.0.1 and refuses 198.18.0.1 (not loopback).

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoTCP serves lines back, prefixed with "echo ", until the test ends.
func echoTCP(t *testing.T) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					io.WriteString(c, "echo "+line)
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// echoUDP answers each datagram with "echo " + it.
func echoUDP(t *testing.T) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 2048)
		for {
			n, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			c.WriteToUDPAddrPort(append([]byte("echo "), buf[:n]...), from)
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// freePort returns a loopback port free for network right now.
func freePort(t *testing.T, network string) netip.AddrPort {
	t.Helper()
	if network == "udp" {
		c, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.MustParseAddrPort("127.0.0.1:0")))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).AddrPort()
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).AddrPort()
}

func roundTripTCP(addr netip.AddrPort, msg string) (string, error) {
	c, err := net.DialTimeout("tcp", addr.String(), 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestForwarderTCPAndUDP(t *testing.T) {
	f := NewForwarder(nil, nil)
	defer f.Close()
	tcp := Forward{Network: "tcp", Listen: freePort(t, "tcp"), Target: echoTCP(t)}
	udp := Forward{Network: "udp", Listen: freePort(t, "udp"), Target: echoUDP(t)}
	if failed := f.Set([]Forward{tcp, udp}); len(failed) != 0 {
		t.Fatalf("Set: %v", failed)
	}
	// The same set again is harmless.
	if failed := f.Set([]Forward{udp, tcp}); len(failed) != 0 {
		t.Fatalf("Set again: %v", failed)
	}
	if got := f.Open(); len(got) != 2 {
		t.Fatalf("Open = %v, want both", got)
	}
	if got, err := roundTripTCP(tcp.Listen, "hello"); err != nil || got != "echo hello\n" {
		t.Fatalf("tcp through the forwarder: %q, %v", got, err)
	}
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(udp.Listen))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	c.Write([]byte("ping"))
	buf := make([]byte, 64)
	n, err := c.Read(buf)
	if err != nil || string(buf[:n]) != "echo ping" {
		t.Fatalf("udp through the forwarder: %q, %v", buf[:n], err)
	}

	// A forward that leaves the set stops listening and ends its
	// connections.
	live, err := net.Dial("tcp", tcp.Listen.String())
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	io.WriteString(live, "x\n")
	if _, err := bufio.NewReader(live).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	f.Set([]Forward{udp})
	if _, err := roundTripTCP(tcp.Listen, "again"); err == nil {
		t.Fatal("the removed forward still answers")
	}
	live.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := live.Read(buf); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a connection of the removed forward is still open: %v", err)
	}
}

func TestForwarderTargetDown(t *testing.T) {
	f := NewForwarder(nil, nil)
	defer f.Close()
	fw := Forward{Network: "tcp", Listen: freePort(t, "tcp")}
	for fw.Target = freePort(t, "tcp"); fw.Target == fw.Listen; fw.Target = freePort(t, "tcp") {
	} // nothing listens on the target
	if failed := f.Set([]Forward{fw}); len(failed) != 0 {
		t.Fatal(failed)
	}
	// The reset may beat the end of the client's connect.
	c, err := net.Dial("tcp", fw.Listen.String())
	if err == nil {
		defer c.Close()
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = c.Read(make([]byte, 1))
	}
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("client of a dead target: %v, want a reset", err)
	}
}

// brokerPair starts a broker on one end of a socketpair, as the parent
// does, and returns the child's end.
func brokerPair(t *testing.T) *broker {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	parent, child := os.NewFile(uintptr(fds[0]), "parent"), os.NewFile(uintptr(fds[1]), "child")
	done := make(chan struct{})
	go func() { serveBroker(parent); close(done) }()
	t.Cleanup(func() { child.Close(); <-done; parent.Close() })
	return &broker{conn: child}
}

func TestBroker(t *testing.T) {
	b := brokerPair(t)
	h := &Host{b: b}
	t.Run("tcp", func(t *testing.T) {
		l, err := h.listenTCP(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		go func() {
			c, err := l.Accept()
			if err == nil {
				io.WriteString(c, "hi\n")
				c.Close()
			}
		}()
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if line, err := bufio.NewReader(c).ReadString('\n'); err != nil || line != "hi\n" {
			t.Fatalf("through the brokered listener: %q, %v", line, err)
		}
	})
	t.Run("udp", func(t *testing.T) {
		c, err := h.listenUDP(netip.MustParseAddrPort("127.0.0.1:0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if !c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().IsLoopback() {
			t.Fatalf("bound to %s", c.LocalAddr())
		}
	})
	t.Run("in-use", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		_, err = h.listenTCP(l.Addr().(*net.TCPAddr).AddrPort())
		var he *HostError
		if !errors.As(err, &he) || !errors.Is(err, syscall.EADDRINUSE) {
			t.Fatalf("listen on a held port: %v, want a HostError matching EADDRINUSE", err)
		}
	})
	t.Run("not-loopback", func(t *testing.T) {
		if _, err := h.listenTCP(netip.MustParseAddrPort("198.18.0.1:8080")); !errors.Is(err, syscall.EINVAL) {
			t.Fatalf("listen on a routed address: %v, want refused (EINVAL)", err)
		}
	})
	t.Run("all-addresses", func(t *testing.T) {
		// The host's side is loopback only, whatever the caller asks.
		if _, err := h.Listen("tcp", "0.0.0.0:0"); err == nil {
			t.Fatal("Listen on all addresses succeeded; want loopback only")
		}
	})
}

func TestLoopbackAddr(t *testing.T) {
	for _, c := range []struct {
		in   string
		want string
	}{
		{"127.0.0.1:8443", "127.0.0.1:8443"},
		{"localhost:9464", "127.0.0.1:9464"},
		{"127.0.0.1:0", "127.0.0.1:0"},
		{":8443", ""},
		{"0.0.0.0:8443", ""},
		{"10.0.0.1:80", ""},
		{"127.0.0.1", ""},
	} {
		got, err := loopbackAddr(c.in)
		if c.want == "" {
			if err == nil {
				t.Errorf("loopbackAddr(%q) = %s, want an error", c.in, got)
			}
			continue
		}
		if err != nil || got.String() != c.want {
			t.Errorf("loopbackAddr(%q) = %s, %v; want %s", c.in, got, err, c.want)
		}
	}
}

// testListenEnv tells the re-executed test binary where to listen.
const testListenEnv = "NIMBUS_ROOTLESS_TEST_LISTEN"

func TestMain(m *testing.M) {
	if os.Getenv(EnvChild) == "1" {
		os.Exit(testChild())
	}
	os.Exit(m.Run())
}

// testChild is the re-executed test binary: a rootless child that answers
// one connection on the host's loopback with what it is, then exits 7.
func testChild() int {
	h, err := Enter()
	if err != nil || h == nil {
		println("enter:", err)
		return 3
	}
	l, err := h.Listen("tcp", os.Getenv(testListenEnv))
	if err != nil {
		println("listen:", err.Error())
		return 4
	}
	c, err := l.Accept()
	if err != nil {
		return 5
	}
	fdFlags, _ := unix.FcntlInt(brokerFd, unix.F_GETFD, 0)
	fmt.Fprintf(c, "pid=%d uid=%d cloexec=%v netns=%s\n", os.Getpid(), os.Getuid(), fdFlags&unix.FD_CLOEXEC != 0, h.NetnsDir)
	c.Close()
	return 7
}

// TestRun re-executes the test binary as a rootless child (as root the
// same namespaces are made; the uid map is 0 → 0) and talks to the
// listener it opened on the host through the broker: the child is init
// of its pid namespace, root inside, keeps the broker from its children,
// and its exit code comes back.
func TestRun(t *testing.T) {
	if err := Probe(); err != nil {
		if userNamespacesOffHere() {
			t.Skipf("no user namespaces here: %v", err)
		}
		t.Fatalf("Probe: %v", err)
	}
	addr := freePort(t, "tcp")
	t.Setenv(testListenEnv, addr.String())
	errc := make(chan error, 1)
	go func() { errc <- Run(t.Context(), []string{"-test.run=^$"}) }()
	var line string
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr.String(), time.Second)
		if err == nil {
			c.SetDeadline(time.Now().Add(5 * time.Second))
			line, err = bufio.NewReader(c).ReadString('\n')
			c.Close()
			if err == nil {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the child never answered on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if want := "pid=1 uid=0 cloexec=true netns="; !strings.HasPrefix(line, want) {
		t.Errorf("child says %q, want %q...", line, want)
	}
	var ee *ExitError
	if err := <-errc; !errors.As(err, &ee) || ee.ExitCode() != 7 {
		t.Errorf("Run = %v, want the child's exit code 7", err)
	}
}

// userNamespacesOffHere reports whether the kernel switches user
// namespaces off for this user.
func userNamespacesOffHere() bool {
	b, err := os.ReadFile("/proc/sys/user/max_user_namespaces")
	return err != nil || strings.TrimSpace(string(b)) == "0"
}
