package readmetest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rootlessMode is how the demo and serve name the rootless kernel path.
const rootlessMode = "not root: netns + nft in a user namespace of nimbus's own"

// TestRootlessAsNormalUser runs the README's commands as a normal user, the
// way a newcomer does, so that a regression for users who are not root
// fails CI (which runs as root): as root it creates a user, builds nimbus
// once where that user can run it, and runs as that user `nimbus demo`
// and the CLI quick start block (with the binary prebuilt instead of its
// first line's `go build`). Both must pass in the rootless kernel mode, and
// nothing of that user may outlive nimbus.
func TestRootlessAsNormalUser(t *testing.T) {
	if runtime.GOOS != "linux" || os.Geteuid() != 0 {
		t.Skip("creates a user to run as: needs root on Linux (CI runs as root; as a normal user the other quick-start tests run rootless themselves)")
	}
	for _, tool := range []string{"useradd", "userdel", "bash", "curl", "go"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
	if why := userNamespacesOff(); why != "" {
		t.Skipf("this kernel gives normal users no user namespaces (%s): nimbus falls back to process + proxy", why)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	u := newTestUser(t)
	// A directory the user can enter (t.TempDir's are root's, mode 0700).
	bin, err := os.MkdirTemp("", "nimbus-rootless-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(bin) })
	if err := os.Chmod(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", filepath.Join(bin, "nimbus"), "./cmd/nimbus")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}

	t.Run("demo", func(t *testing.T) {
		start := time.Now()
		out, err := u.run(t, 2*time.Minute, bin, filepath.Join(bin, "nimbus"), "demo")
		t.Logf("nimbus demo as %s took %.1f s:\n%s", u.name, time.Since(start).Seconds(), out)
		if err != nil {
			t.Fatalf("nimbus demo as a normal user: %v", err)
		}
		if !strings.Contains(out, "nft data plane ("+rootlessMode) {
			t.Errorf("the demo did not run in the rootless kernel mode")
		}
		if !strings.Contains(out, "Done in") {
			t.Errorf("the demo did not complete")
		}
		u.noneLeft(t)
	})

	t.Run("cli-quickstart", func(t *testing.T) {
		script := quickstart(t, filepath.Join(root, "README.md"))
		const buildLine = "go build -o nimbus ./cmd/nimbus && export PATH=$PWD:$PATH"
		if !strings.Contains(script, buildLine) {
			t.Fatalf("the quick start no longer starts with %q; update this test", buildLine)
		}
		script = strings.Replace(script, buildLine, "export PATH="+bin+":$PATH", 1)
		out, err := u.run(t, 2*time.Minute, u.home, "bash", "-e", "-c", script)
		t.Log("\n" + out)
		logb, _ := os.ReadFile(filepath.Join(u.home, "nimbus.log"))
		if err != nil {
			t.Fatalf("quick start as a normal user: %v\nnimbus.log:\n%s", err, logb)
		}
		if !strings.Contains(string(logb), rootlessMode) {
			t.Errorf("nimbus serve did not run in the rootless kernel mode:\n%s", logb)
		}
		for _, name := range []string{`"name":"web_0"`, `"name":"web_1"`, `"name":"web_2"`} {
			if !strings.Contains(out, name) {
				t.Errorf("the quick start's traffic never reached %s", name)
			}
		}
		// `kill %1` at the block's end: nimbus and every instance end.
		u.noneLeft(t)
	})
}

// userNamespacesOff says why this kernel refuses user namespaces to
// normal users, or "".
func userNamespacesOff() string {
	for _, c := range []struct{ path, off string }{
		{"/proc/sys/user/max_user_namespaces", "0"},
		{"/proc/sys/kernel/unprivileged_userns_clone", "0"},
		{"/proc/sys/kernel/apparmor_restrict_unprivileged_userns", "1"},
	} {
		if b, err := os.ReadFile(c.path); err == nil && strings.TrimSpace(string(b)) == c.off {
			return c.path + " = " + c.off
		}
	}
	return ""
}

// testUser is a user created for one test and removed after it.
type testUser struct {
	name, home string
	uid, gid   int
}

// newTestUser creates a user with a unique name and a home of its own in a
// temporary directory; t.Cleanup ends its processes and removes it.
func newTestUser(t *testing.T) *testUser {
	t.Helper()
	name := fmt.Sprintf("nimbusrl%08x", rand.Uint32())
	home, err := os.MkdirTemp("", "nimbus-rootless-home-")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("useradd", "--no-create-home", "--home-dir", home, "--shell", "/bin/sh", "--user-group", name).CombinedOutput(); err != nil {
		os.RemoveAll(home)
		t.Fatalf("useradd: %v\n%s", err, out)
	}
	u := &testUser{name: name, home: home}
	t.Cleanup(func() {
		u.kill()
		u.removeTempFiles()
		if out, err := exec.Command("userdel", "-r", name).CombinedOutput(); err != nil {
			t.Logf("userdel -r %s: %v\n%s", name, err, out)
		}
		os.RemoveAll(home)
	})
	lu, err := user.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	u.uid, _ = strconv.Atoi(lu.Uid)
	u.gid, _ = strconv.Atoi(lu.Gid)
	if err := os.Chown(home, u.uid, u.gid); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(home, 0o700); err != nil {
		t.Fatal(err)
	}
	return u
}

// run runs argv as the user in dir, with a login-like environment, and
// returns its combined output.
func (u *testUser) run(t *testing.T, timeout time.Duration, dir string, argv ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + u.home, "USER=" + u.name, "LOGNAME=" + u.name, "SHELL=/bin/sh",
		"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true,
		Credential: &syscall.Credential{Uid: uint32(u.uid), Gid: uint32(u.gid), Groups: []uint32{}}}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 15 * time.Second
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

// pids lists the processes whose real uid is the user's.
func (u *testUser) pids() []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/status")
		if err != nil {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			if f, ok := strings.CutPrefix(line, "Uid:"); ok {
				if fs := strings.Fields(f); len(fs) > 0 && fs[0] == strconv.Itoa(u.uid) {
					out = append(out, pid)
				}
			}
		}
	}
	return out
}

// noneLeft fails unless every process of the user is gone within 15 s:
// a stopped rootless nimbus takes its instances with it.
func (u *testUser) noneLeft(t *testing.T) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		left := u.pids()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			var desc []string
			for _, p := range left {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				desc = append(desc, fmt.Sprintf("%d %s", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '})))
			}
			t.Errorf("processes of %s outlived nimbus: %s", u.name, strings.Join(desc, "; "))
			u.kill()
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// removeTempFiles removes what the user left at the top of the temporary
// directory (instance directories, demo data).
func (u *testUser) removeTempFiles() {
	ents, _ := os.ReadDir(os.TempDir())
	for _, e := range ents {
		p := filepath.Join(os.TempDir(), e.Name())
		if fi, err := os.Lstat(p); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == u.uid {
				os.RemoveAll(p)
			}
		}
	}
}

// kill ends every process of the user, by pid.
func (u *testUser) kill() {
	for _, p := range u.pids() {
		_ = syscall.Kill(p, syscall.SIGKILL) // ESRCH: it ended meanwhile
	}
}
