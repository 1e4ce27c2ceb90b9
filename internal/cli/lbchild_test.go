package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

// fakeLB is an ARM server holding one load balancer: GET returns it, PUT
// stores the body verbatim and returns it (no LRO). Nothing but loopback.
type fakeLB struct {
	mu   sync.Mutex
	path string
	body []byte
	puts int
}

func (f *fakeLB) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !strings.EqualFold(r.URL.Path, f.path) {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"error":{"code":"ResourceNotFound","message":"no %s"}}`, r.URL.Path)
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodPut:
		b, _ := io.ReadAll(r.Body)
		f.body = b
		f.puts++
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(f.body)
}

// TestLBChildVerbs runs the `network lb <child>` verbs against a fake ARM
// server and compares, per step, the error, the output and the load
// balancer body PUT back with testdata/lbchild.golden (-update rewrites it).
// Unknown fields of the LB (extra) must survive every write.
func TestLBChildVerbs(t *testing.T) {
	const lbPath = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1"
	f := &fakeLB{path: lbPath, body: []byte(`{"id":"` + lbPath + `","name":"lb1","location":"eastus","extra":{"keep":true},
		"properties":{"frontendIPConfigurations":[{"name":"fe","properties":{"publicIPAddress":{"id":"/pip"}}}],
		"backendAddressPools":[{"name":"be"}],"probes":[],"loadBalancingRules":[],"extra":1}}`)}
	srv := httptest.NewServer(f)
	defer srv.Close()
	t.Setenv(EnvToken, "token")
	t.Setenv(EnvCAFile, "")
	base := []string{"--endpoint", srv.URL, "--subscription", "s1", "--data-dir", t.TempDir(), "-g", "rg", "--lb-name", "lb1"}
	steps := []string{
		"probe create -n p1 --port 80 --protocol http --path /",
		"rule create -n r1 --frontend-port 80 --backend-port 8080 --protocol tcp --probe-name p1",
		"rule update -n r1 --idle-timeout 10 --floating-ip true --set properties.enableTcpReset=true",
		"rule update -n r1 --probe-name=",
		"address-pool create -n be2 --drain-period 30",
		"rule create -n r2 --frontend-port 81 --backend-port 81 --protocol udp",
		"rule create -n r2 --frontend-port 81 --backend-port 81 --protocol udp --backend-address-pool be2 --load-distribution sourceip --disable-outbound-snat true",
		"inbound-nat-rule create -n nat1 --protocol tcp --frontend-port 40000 --backend-port 22",
		"inbound-nat-rule create -n nat2 --protocol tcp --frontend-port-range-start 41000 --frontend-port-range-end 41099 --backend-port 22 --backend-pool-name be",
		"inbound-nat-pool create -n np1 --protocol tcp --frontend-port-range-start 50000 --frontend-port-range-end 50099 --backend-port 22",
		"outbound-rule create -n o1 --frontend-ip-configs fe --address-pool be --protocol All --outbound-ports 1024",
		"frontend-ip create -n fe2 --public-ip-address pip2 --zone 1 2",
		"frontend-ip update -n fe2 --private-ip-address 198.18.0.5 --subnet sn --vnet-name vn",
		"frontend-ip update -n fe2 --subnet sn",
		"probe create -n P1 --port 81 --protocol tcp",
		"probe list",
		"probe show -n p1",
		"probe show -n nope",
		"probe update -n nope --port 1",
		"probe create -n p3",
		"rule create -n r3 --frontend-port 1 --backend-port 1 --protocol sctp",
		"address-pool delete -n be2",
		"address-pool delete -n be2",
		"inbound-nat-rule delete -n NAT1 --no-wait",
	}
	var out strings.Builder
	for _, step := range steps {
		args := append([]string{"network", "lb"}, strings.Fields(step)...)
		args = append(args, base...)
		var stdout, stderr bytes.Buffer
		putsBefore := f.puts
		err := Run(context.Background(), args, &stdout, &stderr)
		fmt.Fprintf(&out, "### %s\n", step)
		if err != nil {
			fmt.Fprintf(&out, "error: %v\n", err)
		}
		if stderr.Len() > 0 {
			fmt.Fprintf(&out, "stderr: %s", stderr.String())
		}
		if stdout.Len() > 0 {
			fmt.Fprintf(&out, "stdout:\n%s", stdout.String())
		}
		if f.puts != putsBefore {
			var v any
			if err := json.Unmarshal(f.body, &v); err != nil {
				t.Fatalf("%s: PUT body: %v", step, err)
			}
			b, _ := json.MarshalIndent(v, "", "  ")
			fmt.Fprintf(&out, "put:\n%s\n", b)
			if !strings.Contains(string(f.body), `"extra":1`) || !strings.Contains(string(f.body), `"keep":true`) {
				t.Errorf("%s: unknown fields dropped: %s", step, f.body)
			}
		}
	}
	golden := filepath.Join("testdata", "lbchild.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got := out.String(); got != string(want) {
		t.Errorf("lb child verbs differ from %s (run with -update after checking):\n%s", golden, lineDiff(string(want), got))
	}
}

// lineDiff returns the first differing lines of want and got.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) || i < len(g); i++ {
		var a, b string
		if i < len(w) {
			a = w[i]
		}
		if i < len(g) {
			b = g[i]
		}
		if a != b {
			return fmt.Sprintf("line %d:\n- %s\n+ %s", i+1, a, b)
		}
	}
	return ""
}
