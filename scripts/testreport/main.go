// Command testreport reads `go test -json` on standard input, prints what
// go test prints without -v (each package's verdict, and the output of
// failing tests), and ends with what a reader of the
// run needs and go test does not say without -v: every skipped test grouped
// by its reason, and the closing line "N passed, N failed, N skipped".
//
// Usage (scripts/test does this):
//
//	go test -json ./... | go run ./scripts/testreport
//
// It exits 1 when any test or package failed, so a pipeline with pipefail
// keeps go test's verdict.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// event is one line of test2json output.
type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

// report accumulates a run.
type report struct {
	passed, failed, skipped int
	pkgFailed               bool
	// last is the latest output line of each running test, which for a
	// skipped test is its t.Skip message.
	last map[string]string
	// out buffers each running test's output, printed only if it fails.
	out map[string]*strings.Builder
	// reasons maps a skip reason to the tests it skipped.
	reasons map[string][]string
}

func main() {
	r := &report{last: map[string]string{}, out: map[string]*strings.Builder{}, reasons: map[string][]string{}}
	if err := r.read(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(2)
	}
	r.summary(os.Stdout)
	if r.failed > 0 || r.pkgFailed {
		os.Exit(1)
	}
}

// read consumes the event stream, echoing output to w.
func (r *report) read(in io.Reader, w io.Writer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil || e.Action == "" {
			// Not an event (a build error printed by go itself): pass it on.
			fmt.Fprintln(w, string(line))
			continue
		}
		r.add(e, w)
	}
	return sc.Err()
}

// add accounts for one event.
func (r *report) add(e event, w io.Writer) {
	key := e.Package + "." + e.Test
	switch e.Action {
	case "output", "build-output":
		if e.Test == "" {
			if e.Output != "PASS\n" { // -json runs verbose; go test alone prints only the ok line
				fmt.Fprint(w, e.Output)
			}
			return
		}
		b := r.out[key]
		if b == nil {
			b = &strings.Builder{}
			r.out[key] = b
		}
		b.WriteString(e.Output)
		if s := strings.TrimSpace(e.Output); s != "" && !strings.HasPrefix(s, "--- ") && !strings.HasPrefix(s, "=== ") {
			r.last[key] = s
		}
	case "pass":
		if e.Test != "" {
			r.passed++
			delete(r.out, key)
		}
	case "fail", "build-fail":
		if e.Test == "" {
			r.pkgFailed = true
			return
		}
		r.failed++
		if b := r.out[key]; b != nil {
			fmt.Fprint(w, b.String())
			delete(r.out, key)
		}
	case "skip":
		if e.Test == "" {
			return // a package without tests
		}
		delete(r.out, key)
		r.skipped++
		reason := skipReason(r.last[key])
		r.reasons[reason] = append(r.reasons[reason], shortPkg(e.Package)+"."+e.Test)
	}
}

// skipReason strips the "file.go:12: " prefix of a t.Skip message.
func skipReason(line string) string {
	if line == "" {
		return "(no reason given)"
	}
	if i := strings.Index(line, ".go:"); i >= 0 {
		if j := strings.Index(line[i+4:], ": "); j >= 0 {
			return line[i+4+j+2:]
		}
	}
	return line
}

// shortPkg drops the module path of a package.
func shortPkg(p string) string {
	if i := strings.Index(p, "/"); i >= 0 {
		return p[i+1:]
	}
	return p
}

// summary prints the skips by reason and the closing counts.
func (r *report) summary(w io.Writer) {
	if len(r.reasons) > 0 {
		fmt.Fprintf(w, "\nskipped tests by reason (%d):\n", r.skipped)
		reasons := make([]string, 0, len(r.reasons))
		for k := range r.reasons {
			reasons = append(reasons, k)
		}
		sort.Slice(reasons, func(i, j int) bool {
			a, b := r.reasons[reasons[i]], r.reasons[reasons[j]]
			if len(a) != len(b) {
				return len(a) > len(b)
			}
			return reasons[i] < reasons[j]
		})
		for _, k := range reasons {
			tests := r.reasons[k]
			sort.Strings(tests)
			fmt.Fprintf(w, "  %3d  %s\n", len(tests), k)
			const show = 6
			list := tests
			more := ""
			if len(list) > show {
				list, more = list[:show], fmt.Sprintf(" … and %d more", len(tests)-show)
			}
			fmt.Fprintf(w, "       %s%s\n", strings.Join(list, ", "), more)
		}
	}
	fmt.Fprintf(w, "\n%d passed, %d failed, %d skipped\n", r.passed, r.failed, r.skipped)
}
