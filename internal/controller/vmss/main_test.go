package vmss

import (
	"flag"
	"os"
	"testing"

	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	// The process driver re-executes this test binary as
	// `<test> workload <kind>` for the echo image.
	workload.RunIfReexec()
	flag.Parse()
	// The property tests draw 1000 inputs each unless -rapid.checks says
	// otherwise: the interesting cases (a repair past its grace, a rolling
	// batch) are a few percent of random inputs.
	set := false
	flag.Visit(func(f *flag.Flag) { set = set || f.Name == "rapid.checks" })
	if !set {
		if err := flag.Set("rapid.checks", "1000"); err != nil {
			panic(err)
		}
	}
	os.Exit(m.Run())
}
