package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"nimbus/internal/resource"
)

// An LB child verb group (probe, rule, ...). As az does, every verb reads
// the load balancer, changes the child in the body and PUTs the whole load
// balancer back.
type lbChild struct {
	use string
	// child is the collection: its JSON name and path in the LB body and
	// the child's display type ("probe") for help text.
	child resource.LBChildCollection
	// required are the flags create needs besides -g, --lb-name, -n.
	required []string
	// define registers the child's flags on a create or update command and
	// returns the function that writes them into a child's properties.
	define func(cmd *cobra.Command) childApply
}

// childCtx is what a childApply works on.
type childCtx struct {
	e      *env
	cmd    *cobra.Command
	c      *Client
	lbID   string
	lb     map[string]any // the load balancer (wire form)
	p      map[string]any // the child's properties (wire form)
	create bool
}

type childApply func(x *childCtx) error

// ref returns {"id": the id of the child name of coll}, or name itself
// when it is an id.
func (x *childCtx) ref(coll resource.LBChildCollection, name string) map[string]any {
	if isID(name) {
		return map[string]any{"id": name}
	}
	return map[string]any{"id": coll.ChildID(x.lbID, url.PathEscape(name))}
}

// defaultName returns given, or on create the only element of the LB's
// coll (az: "if only one exists, omit to use as default").
func (x *childCtx) defaultName(given string, coll resource.LBChildCollection, flag string) (string, error) {
	if given != "" || !x.create {
		return given, nil
	}
	l := childItems(x.lb, coll)
	switch len(l) {
	case 1:
		n, _ := field(l[0], "name").(string)
		return n, nil
	case 0:
		return "", nil
	}
	return "", fmt.Errorf("multiple %s found: specify --%s (one of %s)", coll.Name(), flag, strings.Join(names(l), ", "))
}

// setInt, setStr and setBool copy a flag into the properties when it was
// given (or, for create, when it has a default worth sending).
func (x *childCtx) setInt(flag, key string, v int) {
	if flagSet(x.cmd, flag) {
		x.p[key] = v
	}
}

func (x *childCtx) setStr(flag, key, v string) {
	if flagSet(x.cmd, flag) {
		x.p[key] = v
	}
}

func (x *childCtx) setBool(flag, key, v string) error {
	if !flagSet(x.cmd, flag) {
		return nil
	}
	b, err := parseBool(flag, v)
	if err != nil {
		return err
	}
	x.p[key] = b
	return nil
}

func (x *childCtx) setChoice(flag, key, v string, choices ...string) error {
	if !flagSet(x.cmd, flag) {
		return nil
	}
	c, err := choice(flag, v, choices...)
	if err != nil {
		return err
	}
	x.p[key] = c
	return nil
}

// setRef sets key to a reference to the named child of coll (given by flag,
// or the only one on create).
func (x *childCtx) setRef(flag, key string, coll resource.LBChildCollection, name string) error {
	n, err := x.defaultName(name, coll, flag)
	if err != nil {
		return err
	}
	if n != "" && (flagSet(x.cmd, flag) || x.create) {
		x.p[key] = x.ref(coll, n)
	}
	return nil
}

var protocols = []string{"Tcp", "Udp", "All"}

var lbChildren = []lbChild{
	{use: "probe", child: resource.LBProbes, required: []string{"port", "protocol"}, define: func(cmd *cobra.Command) childApply {
		var port, interval, threshold, probeThreshold int
		var protocol, path string
		f := cmd.Flags()
		f.IntVar(&port, "port", 0, "the port to probe")
		f.StringVar(&protocol, "protocol", "", "probe protocol: Http, Https, Tcp")
		f.IntVar(&interval, "interval", 15, "probing interval in seconds")
		f.IntVar(&threshold, "threshold", 0, "number of probes (numberOfProbes)")
		f.IntVar(&probeThreshold, "probe-threshold", 0, "consecutive probe results needed to change state")
		f.StringVar(&path, "path", "", "HTTP(S) request path")
		return func(x *childCtx) error {
			x.setInt("port", "port", port)
			if err := x.setChoice("protocol", "protocol", protocol, "Http", "Https", "Tcp"); err != nil {
				return err
			}
			x.setInt("interval", "intervalInSeconds", interval)
			x.setInt("threshold", "numberOfProbes", threshold)
			x.setInt("probe-threshold", "probeThreshold", probeThreshold)
			x.setStr("path", "requestPath", path)
			return nil
		}
	}},
	{use: "rule", child: resource.LBLoadBalancingRules, required: []string{"frontend-port", "backend-port", "protocol"}, define: func(cmd *cobra.Command) childApply {
		var fport, bport, idle int
		var protocol, fe, pool, probe, floating, dist, snat, reset string
		f := cmd.Flags()
		f.IntVar(&fport, "frontend-port", 0, "frontend port (0-65534; 0 = any)")
		f.IntVar(&bport, "backend-port", 0, "backend port (0-65535; 0 = any)")
		f.StringVar(&protocol, "protocol", "", "network transport protocol: All, Tcp, Udp")
		f.StringVar(&fe, "frontend-ip-name", "", "name of the frontend IP configuration (default: the only one)")
		alias(cmd, "frontend-ip", "frontend-ip-name")
		f.StringVar(&pool, "backend-pool-name", "", "name of the backend address pool (default: the only one)")
		alias(cmd, "backend-address-pool", "backend-pool-name")
		f.StringVar(&probe, "probe-name", "", "name of an existing probe")
		alias(cmd, "probe", "probe-name")
		f.StringVar(&floating, "floating-ip", "", "enable floating IP: true, false")
		f.IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes")
		alias(cmd, "idle-timeout-in-minutes", "idle-timeout")
		f.StringVar(&dist, "load-distribution", "Default", "affinity: Default, SourceIP, SourceIPProtocol")
		f.StringVar(&snat, "disable-outbound-snat", "", "disable the implicit outbound SNAT of the rule: true, false")
		f.StringVar(&reset, "enable-tcp-reset", "", "send TCP reset on idle timeout: true, false")
		return func(x *childCtx) error {
			if err := x.setChoice("protocol", "protocol", protocol, protocols...); err != nil {
				return err
			}
			x.setInt("frontend-port", "frontendPort", fport)
			x.setInt("backend-port", "backendPort", bport)
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", resource.LBFrontendIPConfigurations, fe); err != nil {
				return err
			}
			if err := x.setRef("backend-pool-name", "backendAddressPool", resource.LBBackendAddressPools, pool); err != nil {
				return err
			}
			if flagSet(x.cmd, "probe-name") {
				if probe == "" {
					delete(x.p, "probe")
				} else {
					x.p["probe"] = x.ref(resource.LBProbes, probe)
				}
			}
			if x.create {
				x.p["idleTimeoutInMinutes"] = idle
				x.p["loadDistribution"] = "Default"
				x.p["enableFloatingIP"] = false
			}
			x.setInt("idle-timeout", "idleTimeoutInMinutes", idle)
			if err := x.setChoice("load-distribution", "loadDistribution", dist, "Default", "SourceIP", "SourceIPProtocol"); err != nil {
				return err
			}
			if err := x.setBool("floating-ip", "enableFloatingIP", floating); err != nil {
				return err
			}
			if err := x.setBool("disable-outbound-snat", "disableOutboundSnat", snat); err != nil {
				return err
			}
			return x.setBool("enable-tcp-reset", "enableTcpReset", reset)
		}
	}},
	{use: "address-pool", child: resource.LBBackendAddressPools, define: func(cmd *cobra.Command) childApply {
		var drain int
		cmd.Flags().IntVar(&drain, "drain-period", 0, "seconds to wait before resetting connections of removed backends")
		return func(x *childCtx) error {
			x.setInt("drain-period", "drainPeriodInSeconds", drain)
			return nil
		}
	}},
	{use: "inbound-nat-rule", child: resource.LBInboundNatRules, required: []string{"protocol", "backend-port"}, define: func(cmd *cobra.Command) childApply {
		var fport, bport, idle, start, end int
		var protocol, fe, pool, floating, reset string
		f := cmd.Flags()
		f.StringVar(&protocol, "protocol", "", "network transport protocol: All, Tcp, Udp")
		f.IntVar(&fport, "frontend-port", 0, "frontend port (single-target rule)")
		f.IntVar(&bport, "backend-port", 0, "backend port")
		f.StringVar(&fe, "frontend-ip-name", "", "name of the frontend IP configuration (default: the only one)")
		alias(cmd, "frontend-ip", "frontend-ip-name")
		f.IntVar(&start, "frontend-port-range-start", 0, "first frontend port of a pool-wide (v2) rule")
		f.IntVar(&end, "frontend-port-range-end", 0, "last frontend port of a pool-wide (v2) rule")
		f.StringVar(&pool, "backend-pool-name", "", "backend address pool of a pool-wide (v2) rule")
		alias(cmd, "backend-address-pool", "backend-pool-name")
		f.StringVar(&floating, "floating-ip", "", "enable floating IP: true, false")
		f.IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes")
		f.StringVar(&reset, "enable-tcp-reset", "", "send TCP reset on idle timeout: true, false")
		return func(x *childCtx) error {
			if err := x.setChoice("protocol", "protocol", protocol, protocols...); err != nil {
				return err
			}
			x.setInt("frontend-port", "frontendPort", fport)
			x.setInt("backend-port", "backendPort", bport)
			x.setInt("frontend-port-range-start", "frontendPortRangeStart", start)
			x.setInt("frontend-port-range-end", "frontendPortRangeEnd", end)
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", resource.LBFrontendIPConfigurations, fe); err != nil {
				return err
			}
			if flagSet(x.cmd, "backend-pool-name") {
				x.p["backendAddressPool"] = x.ref(resource.LBBackendAddressPools, pool)
			}
			if x.create {
				x.p["idleTimeoutInMinutes"] = idle
				x.p["enableFloatingIP"] = false
			}
			x.setInt("idle-timeout", "idleTimeoutInMinutes", idle)
			if err := x.setBool("floating-ip", "enableFloatingIP", floating); err != nil {
				return err
			}
			return x.setBool("enable-tcp-reset", "enableTcpReset", reset)
		}
	}},
	{use: "inbound-nat-pool", child: resource.LBInboundNatPools, required: []string{"protocol", "frontend-port-range-start", "frontend-port-range-end", "backend-port"}, define: func(cmd *cobra.Command) childApply {
		var bport, idle, start, end int
		var protocol, fe, floating, reset string
		f := cmd.Flags()
		f.StringVar(&protocol, "protocol", "", "network transport protocol: All, Tcp, Udp")
		f.IntVar(&start, "frontend-port-range-start", 0, "first frontend port")
		f.IntVar(&end, "frontend-port-range-end", 0, "last frontend port")
		f.IntVar(&bport, "backend-port", 0, "backend port")
		f.StringVar(&fe, "frontend-ip-name", "", "name of the frontend IP configuration (default: the only one)")
		alias(cmd, "frontend-ip", "frontend-ip-name")
		f.StringVar(&floating, "floating-ip", "", "enable floating IP: true, false")
		f.IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes")
		f.StringVar(&reset, "enable-tcp-reset", "", "send TCP reset on idle timeout: true, false")
		return func(x *childCtx) error {
			if err := x.setChoice("protocol", "protocol", protocol, protocols...); err != nil {
				return err
			}
			x.setInt("frontend-port-range-start", "frontendPortRangeStart", start)
			x.setInt("frontend-port-range-end", "frontendPortRangeEnd", end)
			x.setInt("backend-port", "backendPort", bport)
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", resource.LBFrontendIPConfigurations, fe); err != nil {
				return err
			}
			x.setInt("idle-timeout", "idleTimeoutInMinutes", idle)
			if err := x.setBool("floating-ip", "enableFloatingIP", floating); err != nil {
				return err
			}
			return x.setBool("enable-tcp-reset", "enableTcpReset", reset)
		}
	}},
	{use: "outbound-rule", child: resource.LBOutboundRules, required: []string{"frontend-ip-configs", "address-pool", "protocol"}, define: func(cmd *cobra.Command) childApply {
		var ports, idle int
		var fes []string
		var pool, protocol, reset string
		f := cmd.Flags()
		wordsVar(cmd, &fes, "frontend-ip-configs", "", "space-separated names or IDs of frontend IP configurations")
		f.StringVar(&pool, "address-pool", "", "name or ID of the backend address pool")
		alias(cmd, "backend-pool-name", "address-pool")
		f.StringVar(&protocol, "protocol", "", "network transport protocol: All, Tcp, Udp")
		f.IntVar(&ports, "outbound-ports", 0, "SNAT ports allocated per instance (multiple of 8; 0 = default table)")
		f.IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes")
		f.StringVar(&reset, "enable-tcp-reset", "", "send TCP reset on idle timeout: true, false")
		return func(x *childCtx) error {
			if err := x.setChoice("protocol", "protocol", protocol, protocols...); err != nil {
				return err
			}
			if flagSet(x.cmd, "frontend-ip-configs") {
				refs := make([]any, len(fes))
				for i, n := range fes {
					refs[i] = x.ref(resource.LBFrontendIPConfigurations, n)
				}
				x.p["frontendIPConfigurations"] = refs
			}
			if flagSet(x.cmd, "address-pool") {
				x.p["backendAddressPool"] = x.ref(resource.LBBackendAddressPools, pool)
			}
			if x.create {
				x.p["allocatedOutboundPorts"] = ports
				x.p["idleTimeoutInMinutes"] = idle
			}
			x.setInt("outbound-ports", "allocatedOutboundPorts", ports)
			x.setInt("idle-timeout", "idleTimeoutInMinutes", idle)
			return x.setBool("enable-tcp-reset", "enableTcpReset", reset)
		}
	}},
	{use: "frontend-ip", child: resource.LBFrontendIPConfigurations, define: func(cmd *cobra.Command) childApply {
		var pip, subnet, vnet, privIP, version, prefix string
		var zones []string
		f := cmd.Flags()
		f.StringVar(&pip, "public-ip-address", "", "name or ID of an existing public IP address")
		f.StringVar(&subnet, "subnet", "", "name or ID of an existing subnet (internal frontend)")
		f.StringVar(&vnet, "vnet-name", "", "virtual network of --subnet")
		f.StringVar(&privIP, "private-ip-address", "", "static private IP address")
		f.StringVar(&version, "private-ip-address-version", "IPv4", "IPv4 or IPv6")
		f.StringVar(&prefix, "public-ip-prefix", "", "name or ID of a public IP prefix")
		wordsVar(cmd, &zones, "zone", "z", "space-separated availability zones")
		return func(x *childCtx) error {
			rg := groupOf(x.lbID)
			if flagSet(x.cmd, "public-ip-address") {
				x.p["publicIPAddress"] = map[string]any{"id": x.c.ResourcePath(rg, typePIP, pip)}
				delete(x.p, "subnet")
			}
			if flagSet(x.cmd, "public-ip-prefix") {
				x.p["publicIPPrefix"] = map[string]any{"id": x.c.ResourcePath(rg, "Microsoft.Network/publicIPPrefixes", prefix)}
			}
			if flagSet(x.cmd, "subnet") {
				id := subnet
				if !isID(id) {
					if vnet == "" {
						return usagef("usage error: --subnet NAME --vnet-name NAME | --subnet ID")
					}
					id = x.c.ResourcePath(rg, typeVNet, vnet) + "/subnets/" + url.PathEscape(subnet)
				}
				x.p["subnet"] = map[string]any{"id": id}
				delete(x.p, "publicIPAddress")
				if _, ok := x.p["privateIPAllocationMethod"]; !ok {
					x.p["privateIPAllocationMethod"] = "Dynamic"
				}
			}
			if flagSet(x.cmd, "private-ip-address") {
				if privIP == "" {
					delete(x.p, "privateIPAddress")
					x.p["privateIPAllocationMethod"] = "Dynamic"
				} else {
					x.p["privateIPAddress"] = privIP
					x.p["privateIPAllocationMethod"] = "Static"
				}
			}
			if err := x.setChoice("private-ip-address-version", "privateIPAddressVersion", version, "IPv4", "IPv6"); err != nil {
				return err
			}
			if flagSet(x.cmd, "zone") {
				x.p["zones"] = toAny(zones)
			}
			return nil
		}
	}},
}

// newLBChildCmd returns `network lb <child>` with create, update, delete,
// list and show.
func newLBChildCmd(g *globals, s lbChild) *cobra.Command {
	cmd := group(s.use, "Manage the "+s.child.Display()+"s of a load balancer")
	cmd.AddCommand(newLBChildWriteCmd(g, s, true), newLBChildWriteCmd(g, s, false),
		newLBChildDeleteCmd(g, s), newLBChildListCmd(g, s), newLBChildShowCmd(g, s))
	return cmd
}

// lbChildArgs are the flags every child verb shares.
type lbChildArgs struct {
	rg, lb, name string
	noWait       bool
}

// add registers -g and --lb-name, and -n when withName.
func (o *lbChildArgs) add(c *cobra.Command, s lbChild, withName bool) {
	c.Flags().StringVarP(&o.rg, "resource-group", "g", "", "name of resource group")
	c.Flags().StringVar(&o.lb, "lb-name", "", "name of the load balancer")
	if withName {
		c.Flags().StringVarP(&o.name, "name", "n", "", "name of the "+s.child.Display())
	}
}

// newLBChildWriteCmd returns `network lb <child> create` (create) or
// `update`: the child's flags, and for update az's generic --set, --add,
// --remove.
func newLBChildWriteCmd(g *globals, s lbChild, create bool) *cobra.Command {
	var o lbChildArgs
	use, short := "create", "Create a "+s.child.Display()
	if !create {
		use, short = "update", "Update a "+s.child.Display()
	}
	c := &cobra.Command{Use: use, Short: short}
	o.add(c, s, true)
	addNoWait(c, &o.noWait)
	apply := s.define(c)
	var ga *genericArgs
	if !create {
		ga = addGeneric(c)
	}
	c.RunE = verb(g, func(e *env) error {
		req := []string{"resource-group", "lb-name", "name"}
		if create {
			req = append(req, s.required...)
		}
		if err := need(e.cmd, req...); err != nil {
			return err
		}
		return mutateChild(e, s, o.rg, o.lb, o.name, create, o.noWait, func(x *childCtx, child map[string]any) (map[string]any, error) {
			x.p = props(child)
			if err := apply(x); err != nil {
				return nil, err
			}
			if ga == nil || len(ga.ops) == 0 {
				return child, nil
			}
			fl := Flatten(child)
			if err := ApplyUpdates(fl.Value, ga.ops, ga.forceString); err != nil {
				return nil, err
			}
			out, _ := fl.Unflatten().(map[string]any)
			return out, nil
		})
	})
	return c
}

// newLBChildDeleteCmd returns `network lb <child> delete`.
func newLBChildDeleteCmd(g *globals, s lbChild) *cobra.Command {
	var o lbChildArgs
	del := leaf("delete", "Delete a "+s.child.Display(), g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name", "name"); err != nil {
			return err
		}
		return mutateChild(e, s, o.rg, o.lb, o.name, false, o.noWait, nil)
	})
	o.add(del, s, true)
	addNoWait(del, &o.noWait)
	return del
}

// newLBChildListCmd returns `network lb <child> list`.
func newLBChildListCmd(g *globals, s lbChild) *cobra.Command {
	var o lbChildArgs
	lst := leaf("list", "List the "+s.child.Display()+"s", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name"); err != nil {
			return err
		}
		items, err := getChildren(e, s, o.rg, o.lb)
		if err != nil {
			return err
		}
		if items == nil {
			items = []any{}
		}
		return e.PrintResource(items, nil)
	})
	o.add(lst, s, false)
	return lst
}

// newLBChildShowCmd returns `network lb <child> show`.
func newLBChildShowCmd(g *globals, s lbChild) *cobra.Command {
	var o lbChildArgs
	show := leaf("show", "Show a "+s.child.Display(), g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name", "name"); err != nil {
			return err
		}
		items, err := getChildren(e, s, o.rg, o.lb)
		if err != nil {
			return err
		}
		i := findNamed(items, o.name)
		if i < 0 {
			return fmt.Errorf("Property '%s' does not exist", o.name)
		}
		return e.PrintResource(items[i], nil)
	})
	o.add(show, s, true)
	return show
}

// getChildren GETs the load balancer and returns its children of s.
func getChildren(e *env, s lbChild, rg, lbName string) ([]any, error) {
	c, err := e.Client()
	if err != nil {
		return nil, err
	}
	lb, err := c.Get(e.ctx, c.ResourcePath(rg, typeLB, lbName), NetworkAPIVersion)
	if err != nil {
		return nil, err
	}
	return childItems(lb.(map[string]any), s.child), nil
}

// childItems returns the children of coll in a wire-form load balancer (the
// list at coll.Path()), creating the objects on the path.
func childItems(lb map[string]any, coll resource.LBChildCollection) []any {
	m, key := childParent(lb, coll)
	return list(m, key)
}

// setChildItems stores items as the children of coll in a wire-form load
// balancer.
func setChildItems(lb map[string]any, coll resource.LBChildCollection, items []any) {
	m, key := childParent(lb, coll)
	m[key] = items
}

// childParent returns the object holding coll's list and the list's key.
func childParent(lb map[string]any, coll resource.LBChildCollection) (map[string]any, string) {
	segs := strings.Split(coll.Path(), ".")
	m := lb
	for _, k := range segs[:len(segs)-1] {
		sub, ok := m[k].(map[string]any)
		if !ok {
			sub = map[string]any{}
			m[k] = sub
		}
		m = sub
	}
	return m, segs[len(segs)-1]
}

// mutateChild does GET LB → change child → PUT LB → print the child. With
// edit nil it deletes the child; with create it adds it (replacing one of
// the same name with a warning, as az does); otherwise it updates it.
func mutateChild(e *env, s lbChild, rg, lbName, name string, create, noWait bool, edit func(*childCtx, map[string]any) (map[string]any, error)) error {
	c, err := e.Client()
	if err != nil {
		return err
	}
	path := c.ResourcePath(rg, typeLB, lbName)
	v, err := c.Get(e.ctx, path, NetworkAPIVersion)
	if err != nil {
		return err
	}
	lb, ok := v.(map[string]any)
	if !ok {
		return fmt.Errorf("load balancer %s: unexpected response", lbName)
	}
	lbID, _ := lb["id"].(string)
	if lbID == "" {
		lbID = path
	}
	items := childItems(lb, s.child)
	i := findNamed(items, name)
	switch {
	case edit == nil:
		if i < 0 {
			return nil
		}
		items = append(items[:i:i], items[i+1:]...)
	case create:
		child := map[string]any{"name": name, "properties": map[string]any{}}
		x := &childCtx{e: e, cmd: e.cmd, c: c, lbID: lbID, lb: lb, create: true}
		if child, err = edit(x, child); err != nil {
			return err
		}
		if i >= 0 {
			fmt.Fprintf(e.cmd.ErrOrStderr(), "WARNING: Item '%s' already exists. Replacing with new values.\n", name)
			items[i] = child
		} else {
			items = append(items, child)
		}
	default:
		if i < 0 {
			return fmt.Errorf("Property '%s' does not exist", name)
		}
		child, _ := items[i].(map[string]any)
		x := &childCtx{e: e, cmd: e.cmd, c: c, lbID: lbID, lb: lb}
		if child, err = edit(x, child); err != nil {
			return err
		}
		items[i] = child
	}
	if items == nil {
		items = []any{}
	}
	setChildItems(lb, s.child, items)
	out, err := c.Put(e.ctx, path, NetworkAPIVersion, lb, !noWait)
	if err != nil || noWait || edit == nil {
		return err
	}
	om, ok := out.(map[string]any)
	if !ok {
		return fmt.Errorf("load balancer %s: unexpected response", lbName)
	}
	res := childItems(om, s.child)
	if j := findNamed(res, name); j >= 0 {
		return e.PrintResource(res[j], nil)
	}
	return fmt.Errorf("Property '%s' does not exist", name)
}

// groupOf returns the resource group segment of an ARM id (any case), or "".
func groupOf(id string) string {
	segs := strings.Split(strings.Trim(id, "/"), "/")
	for i := 0; i+1 < len(segs); i++ {
		if strings.EqualFold(segs[i], "resourceGroups") {
			return segs[i+1]
		}
	}
	return ""
}
