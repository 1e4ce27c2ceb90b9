package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// An LB child verb group (probe, rule, ...). As az does, every verb reads
// the load balancer, changes the child in the body and PUTs the whole load
// balancer back.
type lbChild struct {
	use, coll, what string
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
	lb     map[string]any // the load balancer's properties (wire form)
	p      map[string]any // the child's properties (wire form)
	create bool
}

type childApply func(x *childCtx) error

// ref returns {"id": lbID/coll/name}, or name itself when it is an id.
func (x *childCtx) ref(coll, name string) map[string]any {
	if isID(name) {
		return map[string]any{"id": name}
	}
	return map[string]any{"id": x.lbID + "/" + coll + "/" + url.PathEscape(name)}
}

// defaultName returns given, or on create the only element of the LB's
// coll (az: "if only one exists, omit to use as default").
func (x *childCtx) defaultName(given, coll, flag string) (string, error) {
	if given != "" || !x.create {
		return given, nil
	}
	l := list(x.lb, coll)
	switch len(l) {
	case 1:
		n, _ := field(l[0], "name").(string)
		return n, nil
	case 0:
		return "", nil
	}
	return "", fmt.Errorf("multiple %s found: specify --%s (one of %s)", coll, flag, strings.Join(names(l), ", "))
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
func (x *childCtx) setRef(flag, key, coll, name string) error {
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
	{use: "probe", coll: "probes", what: "probe", required: []string{"port", "protocol"}, define: func(cmd *cobra.Command) childApply {
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
	{use: "rule", coll: "loadBalancingRules", what: "load balancing rule", required: []string{"frontend-port", "backend-port", "protocol"}, define: func(cmd *cobra.Command) childApply {
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
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", "frontendIPConfigurations", fe); err != nil {
				return err
			}
			if err := x.setRef("backend-pool-name", "backendAddressPool", "backendAddressPools", pool); err != nil {
				return err
			}
			if flagSet(x.cmd, "probe-name") {
				if probe == "" {
					delete(x.p, "probe")
				} else {
					x.p["probe"] = x.ref("probes", probe)
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
	{use: "address-pool", coll: "backendAddressPools", what: "backend address pool", define: func(cmd *cobra.Command) childApply {
		var drain int
		cmd.Flags().IntVar(&drain, "drain-period", 0, "seconds to wait before resetting connections of removed backends")
		return func(x *childCtx) error {
			x.setInt("drain-period", "drainPeriodInSeconds", drain)
			return nil
		}
	}},
	{use: "inbound-nat-rule", coll: "inboundNatRules", what: "inbound NAT rule", required: []string{"protocol", "backend-port"}, define: func(cmd *cobra.Command) childApply {
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
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", "frontendIPConfigurations", fe); err != nil {
				return err
			}
			if flagSet(x.cmd, "backend-pool-name") {
				x.p["backendAddressPool"] = x.ref("backendAddressPools", pool)
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
	{use: "inbound-nat-pool", coll: "inboundNatPools", what: "inbound NAT pool", required: []string{"protocol", "frontend-port-range-start", "frontend-port-range-end", "backend-port"}, define: func(cmd *cobra.Command) childApply {
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
			if err := x.setRef("frontend-ip-name", "frontendIPConfiguration", "frontendIPConfigurations", fe); err != nil {
				return err
			}
			x.setInt("idle-timeout", "idleTimeoutInMinutes", idle)
			if err := x.setBool("floating-ip", "enableFloatingIP", floating); err != nil {
				return err
			}
			return x.setBool("enable-tcp-reset", "enableTcpReset", reset)
		}
	}},
	{use: "outbound-rule", coll: "outboundRules", what: "outbound rule", required: []string{"frontend-ip-configs", "address-pool", "protocol"}, define: func(cmd *cobra.Command) childApply {
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
					refs[i] = x.ref("frontendIPConfigurations", n)
				}
				x.p["frontendIPConfigurations"] = refs
			}
			if flagSet(x.cmd, "address-pool") {
				x.p["backendAddressPool"] = x.ref("backendAddressPools", pool)
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
	{use: "frontend-ip", coll: "frontendIPConfigurations", what: "frontend IP configuration", define: func(cmd *cobra.Command) childApply {
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
	cmd := group(s.use, "Manage the "+s.what+"s of a load balancer")
	type common struct {
		rg, lb, name string
		noWait       bool
	}
	addCommon := func(c *cobra.Command, o *common, withName bool) {
		c.Flags().StringVarP(&o.rg, "resource-group", "g", "", "name of resource group")
		c.Flags().StringVar(&o.lb, "lb-name", "", "name of the load balancer")
		if withName {
			c.Flags().StringVarP(&o.name, "name", "n", "", "name of the "+s.what)
		}
	}

	for _, create := range []bool{true, false} {
		var o common
		use, short := "create", "Create a "+s.what
		if !create {
			use, short = "update", "Update a "+s.what
		}
		c := &cobra.Command{Use: use, Short: short}
		addCommon(c, &o, true)
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
		cmd.AddCommand(c)
	}

	var d common
	del := leaf("delete", "Delete a "+s.what, g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name", "name"); err != nil {
			return err
		}
		return mutateChild(e, s, d.rg, d.lb, d.name, false, d.noWait, nil)
	})
	addCommon(del, &d, true)
	addNoWait(del, &d.noWait)

	var l common
	lst := leaf("list", "List the "+s.what+"s", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		lb, err := c.Get(e.ctx, c.ResourcePath(l.rg, typeLB, l.lb), NetworkAPIVersion)
		if err != nil {
			return err
		}
		items := list(props(lb.(map[string]any)), s.coll)
		if items == nil {
			items = []any{}
		}
		return e.PrintResource(items, nil)
	})
	addCommon(lst, &l, false)

	var sh common
	show := leaf("show", "Show a "+s.what, g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "lb-name", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		lb, err := c.Get(e.ctx, c.ResourcePath(sh.rg, typeLB, sh.lb), NetworkAPIVersion)
		if err != nil {
			return err
		}
		items := list(props(lb.(map[string]any)), s.coll)
		i := findNamed(items, sh.name)
		if i < 0 {
			return fmt.Errorf("Property '%s' does not exist", sh.name)
		}
		return e.PrintResource(items[i], nil)
	})
	addCommon(show, &sh, true)
	cmd.AddCommand(del, lst, show)
	return cmd
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
	lp := props(lb)
	items := list(lp, s.coll)
	i := findNamed(items, name)
	switch {
	case edit == nil:
		if i < 0 {
			return nil
		}
		items = append(items[:i:i], items[i+1:]...)
	case create:
		child := map[string]any{"name": name, "properties": map[string]any{}}
		x := &childCtx{e: e, cmd: e.cmd, c: c, lbID: lbID, lb: lp, create: true}
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
		x := &childCtx{e: e, cmd: e.cmd, c: c, lbID: lbID, lb: lp}
		if child, err = edit(x, child); err != nil {
			return err
		}
		items[i] = child
	}
	if items == nil {
		items = []any{}
	}
	lp[s.coll] = items
	out, err := c.Put(e.ctx, path, NetworkAPIVersion, lb, !noWait)
	if err != nil || noWait || edit == nil {
		return err
	}
	om, ok := out.(map[string]any)
	if !ok {
		return fmt.Errorf("load balancer %s: unexpected response", lbName)
	}
	res := list(props(om), s.coll)
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
