package system

// Address plan: public IPs from the test pool 127.78.1.0/24 (loopback,
// userspace engine); backends are plain listeners on 127.0.0.1; the port
// holder listens on a frontend's own address. Traffic goes only to loopback.

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"nimbus/internal/poll"
	"nimbus/internal/sdktest"
)

// newLBEnv starts a process + proxy nimbus (no instances are created) with
// SDK clients and a resource group.
func newLBEnv(t testing.TB, tweak ...func(*Options)) *env {
	t.Helper()
	e := &env{t: t, dir: t.TempDir(), rg: "rg"}
	e.sys = startSystemMode(t, e.dir, Process, tweak...)
	t.Cleanup(func() { _ = e.sys.Stop() })
	ep := e.sys.Node.Endpoint
	opts, err := sdktest.Options(ep.Endpoint, ep.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	e.sub, e.opts = ep.SubscriptionID, opts
	e.cred = sdktest.Credential{Minter: e.sys.Node.Issuer, Audience: ep.Audience}
	rgc, _ := armresources.NewResourceGroupsClient(e.sub, e.cred, e.opts)
	if _, err := rgc.CreateOrUpdate(context.Background(), e.rg, armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil); err != nil {
		t.Fatalf("create group: %v", err)
	}
	return e
}

// publicIP creates a Standard static public IP and returns its address.
func (e *env) publicIP(ctx context.Context, name string) (id, addr string) {
	e.t.Helper()
	pipc, _ := armnetwork.NewPublicIPAddressesClient(e.sub, e.cred, e.opts)
	p, err := pipc.BeginCreateOrUpdate(ctx, e.rg, name, armnetwork.PublicIPAddress{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{
			PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic)},
	}, nil)
	var res armnetwork.PublicIPAddressesClientCreateOrUpdateResponse
	if err == nil {
		res, err = p.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		e.t.Fatalf("create public ip %s: %v", name, err)
	}
	return *res.ID, *res.Properties.IPAddress
}

// lbBody is a Standard LB on public IP pipID with one TCP rule port →
// backend (an IP-based pool member), idle timeout idleMin minutes.
func (e *env) lbBody(name, pipID string, port int32, backend *net.TCPAddr, idleMin int32) armnetwork.LoadBalancer {
	lbID := e.id("Microsoft.Network/loadBalancers", name)
	fe, pool := lbID+"/frontendIPConfigurations/fe", lbID+"/backendAddressPools/be"
	return armnetwork.LoadBalancer{
		Location: to.Ptr("eastus"),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"),
				Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{
					PublicIPAddress: &armnetwork.PublicIPAddress{ID: to.Ptr(pipID)}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("be"),
				Properties: &armnetwork.BackendAddressPoolPropertiesFormat{
					LoadBalancerBackendAddresses: []*armnetwork.LoadBalancerBackendAddress{{Name: to.Ptr("a1"),
						Properties: &armnetwork.LoadBalancerBackendAddressPropertiesFormat{
							IPAddress: to.Ptr(backend.IP.String())}}}}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("r"),
				Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
					FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(fe)},
					BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(pool)},
					Protocol:                to.Ptr(armnetwork.TransportProtocolTCP),
					FrontendPort:            to.Ptr(port), BackendPort: to.Ptr(int32(backend.Port)),
					IdleTimeoutInMinutes: to.Ptr(idleMin),
				}}},
		},
	}
}

// greeter listens on 127.0.0.1:0 and writes name to every connection.
func greeter(t *testing.T, name string) *net.TCPAddr {
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
			fmt.Fprintf(c, "%s\n", name)
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr)
}

// greeting dials addr and returns the first line it answers.
func greeting(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}

// freeTCPPort returns a port free on ip.
func freeTCPPort(t *testing.T, ip string) int32 {
	t.Helper()
	l, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return int32(l.Addr().(*net.TCPAddr).Port)
}

// TestFrontendFailureIsIsolated holds a frontend port with a plain
// listener: the LB on it fails alone (its PUT's operation ends Failed with
// FrontendPortInUse naming the port and this process as holder, its GET
// shows the error on the frontend), a valid LB created after it serves, and
// once the holder closes the failed LB serves by itself and the error clears.
func TestFrontendFailureIsIsolated(t *testing.T) {
	ctx := context.Background()
	e := newLBEnv(t)
	backend := greeter(t, "backend")
	pipA, ipA := e.publicIP(ctx, "pip-a")
	pipB, ipB := e.publicIP(ctx, "pip-b")
	portA, portB := freeTCPPort(t, ipA), freeTCPPort(t, ipB)
	holder, err := net.Listen("tcp", net.JoinHostPort(ipA, fmt.Sprint(portA)))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()

	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	pa, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "lb-a", e.lbBody("lb-a", pipA, portA, backend, 4), nil)
	if err != nil {
		t.Fatalf("PUT lb-a: %v", err)
	}
	_, err = pa.PollUntilDone(ctx, sdktest.Poll)
	var re *azcore.ResponseError
	if !errors.As(err, &re) || re.ErrorCode != "FrontendPortInUse" {
		t.Fatalf("lb-a operation: %v, want Failed with FrontendPortInUse", err)
	}
	for _, want := range []string{fmt.Sprint(portA), fmt.Sprintf("pid %d", os.Getpid())} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("lb-a operation error %q does not name %q", err, want)
		}
	}

	pb, err := lbc.BeginCreateOrUpdate(ctx, e.rg, "lb-b", e.lbBody("lb-b", pipB, portB, backend, 4), nil)
	if err == nil {
		_, err = pb.PollUntilDone(ctx, sdktest.Poll)
	}
	if err != nil {
		t.Fatalf("lb-b, valid, failed: %v", err)
	}
	if got, err := greeting(net.JoinHostPort(ipB, fmt.Sprint(portB))); err != nil || got != "backend" {
		t.Fatalf("lb-b does not serve: %q, %v", got, err)
	}

	got, err := lbc.Get(ctx, e.rg, "lb-a", nil)
	if err != nil {
		t.Fatal(err)
	}
	if ps := *got.Properties.ProvisioningState; ps != armnetwork.ProvisioningStateSucceeded {
		t.Errorf("lb-a provisioningState %s, want Succeeded (Azure has no data-plane state)", ps)
	}
	raw := e.rawGet(ctx, "lb-a")
	if !strings.Contains(raw, `"nimbusDataplaneErrors":[{"code":"FrontendPortInUse"`) {
		t.Errorf("GET lb-a does not show the failure on its frontend: %s", raw)
	}
	if raw := e.rawGet(ctx, "lb-b"); strings.Contains(raw, "nimbusDataplaneErrors") {
		t.Errorf("GET lb-b shows data-plane errors: %s", raw)
	}

	holder.Close()
	addrA := net.JoinHostPort(ipA, fmt.Sprint(portA))
	poll.Until(t, 10*time.Second, "lb-a serving after its port freed up", func() error {
		got, err := greeting(addrA)
		if err == nil && got != "backend" {
			err = fmt.Errorf("answer %q", got)
		}
		return err
	})
	poll.Until(t, 10*time.Second, "lb-a's error cleared", func() error {
		if raw := e.rawGet(ctx, "lb-a"); strings.Contains(raw, "nimbusDataplaneErrors") {
			return errors.New("still shown")
		}
		return nil
	})
}

// rawGet returns the JSON body of GET on load balancer name.
func (e *env) rawGet(ctx context.Context, name string) string {
	e.t.Helper()
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	var resp *http.Response
	if _, err := lbc.Get(policy.WithCaptureResponse(ctx, &resp), e.rg, name, nil); err != nil {
		e.t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b)
}

// fdCount is the number of descriptors this process holds.
func fdCount(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// refusedTotal sums nimbus_refused_flows_total.
func refusedTotal(t *testing.T, s *System) float64 {
	t.Helper()
	mfs, err := s.Metrics.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n float64
	for _, mf := range mfs {
		if mf.GetName() == "nimbus_refused_flows_total" {
			for _, m := range mf.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
	}
	return n
}

// TestFloodStaysWithinBudget floods one frontend whose backend never
// accepts (a listener nobody accepts on: the kernel completes the
// handshakes) up to its budget and beyond: the connections beyond are reset
// at once and counted, the API and another frontend keep answering
// meanwhile (the API's p99 is logged), and when the attacker leaves (closes,
// with FIN) its descriptors come back after the half-close timeout.
func TestFloodStaysWithinBudget(t *testing.T) {
	const perFrontend, extra = 300, 100
	ctx := context.Background()
	before := fdCount(t)
	e := newLBEnv(t, func(o *Options) {
		o.MaxFlows, o.MaxFlowsPerFrontend = 2*perFrontend, perFrontend
		o.HalfCloseTimeout = 500 * time.Millisecond
	})
	sink, err := net.Listen("tcp", "127.0.0.1:0") // never accepts
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	backend := greeter(t, "backend")
	pipA, ipA := e.publicIP(ctx, "pip-a")
	pipB, ipB := e.publicIP(ctx, "pip-b")
	portA, portB := freeTCPPort(t, ipA), freeTCPPort(t, ipB)
	lbc, _ := armnetwork.NewLoadBalancersClient(e.sub, e.cred, e.opts)
	for _, lb := range []struct {
		name, pip string
		port      int32
		to        *net.TCPAddr
	}{{"lb-a", pipA, portA, sink.Addr().(*net.TCPAddr)}, {"lb-b", pipB, portB, backend}} {
		p, err := lbc.BeginCreateOrUpdate(ctx, e.rg, lb.name, e.lbBody(lb.name, lb.pip, lb.port, lb.to, 4), nil)
		if err == nil {
			_, err = p.PollUntilDone(ctx, sdktest.Poll)
		}
		if err != nil {
			t.Fatalf("create %s: %v", lb.name, err)
		}
	}
	addrA, addrB := net.JoinHostPort(ipA, fmt.Sprint(portA)), net.JoinHostPort(ipB, fmt.Sprint(portB))
	started := fdCount(t)

	// The attacker fills the frontend's budget. Each connection is proxied
	// (the proxy's dial to the sink succeeds) and then waits forever.
	var attack []net.Conn
	defer func() {
		for _, c := range attack {
			c.Close()
		}
	}()
	for range perFrontend {
		c, err := net.DialTimeout("tcp", addrA, 2*time.Second)
		if err != nil {
			t.Fatalf("connection within the budget: %v", err)
		}
		attack = append(attack, c)
	}
	// The proxy has accepted them all once the process holds their
	// descriptors: the attacker's, the proxy's two per flow.
	poll.Until(t, 10*time.Second, "the budget's connections proxied", func() error {
		if n := fdCount(t) - started; n < 3*perFrontend {
			return fmt.Errorf("%d descriptors more, want %d", n, 3*perFrontend)
		}
		return nil
	})

	// Beyond the budget: refused at once (RST or EOF), never left hanging.
	refusedBefore := refusedTotal(t, e.sys)
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		hanging int
		slowest time.Duration
	)
	for range extra {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			c, err := net.DialTimeout("tcp", addrA, 2*time.Second)
			if err == nil {
				_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
				_, err = c.Read(make([]byte, 1))
				c.Close()
			}
			mu.Lock()
			defer mu.Unlock()
			slowest = max(slowest, time.Since(start))
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				hanging++
			}
		}()
	}
	// Meanwhile the API and the other frontend answer.
	var lat []time.Duration
	for range 50 {
		start := time.Now()
		if _, err := lbc.Get(ctx, e.rg, "lb-b", nil); err != nil {
			t.Fatalf("API during the flood: %v", err)
		}
		lat = append(lat, time.Since(start))
		if got, err := greeting(addrB); err != nil || got != "backend" {
			t.Fatalf("other frontend during the flood: %q, %v", got, err)
		}
	}
	wg.Wait()
	if hanging > 0 {
		t.Errorf("%d of %d connections beyond the budget were left hanging (no RST within 3 s)", hanging, extra)
	}
	if got := refusedTotal(t, e.sys) - refusedBefore; got < extra {
		t.Errorf("nimbus_refused_flows_total rose by %v, want %d", got, extra)
	}
	slices.Sort(lat)
	t.Logf("during the flood: API GET p50 %v p99 %v; slowest refusal %v", lat[len(lat)/2], lat[len(lat)*99/100], slowest)

	// The attacker leaves: its flows end after the half-close timeout
	// although the backend never answered, and the descriptors come back.
	for _, c := range attack {
		c.Close()
	}
	attack = nil
	poll.Until(t, 10*time.Second, "descriptors back after the attacker left", func() error {
		if n := fdCount(t) - started; n > 10 {
			return fmt.Errorf("%d descriptors more than before the flood", n)
		}
		return nil
	})
	t.Logf("descriptors: %d at start, %d with the system up, %d after the flood", before, started, fdCount(t))
}
