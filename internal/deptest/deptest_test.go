package deptest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// module is the module path every nimbus package starts with.
const module = "nimbus"

// A pattern names packages: "p" is exactly p; "p/..." is p and every
// package below it.

// rule says which packages (from) must never depend on which (never),
// directly or through any chain of imports, and why.
type rule struct {
	name  string
	from  []string // patterns; each must match a package today
	never []string // patterns; one that matches nothing yet is fine (it guards the future)
	why   string
	// pending, when set, says what has to land before the rule can hold.
	// A pending rule's violations are logged, not failures; once it holds,
	// the test fails until pending is cleared, so the rule starts guarding
	// the moment it can.
	pending string
}

var rules = []rule{
	{
		name: "data plane stays off the control plane",
		from: []string{module + "/internal/dataplane/...", module + "/internal/probe", module + "/internal/maglev"},
		never: []string{module + "/internal/arm/...", module + "/internal/rp/...", module + "/internal/store/...",
			module + "/internal/resource/...", module + "/internal/controller/...", "go.etcd.io/..."},
		why: "the data plane applies the dataplane.Config it is handed: a mux runs it with no API, store or model " +
			"(DESIGN.md, scaling out), and it is tested alone with real packets",
	},
	{
		name:  "the binary does not link the Azure SDK",
		from:  []string{module + "/cmd/nimbus"},
		never: []string{"github.com/Azure/azure-sdk-for-go/..."},
		why: "nimbus serves the ARM wire format itself; the SDKs are its clients, used only by tests (internal/sdktest), " +
			"so the server never builds on a client's types and the binary does not carry them",
	},
	{
		name: "the model is pure",
		from: []string{module + "/internal/resource/..."},
		never: []string{module + "/internal/controller/...", module + "/internal/arm/...", module + "/internal/driver/...",
			module + "/internal/dataplane/..."},
		why: "resource is the model: Go types, IDs and validation rules that the API, the controllers and the tests share; " +
			"it depends on none of them",
	},
	{
		name:  "the model does not know the store",
		from:  []string{module + "/internal/resource/..."},
		never: []string{module + "/internal/store/..."},
		why:   "the model is pure: how resources are stored is the store's and the providers' business",
	},
	{
		name: "the front door does not reach behind itself",
		from: []string{module + "/internal/arm"},
		never: []string{module + "/internal/controller/...", module + "/internal/rp/...",
			module + "/internal/deployments/..."},
		why: "arm routes ARM requests to resource providers that register with it; the providers and the " +
			"controllers depend on arm, never the other way round",
	},
	{
		name: "controllers work from the store, not the API",
		// controller/autoscale is not here: it is an API client by design
		// (it changes capacity with an ARM PATCH through the server's
		// handler, so scale-in policy, protection and upgrades apply as
		// for a user), and reads the settings the insights provider parses.
		from: []string{module + "/internal/controller/lb", module + "/internal/controller/vmss"},
		never: []string{module + "/internal/arm/...", module + "/internal/rp/...", module + "/internal/deployments/...",
			module + "/internal/template/..."},
		why: "a controller reads desired state from the store and writes the world; an API request never runs " +
			"controller code, so the API can run on a node without them and the other way round",
	},
	{
		name:  "autoscale changes capacity only through the API",
		from:  []string{module + "/internal/controller/autoscale"},
		never: []string{module + "/internal/rp/compute", module + "/internal/rp/network", module + "/internal/controller/vmss"},
		why: "autoscale must scale a scale set the way a user does (an ARM PATCH of sku.capacity), never by " +
			"calling the compute provider or the scale-set controller, so every rule a user meets applies to it",
	},
	{
		name:  "the network provider does not know compute",
		from:  []string{module + "/internal/rp/network"},
		never: []string{module + "/internal/rp/compute", module + "/internal/deployments/..."},
		why: "rp/compute builds on rp/network (subnets, LB pools); the way back is the MembershipSource that " +
			"compute hands to network.Register, so the two never form a cycle",
	},
	{
		name:  "the front door does not evaluate templates",
		from:  []string{module + "/internal/arm"},
		never: []string{module + "/internal/template/..."},
		why:   "template evaluation belongs to the deployments provider, which registers with arm like any other",
	},
}

// pkg is one package of `go list -deps -json`.
type pkg struct {
	ImportPath string
	Imports    []string
	Standard   bool
}

// graph maps an import path to the packages it imports (test files left out).
type graph map[string][]string

func TestDependencies(t *testing.T) {
	g, err := loadGraph(module + "/...")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d packages in the graph", len(g))
	for _, r := range rules {
		t.Run(r.name, func(t *testing.T) {
			from := g.matching(r.from)
			if len(from) == 0 {
				t.Fatalf("no package matches %v: renamed or moved? update the rule", r.from)
			}
			for _, p := range r.never {
				if len(g.matching([]string{p})) == 0 {
					t.Logf("%s matches no package yet", p)
				}
			}
			var found []string
			for _, p := range from {
				for _, v := range g.violations(p, r.never) {
					found = append(found, fmt.Sprintf("%s must not depend on %s; import chain: %s",
						p, v[len(v)-1], strings.Join(v, " → ")))
				}
			}
			switch {
			case r.pending == "" && len(found) > 0:
				t.Errorf("%s\nreason: %s", strings.Join(found, "\n"), r.why)
			case r.pending != "" && len(found) > 0:
				t.Logf("pending (%s):\n%s", r.pending, strings.Join(found, "\n"))
			case r.pending != "":
				t.Errorf("pending rule %q holds now: clear its pending field so it guards", r.name)
			}
		})
	}
}

// loadGraph lists pattern's packages and everything they import, standard
// library left out (it imports nothing of ours).
func loadGraph(pattern string) (graph, error) {
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", pattern)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("go list: %w\n%s", err, stderr.Bytes())
	}
	g := graph{}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, fmt.Errorf("go list output: %w", err)
		}
		if !p.Standard {
			g[p.ImportPath] = p.Imports
		}
	}
	return g, nil
}

// match reports whether path is named by pattern.
func match(pattern, path string) bool {
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}

func matchAny(patterns []string, path string) bool {
	return slices.ContainsFunc(patterns, func(p string) bool { return match(p, path) })
}

// matching returns the graph's packages named by any of patterns, sorted.
func (g graph) matching(patterns []string) []string {
	var out []string
	for p := range g {
		if matchAny(patterns, p) {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

// violations returns, for every package named by never that from depends
// on, the shortest import chain from from to it (from first). A package
// in never is not looked through: the chain ends at the first forbidden
// package. Chains come in breadth-first order, so the output is stable.
func (g graph) violations(from string, never []string) [][]string {
	parent := map[string]string{from: ""}
	queue := []string{from}
	var out [][]string
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		imports := slices.Clone(g[p])
		slices.Sort(imports)
		for _, q := range imports {
			if _, seen := parent[q]; seen {
				continue
			}
			parent[q] = p
			if matchAny(never, q) {
				chain := []string{q}
				for c := p; c != ""; c = parent[c] {
					chain = append(chain, c)
				}
				slices.Reverse(chain)
				out = append(out, chain)
				continue
			}
			queue = append(queue, q)
		}
	}
	return out
}

// TestViolations checks the chain search on a small graph.
func TestViolations(t *testing.T) {
	g := graph{
		"m/dp":         {"m/dp/nft", "m/maglev"},
		"m/dp/nft":     {"m/hostnet"},
		"m/hostnet":    {"m/store/bolt", "m/arm"},
		"m/maglev":     nil,
		"m/arm":        {"m/store"},
		"m/store/bolt": {"m/store"},
		"m/store":      nil,
	}
	tests := []struct {
		name  string
		from  string
		never []string
		want  [][]string
	}{
		{"clean", "m/maglev", []string{"m/arm"}, nil},
		{"through two packages", "m/dp", []string{"m/arm"},
			[][]string{{"m/dp", "m/dp/nft", "m/hostnet", "m/arm"}}},
		{"a prefix names the package and those below; the search stops at a forbidden one", "m/dp", []string{"m/store/..."},
			[][]string{{"m/dp", "m/dp/nft", "m/hostnet", "m/store/bolt"}, {"m/dp", "m/dp/nft", "m/hostnet", "m/arm", "m/store"}}},
		{"each forbidden package once, by its shortest chain", "m/hostnet", []string{"m/arm", "m/store"},
			[][]string{{"m/hostnet", "m/arm"}, {"m/hostnet", "m/store/bolt", "m/store"}}},
		{"a prefix is not a string prefix", "m/dp", []string{"m/dp/n"}, nil},
		{"a pattern matching nothing", "m/dp", []string{"m/rp/..."}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := g.violations(tt.from, tt.never)
			if !slices.EqualFunc(got, tt.want, slices.Equal) {
				t.Errorf("violations(%s, %v) = %q; want %q", tt.from, tt.never, got, tt.want)
			}
		})
	}
}
