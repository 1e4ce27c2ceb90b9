// Package templates_test deploys Azure's quickstart templates unchanged
// with the real az CLI (`az deployment group create --template-file …
// --parameters @…`) against one whole running nimbus (API, controllers,
// process driver, userspace proxy), each template in a resource group of
// its own, and checks traffic through the load-balancing rules and NAT
// ports the template creates.
//
// A template that needs a type nimbus does not serve is deployed twice:
// as is (the deployment must be refused before anything is created, the
// error naming each such type), then in a group tagged
// nimbus-unserved-types: store, where it must deploy, those resources
// stored without behaviour and the rest working for real.
//
// Templates that cannot pass yet are listed in cases with the reason
// (t.Skip "blocked on: …"); set NIMBUS_CONFORMANCE_BLOCKED=run to deploy
// them anyway and see where they stand.
package templates_test

// Address plan: public IPs come from 127.78.9.0/24 (loopback, userspace
// engine); instances' customer addresses map to provider addresses in
// 127.84.0.0/22; internal frontends a.b.c.d listen on 127.115.c.d (the
// process driver's plan). Traffic goes only to loopback.

import (
	"bufio"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/arm/armtest"
	"nimbus/internal/node"
	"nimbus/internal/poll"
	"nimbus/internal/system"
	"nimbus/internal/workload"
)

func TestMain(m *testing.M) {
	workload.RunIfReexec()
	os.Exit(m.Run())
}

// Reasons a template cannot pass yet, by the part of the work that
// unblocks it.
const (
	blockedPrefix = "blocked on: Microsoft.Network/publicIPPrefixes (issue 12: public IP prefixes are not served yet)"
)

// tcase is one quickstart template of testdata/.
type tcase struct {
	dir string
	// blocked, when set, is why the template cannot deploy yet (t.Skip).
	blocked string
	// unserved are the types nimbus does not serve that the template
	// creates ("Microsoft.Network/networkInterfaces"): refused by default,
	// stored with the opt-in.
	unserved []string
	// extra are parameters given after the parameter file, as a user
	// deploying the template from a local file must
	// (_artifactsLocation defaults to deployment().properties.templateLink,
	// which a local file has not, on Azure as here).
	extra []string
}

var cases = []tcase{
	{dir: "internal-loadbalancer-create", unserved: []string{"Microsoft.Network/networkInterfaces"}},
	{dir: "loadbalancer-with-nat-rule", unserved: []string{"Microsoft.Network/networkInterfaces"}},
	{dir: "load-balancer-standard-create", unserved: []string{"Microsoft.Network/networkInterfaces",
		"Microsoft.Compute/virtualMachines", "Microsoft.Compute/virtualMachines/extensions", "Microsoft.Network/bastionHosts"}},
	{dir: "vmss-automatic-repairs-slb-health-probe",
		extra: []string{"_artifactsLocation=https://raw.githubusercontent.com/Azure/azure-quickstart-templates/master/quickstarts/microsoft.compute/vmss-automatic-repairs-slb-health-probe/"}},
	{dir: "vmss-flexible-orchestration-quickstart"},
	{dir: "vmss-linux-nat"},
	{dir: "vmss-ubuntu-autoscale"},
	{dir: "vmss-windows-nat-zones"},
	// Read through the search index at commit 1bd4e31a (no parameter file
	// there): the values a user deploying it gives on the command line.
	{dir: "vmss-windows-autoscale", extra: []string{"vmssName=winscale", "instanceCount=2", "adminUsername=azureuser",
		"adminPassword=Nimbus-Passw0rd-42!"}},
	{dir: "vmss-with-public-ip-prefix", blocked: blockedPrefix},
}

// suite is the nimbus all templates share, with az logged in against it.
type suite struct {
	sys   *system.System
	azEnv []string
	dir   string
	// groups are the resource groups created, deleted (with their
	// instances) before nimbus stops.
	groups []string
}

func startSuite(t *testing.T) *suite {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("the echo image binds ports 80 and 22: run as root (CI does)")
	}
	if _, err := os.Stat(armtest.AZBinary); err != nil {
		t.Skipf("az CLI not installed at %s: %v", armtest.AZBinary, err)
	}
	dir := t.TempDir()
	sys, err := system.Start(context.Background(), system.Options{
		Node:          node.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicPool: netip.MustParsePrefix("127.78.9.0/24")},
		Driver:        system.Process,
		Dataplane:     system.Proxy,
		ProviderPool:  netip.MustParsePrefix("127.84.0.0/22"),
		InternalPool:  netip.MustParsePrefix("127.115.0.0/16"), // its own: nimbus refuses pools another nimbus on the host uses
		WorkloadEnv:   map[string]string{workload.ReexecEnv: "1"},
		Resync:        200 * time.Millisecond,
		ProbeInterval: time.Second,
		MetricsListen: "off",
	})
	if err != nil {
		t.Fatalf("start nimbus: %v", err)
	}
	s := &suite{sys: sys, dir: dir}
	t.Cleanup(func() {
		// Delete the groups first: a group's delete ends when its scale
		// sets' instances have stopped, so no instance outlives the test.
		for _, rg := range s.groups {
			if _, stderr, err := s.tryAZ(t, "group", "delete", "-n", rg, "--yes"); err != nil {
				t.Errorf("delete group %s: %v\n%s", rg, err, stderr)
			}
		}
		if err := sys.Stop(); err != nil {
			t.Errorf("stop nimbus: %v", err)
		}
	})
	n := &armtest.Node{Node: sys.Node, T: t, Dir: dir, Base: sys.Node.Endpoint.Endpoint, Sub: sys.Node.Endpoint.SubscriptionID}
	s.azEnv = armtest.LoginAZ(t, n)
	return s
}

func TestQuickstartTemplates(t *testing.T) {
	s := startSuite(t)
	runBlocked := os.Getenv("NIMBUS_CONFORMANCE_BLOCKED") == "run"
	for _, tc := range cases {
		t.Run(tc.dir, func(t *testing.T) {
			if tc.blocked != "" && !runBlocked {
				t.Skip(tc.blocked)
			}
			s.run(t, tc)
		})
	}
}

// run deploys one template: refused without the opt-in when it has
// unserved types, then deployed and its traffic checked.
func (s *suite) run(t *testing.T, tc tcase) {
	// This template's groups go when it is done: templates reuse private
	// addresses (10.0.0.4 in two of them), and in process mode internal
	// frontends of different virtual networks share the loopback mapping.
	first := len(s.groups)
	t.Cleanup(func() {
		for _, rg := range s.groups[first:] {
			if _, stderr, err := s.tryAZ(t, "group", "delete", "-n", rg, "--yes"); err != nil {
				t.Errorf("delete group %s: %v\n%s", rg, err, stderr)
			}
		}
		s.groups = s.groups[:first]
	})
	tmplFile := filepath.Join("testdata", tc.dir, "azuredeploy.json")
	params := s.fillParameters(t, tc.dir)
	rg := "rg-" + tc.dir
	if len(rg) > 60 {
		rg = rg[:60]
	}
	loc := "eastus"
	if len(tc.unserved) > 0 {
		s.createGroup(t, rg+"-refused", loc)
		args := []string{"deployment", "group", "create", "-g", rg + "-refused", "-n", "d", "--template-file", tmplFile}
		if params != "" {
			args = append(args, "--parameters", "@"+params)
		}
		if len(tc.extra) > 0 {
			args = append(append(args, "--parameters"), tc.extra...)
		}
		_, stderr, err := s.tryAZ(t, args...)
		if err == nil {
			t.Fatalf("the template with %v deployed without the opt-in", tc.unserved)
		}
		if !strings.Contains(stderr, "InvalidTemplateDeployment") {
			t.Errorf("refusal is not InvalidTemplateDeployment: %s", stderr)
		}
		for _, typ := range tc.unserved {
			ns, rest, _ := strings.Cut(typ, "/")
			want := fmt.Sprintf("The resource type '%s' could not be found in the namespace '%s'", rest, ns)
			if !strings.Contains(stderr, want) {
				t.Errorf("refusal does not name %s: %s", typ, stderr)
			}
		}
		var left []map[string]any
		s.azJSON(t, &left, "resource", "list", "-g", rg+"-refused")
		if len(left) != 0 {
			t.Errorf("a refused deployment created %d resources: %v", len(left), left)
		}
		s.createGroup(t, rg, loc, "--tags", arm.UnservedGroupTag+"="+arm.UnservedStore)
	} else {
		s.createGroup(t, rg, loc)
	}
	args := []string{"deployment", "group", "create", "-g", rg, "-n", "d", "--template-file", tmplFile}
	if params != "" {
		args = append(args, "--parameters", "@"+params)
	}
	if len(tc.extra) > 0 {
		args = append(append(args, "--parameters"), tc.extra...)
	}
	out, stderr, err := s.tryAZ(t, args...)
	if err != nil {
		t.Fatalf("az deployment group create: %v\n%s", err, stderr)
	}
	var dep struct {
		Properties struct{ ProvisioningState string }
	}
	if err := json.Unmarshal(out, &dep); err != nil || dep.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("deployment: %v %s", err, out)
	}
	var res []struct {
		ID, Type string
		Tags     map[string]string
	}
	s.azJSON(t, &res, "resource", "list", "-g", rg)
	stored := map[string]bool{}
	for _, r := range res {
		if r.Tags[arm.UnservedMarkTag] == arm.UnservedMarkValue {
			stored[strings.ToLower(r.Type)] = true
		}
	}
	for _, typ := range tc.unserved {
		if strings.Count(typ, "/") == 1 && !stored[strings.ToLower(typ)] {
			t.Errorf("%s is not stored and marked: %+v", typ, res)
		}
	}
	s.checkTraffic(t, rg)
}

// lb is what the traffic check reads of a load balancer.
type lb struct {
	Name                     string
	FrontendIPConfigurations []struct {
		ID               string
		PrivateIPAddress string
		PublicIPAddress  *struct{ ID string }
	}
	BackendAddressPools []struct {
		ID                      string
		BackendIPConfigurations []struct{ ID string }
	}
	LoadBalancingRules []struct {
		Name                    string
		Protocol                string
		FrontendPort            int
		BackendPort             int
		FrontendIPConfiguration struct{ ID string }
	}
	InboundNatRules []struct {
		Name                    string
		Protocol                string
		FrontendPort            int
		BackendPort             int
		FrontendIPConfiguration struct{ ID string }
		BackendIPConfiguration  *struct{ ID string }
	}
	InboundNatPools []struct {
		Name                    string
		Protocol                string
		FrontendPortRangeStart  int
		BackendPort             int
		FrontendIPConfiguration struct{ ID string }
	}
}

// checkTraffic sends traffic through every TCP rule and NAT port of the
// group's load balancers that has backends, and expects the echo image
// (HTTP on 80, a banner on 22) to answer.
func (s *suite) checkTraffic(t *testing.T, rg string) {
	var lbs []lb
	s.azJSON(t, &lbs, "network", "lb", "list", "-g", rg)
	if len(lbs) == 0 {
		t.Fatalf("no load balancer in %s", rg)
	}
	checked := 0
	for _, l := range lbs {
		addr := map[string]string{}
		for _, fe := range l.FrontendIPConfigurations {
			a := fe.PrivateIPAddress
			if fe.PublicIPAddress != nil {
				// az resource show: az 2.45's `network public-ip show`
				// fails to load under the hybrid profile az logs in with.
				var pip struct{ Properties struct{ IPAddress string } }
				s.azJSON(t, &pip, "resource", "show", "--ids", fe.PublicIPAddress.ID)
				a = pip.Properties.IPAddress
			} else if p, err := netip.ParseAddr(a); err == nil && p.Is4() {
				b := p.As4()
				a = fmt.Sprintf("127.115.%d.%d", b[2], b[3]) // InternalPool
			}
			addr[strings.ToLower(fe.ID)] = a
		}
		members := 0
		for _, p := range l.BackendAddressPools {
			members += len(p.BackendIPConfigurations)
		}
		for _, r := range l.LoadBalancingRules {
			if !strings.EqualFold(r.Protocol, "Tcp") && !strings.EqualFold(r.Protocol, "All") {
				continue
			}
			if members == 0 {
				t.Logf("%s rule %s: no backends nimbus runs (their NICs or VMs are stored without behaviour); no traffic to check", l.Name, r.Name)
				continue
			}
			checkPort(t, l.Name+" rule "+r.Name, addr[strings.ToLower(r.FrontendIPConfiguration.ID)], r.FrontendPort, r.BackendPort)
			checked++
		}
		for _, r := range l.InboundNatRules {
			if r.BackendIPConfiguration == nil || r.FrontendPort == 0 {
				t.Logf("%s NAT rule %s: no backend nimbus runs; no traffic to check", l.Name, r.Name)
				continue
			}
			checkPort(t, l.Name+" NAT rule "+r.Name, addr[strings.ToLower(r.FrontendIPConfiguration.ID)], r.FrontendPort, r.BackendPort)
			checked++
		}
		for _, p := range l.InboundNatPools {
			if members == 0 {
				continue
			}
			checkPort(t, l.Name+" NAT pool "+p.Name, addr[strings.ToLower(p.FrontendIPConfiguration.ID)], p.FrontendPortRangeStart, p.BackendPort)
			checked++
		}
	}
	t.Logf("%s: %d frontend ports answered", rg, checked)
}

// checkPort waits for addr:port to answer as the echo image answers on
// backendPort.
func checkPort(t *testing.T, what, addr string, port, backendPort int) {
	t.Helper()
	target := net.JoinHostPort(addr, strconv.Itoa(port))
	poll.Until(t, 60*time.Second, what+" at "+target+" answers", func() error {
		switch backendPort {
		case 22:
			c, err := net.DialTimeout("tcp", target, 2*time.Second)
			if err != nil {
				return err
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(2 * time.Second))
			line, err := bufio.NewReader(c).ReadString('\n')
			if err != nil || !strings.HasPrefix(line, "SSH-") {
				return fmt.Errorf("banner %q: %v", line, err)
			}
			return nil
		default:
			c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
			resp, err := c.Get("http://" + target + "/")
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			var r workload.EchoReply
			if err := json.Unmarshal(b, &r); err != nil || r.Name == "" {
				return fmt.Errorf("reply %d %q: %v", resp.StatusCode, b, err)
			}
			return nil
		}
	})
}

// genRE matches the placeholders Azure's test pipeline fills in.
var genRE = regexp.MustCompile(`^GEN-([A-Z-]+?)(?:-(\d+))?$`)

// fillParameters writes the template's parameter file with its GEN-*
// placeholders filled as Azure's pipeline fills them (testdata/README.md),
// and returns its path.
func (s *suite) fillParameters(t *testing.T, dir string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", dir, "azuredeploy.parameters.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return "" // the repository has none: tcase.extra gives the values
	}
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatalf("%s parameters: %v", dir, err)
	}
	params, _ := doc["parameters"].(map[string]any)
	for name, p := range params {
		pm, _ := p.(map[string]any)
		v, ok := pm["value"].(string)
		if !ok {
			continue
		}
		m := genRE.FindStringSubmatch(v)
		if m == nil {
			continue
		}
		switch m[1] {
		case "UNIQUE":
			n := 12
			if m[2] != "" {
				n, _ = strconv.Atoi(m[2])
			}
			pm["value"] = uniqueName(n)
		case "PASSWORD":
			pm["value"] = "Nimbus-" + uniqueName(8) + "-42!"
		case "SSH-PUB-KEY":
			pm["value"] = sshPublicKey(t)
		default:
			t.Fatalf("%s: parameter %s: unknown placeholder %s", dir, name, v)
		}
	}
	out, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "parameters.json")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// uniqueName is a random lowercase name of n characters starting with a letter.
func uniqueName(n int) string {
	const letters = "abcdefghijklmnopqrstuvwxyz"
	const chars = letters + "0123456789"
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		set := chars
		if i == 0 {
			set = letters
		}
		b[i] = set[int(b[i])%len(set)]
	}
	return string(b)
}

// sshPublicKey is a fresh ed25519 public key in authorized_keys form.
func sshPublicKey(t *testing.T) string {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	field := func(b []byte) []byte {
		l := make([]byte, 4)
		binary.BigEndian.PutUint32(l, uint32(len(b)))
		return append(l, b...)
	}
	wire := append(field([]byte("ssh-ed25519")), field(pub)...)
	return "ssh-ed25519 " + base64.StdEncoding.EncodeToString(wire) + " nimbus-conformance"
}

// createGroup creates a resource group (az group create … extra) that
// the suite deletes at the end.
func (s *suite) createGroup(t *testing.T, rg, loc string, extra ...string) {
	t.Helper()
	s.az(t, append([]string{"group", "create", "-n", rg, "-l", loc}, extra...)...)
	s.groups = append(s.groups, rg)
}

func (s *suite) tryAZ(t *testing.T, args ...string) ([]byte, string, error) {
	t.Helper()
	return armtest.TryAZ(t, s.azEnv, args...)
}

func (s *suite) az(t *testing.T, args ...string) []byte {
	t.Helper()
	return armtest.RunAZ(t, s.azEnv, args...)
}

func (s *suite) azJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out := s.az(t, append(args, "-o", "json")...)
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("az %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// TestTrafficChecks checks the suite's own traffic checks against a
// template of nimbus's (testdata/harness-echo, the shape of the
// quickstart vmss-linux-nat with nimbus's echo image): az's view of the
// load balancer must be read right (rule, NAT pool, both instances in the
// pool), and the rule and every NAT port must answer.
func TestTrafficChecks(t *testing.T) {
	s := startSuite(t)
	s.run(t, tcase{dir: "harness-echo"})
	var lbs []lb
	s.azJSON(t, &lbs, "network", "lb", "list", "-g", "rg-harness-echo")
	if len(lbs) != 1 || len(lbs[0].LoadBalancingRules) != 1 || len(lbs[0].InboundNatPools) != 1 {
		t.Fatalf("az network lb list read as %+v", lbs)
	}
	members := 0
	for _, p := range lbs[0].BackendAddressPools {
		members += len(p.BackendIPConfigurations)
	}
	if members != 2 {
		t.Fatalf("backend pool members = %d, want the 2 instances", members)
	}
}
