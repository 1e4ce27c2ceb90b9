package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"nimbus/internal/resource"
)

// newLBCmd returns `network lb`: create, show, list, update, delete and
// the child verbs.
func newLBCmd(g *globals) *cobra.Command {
	cmd := group("lb", "Manage load balancers")
	cmd.AddCommand(newLBCreateCmd(g))
	crud(cmd, g, typeLB, NetworkAPIVersion, "load balancer", nil)
	cmd.AddCommand(newLBUpdateCmd(g))
	for _, s := range lbChildren {
		cmd.AddCommand(newLBChildCmd(g, s))
	}
	return cmd
}

// newLBCreateCmd returns `network lb create`: the load balancer with one
// frontend and one backend pool, and its public IP or virtual network.
func newLBCreateCmd(g *globals) *cobra.Command {
	var o LBCreate
	var noWait bool
	create := leaf("create", "Create a load balancer", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		if o.Location, err = e.location(c, o.RG, o.Location); err != nil {
			return err
		}
		v, err := c.CreateLB(e.ctx, &o, noWait)
		if err != nil || noWait {
			return err
		}
		return e.Print(map[string]any{"loadBalancer": field(v, "properties")}, nil)
	})
	f := create.Flags()
	addRGName(create, &o.RG, &o.Name, "name of the load balancer")
	f.StringVarP(&o.Location, "location", "l", "", "location (default: the resource group's)")
	f.StringVar(&o.SKU, "sku", "Standard", "load balancer SKU: Basic, Gateway, Standard")
	f.StringVar(&o.FrontendIPName, "frontend-ip-name", "LoadBalancerFrontEnd", "name of the frontend IP configuration")
	f.StringVar(&o.BackendPoolName, "backend-pool-name", "", "name of the backend address pool (default {lb}bepool)")
	f.StringVar(&o.PublicIP, "public-ip-address", "", "name or ID of the public IP address, created if it does not exist (default: a new PublicIP{lb} unless --subnet)")
	f.StringVar(&o.PublicIPAlloc, "public-ip-address-allocation", "", "allocation method of a new public IP: Static, Dynamic")
	f.StringVar(&o.PublicIPDNS, "public-ip-dns-name", "", "DNS name label of a new public IP")
	f.StringVar(&o.Subnet, "subnet", "", "name or ID of an existing subnet (internal load balancer)")
	f.StringVar(&o.VNet, "vnet-name", "", "name of the virtual network of --subnet")
	f.StringVar(&o.PrivateIP, "private-ip-address", "", "static private IP address of an internal frontend")
	f.StringVar(&o.VNetPrefix, "vnet-address-prefix", "10.0.0.0/16", "address prefix of a new virtual network")
	f.StringVar(&o.SubnetPrefix, "subnet-address-prefix", "10.0.0.0/24", "address prefix of a new subnet")
	wordsVar(create, &o.Tags, "tags", "", "space-separated tags: key[=value]")
	addNoWait(create, &noWait)
	return create
}

// newLBUpdateCmd returns `network lb update`: az's generic update plus
// --tags.
func newLBUpdateCmd(g *globals) *cobra.Command {
	var urg, uname string
	var uNoWait bool
	var utags []string
	update := &cobra.Command{Use: "update", Short: "Update a load balancer (generic update: --set, --add, --remove)"}
	ga := addGeneric(update)
	update.RunE = verb(g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := c.ResourcePath(urg, typeLB, uname)
		return genericUpdate(e, c, path, NetworkAPIVersion, ga, uNoWait, func(obj map[string]any) error {
			if changed(e.cmd, "tags") {
				obj["tags"] = parseTags(utags)
			}
			return nil
		})
	})
	addRGName(update, &urg, &uname, "name of the load balancer")
	wordsVar(update, &utags, "tags", "", "space-separated tags: key[=value]")
	addNoWait(update, &uNoWait)
	return update
}

// genericUpdate is az's generic update: GET, flatten, apply the flag
// changes (pre) and --set/--add/--remove, unflatten, PUT, print.
func genericUpdate(e *env, c *Client, path, apiVersion string, ga *genericArgs, noWait bool, pre func(map[string]any) error) error {
	v, err := c.Get(e.ctx, path, apiVersion)
	if err != nil {
		return err
	}
	fl := Flatten(v)
	obj, _ := fl.Value.(map[string]any)
	if obj == nil {
		return fmt.Errorf("%s is not an object", path)
	}
	if pre != nil {
		if err := pre(obj); err != nil {
			return err
		}
	}
	if err := ApplyUpdates(obj, ga.ops, ga.forceString); err != nil {
		return err
	}
	out, err := c.Put(e.ctx, path, apiVersion, fl.Unflatten(), !noWait)
	if err != nil || noWait {
		return err
	}
	return e.PrintResource(out, nil)
}

// LBCreate holds the flags of `network lb create`.
type LBCreate struct {
	RG, Name, Location, SKU              string
	FrontendIPName, BackendPoolName      string
	PublicIP, PublicIPAlloc, PublicIPDNS string
	Subnet, VNet, PrivateIP              string
	VNetPrefix, SubnetPrefix             string
	Tags                                 []string
}

// CreateLB makes what `az network lb create` makes: the public IP (new
// unless it exists) or the subnet's virtual network (new unless it exists),
// then the load balancer with one frontend and one backend pool. It returns
// the load balancer. o.Location must be set.
func (c *Client) CreateLB(ctx context.Context, o *LBCreate, noWait bool) (any, error) {
	for _, d := range []struct {
		p *string
		v string
	}{
		{&o.SKU, "Standard"}, {&o.FrontendIPName, "LoadBalancerFrontEnd"},
		{&o.VNetPrefix, "10.0.0.0/16"}, {&o.SubnetPrefix, "10.0.0.0/24"},
	} {
		if *d.p == "" {
			*d.p = d.v
		}
	}
	sku, err := choice("sku", o.SKU, "Basic", "Gateway", "Standard")
	if err != nil {
		return nil, err
	}
	fe := map[string]any{}
	if o.Subnet != "" {
		subnetID := o.Subnet
		if !isID(subnetID) {
			if o.VNet == "" {
				return nil, usagef("usage error: --subnet NAME --vnet-name NAME | --subnet ID")
			}
			vnetPath := c.ResourcePath(o.RG, typeVNet, o.VNet)
			if _, err := c.Get(ctx, vnetPath, NetworkAPIVersion); isNotFound(err) {
				body := vnetBody(o.Location, []string{o.VNetPrefix}, o.Subnet, []string{o.SubnetPrefix}, nil)
				if _, err := c.Put(ctx, vnetPath, NetworkAPIVersion, body, true); err != nil {
					return nil, err
				}
			} else if err != nil {
				return nil, err
			}
			subnetID = vnetPath + "/subnets/" + o.Subnet
		}
		fe["subnet"] = map[string]any{"id": subnetID}
		fe["privateIPAllocationMethod"] = "Dynamic"
		if o.PrivateIP != "" {
			fe["privateIPAddress"] = o.PrivateIP
			fe["privateIPAllocationMethod"] = "Static"
		}
	} else {
		pip := o.PublicIP
		if pip == "" {
			pip = "PublicIP" + o.Name
		}
		pipPath := c.ResourcePath(o.RG, typePIP, pip)
		if _, err := c.Get(ctx, pipPath, NetworkAPIVersion); isNotFound(err) {
			pipSKU := sku
			if pipSKU == "Gateway" {
				pipSKU = "Standard"
			}
			body, err := publicIPBody(o.Location, pipSKU, o.PublicIPAlloc, "IPv4", o.PublicIPDNS, 4, o.Tags, nil)
			if err != nil {
				return nil, err
			}
			if _, err := c.Put(ctx, pipPath, NetworkAPIVersion, body, true); err != nil {
				return nil, err
			}
		} else if err != nil {
			return nil, err
		}
		fe["publicIPAddress"] = map[string]any{"id": pipPath}
	}
	pool := o.BackendPoolName
	if pool == "" {
		pool = o.Name + "bepool"
	}
	body := lbBody(o.Location, sku, o.FrontendIPName, fe, pool, o.Tags)
	return c.Put(ctx, c.ResourcePath(o.RG, typeLB, o.Name), NetworkAPIVersion, body, !noWait)
}

// lbBody is a load balancer with one frontend and one backend pool.
func lbBody(loc, sku, feName string, feProps map[string]any, pool string, tags []string) map[string]any {
	body := map[string]any{
		"location": loc,
		"sku":      map[string]any{"name": sku},
		"properties": map[string]any{
			resource.CollFrontendIPConfigurations: []any{map[string]any{"name": feName, "properties": feProps}},
			resource.CollBackendAddressPools:      []any{map[string]any{"name": pool}},
			resource.CollLoadBalancingRules:       []any{},
			resource.CollProbes:                   []any{},
			resource.CollInboundNatRules:          []any{},
			resource.CollInboundNatPools:          []any{},
		},
	}
	if len(tags) > 0 {
		body["tags"] = parseTags(tags)
	}
	return body
}

func isNotFound(err error) bool {
	var ae *APIError
	return errors.As(err, &ae) && ae.Status == http.StatusNotFound
}

// alias registers name as another spelling of flag target.
func alias(cmd *cobra.Command, name, target string) {
	t := cmd.Flags().Lookup(target)
	cmd.Flags().AddFlag(&pflag.Flag{Name: name, Usage: "alias of --" + target, Value: t.Value, DefValue: t.DefValue,
		NoOptDefVal: t.NoOptDefVal, Annotations: map[string][]string{"alias-of": {target}}})
}

// flagSet reports whether flag name, or one of its aliases, was given.
func flagSet(cmd *cobra.Command, name string) bool {
	if changed(cmd, name) {
		return true
	}
	set := false
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if a := f.Annotations["alias-of"]; len(a) == 1 && a[0] == name && f.Changed {
			set = true
		}
	})
	return set
}

// props returns m["properties"], creating it.
func props(m map[string]any) map[string]any {
	p, ok := m["properties"].(map[string]any)
	if !ok {
		p = map[string]any{}
		m["properties"] = p
	}
	return p
}

// list returns m[key] as a list.
func list(m map[string]any, key string) []any {
	l, _ := m[key].([]any)
	return l
}

// findNamed returns the index of the element of l named name (case-insensitive), or -1.
func findNamed(l []any, name string) int {
	for i, x := range l {
		if n, _ := field(x, "name").(string); strings.EqualFold(n, name) {
			return i
		}
	}
	return -1
}

// names lists the names of the elements of l.
func names(l []any) []string {
	var out []string
	for _, x := range l {
		if n, _ := field(x, "name").(string); n != "" {
			out = append(out, n)
		}
	}
	return out
}
