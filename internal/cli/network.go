package cli

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// NewNetworkCmd returns `nimbus network`: vnet (and vnet subnet),
// public-ip, lb (and its children).
func NewNetworkCmd() *cobra.Command {
	cmd := group("network", "Manage networking resources")
	g := addGlobals(cmd)
	cmd.AddCommand(newVNetCmd(g), newPublicIPCmd(g), newLBCmd(g))
	return finalize(cmd)
}

// location returns loc, or the group's location when loc is empty.
func (e *env) location(c *Client, rg, loc string) (string, error) {
	if loc != "" {
		return loc, nil
	}
	return c.GroupLocation(e.ctx, rg)
}

// crud adds the show, list and delete verbs every top-level network type
// has. listTable may be nil.
func crud(parent *cobra.Command, g *globals, typ, apiVersion, what string, listTable TableFunc) {
	var rg, name string
	show := leaf("show", "Get the details of a "+what, g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.Get(e.ctx, c.ResourcePath(rg, typ, name), apiVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, listTable)
	})
	addRGName(show, &rg, &name, "name of the "+what)

	var lrg string
	list := leaf("list", "List "+what+"s", g, func(e *env) error {
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := "/subscriptions/" + url.PathEscape(c.Subscription) + "/providers/" + typ
		if lrg != "" {
			path = c.GroupPath(lrg) + "/providers/" + typ
		}
		v, err := c.List(e.ctx, path, apiVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, listTable)
	})
	list.Flags().StringVarP(&lrg, "resource-group", "g", "", "name of resource group (default: all groups)")

	var drg, dname string
	var noWait bool
	del := leaf("delete", "Delete a "+what, g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		return c.Delete(e.ctx, c.ResourcePath(drg, typ, dname), apiVersion, !noWait)
	})
	addRGName(del, &drg, &dname, "name of the "+what)
	addNoWait(del, &noWait)
	parent.AddCommand(show, list, del)
}

func newVNetCmd(g *globals) *cobra.Command {
	cmd := group("vnet", "Manage virtual networks")
	var rg, name, loc, subnetName string
	var prefixes, subnetPrefixes, tags []string
	var noWait bool
	create := leaf("create", "Create a virtual network", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		l, err := e.location(c, rg, loc)
		if err != nil {
			return err
		}
		body := vnetBody(l, prefixes, subnetName, subnetPrefixes, tags)
		v, err := c.Put(e.ctx, c.ResourcePath(rg, typeVNet, name), NetworkAPIVersion, body, !noWait)
		if err != nil || noWait {
			return err
		}
		return e.PrintResource(map[string]any{"newVNet": v}, nil)
	})
	addRGName(create, &rg, &name, "name of the virtual network")
	create.Flags().StringVarP(&loc, "location", "l", "", "location (default: the resource group's)")
	wordsVar(create, &prefixes, "address-prefixes", "", "space-separated IP address prefixes in CIDR format (default 10.0.0.0/16)")
	create.Flags().StringVar(&subnetName, "subnet-name", "", "name of a new subnet to create within the VNet")
	wordsVar(create, &subnetPrefixes, "subnet-prefixes", "", "space-separated address prefixes of the new subnet (default 10.0.0.0/24)")
	wordsVar(create, &tags, "tags", "", "space-separated tags: key[=value]")
	addNoWait(create, &noWait)
	cmd.AddCommand(create)
	crud(cmd, g, typeVNet, NetworkAPIVersion, "virtual network", vnetTable)
	cmd.AddCommand(newSubnetCmd(g))
	return cmd
}

// vnetTable is az's table for virtual networks (input flattened).
func vnetTable(v any) []Row {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	join := func(x any) string {
		var parts []string
		for _, p := range asList(x) {
			parts = append(parts, cellText(p))
		}
		return strings.Join(parts, ", ")
	}
	var rows []Row
	for _, it := range items {
		rows = append(rows, Row{
			{"Name", field(it, "name")},
			{"ResourceGroup", field(it, "resourceGroup")},
			{"Location", field(it, "location")},
			{"NumSubnets", float64(len(asList(field(it, "subnets"))))},
			{"Prefixes", join(field(field(it, "addressSpace"), "addressPrefixes"))},
			{"DnsServers", join(field(field(it, "dhcpOptions"), "dnsServers"))},
			{"DDOSProtection", field(it, "enableDdosProtection")},
			{"VMProtection", field(it, "enableVmProtection")},
		})
	}
	return rows
}

// vnetBody is the body az builds for `network vnet create`.
func vnetBody(loc string, prefixes []string, subnetName string, subnetPrefixes, tags []string) map[string]any {
	if len(prefixes) == 0 {
		prefixes = []string{"10.0.0.0/16"}
	}
	props := map[string]any{"addressSpace": map[string]any{"addressPrefixes": toAny(prefixes)}}
	if subnetName != "" {
		if len(subnetPrefixes) == 0 {
			subnetPrefixes = []string{"10.0.0.0/24"}
		}
		props["subnets"] = []any{subnetBody(subnetName, subnetPrefixes)}
	}
	body := map[string]any{"location": loc, "properties": props}
	if len(tags) > 0 {
		body["tags"] = parseTags(tags)
	}
	return body
}

func subnetBody(name string, prefixes []string) map[string]any {
	sp := map[string]any{}
	if len(prefixes) == 1 {
		sp["addressPrefix"] = prefixes[0]
	} else {
		sp["addressPrefixes"] = toAny(prefixes)
	}
	b := map[string]any{"properties": sp}
	if name != "" {
		b["name"] = name
	}
	return b
}

func toAny(xs []string) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

// newSubnetCmd returns `network vnet subnet`: create, show, list, delete.
func newSubnetCmd(g *globals) *cobra.Command {
	cmd := group("subnet", "Manage subnets in a virtual network")
	cmd.AddCommand(newSubnetCreateCmd(g), newSubnetShowCmd(g), newSubnetListCmd(g), newSubnetDeleteCmd(g))
	return cmd
}

// subnetPath is the path of subnet name of virtual network vnet.
func subnetPath(c *Client, rg, vnet, name string) string {
	return c.ResourcePath(rg, typeVNet, vnet) + "/subnets/" + url.PathEscape(name)
}

// newSubnetCreateCmd returns `network vnet subnet create`.
func newSubnetCreateCmd(g *globals) *cobra.Command {
	var rg, vnet, name string
	var prefixes []string
	var noWait bool
	create := leaf("create", "Create a subnet", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "vnet-name", "name"); err != nil {
			return err
		}
		if !flagSet(e.cmd, "address-prefixes") {
			return usagef("the following arguments are required: --address-prefixes")
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.Put(e.ctx, subnetPath(c, rg, vnet, name), NetworkAPIVersion, subnetBody("", prefixes), !noWait)
		if err != nil || noWait {
			return err
		}
		return e.PrintResource(v, nil)
	})
	addRGName(create, &rg, &name, "name of the subnet")
	create.Flags().StringVar(&vnet, "vnet-name", "", "name of the virtual network")
	wordsVar(create, &prefixes, "address-prefixes", "", "space-separated address prefixes in CIDR format")
	alias(create, "address-prefix", "address-prefixes")
	addNoWait(create, &noWait)
	return create
}

// newSubnetShowCmd returns `network vnet subnet show`.
func newSubnetShowCmd(g *globals) *cobra.Command {
	var srg, svnet, sname string
	show := leaf("show", "Show a subnet", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "vnet-name", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.Get(e.ctx, subnetPath(c, srg, svnet, sname), NetworkAPIVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, nil)
	})
	addRGName(show, &srg, &sname, "name of the subnet")
	show.Flags().StringVar(&svnet, "vnet-name", "", "name of the virtual network")
	return show
}

// newSubnetListCmd returns `network vnet subnet list`.
func newSubnetListCmd(g *globals) *cobra.Command {
	var lrg, lvnet string
	list := leaf("list", "List the subnets of a virtual network", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "vnet-name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.List(e.ctx, c.ResourcePath(lrg, typeVNet, lvnet)+"/subnets", NetworkAPIVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, nil)
	})
	list.Flags().StringVarP(&lrg, "resource-group", "g", "", "name of resource group")
	list.Flags().StringVar(&lvnet, "vnet-name", "", "name of the virtual network")
	return list
}

// newSubnetDeleteCmd returns `network vnet subnet delete`.
func newSubnetDeleteCmd(g *globals) *cobra.Command {
	var drg, dvnet, dname string
	var dNoWait bool
	del := leaf("delete", "Delete a subnet", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "vnet-name", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		return c.Delete(e.ctx, subnetPath(c, drg, dvnet, dname), NetworkAPIVersion, !dNoWait)
	})
	addRGName(del, &drg, &dname, "name of the subnet")
	del.Flags().StringVar(&dvnet, "vnet-name", "", "name of the virtual network")
	addNoWait(del, &dNoWait)
	return del
}

func newPublicIPCmd(g *globals) *cobra.Command {
	cmd := group("public-ip", "Manage public IP addresses")
	var rg, name, loc, sku, alloc, version, dns string
	var idle int
	var tags, zones []string
	var noWait bool
	create := leaf("create", "Create a public IP address", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		body, err := publicIPBody(loc, sku, alloc, version, dns, idle, tags, zones)
		if err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		if body["location"], err = e.location(c, rg, loc); err != nil {
			return err
		}
		v, err := c.Put(e.ctx, c.ResourcePath(rg, typePIP, name), NetworkAPIVersion, body, !noWait)
		if err != nil || noWait {
			return err
		}
		return e.PrintResource(map[string]any{"publicIp": v}, nil)
	})
	addRGName(create, &rg, &name, "name of the public IP address")
	create.Flags().StringVarP(&loc, "location", "l", "", "location (default: the resource group's)")
	create.Flags().StringVar(&sku, "sku", "Standard", "SKU: Basic, Standard")
	create.Flags().StringVar(&alloc, "allocation-method", "", "IP address allocation method: Static, Dynamic (default: Static for Standard)")
	create.Flags().StringVar(&version, "version", "IPv4", "IP address type: IPv4, IPv6")
	create.Flags().StringVar(&dns, "dns-name", "", "globally unique DNS name label")
	create.Flags().IntVar(&idle, "idle-timeout", 4, "idle timeout in minutes")
	wordsVar(create, &zones, "zone", "z", "space-separated availability zones")
	wordsVar(create, &tags, "tags", "", "space-separated tags: key[=value]")
	addNoWait(create, &noWait)
	cmd.AddCommand(create)
	crud(cmd, g, typePIP, NetworkAPIVersion, "public IP address", nil)
	return cmd
}

// publicIPBody is the body az builds for `network public-ip create`
// (without location).
func publicIPBody(loc, sku, alloc, version, dns string, idle int, tags, zones []string) (map[string]any, error) {
	sku, err := choice("sku", sku, "Basic", "Standard")
	if err != nil {
		return nil, err
	}
	if alloc == "" {
		alloc = "Dynamic"
		if sku == "Standard" {
			alloc = "Static"
		}
	}
	if alloc, err = choice("allocation-method", alloc, "Static", "Dynamic"); err != nil {
		return nil, err
	}
	if version, err = choice("version", version, "IPv4", "IPv6"); err != nil {
		return nil, err
	}
	props := map[string]any{
		"publicIPAllocationMethod": alloc,
		"publicIPAddressVersion":   version,
		"idleTimeoutInMinutes":     idle,
	}
	if dns != "" {
		props["dnsSettings"] = map[string]any{"domainNameLabel": strings.ToLower(dns)}
	}
	body := map[string]any{"sku": map[string]any{"name": sku}, "properties": props}
	if loc != "" {
		body["location"] = loc
	}
	if len(tags) > 0 {
		body["tags"] = parseTags(tags)
	}
	if len(zones) > 0 {
		body["zones"] = toAny(zones)
	}
	return body, nil
}

// childPath joins a parent path and a child collection and name.
func childPath(parent, collection, name string) string {
	return fmt.Sprintf("%s/%s/%s", parent, collection, url.PathEscape(name))
}
