package readmetest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nimbus/internal/arm/armtest"
)

// TestSDKQuickStart builds examples/sdkquickstart, the README's Azure SDK
// quick start, runs it against a real node (its managed identity, its CA),
// and checks that the README shows exactly that program.
func TestSDKQuickStart(t *testing.T) {
	root := filepath.Join("..", "..")
	src, err := os.ReadFile(filepath.Join(root, "examples", "sdkquickstart", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	const begin, end = "<!-- sdk-quickstart:begin -->\n```go\n", "```\n<!-- sdk-quickstart:end -->"
	i, j := strings.Index(string(readme), begin), strings.Index(string(readme), end)
	if i < 0 || j < i {
		t.Fatal("README.md has no sdk-quickstart block")
	}
	if got := string(readme)[i+len(begin) : j]; got != string(src) {
		t.Error("README.md's SDK quick start differs from examples/sdkquickstart/main.go: copy the file into the block")
	}

	bin := filepath.Join(t.TempDir(), "sdkquickstart")
	build := exec.Command("go", "build", "-o", bin, "./examples/sdkquickstart")
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	n := armtest.Start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin)
	cmd.Env = append(os.Environ(), "NIMBUS_DATA_DIR="+n.Dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sdkquickstart: %v\n%s", err, out)
	}
	for _, want := range []string{"load balancer web-lb: frontend fe at ", "deleted resource group sdk-quickstart"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}
