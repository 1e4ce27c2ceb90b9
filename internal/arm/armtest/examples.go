package armtest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// Spec examples: request/response pairs of Azure's REST API specification
// for the PUT operations nimbus serves, in the specification's example
// format ({"parameters": {..., "api-version", body}, "responses": {status:
// {"body"}}}). Examples generated from the Azure SDK for Go's example tests
// carry parameters.nimbusKind (vmss, vmssext, lb, pool, natrule, pip,
// prefix, vnet, subnet, nsg, nsgrule) and parameters.nimbusNames (the
// resource group and the names of the path, in order).

// ExampleResult is how nimbus answered one spec example.
type ExampleResult struct {
	// Refused is the error code of a PUT nimbus refused ("" when accepted).
	Refused string
	// Missing lists the leaf paths of the example's answer absent from
	// nimbus's GET; Different those present with a value neither the
	// example's answer nor its request has (values nimbus assigns itself,
	// such as ids, etags, GUIDs and addresses, are not compared).
	Missing, Different []string
}

// Passed reports whether the example was accepted and answered in full.
func (r ExampleResult) Passed() bool {
	return r.Refused == "" && len(r.Missing) == 0 && len(r.Different) == 0
}

// String summarises r for logs.
func (r ExampleResult) String() string {
	switch {
	case r.Refused != "":
		return "refused: " + r.Refused
	case r.Passed():
		return "passes"
	}
	return fmt.Sprintf("missing %v, different %v", r.Missing, r.Different)
}

// environmental are the properties whose values nimbus assigns itself.
var environmental = map[string]bool{
	"id": true, "etag": true, "resourceGuid": true, "uniqueId": true, "timeCreated": true, "ipAddress": true,
	"privateIPAddress": true, "fqdn": true, "provisioningState": true, "vmId": true, "type": true,
}

var placeholderRE = regexp.MustCompile(`\{[A-Za-z0-9-]+\}`)

// exampleReplacer turns an example's placeholders into names nimbus accepts.
func exampleReplacer(sub string) *strings.Replacer {
	return strings.NewReplacer(
		"{subscription-id}", sub, "{sub-id}", sub, "/subscriptions/subid/", "/subscriptions/"+sub+"/",
		"/subscriptions/00000000-0000-0000-0000-000000000000/", "/subscriptions/"+sub+"/",
		"{vmss-name}", "vmss1", "{existing-virtual-network-name}", "vn1", "{existing-subnet-name}", "default",
		"{existing-fpga-subnet-name}", "fpga", "{existing-load-balancer-name}", "lb1",
		"{existing-backend-address-pool-name}", "be1", "{existing-nat-pool-name}", "np1",
		"{your-username}", "azureuser", "{your-password}", "Secr3t!pass", "{rg}", "rg1", "{extension-name}", "ext1",
	)
}

// exampleKinds maps an example's kind to its path below the group, given
// the names after the group.
var exampleKinds = map[string]func(n []string) string{
	"vmss": func(n []string) string { return "Microsoft.Compute/virtualMachineScaleSets/" + n[0] },
	"vmssext": func(n []string) string {
		return "Microsoft.Compute/virtualMachineScaleSets/" + n[0] + "/extensions/" + n[1]
	},
	"lb": func(n []string) string { return "Microsoft.Network/loadBalancers/" + n[0] },
	"pool": func(n []string) string {
		return "Microsoft.Network/loadBalancers/" + n[0] + "/backendAddressPools/" + n[1]
	},
	"natrule": func(n []string) string { return "Microsoft.Network/loadBalancers/" + n[0] + "/inboundNatRules/" + n[1] },
	"pip":     func(n []string) string { return "Microsoft.Network/publicIPAddresses/" + n[0] },
	"prefix":  func(n []string) string { return "Microsoft.Network/publicIPPrefixes/" + n[0] },
	"vnet":    func(n []string) string { return "Microsoft.Network/virtualNetworks/" + n[0] },
	"subnet":  func(n []string) string { return "Microsoft.Network/virtualNetworks/" + n[0] + "/subnets/" + n[1] },
	"nsg":     func(n []string) string { return "Microsoft.Network/networkSecurityGroups/" + n[0] },
	"nsgrule": func(n []string) string {
		return "Microsoft.Network/networkSecurityGroups/" + n[0] + "/securityRules/" + n[1]
	},
}

// RunExample PUTs the generated spec example in file on n (creating the
// group and the resources it references first), GETs the result and
// compares it with the example's answer.
func RunExample(t *testing.T, n *Node, file string) ExampleResult {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("spec example %s: %v", file, err)
	}
	s := exampleReplacer(n.Sub).Replace(string(raw))
	s = placeholderRE.ReplaceAllStringFunc(s, func(p string) string {
		return strings.ToLower(strings.NewReplacer("{", "", "}", "", "-", "").Replace(p))
	})
	var ex struct {
		Parameters struct {
			APIVersion string          `json:"api-version"`
			Kind       string          `json:"nimbusKind"`
			Names      []string        `json:"nimbusNames"`
			Body       json.RawMessage `json:"body"`
		} `json:"parameters"`
		Responses map[string]struct {
			Body json.RawMessage `json:"body"`
		} `json:"responses"`
	}
	if err := json.Unmarshal([]byte(s), &ex); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	p := ex.Parameters
	path, ok := exampleKinds[p.Kind]
	if !ok || len(p.Names) < 2 {
		t.Fatalf("%s: kind %q names %v", file, p.Kind, p.Names)
	}
	rg := p.Names[0]
	n.Group(rg)
	prepareReferences(t, n, p.Kind, p.Names, string(p.Body))
	url := n.RGPath(rg, path(p.Names[1:])) + "?api-version=" + p.APIVersion
	st, _, b := n.Do(http.MethodPut, url, []byte(p.Body))
	if st != http.StatusOK && st != http.StatusCreated {
		var e struct {
			Error struct{ Code, Message string }
		}
		_ = json.Unmarshal(b, &e)
		return ExampleResult{Refused: fmt.Sprintf("%d %s: %s", st, e.Error.Code, e.Error.Message)}
	}
	st, _, b = n.Do(http.MethodGet, url, nil)
	if st != http.StatusOK {
		t.Fatalf("%s: GET after PUT: %d %s", file, st, b)
	}
	var want, got any
	for _, code := range []string{"200", "201"} {
		if r, ok := ex.Responses[code]; ok && len(r.Body) > 0 {
			_ = json.Unmarshal(r.Body, &want)
			break
		}
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	var sent any
	_ = json.Unmarshal(p.Body, &sent)
	wl, gl, sl := map[string][]any{}, map[string][]any{}, map[string][]any{}
	leaves("", want, wl)
	leaves("", got, gl)
	leaves("", sent, sl)
	var res ExampleResult
	for k, wv := range wl {
		gv, ok := gl[k]
		last := k[strings.LastIndex(k, ".")+1:]
		switch {
		case !ok:
			res.Missing = append(res.Missing, k)
		case environmental[last]:
		case !sameLeaves(wv, gv) && !sameLeaves(sl[k], gv):
			// A value other than the example's answer is right when it is
			// what the request sent (examples whose answer does not match
			// their own request).
			res.Different = append(res.Different, fmt.Sprintf("%s=%v (example %v)", k, gv, wv))
		}
	}
	sort.Strings(res.Missing)
	sort.Strings(res.Different)
	return res
}

// leaves records every leaf value of v under its dotted path (array
// elements share their array's path, "[]" appended).
func leaves(prefix string, v any, out map[string][]any) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, e, out)
		}
	case []any:
		if len(x) == 0 {
			out[prefix+"[]"] = append(out[prefix+"[]"], nil)
		}
		for _, e := range x {
			leaves(prefix+"[]", e, out)
		}
	default:
		out[prefix] = append(out[prefix], v)
	}
}

// sameLeaves compares leaf values as sets, case-insensitively for strings
// (Azure's enums come back in their canonical case).
func sameLeaves(want, got []any) bool {
	norm := func(vs []any) []string {
		var out []string
		for _, v := range vs {
			if v == nil {
				continue
			}
			out = append(out, strings.ToLower(fmt.Sprint(v)))
		}
		sort.Strings(out)
		return out
	}
	w, g := norm(want), norm(got)
	if len(w) == 0 {
		return true
	}
	for _, x := range w {
		if i := sort.SearchStrings(g, x); i >= len(g) || g[i] != x {
			return false
		}
	}
	return true
}

var refRE = regexp.MustCompile(`/subscriptions/[^/"]+/resourceGroups/([^/"]+)/providers/Microsoft\.Network/(virtualNetworks|loadBalancers|networkSecurityGroups|publicIPAddresses)/([^/"]+)(?:/([A-Za-z]+)/([^/"]+))?`)

// prepareReferences creates what an example's body points at (virtual
// networks and subnets, load balancers with the children referenced,
// security groups, public IPs) and the parent of a child example.
func prepareReferences(t *testing.T, n *Node, kind string, names []string, body string) {
	t.Helper()
	const v = "?api-version=2024-05-01"
	type lbParts struct{ frontends, pools, natPools, probes map[string]bool }
	vnets, lbs, nsgs, pips := map[[2]string]map[string]bool{}, map[[2]string]*lbParts{}, map[[2]string]bool{}, map[[2]string]bool{}
	for _, m := range refRE.FindAllStringSubmatch(body, -1) {
		g, typ, name, coll, child := m[1], m[2], m[3], m[4], m[5]
		key := [2]string{g, name}
		n.Group(g)
		switch typ {
		case "virtualNetworks":
			if vnets[key] == nil {
				vnets[key] = map[string]bool{}
			}
			if strings.EqualFold(coll, "subnets") {
				vnets[key][child] = true
			}
		case "loadBalancers":
			if lbs[key] == nil {
				lbs[key] = &lbParts{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
			}
			switch strings.ToLower(coll) {
			case "frontendipconfigurations":
				lbs[key].frontends[child] = true
			case "backendaddresspools":
				lbs[key].pools[child] = true
			case "inboundnatpools":
				lbs[key].natPools[child] = true
			case "probes":
				lbs[key].probes[child] = true
			}
		case "networkSecurityGroups":
			nsgs[key] = true
		case "publicIPAddresses":
			pips[key] = true
		}
	}
	// The parent of a child example, and the target itself when others
	// (a subnet's vnet) must not be created.
	switch kind {
	case "subnet":
		key := [2]string{names[0], names[1]}
		if vnets[key] == nil {
			vnets[key] = map[string]bool{}
		}
	case "vnet", "lb":
		delete(vnets, [2]string{names[0], names[1]})
		delete(lbs, [2]string{names[0], names[1]})
	case "pool", "natrule":
		key := [2]string{names[0], names[1]}
		if lbs[key] == nil {
			lbs[key] = &lbParts{map[string]bool{}, map[string]bool{}, map[string]bool{}, map[string]bool{}}
		}
	case "nsg":
		delete(nsgs, [2]string{names[0], names[1]})
	case "nsgrule":
		nsgs[[2]string{names[0], names[1]}] = true
	}
	for key := range nsgs {
		n.Do(http.MethodPut, n.RGPath(key[0], "Microsoft.Network/networkSecurityGroups/"+key[1])+v, map[string]any{"location": "westus"})
	}
	for key, subnets := range vnets {
		var subs []any
		i := 0
		for s := range subnets {
			subs = append(subs, map[string]any{"name": s, "properties": map[string]any{"addressPrefix": fmt.Sprintf("10.0.%d.0/24", i)}})
			i++
		}
		prefixes := []string{"10.0.0.0/16"}
		if kind == "subnet" {
			prefixes = []string{"10.0.0.0/8"}
		}
		n.Do(http.MethodPut, n.RGPath(key[0], "Microsoft.Network/virtualNetworks/"+key[1])+v, map[string]any{"location": "westus",
			"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": prefixes}, "subnets": subs}})
	}
	for key := range pips {
		n.Do(http.MethodPut, n.RGPath(key[0], "Microsoft.Network/publicIPAddresses/"+key[1])+v, map[string]any{"location": "westus",
			"sku": map[string]any{"name": "Standard"}, "properties": map[string]any{"publicIPAllocationMethod": "Static"}})
	}
	for key, parts := range lbs {
		if len(parts.frontends) == 0 {
			parts.frontends["fe1"] = true
		}
		lbID := n.RGPath(key[0], "Microsoft.Network/loadBalancers/"+key[1])
		var fes, pools, natPools, probes, rules []any
		first := ""
		for f := range parts.frontends {
			pip := n.RGPath(key[0], "Microsoft.Network/publicIPAddresses/"+key[1]+"-"+f)
			n.Do(http.MethodPut, pip+v, map[string]any{"location": "westus", "sku": map[string]any{"name": "Standard"},
				"properties": map[string]any{"publicIPAllocationMethod": "Static"}})
			fes = append(fes, map[string]any{"name": f, "properties": map[string]any{"publicIPAddress": map[string]any{"id": pip}}})
			if first == "" {
				first = f
			}
		}
		for p := range parts.pools {
			pools = append(pools, map[string]any{"name": p})
		}
		for p := range parts.probes {
			probes = append(probes, map[string]any{"name": p, "properties": map[string]any{"protocol": "Tcp", "port": 80}})
		}
		for p := range parts.pools { // a rule per pool keeps health probes usable
			if len(probes) > 0 {
				rules = append(rules, map[string]any{"name": "rule-" + p, "properties": map[string]any{
					"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + first},
					"backendAddressPool":      map[string]any{"id": lbID + "/backendAddressPools/" + p},
					"probe":                   map[string]any{"id": lbID + "/probes/" + firstKey(parts.probes)},
					"protocol":                "Tcp", "frontendPort": 80, "backendPort": 80}})
				break
			}
		}
		base := 50000
		for p := range parts.natPools {
			natPools = append(natPools, map[string]any{"name": p, "properties": map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lbID + "/frontendIPConfigurations/" + first},
				"protocol":                "Tcp", "frontendPortRangeStart": base, "frontendPortRangeEnd": base + 99, "backendPort": 22}})
			base += 100
		}
		st, _, b := n.Do(http.MethodPut, lbID+v, map[string]any{"location": "westus", "sku": map[string]any{"name": "Standard"},
			"properties": map[string]any{"frontendIPConfigurations": fes, "backendAddressPools": pools, "probes": probes,
				"loadBalancingRules": rules, "inboundNatPools": natPools}})
		if st >= 300 {
			t.Logf("prepare load balancer %s: %d %s", key[1], st, b)
		}
	}
	if kind == "vmssext" {
		n.Group(names[0])
		n.Do(http.MethodPut, n.RGPath(names[0], "Microsoft.Network/virtualNetworks/vn-ext")+v, map[string]any{"location": "westus",
			"properties": map[string]any{"addressSpace": map[string]any{"addressPrefixes": []string{"10.9.0.0/16"}},
				"subnets": []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "10.9.0.0/24"}}}}})
		n.Do(http.MethodPut, n.RGPath(names[0], "Microsoft.Compute/virtualMachineScaleSets/"+names[1])+"?api-version=2024-07-01", map[string]any{
			"location": "westus", "sku": map[string]any{"name": "Standard_B1s", "capacity": 0},
			"properties": map[string]any{"upgradePolicy": map[string]any{"mode": "Manual"}, "virtualMachineProfile": map[string]any{
				"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}},
				"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
					"primary": true, "ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
						"subnet": map[string]any{"id": n.RGPath(names[0], "Microsoft.Network/virtualNetworks/vn-ext/subnets/default")}}}}}}}}}}})
	}
}

func firstKey(m map[string]bool) string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks[0]
}

// RunExamples runs every example matching glob under dir (each on a fresh
// node) and checks the outcome against knownGaps (example file name →
// why nimbus does not answer it in full): an example not listed must pass,
// a listed one must not (else the list is stale). It logs every outcome and
// the counts: passing, fields missing or different, refused.
func RunExamples(t *testing.T, dir, glob string, knownGaps map[string]string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, glob))
	if err != nil || len(files) == 0 {
		t.Fatalf("no examples %s in %s: %v", glob, dir, err)
	}
	var pass, missing, refused int
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			n := Start(t)
			r := RunExample(t, n, f)
			switch {
			case r.Refused != "":
				refused++
			case r.Passed():
				pass++
			default:
				missing++
			}
			t.Logf("%s", r)
			gap, known := knownGaps[name]
			switch {
			case !known && !r.Passed():
				t.Errorf("%s: %s", name, r)
			case known && r.Passed():
				t.Errorf("%s passes now; remove it from the known gaps (%s)", name, gap)
			}
		})
	}
	t.Logf("spec examples %s: %d passing, %d with fields missing or different, %d refused (of %d)", glob, pass, missing, refused, len(files))
}
