package chaos

// Address plan (see doc.go). Process mode: public pool 127.90.0.0/24 on
// loopback, instances' provider addresses in 127.91.0.0/24. Kernel mode:
// nimbus's namespace "nbchaos" reached over the uplink 198.19.160.0/30,
// public pool 198.18.160.0/24 routed into it. Both modes: the scale sets'
// subnet is 198.18.161.0/24 (real addresses inside the instances'
// namespaces in kernel mode, mapped to loopback in process mode). Traffic
// goes only to loopback or into those namespaces.

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// binEnv names a prebuilt nimbus binary to use instead of building one: a
// user who cannot run `go build` (no module cache, say) runs the suite
// with it.
const binEnv = "NIMBUS_CHAOS_BIN"

var (
	buildOnce sync.Once
	buildDir  string
	builtBin  string
	buildErr  error
)

func TestMain(m *testing.M) {
	RunBackendIfReexec()
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// nimbusBin returns the nimbus binary, building it once per test run.
func nimbusBin(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if p := os.Getenv(binEnv); p != "" {
			builtBin = p
			return
		}
		buildDir, buildErr = os.MkdirTemp("", "nimbus-chaos-bin-")
		if buildErr != nil {
			return
		}
		builtBin = filepath.Join(buildDir, "nimbus")
		// From the package's source directory, wherever the test binary runs.
		_, self, _, _ := runtime.Caller(0)
		cmd := exec.Command("go", "build", "-o", builtBin, "../../cmd/nimbus")
		cmd.Dir = filepath.Dir(self)
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build nimbus: %w\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return builtBin
}
