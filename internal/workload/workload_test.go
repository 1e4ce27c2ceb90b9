package workload

// Address plan: the echo servers under test bind 127.100.250.0/24 (loopback,
// the process driver's default provider pool, high end so it does not meet
// the driver's tests); invented customer addresses and PROXY header sources
// are in 198.18.0.0/15 and are never sent traffic.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"nimbus/internal/driver"
	"nimbus/internal/poll"
)

func TestMain(m *testing.M) {
	RunIfReexec()
	os.Exit(m.Run())
}

func TestResolve(t *testing.T) {
	tests := []struct {
		name string
		img  driver.Image
		want Kind
	}{
		{"echo", driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "latest"}, KindEcho},
		{"script", driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "script", Version: "latest"}, KindScript},
		{"case-insensitive", driver.Image{Publisher: "Nimbus", Offer: "WORKLOADS", SKU: "Echo", Version: "LATEST"}, KindEcho},
		{"star version", driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "script", Version: "*"}, KindScript},
		{"unknown sku", driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "nginx", Version: "latest"}, ""},
		{"pinned version", driver.Image{Publisher: "nimbus", Offer: "workloads", SKU: "echo", Version: "1.0.0"}, ""},
		{"ubuntu", driver.Image{Publisher: "Canonical", Offer: "0001-com-ubuntu-server-jammy", SKU: "22_04-lts", Version: "latest"}, ""},
		{"empty", driver.Image{}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Resolve(tt.img)
			if tt.want != "" {
				if err != nil || got != tt.want {
					t.Fatalf("Resolve = %q, %v; want %q", got, err, tt.want)
				}
				return
			}
			if !errors.Is(err, driver.ErrUnknownImage) {
				t.Fatalf("Resolve error = %v; want ErrUnknownImage", err)
			}
			msg := err.Error()
			if !strings.Contains(msg, ImageURN(tt.img)) {
				t.Errorf("message %q does not name the image %q", msg, ImageURN(tt.img))
			}
			for _, img := range driver.Images {
				if !strings.Contains(msg, img) {
					t.Errorf("message %q does not list %q", msg, img)
				}
			}
		})
	}
}

func TestDecodeCustomData(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        bool
	}{
		{"padded", base64.StdEncoding.EncodeToString([]byte("echo hi\n")), "echo hi\n", false},
		{"unpadded", base64.RawStdEncoding.EncodeToString([]byte("echo a")), "echo a", false},
		{"wrapped lines", "ZWNo\nbyBoaQ==\r\n", "echo hi", false},
		{"empty", "", "", false},
		{"not base64", "#!/bin/sh\necho hi", "", true},
		{"url alphabet", "_-_-", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := DecodeCustomData(tt.in)
			if tt.wantErr {
				if err == nil || !strings.Contains(err.Error(), "not valid base64") {
					t.Fatalf("DecodeCustomData(%q) = %q, %v; want a base64 error", tt.in, got, err)
				}
				return
			}
			if err != nil || string(got) != tt.want {
				t.Fatalf("DecodeCustomData(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestConfigFromEnv(t *testing.T) {
	env := map[string]string{EnvBindIP: "127.100.250.9", EnvPrivateIP: "198.18.0.4", EnvInstanceName: "web_4", EnvInstanceID: "4",
		EnvPorts: "tcp/3389,udp/53", EnvCommands: `["echo hi","touch x"]`}
	c, err := ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := Config{Name: "web_4", InstanceID: "4", PrivateIP: netip.MustParseAddr("198.18.0.4"), BindIP: netip.MustParseAddr("127.100.250.9"),
		Ports: []Port{{ProtoTCP, 3389}, {ProtoUDP, 53}}, Commands: []string{"echo hi", "touch x"}}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("ConfigFromEnv = %+v; want %+v", c, want)
	}
	if _, err := ConfigFromEnv(func(string) string { return "" }); err == nil {
		t.Fatal("ConfigFromEnv without a bind address succeeded")
	}
	for _, bad := range []string{"tcp/0", "sctp/80", "tcp/70000", "80"} {
		env[EnvPorts] = bad
		if _, err := ConfigFromEnv(func(k string) string { return env[k] }); err == nil {
			t.Errorf("ConfigFromEnv with %s=%q succeeded", EnvPorts, bad)
		}
	}
}

// needLowPorts skips when this process cannot bind ports 22 and 80.
func needLowPorts(t *testing.T) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil && strings.TrimSpace(string(b)) == "0" {
		return
	}
	t.Skip("the echo image binds ports 22 and 80: needs root, CAP_NET_BIND_SERVICE or net.ipv4.ip_unprivileged_port_start=0")
}

// startEcho serves an Echo on bind until the test ends.
func startEcho(t *testing.T, bind string) *Echo {
	t.Helper()
	needLowPorts(t)
	e := &Echo{Config: Config{Name: "web_7", InstanceID: "7",
		PrivateIP: netip.MustParseAddr("198.18.0.7"), BindIP: netip.MustParseAddr(bind)}}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- e.Serve(ctx, func() { close(ready) }) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("Serve: %v", err)
	}
	return e
}

func TestEchoHTTP(t *testing.T) {
	const bind = "127.100.250.1"
	startEcho(t, bind)
	base := "http://" + bind
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

	t.Run("GET /", func(t *testing.T) {
		resp, err := client.Get(base + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var r EchoReply
		if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		if r.Name != "web_7" || r.InstanceID != "7" || r.PrivateIP != "198.18.0.7" {
			t.Fatalf("reply %+v", r)
		}
		ap, err := netip.ParseAddrPort(r.Client)
		if err != nil || !ap.Addr().IsLoopback() || ap.Port() == 0 {
			t.Fatalf("client %q is not this loopback peer", r.Client)
		}
	})

	steps := []struct {
		method, path string
		wantCode     int
	}{
		{"GET", "/health", 200},
		{"PUT", "/health?status=503", 200},
		{"GET", "/health", 503},
		{"PUT", "/health?status=99", 400},
		{"PUT", "/health?status=600", 400},
		{"PUT", "/health?status=abc", 400},
		{"PUT", "/health", 400},
		{"GET", "/health", 503},
		{"PUT", "/health?status=200", 200},
		{"GET", "/health", 200},
		{"HEAD", "/health", 200},
		{"GET", "/nope", 404},
		{"POST", "/", 405},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d %s %s", i, s.method, s.path), func(t *testing.T) {
			req, _ := http.NewRequest(s.method, base+s.path, nil)
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != s.wantCode {
				t.Fatalf("%s %s = %d; want %d", s.method, s.path, resp.StatusCode, s.wantCode)
			}
		})
	}
}

func TestEchoProxyProtocol(t *testing.T) {
	const bind = "127.100.250.2"
	startEcho(t, bind)
	tests := []struct {
		name   string
		header *proxyproto.Header
		want   string // "" means the real peer
	}{
		{"no header", nil, ""},
		{"v2 ipv4", &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv4,
			SourceAddr:      &net.TCPAddr{IP: net.ParseIP("198.18.5.6"), Port: 40000},
			DestinationAddr: &net.TCPAddr{IP: net.ParseIP("198.18.0.7"), Port: 80}}, "198.18.5.6:40000"},
		{"v2 ipv6", &proxyproto.Header{Version: 2, Command: proxyproto.PROXY, TransportProtocol: proxyproto.TCPv6,
			SourceAddr:      &net.TCPAddr{IP: net.ParseIP("2001:db8::5"), Port: 40001},
			DestinationAddr: &net.TCPAddr{IP: net.ParseIP("2001:db8::7"), Port: 80}}, "[2001:db8::5]:40001"},
		{"v2 local", &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := net.DialTimeout("tcp", bind+":80", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c.SetDeadline(time.Now().Add(5 * time.Second))
			if tt.header != nil {
				if _, err := tt.header.WriteTo(c); err != nil {
					t.Fatal(err)
				}
			}
			fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatal(err)
			}
			var r EchoReply
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
				t.Fatal(err)
			}
			want := tt.want
			if want == "" {
				want = c.LocalAddr().String()
			}
			if r.Client != want {
				t.Fatalf("client = %q; want %q", r.Client, want)
			}
		})
	}
}

func TestEchoSSHAndUDP(t *testing.T) {
	const bind = "127.100.250.3"
	startEcho(t, bind)
	t.Run("banner", func(t *testing.T) {
		for _, send := range []string{"", "SSH-2.0-OpenSSH_9.6\r\n"} {
			c, err := net.DialTimeout("tcp", bind+":22", 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			c.SetDeadline(time.Now().Add(5 * time.Second))
			io.WriteString(c, send)
			b, err := io.ReadAll(c)
			c.Close()
			if err != nil || string(b) != "SSH-2.0-nimbus web_7\r\n" {
				t.Fatalf("banner after sending %q = %q, %v", send, b, err)
			}
		}
	})
	t.Run("udp", func(t *testing.T) {
		c, err := net.Dial("udp", bind+":80")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 2048)
		for i := range 3 {
			if _, err := fmt.Fprintf(c, "ping %d", i); err != nil {
				t.Fatal(err)
			}
			n, err := c.Read(buf)
			if err != nil {
				t.Fatal(err)
			}
			var r EchoReply
			if err := json.Unmarshal(buf[:n], &r); err != nil {
				t.Fatalf("%q: %v", buf[:n], err)
			}
			if r.Name != "web_7" || r.Client != c.LocalAddr().String() {
				t.Fatalf("reply %+v; want client %s", r, c.LocalAddr())
			}
		}
	})
}

func TestBindError(t *testing.T) {
	opErr := func(port int, errno syscall.Errno) error {
		return &net.OpError{Op: "listen", Net: "tcp", Addr: &net.TCPAddr{IP: net.ParseIP("127.100.0.1"), Port: port},
			Err: os.NewSyscallError("bind", errno)}
	}
	tests := []struct {
		name       string
		err        error
		privileged bool
	}{
		{"eacces low port", opErr(80, syscall.EACCES), true},
		{"eacces high port", opErr(8080, syscall.EACCES), false},
		{"in use", opErr(80, syscall.EADDRINUSE), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := bindError(tt.err)
			if got := errors.Is(err, ErrPrivilegedPort); got != tt.privileged {
				t.Fatalf("errors.Is(%v, ErrPrivilegedPort) = %v; want %v", err, got, tt.privileged)
			}
			if !errors.Is(err, tt.err.(*net.OpError).Err.(*os.SyscallError).Err) {
				t.Fatalf("%v lost its cause", err)
			}
		})
	}
}

// TestUnprivilegedBind runs the echo image as an unprivileged user (the test
// binary re-executed) and checks it fails with the remedies instead of
// remapping ports.
func TestUnprivilegedBind(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a workload as another user")
	}
	// Without the sysctl (kernels before 4.11) every port below 1024 is
	// privileged, so the test runs.
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start"); err == nil {
		start, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("net.ipv4.ip_unprivileged_port_start: %v", err)
		}
		if start <= 22 {
			t.Skipf("unprivileged users may bind ports 22 and 80 here (net.ipv4.ip_unprivileged_port_start=%d)", start)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	// Copy the binary where user nobody can run it.
	dir, err := os.MkdirTemp("", "nimbus-workload-*")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	bin := filepath.Join(dir, "workload.test")
	src, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, src, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "workload", "echo")
	cmd.Env = []string{ReexecEnv + "=1", EnvBindIP + "=127.100.250.4", EnvInstanceName + "=web_8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	go func() { <-ctx.Done(); cmd.Process.Kill() }()
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("unprivileged echo: %v (want exit 2); stderr:\n%s", err, &stderr)
	}
	for _, want := range []string{"permission denied", "run nimbus as root", "setcap cap_net_bind_service=+ep", "net.ipv4.ip_unprivileged_port_start=0"} {
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("stderr %q does not say %q", stderr.String(), want)
		}
	}
}

func TestScript(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "out")
	src := fmt.Sprintf("echo \"$NIMBUS_INSTANCE_NAME $NIMBUS_INSTANCE_ID $NIMBUS_PRIVATE_IP $NIMBUS_BIND_IP ${NIMBUS_CUSTOM_DATA:-none} $0\" > %s\nexit 3\n", out)
	stderr := &lockedBuffer{}
	s := &Script{
		Config: Config{Name: "job_2", InstanceID: "2", PrivateIP: netip.MustParseAddr("198.18.0.2"),
			BindIP: netip.MustParseAddr("127.100.250.5"), CustomData: base64.StdEncoding.EncodeToString([]byte(src))},
		Environ: []string{"PATH=/usr/bin:/bin", EnvCustomData + "=leak"},
		Stderr:  stderr,
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, nil) }()
	var b []byte
	poll.Until(t, 10*time.Second, "the script to write its line", func() error {
		var err error
		if b, err = os.ReadFile(out); err != nil || !bytes.HasSuffix(b, []byte("\n")) {
			return fmt.Errorf("%s holds %q, %v", out, b, err)
		}
		return nil
	})
	if got, want := string(b), "job_2 2 198.18.0.2 127.100.250.5 none customdata\n"; got != want {
		t.Fatalf("script saw %q; want %q", got, want)
	}
	poll.Until(t, 10*time.Second, "stderr to report the script's exit status 3", func() error {
		if s := stderr.String(); !strings.Contains(s, "exit status 3") {
			return fmt.Errorf("stderr %q", s)
		}
		return nil
	})
	select {
	case err := <-done:
		t.Fatalf("Serve returned %v after the script ended; it must stay up", err)
	default:
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	bad := &Script{Config: Config{CustomData: "#!/bin/sh\n"}}
	if err := bad.Serve(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "not valid base64") {
		t.Fatalf("invalid customData: %v", err)
	}
}

// lockedBuffer is a bytes.Buffer safe to write and read from two goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
