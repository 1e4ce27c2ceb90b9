// Package demo is `nimbus demo`: it starts an embedded nimbus in the best
// mode the machine allows and walks through Azure's scenario of a scale set
// behind a Standard Load Balancer, as an ordinary API client, narrating each
// step: traffic spread, NAT ports, a probe taking a sick instance out, the
// CannotModifyRuleUsedByProbeUsedByVMSS error and its documented way out,
// scale-out, and outbound SNAT.
package demo

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sort"
	"strings"
	"time"

	"nimbus/internal/cli"
	"nimbus/internal/dataplane"
	"nimbus/internal/hostnet"
	"nimbus/internal/node"
	"nimbus/internal/rootless"
	"nimbus/internal/system"
	"nimbus/internal/workload"
)

// Options configure a demo run.
type Options struct {
	// Out receives the narration.
	Out io.Writer
	// Keep leaves nimbus and the resources running after the walk-through
	// until ctx ends.
	Keep bool
	// DataDir is the embedded server's data directory (default: a new
	// temporary directory, removed at the end unless Keep).
	DataDir string
	// Driver and Dataplane choose the mode (default auto).
	Driver, Dataplane string
	// WorkloadEnv is passed to the system (tests re-exec the test binary).
	WorkloadEnv map[string]string
	// PublicPool, ProviderPool and HostNet override the system's address
	// pools and namespace (tests running side by side need distinct ones).
	PublicPool, ProviderPool netip.Prefix
	HostNet                  hostnet.Options
	// Logger receives the embedded nimbus's logs (nil discards them).
	Logger *slog.Logger
	// Rootless is set when the demo runs in a rootless child
	// (system.Options.Rootless); nil otherwise.
	Rootless *rootless.Host
}

// Result is what the demo observed, for its test.
type Result struct {
	Mode          system.Mode
	Instances     int
	Spread        map[string]int
	NATReached    map[string]string // NAT endpoint -> instance name from the banner
	SickName      string
	SickOutAfter  time.Duration
	SpreadSick    map[string]int
	RuleErrorCode string
	MovedPort     int
	SpreadMoved   map[string]int
	ScaledTo      int
	SpreadScaled  map[string]int
	SNAT          []SNATBlock
	Egress        string // "frontend:port seen by the destination", kernel path only
	Elapsed       time.Duration
}

// SNATBlock is one instance's outbound SNAT block.
type SNATBlock struct {
	Instance string
	Frontend string
	Ports    string
}

const (
	rg        = "demo"
	apiNet    = "2025-01-01"
	apiComp   = "2025-04-01"
	apiGroups = "2021-04-01"
	location  = "eastus"
)

type walker struct {
	opt   Options
	out   io.Writer
	c     *cli.Client
	sys   *system.System
	res   Result
	start time.Time
	vip   string
}

// Run runs the demo. It returns what it saw, and an error if a step did not
// behave as Azure would.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if opt.Out == nil {
		opt.Out = os.Stdout
	}
	w := &walker{opt: opt, out: opt.Out, start: time.Now()}
	dir := opt.DataDir
	if dir == "" {
		d, err := os.MkdirTemp("", "nimbus-demo-")
		if err != nil {
			return nil, err
		}
		dir = d
		if !opt.Keep {
			defer os.RemoveAll(dir)
		}
	}
	w.say("Starting nimbus (data in %s) ...", dir)
	sys, err := system.Start(ctx, system.Options{
		Node:   node.Config{DataDir: dir, Listen: "127.0.0.1:0", PublicPool: opt.PublicPool, Logger: opt.Logger},
		Driver: opt.Driver, Dataplane: opt.Dataplane, MetricsListen: "off",
		WorkloadEnv: opt.WorkloadEnv, ProviderPool: opt.ProviderPool, HostNet: opt.HostNet, Rootless: opt.Rootless,
	})
	if err != nil {
		return nil, fmt.Errorf("start nimbus: %w", err)
	}
	w.sys = sys
	w.res.Mode = sys.Mode
	why := ""
	if sys.Mode.Reason != "" {
		why = " (" + sys.Mode.Reason + ")"
	}
	w.say("  mode: %s instances, %s data plane%s", sys.Mode.Driver, sys.Mode.Dataplane, why)
	w.say("  ARM endpoint %s — az and the Azure SDKs can talk to it (see README)", sys.Node.Endpoint.Endpoint)
	c, err := cli.NewClient(ctx, cli.Config{DataDir: dir})
	if err != nil {
		_ = sys.Stop()
		return nil, err
	}
	w.c = c
	err = w.walk(ctx)
	w.res.Elapsed = time.Since(w.start)
	if err == nil && opt.Keep {
		w.say("\n--keep: nimbus keeps running at %s with everything in group %q. Try:", sys.Node.Endpoint.Endpoint, rg)
		w.say("  NIMBUS_DATA_DIR=%s nimbus vmss list-instances -g %s -n demo-vmss -o table", dir, rg)
		w.say("  curl http://%s/", w.vip)
		w.say("Press Ctrl-C to stop.")
		<-ctx.Done()
	}
	cleanupErr := w.cleanup(err == nil)
	if err == nil {
		err = cleanupErr
	}
	return &w.res, err
}

func (w *walker) say(format string, args ...any) { fmt.Fprintf(w.out, format+"\n", args...) }

func (w *walker) step(n int, format string, args ...any) {
	w.say("\n[%2ds] %d. %s", int(time.Since(w.start).Seconds()), n, fmt.Sprintf(format, args...))
}

// cleanup deletes the demo's resources (instances stop) and nimbus. It
// says "Done" only after a walk that succeeded (ok).
func (w *walker) cleanup(ok bool) error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w.say("\nCleaning up: deleting resource group %q (its scale set's instances stop) and stopping nimbus ...", rg)
	err := w.c.Delete(ctx, "/subscriptions/"+w.c.Subscription+"/resourcegroups/"+rg, apiGroups, true)
	if err == nil {
		err = w.sys.VMSS.WaitConverged(ctx, w.id("Microsoft.Compute/virtualMachineScaleSets", "demo-vmss"))
	}
	if stopErr := w.sys.Stop(); err == nil {
		err = stopErr
	}
	switch {
	case err == nil && ok:
		w.say("Done in %.1f s.", time.Since(w.start).Seconds())
	case err == nil:
		w.say("Cleaned up after the failure (%.1f s).", time.Since(w.start).Seconds())
	}
	return err
}

func (w *walker) id(typ, name string) string {
	return fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/%s/%s", w.c.Subscription, rg, typ, name)
}

func (w *walker) put(ctx context.Context, id, api string, body any) (map[string]any, error) {
	v, err := w.c.Put(ctx, id, api, body, true)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

func (w *walker) get(ctx context.Context, id, api string) (map[string]any, error) {
	v, err := w.c.Get(ctx, id, api)
	if err != nil {
		return nil, err
	}
	m, _ := v.(map[string]any)
	return m, nil
}

func (w *walker) walk(ctx context.Context) error {
	lbID := w.id("Microsoft.Network/loadBalancers", "demo-lb")
	fe, pool, probe := lbID+"/frontendIPConfigurations/fe", lbID+"/backendAddressPools/demo-pool", lbID+"/probes/http"
	ref := func(id string) map[string]any { return map[string]any{"id": id} }

	w.step(1, "Creating a resource group, a virtual network, a Standard public IP and a Standard load balancer")
	if _, err := w.put(ctx, "/subscriptions/"+w.c.Subscription+"/resourcegroups/"+rg, apiGroups, map[string]any{"location": location}); err != nil {
		return err
	}
	if _, err := w.put(ctx, w.id("Microsoft.Network/virtualNetworks", "demo-vnet"), apiNet, map[string]any{
		"location": location, "properties": map[string]any{
			"addressSpace": map[string]any{"addressPrefixes": []string{"10.0.0.0/16"}},
			"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "10.0.0.0/24"}}},
		}}); err != nil {
		return err
	}
	pip, err := w.put(ctx, w.id("Microsoft.Network/publicIPAddresses", "demo-pip"), apiNet, map[string]any{
		"location": location, "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{"publicIPAllocationMethod": "Static"}})
	if err != nil {
		return err
	}
	w.vip, _ = dig(pip, "properties", "ipAddress").(string)
	lb := map[string]any{
		"location": location, "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{
			"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{"publicIPAddress": ref(w.id("Microsoft.Network/publicIPAddresses", "demo-pip"))}}},
			"backendAddressPools":      []any{map[string]any{"name": "demo-pool"}},
			"probes": []any{map[string]any{"name": "http", "properties": map[string]any{
				"protocol": "Http", "port": 80, "requestPath": "/health", "intervalInSeconds": 5, "probeThreshold": 1}}},
			"loadBalancingRules": []any{map[string]any{"name": "web", "properties": map[string]any{
				"frontendIPConfiguration": ref(fe), "backendAddressPool": ref(pool), "probe": ref(probe),
				"protocol": "Tcp", "frontendPort": 80, "backendPort": 80, "disableOutboundSnat": true}}},
			"inboundNatPools": []any{
				map[string]any{"name": "ssh", "properties": map[string]any{"frontendIPConfiguration": ref(fe),
					"protocol": "Tcp", "frontendPortRangeStart": 50000, "frontendPortRangeEnd": 50119, "backendPort": 22}},
				map[string]any{"name": "admin", "properties": map[string]any{"frontendIPConfiguration": ref(fe),
					"protocol": "Tcp", "frontendPortRangeStart": 50200, "frontendPortRangeEnd": 50319, "backendPort": 80}},
			},
			"outboundRules": []any{map[string]any{"name": "egress", "properties": map[string]any{
				"frontendIPConfigurations": []any{ref(fe)}, "backendAddressPool": ref(pool),
				"protocol": "All", "allocatedOutboundPorts": 1024}}},
		}}
	if _, err := w.put(ctx, lbID, apiNet, lb); err != nil {
		return err
	}
	w.say("  load balancer demo-lb on %s: rule web tcp/80 → 80 with HTTP probe /health every 5 s,", w.vip)
	w.say("  NAT pools ssh 50000+ → 22 and admin 50200+ → 80, outbound rule egress (1024 SNAT ports per instance)")

	w.step(2, "Creating scale set demo-vmss: 3 instances of nimbus:workloads:echo:latest, using the probe as its health probe")
	vmssID := w.id("Microsoft.Compute/virtualMachineScaleSets", "demo-vmss")
	vmss := scaleSetBody(w.id("Microsoft.Network/virtualNetworks", "demo-vnet")+"/subnets/default", pool, probe,
		[]string{lbID + "/inboundNatPools/ssh", lbID + "/inboundNatPools/admin"}, 3)
	done := w.progress("  waiting for the instances")
	_, err = w.put(ctx, vmssID, apiComp, vmss)
	done(err)
	if err != nil {
		return err
	}
	names, err := w.waitInstances(ctx, 3)
	if err != nil {
		return err
	}
	w.res.Instances = len(names)
	w.say("  running: %s", strings.Join(names, ", "))

	w.step(3, "Sending 300 new connections to http://%s/ (Default distribution: 5-tuple hash)", w.vip)
	if err := w.waitTraffic(ctx, 3); err != nil {
		return err
	}
	w.res.Spread = spread(w.vip+":80", 300)
	w.chart(w.res.Spread)

	w.step(4, "Each inbound NAT port reaches its own instance (rules generated from NAT pool ssh)")
	nat, err := w.natPorts(ctx, lbID, "ssh")
	if err != nil {
		return err
	}
	w.res.NATReached = map[string]string{}
	for _, id := range sortedKeys(nat) {
		addr := fmt.Sprintf("%s:%d", w.vip, nat[id])
		line, err := banner(addr)
		if err != nil {
			return fmt.Errorf("NAT %s: %w", addr, err)
		}
		w.res.NATReached[addr] = strings.TrimPrefix(line, "SSH-2.0-nimbus ")
		w.say("  %-22s → %s", addr, line)
	}

	admin, err := w.natPorts(ctx, lbID, "admin")
	if err != nil {
		return err
	}
	sickID := sortedKeys(admin)[1]
	w.res.SickName = "demo-vmss_" + sickID
	w.step(5, "Making %s unhealthy (its /health now answers 500, via its admin NAT port %d)", w.res.SickName, admin[sickID])
	if err := setHealth(fmt.Sprintf("%s:%d", w.vip, admin[sickID]), 500); err != nil {
		return err
	}
	t0 := time.Now()
	done = w.progress("  waiting for the probe to take it out (interval 5 s)")
	for {
		s := spreadUntilError(w.vip+":80", 30)
		if s[w.res.SickName] == 0 && s["error"] == 0 {
			break
		}
		if time.Since(t0) > 12*time.Second {
			done(errors.New("timed out"))
			return fmt.Errorf("%s still gets traffic %s after it turned unhealthy", w.res.SickName, time.Since(t0).Round(time.Millisecond))
		}
		time.Sleep(100 * time.Millisecond)
	}
	done(nil)
	w.res.SickOutAfter = time.Since(t0)
	w.say("  out of rotation after %.1f s (Azure: within the probe interval; an HTTP non-200 marks down at once)", w.res.SickOutAfter.Seconds())
	w.res.SpreadSick = spread(w.vip+":80", 300)
	w.chart(w.res.SpreadSick)

	w.step(6, "Trying to move rule web to frontend port 8080 while its probe is the scale set's health probe")
	cur, err := w.get(ctx, lbID, apiNet)
	if err != nil {
		return err
	}
	setRulePort(cur, 8080)
	_, err = w.put(ctx, lbID, apiNet, cur)
	var apiErr *cli.APIError
	if !errors.As(err, &apiErr) {
		return fmt.Errorf("changing the probed rule: want Azure's error, got %v", err)
	}
	w.res.RuleErrorCode = apiErr.Code
	w.say("  ERROR: (%s) %s", apiErr.Code, apiErr.Message)

	w.step(7, "The documented way out: remove the health probe from the scale set, change the rule, re-attach the probe")
	v, err := w.get(ctx, vmssID, apiComp)
	if err != nil {
		return err
	}
	np := dig(v, "properties", "virtualMachineProfile", "networkProfile").(map[string]any)
	delete(np, "healthProbe")
	if _, err := w.put(ctx, vmssID, apiComp, v); err != nil {
		return err
	}
	w.say("  a) vmss update --remove virtualMachineProfile.networkProfile.healthProbe")
	if err := w.upgradeAll(ctx, vmssID); err != nil {
		return err
	}
	w.say("  b) vmss update-instances --instance-ids '*'   (Manual upgrade policy: the instances still carry the probe)")
	cur, err = w.get(ctx, lbID, apiNet)
	if err != nil {
		return err
	}
	setRulePort(cur, 8080)
	if _, err := w.put(ctx, lbID, apiNet, cur); err != nil {
		return err
	}
	w.say("  c) network lb rule update --frontend-port 8080")
	np["healthProbe"] = ref(probe)
	if _, err := w.put(ctx, vmssID, apiComp, v); err != nil {
		return err
	}
	if err := w.upgradeAll(ctx, vmssID); err != nil {
		return err
	}
	w.say("  d) vmss update --set virtualMachineProfile.networkProfile.healthProbe.id=.../probes/http, then update-instances")
	w.res.MovedPort = 8080
	if err := waitFor(12*time.Second, func() bool { s := spreadUntilError(w.vip+":8080", 10); return s["error"] == 0 }); err != nil {
		return fmt.Errorf("traffic on the moved rule: %w", err)
	}
	w.res.SpreadMoved = spread(w.vip+":8080", 200)
	w.chart(w.res.SpreadMoved)

	w.step(8, "Healing %s and scaling out to 5 instances", w.res.SickName)
	if err := setHealth(fmt.Sprintf("%s:%d", w.vip, admin[sickID]), 200); err != nil {
		return err
	}
	v["sku"].(map[string]any)["capacity"] = 5
	done = w.progress("  waiting for 2 more instances")
	_, err = w.put(ctx, vmssID, apiComp, v)
	done(err)
	if err != nil {
		return err
	}
	names, err = w.waitInstances(ctx, 5)
	if err != nil {
		return err
	}
	w.res.ScaledTo = len(names)
	if err := w.waitTrafficOn(ctx, w.vip+":8080", 5); err != nil {
		return err
	}
	w.res.SpreadScaled = spread(w.vip+":8080", 500)
	w.chart(w.res.SpreadScaled)

	w.step(9, "Outbound SNAT: each instance owns a block of ports on the frontend (outbound rule egress)")
	cfg, _ := w.sys.LB.Config()
	w.res.SNAT = snatBlocks(cfg)
	for _, b := range w.res.SNAT {
		w.say("  %-14s → %s ports %s", b.Instance, b.Frontend, b.Ports)
	}
	if w.sys.Mode.Dataplane == system.NFT {
		seen, err := w.egress(ctx)
		if err != nil {
			return fmt.Errorf("outbound SNAT: %w", err)
		}
		w.res.Egress = seen
		w.say("  an instance connected out; the destination saw the connection come from %s", seen)
	} else {
		w.say("  (the userspace engine cannot rewrite an instance's own outbound packets; run as root with")
		w.say("   nftables for the kernel path, where outbound flows really leave from these ports)")
	}
	return nil
}

// upgradeAll applies the scale set's model to every instance (manualupgrade).
func (w *walker) upgradeAll(ctx context.Context, vmssID string) error {
	_, err := w.c.Post(ctx, vmssID+"/manualupgrade", apiComp, map[string]any{"instanceIds": []string{"*"}}, true)
	return err
}

// progress prints dots while a wait lasts; call the returned func to end.
// progress prints msg and a dot every half second until the returned
// function is called with the step's outcome: " ok", or " failed" (the
// error itself is reported once, by the caller).
func (w *walker) progress(msg string) func(err error) {
	fmt.Fprint(w.out, msg)
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(500 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprint(w.out, ".")
			}
		}
	}()
	return func(err error) {
		close(stop)
		<-done
		if err != nil {
			fmt.Fprintln(w.out, " failed")
			return
		}
		fmt.Fprintln(w.out, " ok")
	}
}

// waitInstances waits until n instances report Succeeded and returns their names.
func (w *walker) waitInstances(ctx context.Context, n int) ([]string, error) {
	var names []string
	err := waitFor(30*time.Second, func() bool {
		list, err := w.c.List(ctx, w.id("Microsoft.Compute/virtualMachineScaleSets", "demo-vmss")+"/virtualMachines", apiComp)
		if err != nil {
			return false
		}
		names = names[:0]
		for _, it := range list {
			if s, _ := dig(it, "properties", "provisioningState").(string); s == "Succeeded" {
				nm, _ := dig(it, "name").(string)
				names = append(names, nm)
			}
		}
		return len(names) == n
	})
	sort.Strings(names)
	if err != nil {
		return nil, fmt.Errorf("waiting for %d instances (have %v): %w", n, names, err)
	}
	return names, nil
}

func (w *walker) waitTraffic(ctx context.Context, n int) error {
	return w.waitTrafficOn(ctx, w.vip+":80", n)
}

// waitTrafficOn waits until requests to addr reach n instances.
func (w *walker) waitTrafficOn(_ context.Context, addr string, n int) error {
	return waitFor(20*time.Second, func() bool {
		s := spreadUntilError(addr, 20*n)
		return len(s) == n && s["error"] == 0
	})
}

// natPorts reads the generated NAT rules {pool}.{id} of the load balancer.
func (w *walker) natPorts(ctx context.Context, lbID, pool string) (map[string]int, error) {
	lb, err := w.get(ctx, lbID, apiNet)
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	rules, _ := dig(lb, "properties", "inboundNatRules").([]any)
	for _, r := range rules {
		name, _ := dig(r, "name").(string)
		if id, ok := strings.CutPrefix(name, pool+"."); ok {
			p, _ := dig(r, "properties", "frontendPort").(float64)
			out[id] = int(p)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no NAT rules generated from pool %s", pool)
	}
	return out, nil
}

// chart prints a horizontal bar chart of requests per instance.
func (w *walker) chart(counts map[string]int) {
	total, max := 0, 0
	for _, k := range sortedKeys(counts) {
		total += counts[k]
		if counts[k] > max {
			max = counts[k]
		}
	}
	for _, k := range sortedKeys(counts) {
		n := counts[k]
		bar := 0
		if max > 0 {
			bar = n * 40 / max
		}
		w.say("  %-14s %s %4d (%2.0f%%)", k, strings.Repeat("█", bar)+strings.Repeat("·", 40-bar), n, 100*float64(n)/float64(total))
	}
}

// egress makes one instance connect to a listener on the host side of
// nimbus's uplink and reports the source address the listener saw.
func (w *walker) egress(ctx context.Context) (string, error) {
	ln, err := net.Listen("tcp", net.JoinHostPort(w.sys.HostAddr().String(), "0"))
	if err != nil {
		return "", err
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		seen <- c.RemoteAddr().String()
		c.Close()
	}()
	key := strings.ToLower(w.id("Microsoft.Compute/virtualMachineScaleSets", "demo-vmss")) + "/0"
	c, err := w.sys.DialFromInstance(ctx, key, "tcp", ln.Addr().String())
	if err != nil {
		return "", err
	}
	defer c.Close()
	select {
	case s := <-seen:
		// A rootless nimbus carries public addresses on another range
		// inside its namespace: name the one the API shows.
		if ap, err := netip.ParseAddrPort(s); err == nil {
			s = netip.AddrPortFrom(w.sys.PublicAddr(ap.Addr()), ap.Port()).String()
		}
		return s, nil
	case <-time.After(5 * time.Second):
		return "", errors.New("the destination saw no connection")
	}
}

func snatBlocks(cfg dataplane.Config) []SNATBlock {
	var out []SNATBlock
	for _, o := range cfg.Outbound {
		inst := o.Backend.ID
		if i := strings.Index(inst, "/virtualmachines/"); i >= 0 {
			rest := inst[i+len("/virtualmachines/"):]
			inst = "demo-vmss_" + rest[:strings.Index(rest+"/", "/")]
		}
		out = append(out, SNATBlock{Instance: inst, Frontend: o.Frontend.IP.String(), Ports: fmt.Sprintf("%d-%d", o.PortStart, o.PortEnd)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Instance < out[j].Instance })
	return out
}

func scaleSetBody(subnet, pool, probe string, natPools []string, capacity int) map[string]any {
	var nat []any
	for _, p := range natPools {
		nat = append(nat, map[string]any{"id": p})
	}
	return map[string]any{
		"location": location,
		"sku":      map[string]any{"name": "Standard_B1s", "capacity": capacity},
		"properties": map[string]any{
			"upgradePolicy": map[string]any{"mode": "Manual"},
			"virtualMachineProfile": map[string]any{
				"osProfile":      map[string]any{"computerNamePrefix": "demo", "adminUsername": "azureuser"},
				"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}},
				"networkProfile": map[string]any{
					"healthProbe": map[string]any{"id": probe},
					"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
						"primary": true,
						"ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
							"subnet":                          map[string]any{"id": subnet},
							"loadBalancerBackendAddressPools": []any{map[string]any{"id": pool}},
							"loadBalancerInboundNatPools":     nat,
						}}},
					}}},
				},
			},
		},
	}
}

// setRulePort sets the web rule's frontend port in a load balancer body.
func setRulePort(lb map[string]any, port int) {
	rules, _ := dig(lb, "properties", "loadBalancingRules").([]any)
	for _, r := range rules {
		if n, _ := dig(r, "name").(string); n == "web" {
			dig(r, "properties").(map[string]any)["frontendPort"] = port
		}
	}
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func waitFor(timeout time.Duration, cond func() bool) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if cond() {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("not within %s", timeout)
}

// spreadUntilError is spread that stops at the first failed request, for
// polling loops.
func spreadUntilError(addr string, n int) map[string]int {
	return spreadN(addr, n, true)
}

// spread sends n requests (a new connection each) and counts answers per instance.
func spread(addr string, n int) map[string]int { return spreadN(addr, n, false) }

func spreadN(addr string, n int, stopOnError bool) map[string]int {
	out := map[string]int{}
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for i := 0; i < n; i++ {
		resp, err := c.Get("http://" + addr + "/")
		if err == nil {
			var r workload.EchoReply
			err = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if err == nil {
				out[r.Name]++
				continue
			}
		}
		out["error"]++
		if stopOnError {
			return out
		}
	}
	return out
}

func setHealth(addr string, status int) error {
	req, _ := http.NewRequest(http.MethodPut, fmt.Sprintf("http://%s/health?status=%d", addr, status), nil)
	resp, err := (&http.Client{Timeout: 3 * time.Second}).Do(req)
	if err != nil {
		return fmt.Errorf("set health via %s: %w", addr, err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("set health via %s: %s", addr, resp.Status)
	}
	return nil
}

func banner(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSpace(line), err
}
