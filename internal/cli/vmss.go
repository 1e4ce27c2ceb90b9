package cli

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/url"
	"os"
	"os/user"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"nimbus/internal/resource"
)

// imageAliases are the nimbus images by short name (az has its own aliases
// such as Ubuntu2204; nimbus runs only its built-in workloads).
var imageAliases = map[string]string{
	"echo":   "nimbus:workloads:echo:latest",
	"script": "nimbus:workloads:script:latest",
}

// imageReference parses --image: an alias, a URN publisher:offer:sku:version
// or an image resource ID.
func imageReference(image string) (map[string]any, error) {
	if urn, ok := imageAliases[strings.ToLower(image)]; ok {
		image = urn
	}
	if isID(image) {
		return map[string]any{"id": image}, nil
	}
	p := strings.Split(image, ":")
	if len(p) != 4 || p[0] == "" || p[1] == "" || p[2] == "" || p[3] == "" {
		return nil, usagef("usage error: --image must be a URN publisher:offer:sku:version (e.g. nimbus:workloads:echo:latest), an alias (echo, script) or an image ID; got '%s'", image)
	}
	return map[string]any{"publisher": p[0], "offer": p[1], "sku": p[2], "version": p[3]}, nil
}

// VMSSCreate holds the flags of `vmss create` that shape the request bodies.
type VMSSCreate struct {
	RG, Name, Location, Image, VMSku       string
	InstanceCount                          int
	DisableOverprovision                   bool
	UpgradePolicyMode, OrchestrationMode   string
	AdminUsername, AdminPassword           string
	SSHKeys                                []string
	CustomData                             string // file path or literal, as az reads it
	ComputerNamePrefix                     string
	VNetName, Subnet                       string
	VNetAddressPrefix, SubnetAddressPrefix string
	LB                                     string // "" → default name; "none" sentinel handled by LBNone
	LBNone                                 bool
	LBSku, BackendPoolName, NatPoolName    string
	BackendPort                            int
	PublicIP, PublicIPAllocation           string
	HealthProbe                            string
	Tags                                   []string
	SinglePlacementGroup                   string
}

// defaults fills empty fields with az's defaults (the flags' defaults), for
// callers that build a VMSSCreate in code. InstanceCount is taken as is.
func (o *VMSSCreate) defaults() {
	def := func(p *string, v string) {
		if *p == "" {
			*p = v
		}
	}
	def(&o.VMSku, "Standard_DS1_v2")
	def(&o.UpgradePolicyMode, "Manual")
	def(&o.OrchestrationMode, "Uniform")
	def(&o.AdminUsername, defaultAdmin())
	def(&o.VNetAddressPrefix, "10.0.0.0/16")
	def(&o.LBSku, "Standard")
	if o.BackendPort == 0 {
		o.BackendPort = 22
	}
}

// namingPrefix is the prefix of the NIC and IP configuration names (and the
// default computer name prefix): the scale set's name without punctuation,
// at most 8 characters.
func namingPrefix(name string) string {
	var b strings.Builder
	for _, r := range name {
		if r < 128 && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			b.WriteRune(r)
		}
	}
	s := b.String()
	if len(s) > 8 {
		s = s[:8]
	}
	return s
}

// natPoolEnd is az's default NAT pool end port: room for every instance
// (twice with overprovisioning), at least 50119.
func natPoolEnd(count int, overprovision bool) int {
	m := 1
	if overprovision {
		m = 2
	}
	return max(50119, 49999+count*m)
}

// subnetFits is az's _subnet_capacity_check.
func subnetFits(mask, count int, overprovision bool) bool {
	factor := 1.0
	if overprovision {
		factor = 1.5
	}
	size := (1 << (32 - mask)) - 2
	return size > int(float64(count)*factor)
}

// defaultSubnetPrefix is az's default subnet prefix for a new VNet: the
// smallest of /24 ... /16 of the VNet's first address that fits.
func defaultSubnetPrefix(vnetPrefix string, count int, overprovision bool) (string, error) {
	base, _, _ := strings.Cut(vnetPrefix, "/")
	for m := 24; m >= 16; m-- {
		if subnetFits(m, count, overprovision) {
			return fmt.Sprintf("%s/%d", base, m), nil
		}
	}
	return "", fmt.Errorf("instance count '%d' is out of range of 2^16 subnet size", count)
}

// NewLBBody returns the load balancer `vmss create` makes: frontend
// loadBalancerFrontEnd on pipID, pool {lb}BEPool (or pool), NAT pool
// {lb}NatPool tcp 50000..natPoolEnd → backendPort, and for Standard the
// LBRule tcp 80→80, idle 5, without probe.
func NewLBBody(lbID, loc, sku, pipID, pool, natPool string, backendPort, count int, overprovision bool) map[string]any {
	fe := resource.ChildID(lbID, resource.CollFrontendIPConfigurations, "loadBalancerFrontEnd")
	body := lbBody(loc, sku, "loadBalancerFrontEnd", map[string]any{"publicIPAddress": map[string]any{"id": pipID}}, pool, nil)
	p := body["properties"].(map[string]any)
	p[resource.CollInboundNatPools] = []any{map[string]any{
		"name": natPool,
		"properties": map[string]any{
			"frontendIPConfiguration": map[string]any{"id": fe},
			"protocol":                "Tcp",
			"frontendPortRangeStart":  50000,
			"frontendPortRangeEnd":    natPoolEnd(count, overprovision),
			"backendPort":             backendPort,
		},
	}}
	if sku == "Standard" {
		p[resource.CollLoadBalancingRules] = []any{map[string]any{
			"name": "LBRule",
			"properties": map[string]any{
				"frontendIPConfiguration": map[string]any{"id": fe},
				"backendAddressPool":      map[string]any{"id": resource.ChildID(lbID, resource.CollBackendAddressPools, pool)},
				"protocol":                "Tcp",
				"frontendPort":            80,
				"backendPort":             80,
				"enableFloatingIP":        false,
				"idleTimeoutInMinutes":    5,
			},
		}}
	}
	return body
}

// Body returns the scale set body for o once the subnet, pools, NAT pools
// and health probe are known (ids; nil or "" for none).
func (o *VMSSCreate) Body(subnetID string, poolIDs, natPoolIDs []string, probeID string) (map[string]any, error) {
	img, err := imageReference(o.Image)
	if err != nil {
		return nil, err
	}
	prefix := namingPrefix(o.Name)
	osp := o.osProfile(prefix)
	np := networkProfile(prefix, subnetID, poolIDs, natPoolIDs, probeID)
	mode, err := choice("upgrade-policy-mode", o.UpgradePolicyMode, "Automatic", "Manual", "Rolling")
	if err != nil {
		return nil, err
	}
	orch, err := choice("orchestration-mode", o.OrchestrationMode, "Uniform", "Flexible")
	if err != nil {
		return nil, err
	}
	props := map[string]any{
		"overprovision":     !o.DisableOverprovision,
		"upgradePolicy":     map[string]any{"mode": mode},
		"orchestrationMode": orch,
		"virtualMachineProfile": map[string]any{
			"storageProfile": map[string]any{
				"imageReference": img,
				"osDisk":         map[string]any{"createOption": "FromImage", "caching": "ReadWrite"},
			},
			"osProfile":      osp,
			"networkProfile": np,
		},
	}
	if o.SinglePlacementGroup != "" {
		b, err := parseBool("single-placement-group", o.SinglePlacementGroup)
		if err != nil {
			return nil, err
		}
		props["singlePlacementGroup"] = b
	}
	body := map[string]any{
		"location":   o.Location,
		"sku":        map[string]any{"name": o.VMSku, "tier": "Standard", "capacity": o.InstanceCount},
		"properties": props,
	}
	if len(o.Tags) > 0 {
		body["tags"] = parseTags(o.Tags)
	}
	return body, nil
}

// osProfile is the scale set's osProfile: computer name prefix (default
// prefix), admin user, password or SSH keys (a key may be a file), custom
// data (a file or text) base64-encoded.
func (o *VMSSCreate) osProfile(prefix string) map[string]any {
	cnp := o.ComputerNamePrefix
	if cnp == "" {
		cnp = prefix
	}
	osp := map[string]any{"computerNamePrefix": cnp, "adminUsername": o.AdminUsername}
	linux := map[string]any{"disablePasswordAuthentication": o.AdminPassword == ""}
	if o.AdminPassword != "" {
		osp["adminPassword"] = o.AdminPassword
	}
	if len(o.SSHKeys) > 0 {
		var keys []any
		for _, k := range o.SSHKeys {
			if b, err := os.ReadFile(k); err == nil {
				k = strings.TrimSpace(string(b))
			}
			keys = append(keys, map[string]any{"path": "/home/" + o.AdminUsername + "/.ssh/authorized_keys", "keyData": k})
		}
		linux["ssh"] = map[string]any{"publicKeys": keys}
	}
	osp["linuxConfiguration"] = linux
	if o.CustomData != "" {
		data := []byte(o.CustomData)
		if b, err := os.ReadFile(o.CustomData); err == nil {
			data = b
		}
		osp["customData"] = base64.StdEncoding.EncodeToString(data)
	}
	return osp
}

// networkProfile is the scale set's networkProfile: one primary NIC
// {prefix}Nic with one IP configuration {prefix}IPConfig in subnetID, in the
// given pools and NAT pools, and the health probe ("" for none).
func networkProfile(prefix, subnetID string, poolIDs, natPoolIDs []string, probeID string) map[string]any {
	ipc := map[string]any{"subnet": map[string]any{"id": subnetID}}
	if len(poolIDs) > 0 {
		ipc["loadBalancerBackendAddressPools"] = refs(poolIDs)
	}
	if len(natPoolIDs) > 0 {
		ipc["loadBalancerInboundNatPools"] = refs(natPoolIDs)
	}
	np := map[string]any{"networkInterfaceConfigurations": []any{map[string]any{
		"name": prefix + "Nic",
		"properties": map[string]any{
			"primary": true,
			"ipConfigurations": []any{map[string]any{
				"name":       prefix + "IPConfig",
				"properties": ipc,
			}},
		},
	}}}
	if probeID != "" {
		np["healthProbe"] = map[string]any{"id": probeID}
	}
	return np
}

func refs(ids []string) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = map[string]any{"id": id}
	}
	return out
}

// CreateVMSS makes what `az vmss create` makes: it finds or creates the
// virtual network and subnet, finds or creates the load balancer (with its
// public IP, pool, NAT pool and, for Standard, LBRule), then PUTs the scale
// set (waiting for it unless noWait). It returns the scale set. o.Location
// must be set (GroupLocation gives az's default).
func (c *Client) CreateVMSS(ctx context.Context, o *VMSSCreate, noWait bool) (any, error) {
	o.defaults()
	over := !o.DisableOverprovision
	subnetID, err := c.vmssSubnet(ctx, o, over)
	if err != nil {
		return nil, err
	}
	poolIDs, natIDs, probeID, err := c.vmssLB(ctx, o, over)
	if err != nil {
		return nil, err
	}
	body, err := o.Body(subnetID, poolIDs, natIDs, probeID)
	if err != nil {
		return nil, err
	}
	return c.Put(ctx, c.ResourcePath(o.RG, typeVMSS, o.Name), ComputeAPIVersion, body, !noWait)
}

// vmssSubnet returns the id of the scale set's subnet: --subnet as an id, or
// the named (or found, or default {name}Subnet) subnet of the named (or
// found, or default {name}VNET) virtual network, which it creates when
// missing.
func (c *Client) vmssSubnet(ctx context.Context, o *VMSSCreate, over bool) (string, error) {
	subnetID := o.Subnet
	if !isID(subnetID) {
		vnet, subnet := o.VNetName, o.Subnet
		if vnet == "" && subnet == "" {
			var err error
			if vnet, subnet, err = findSubnet(ctx, c, o.RG, o.Location, o.InstanceCount, over); err != nil {
				return "", err
			}
		}
		if vnet == "" {
			vnet = o.Name + "VNET"
		}
		if subnet == "" {
			subnet = o.Name + "Subnet"
		}
		vnetPath := c.ResourcePath(o.RG, typeVNet, vnet)
		v, err := c.Get(ctx, vnetPath, NetworkAPIVersion)
		switch {
		case isNotFound(err):
			sp := o.SubnetAddressPrefix
			if sp == "" {
				if sp, err = defaultSubnetPrefix(o.VNetAddressPrefix, o.InstanceCount, over); err != nil {
					return "", err
				}
			}
			body := vnetBody(o.Location, []string{o.VNetAddressPrefix}, subnet, []string{sp}, nil)
			if _, err := c.Put(ctx, vnetPath, NetworkAPIVersion, body, true); err != nil {
				return "", err
			}
		case err != nil:
			return "", err
		default:
			if findNamed(list(props(v.(map[string]any)), "subnets"), subnet) < 0 {
				sp := o.SubnetAddressPrefix
				if sp == "" {
					return "", usagef("subnet '%s' does not exist in virtual network '%s': give --subnet-address-prefix to create it", subnet, vnet)
				}
				if _, err := c.Put(ctx, vnetPath+"/subnets/"+url.PathEscape(subnet), NetworkAPIVersion, subnetBody("", []string{sp}), true); err != nil {
					return "", err
				}
			}
		}
		subnetID = vnetPath + "/subnets/" + subnet
	}
	return subnetID, nil
}

// vmssLB finds or creates the scale set's load balancer (none with
// o.LBNone) and returns the ids of its backend pools, NAT pools and health
// probe.
func (c *Client) vmssLB(ctx context.Context, o *VMSSCreate, over bool) (poolIDs, natIDs []string, probeID string, err error) {
	if o.LBNone {
		if o.HealthProbe != "" && !isID(o.HealthProbe) {
			return nil, nil, "", usagef("usage error: --health-probe must be a probe ID when --lb is \"\"")
		}
		return nil, nil, o.HealthProbe, nil
	}
	lbName := o.LB
	if lbName == "" {
		lbName = o.Name + "LB"
	}
	lbPath := c.ResourcePath(o.RG, typeLB, lbName)
	v, err := c.Get(ctx, lbPath, NetworkAPIVersion)
	switch {
	case isNotFound(err):
		if poolIDs, natIDs, err = c.createVMSSLB(ctx, o, lbName, lbPath, over); err != nil {
			return nil, nil, "", err
		}
	case err != nil:
		return nil, nil, "", err
	default:
		lp := props(v.(map[string]any))
		pool, err := pickChild(lp, resource.CollBackendAddressPools, o.BackendPoolName, "backend-pool-name", true)
		if err != nil {
			return nil, nil, "", err
		}
		poolIDs = []string{resource.ChildID(lbPath, resource.CollBackendAddressPools, pool)}
		nat, err := pickChild(lp, resource.CollInboundNatPools, o.NatPoolName, "nat-pool-name", false)
		if err != nil {
			return nil, nil, "", err
		}
		if nat != "" {
			natIDs = []string{resource.ChildID(lbPath, resource.CollInboundNatPools, nat)}
		}
	}
	if o.HealthProbe != "" {
		probeID = o.HealthProbe
		if !isID(probeID) {
			probeID = resource.ChildID(lbPath, resource.CollProbes, o.HealthProbe)
		}
	}
	return poolIDs, natIDs, probeID, nil
}

// createVMSSLB creates the load balancer lbName of a new scale set (and its
// public IP unless it exists) and returns its pool and NAT pool ids.
func (c *Client) createVMSSLB(ctx context.Context, o *VMSSCreate, lbName, lbPath string, over bool) (poolIDs, natIDs []string, err error) {
	sku, err := choice("lb-sku", o.LBSku, "Basic", "Standard")
	if err != nil {
		return nil, nil, err
	}
	pip := o.PublicIP
	if pip == "" {
		pip = lbName + "PublicIP"
	}
	pipPath := c.ResourcePath(o.RG, typePIP, pip)
	if _, err := c.Get(ctx, pipPath, NetworkAPIVersion); isNotFound(err) {
		body, err := publicIPBody(o.Location, sku, o.PublicIPAllocation, "IPv4", "", 4, nil, nil)
		if err != nil {
			return nil, nil, err
		}
		if _, err := c.Put(ctx, pipPath, NetworkAPIVersion, body, true); err != nil {
			return nil, nil, err
		}
	} else if err != nil {
		return nil, nil, err
	}
	pool := o.BackendPoolName
	if pool == "" {
		pool = lbName + "BEPool"
	}
	nat := o.NatPoolName
	if nat == "" {
		nat = lbName + "NatPool"
	}
	body := NewLBBody(lbPath, o.Location, sku, pipPath, pool, nat, o.BackendPort, o.InstanceCount, over)
	if _, err := c.Put(ctx, lbPath, NetworkAPIVersion, body, true); err != nil {
		return nil, nil, err
	}
	return []string{resource.ChildID(lbPath, resource.CollBackendAddressPools, pool)}, []string{resource.ChildID(lbPath, resource.CollInboundNatPools, nat)}, nil
}

// pickChild returns the named child of an existing LB, or its only one.
func pickChild(lp map[string]any, coll, name, flag string, required bool) (string, error) {
	l := list(lp, coll)
	if name != "" {
		if i := findNamed(l, name); i >= 0 {
			n, _ := field(l[i], "name").(string)
			return n, nil
		}
		return "", fmt.Errorf("%s '%s' not found in the load balancer", coll, name)
	}
	switch len(l) {
	case 0:
		if required {
			return "", fmt.Errorf("the load balancer has no %s", coll)
		}
		return "", nil
	case 1:
		n, _ := field(l[0], "name").(string)
		return n, nil
	}
	return "", fmt.Errorf("the load balancer has several %s (%s): use --%s", coll, strings.Join(names(l), ", "), flag)
}

// findSubnet is az's search for an existing subnet: the first subnet (not
// GatewaySubnet) of a virtual network in the group and location with room
// for the instances; "" when there is none.
func findSubnet(ctx context.Context, c *Client, rg, loc string, count int, over bool) (string, string, error) {
	vnets, err := c.List(ctx, c.GroupPath(rg)+"/providers/"+typeVNet, NetworkAPIVersion)
	if err != nil {
		return "", "", err
	}
	for _, v := range vnets {
		if l, _ := field(v, "location").(string); !strings.EqualFold(l, loc) {
			continue
		}
		for _, s := range list(props(v.(map[string]any)), "subnets") {
			sn, _ := field(s, "name").(string)
			if strings.EqualFold(sn, "GatewaySubnet") {
				continue
			}
			prefix, _ := field(field(s, "properties"), "addressPrefix").(string)
			if prefix == "" {
				if ps, _ := field(field(s, "properties"), "addressPrefixes").([]any); len(ps) > 0 {
					prefix, _ = ps[0].(string)
				}
			}
			_, m, ok := strings.Cut(prefix, "/")
			var mask int
			if _, err := fmt.Sscan(m, &mask); !ok || err != nil {
				continue
			}
			if subnetFits(mask, count, over) {
				vn, _ := field(v, "name").(string)
				return vn, sn, nil
			}
		}
	}
	return "", "", nil
}

// vmssTable is az's table for scale set lists.
func vmssTable(v any) []Row {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var rows []Row
	for _, it := range items {
		var zones []string
		for _, z := range asList(field(it, "zones")) {
			zones = append(zones, cellText(z))
		}
		rows = append(rows, Row{
			{"Name", field(it, "name")},
			{"ResourceGroup", field(it, "resourceGroup")},
			{"Location", field(it, "location")},
			{"Zones", strings.Join(zones, ",")},
			{"Capacity", field(field(it, "sku"), "capacity")},
			{"Overprovision", field(it, "overprovision")},
			{"UpgradePolicy", field(field(it, "upgradePolicy"), "mode")},
		})
	}
	return rows
}

func asList(v any) []any {
	l, _ := v.([]any)
	return l
}

func defaultAdmin() string {
	if u, err := user.Current(); err == nil && u.Username != "" && u.Username != "root" {
		return u.Username
	}
	return "azureuser"
}

// NewVMSSCmd returns `nimbus vmss` and its verbs.
func NewVMSSCmd() *cobra.Command {
	cmd := group("vmss", "Manage groupings of virtual machines in a scale set")
	g := addGlobals(cmd)
	cmd.AddCommand(newVMSSCreateCmd(g), newVMSSShowCmd(g), newVMSSListCmd(g), newVMSSUpdateCmd(g), newVMSSScaleCmd(g),
		newVMSSListInstancesCmd(g), newVMSSConnectionInfoCmd(g), newVMSSInstanceViewCmd(g))
	cmd.AddCommand(actionCmds(g)...)
	cmd.AddCommand(newVMSSDeleteCmd(g))
	return finalize(cmd)
}

// newVMSSCreateCmd returns `vmss create`: the network, load balancer and
// scale set az makes.
func newVMSSCreateCmd(g *globals) *cobra.Command {
	o := &VMSSCreate{}
	var lb string
	var noWait bool
	create := leaf("create", "Create a scale set", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name", "image"); err != nil {
			return err
		}
		if flagSet(e.cmd, "load-balancer") && (lb == "" || strings.EqualFold(lb, "none") || lb == `""` || lb == "''") {
			o.LBNone = true
		} else {
			o.LB = lb
		}
		if _, err := imageReference(o.Image); err != nil {
			return err
		}
		if o.InstanceCount < 0 {
			return usagef("argument --instance-count: must be 0 or more")
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		if o.Location, err = e.location(c, o.RG, o.Location); err != nil {
			return err
		}
		v, err := c.CreateVMSS(e.ctx, o, noWait)
		if err != nil || noWait {
			return err
		}
		return e.Print(map[string]any{"vmss": field(v, "properties")}, nil)
	})
	vmssCreateFlags(create, o, &lb)
	addNoWait(create, &noWait)
	return create
}

// newVMSSShowCmd returns `vmss show`: a scale set or one instance.
func newVMSSShowCmd(g *globals) *cobra.Command {
	var srg, sname, sinst string
	show := leaf("show", "Get a scale set, or one of its instances", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := c.ResourcePath(srg, typeVMSS, sname)
		if sinst != "" {
			path += "/virtualMachines/" + url.PathEscape(sinst)
		}
		v, err := c.Get(e.ctx, path, ComputeAPIVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, nil)
	})
	addRGName(show, &srg, &sname, "name of the scale set")
	show.Flags().StringVar(&sinst, "instance-id", "", "an instance ID")
	return show
}

// newVMSSListCmd returns `vmss list`: the scale sets of a group or of the
// subscription.
func newVMSSListCmd(g *globals) *cobra.Command {
	var lrg string
	lst := leaf("list", "List scale sets", g, func(e *env) error {
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := "/subscriptions/" + url.PathEscape(c.Subscription) + "/providers/" + typeVMSS
		if lrg != "" {
			path = c.GroupPath(lrg) + "/providers/" + typeVMSS
		}
		v, err := c.List(e.ctx, path, ComputeAPIVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, vmssTable)
	})
	lst.Flags().StringVarP(&lrg, "resource-group", "g", "", "name of resource group (default: all groups)")
	return lst
}

// newVMSSUpdateCmd returns `vmss update`: az's generic update.
func newVMSSUpdateCmd(g *globals) *cobra.Command {
	var urg, uname string
	var uNoWait bool
	update := &cobra.Command{Use: "update", Short: "Update a scale set (generic update: --set, --add, --remove)"}
	ga := addGeneric(update)
	update.RunE = verb(g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		return genericUpdate(e, c, c.ResourcePath(urg, typeVMSS, uname), ComputeAPIVersion, ga, uNoWait, nil)
	})
	addRGName(update, &urg, &uname, "name of the scale set")
	addNoWait(update, &uNoWait)
	return update
}

// newVMSSScaleCmd returns `vmss scale`: a new sku.capacity.
func newVMSSScaleCmd(g *globals) *cobra.Command {
	var crg, cname string
	var capacity int
	var cNoWait bool
	scale := leaf("scale", "Change the number of instances", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name", "new-capacity"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := c.ResourcePath(crg, typeVMSS, cname)
		v, err := c.Get(e.ctx, path, ComputeAPIVersion)
		if err != nil {
			return err
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("scale set %s: unexpected response", cname)
		}
		sku, _ := m["sku"].(map[string]any)
		if sku == nil {
			sku = map[string]any{}
			m["sku"] = sku
		}
		sku["capacity"] = capacity
		out, err := c.Put(e.ctx, path, ComputeAPIVersion, m, !cNoWait)
		if err != nil || cNoWait {
			return err
		}
		return e.PrintResource(out, nil)
	})
	addRGName(scale, &crg, &cname, "name of the scale set")
	scale.Flags().IntVar(&capacity, "new-capacity", 0, "number of instances")
	addNoWait(scale, &cNoWait)
	return scale
}

// newVMSSListInstancesCmd returns `vmss list-instances`.
func newVMSSListInstancesCmd(g *globals) *cobra.Command {
	var irg, iname string
	instances := leaf("list-instances", "List the instances of a scale set", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.List(e.ctx, c.ResourcePath(irg, typeVMSS, iname)+"/virtualMachines", ComputeAPIVersion)
		if err != nil {
			return err
		}
		return e.PrintResource(v, nil)
	})
	addRGName(instances, &irg, &iname, "name of the scale set")
	return instances
}

// newVMSSConnectionInfoCmd returns `vmss list-instance-connection-info`.
func newVMSSConnectionInfoCmd(g *globals) *cobra.Command {
	var nrg, nname string
	conn := leaf("list-instance-connection-info", "Get the public IP address and port of each instance's NAT rule", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.ConnectionInfo(e.ctx, nrg, nname)
		if err != nil {
			return err
		}
		return e.Print(v, nil)
	})
	addRGName(conn, &nrg, &nname, "name of the scale set")
	return conn
}

// newVMSSInstanceViewCmd returns `vmss get-instance-view`.
func newVMSSInstanceViewCmd(g *globals) *cobra.Command {
	var vrg, vname, vinst string
	view := leaf("get-instance-view", "View an instance of a scale set, or the set", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		base := c.ResourcePath(vrg, typeVMSS, vname)
		var v any
		switch vinst {
		case "":
			v, err = c.Get(e.ctx, base+"/instanceView", ComputeAPIVersion)
		case "*":
			var vms []any
			vms, err = c.List(e.ctx, base+"/virtualMachines?$expand=instanceView", ComputeAPIVersion)
			out := []any{}
			for _, vm := range vms {
				iv := field(vm, "instanceView")
				if iv == nil {
					iv = field(field(vm, "properties"), "instanceView")
				}
				out = append(out, iv)
			}
			v = out
		default:
			v, err = c.Get(e.ctx, base+"/virtualMachines/"+url.PathEscape(vinst)+"/instanceView", ComputeAPIVersion)
		}
		if err != nil {
			return err
		}
		return e.PrintResource(v, nil)
	})
	addRGName(view, &vrg, &vname, "name of the scale set")
	view.Flags().StringVar(&vinst, "instance-id", "", "an instance ID, or * for all")
	return view
}

// newVMSSDeleteCmd returns `vmss delete`.
func newVMSSDeleteCmd(g *globals) *cobra.Command {
	var drg, dname string
	var dNoWait, force bool
	del := leaf("delete", "Delete a scale set", g, func(e *env) error {
		if err := need(e.cmd, "resource-group", "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		path := c.ResourcePath(drg, typeVMSS, dname)
		if force {
			path += "?forceDeletion=true"
		}
		return c.Delete(e.ctx, path, ComputeAPIVersion, !dNoWait)
	})
	addRGName(del, &drg, &dname, "name of the scale set")
	del.Flags().BoolVar(&force, "force-deletion", false, "force the deletion")
	addNoWait(del, &dNoWait)
	return del
}

// vmssCreateFlags registers the flags of `vmss create` (az's names and
// defaults) into o; --load-balancer/--lb goes to lb.
func vmssCreateFlags(create *cobra.Command, o *VMSSCreate, lb *string) {
	f := create.Flags()
	addRGName(create, &o.RG, &o.Name, "name of the scale set")
	f.StringVarP(&o.Location, "location", "l", "", "location (default: the resource group's)")
	f.StringVar(&o.Image, "image", "", "image URN publisher:offer:sku:version (nimbus:workloads:echo:latest), alias (echo, script) or ID")
	f.IntVar(&o.InstanceCount, "instance-count", 2, "number of instances")
	f.StringVar(&o.VMSku, "vm-sku", "Standard_DS1_v2", "size of the instances")
	f.BoolVar(&o.DisableOverprovision, "disable-overprovision", false, "overprovision is on by default; disable it")
	f.StringVar(&o.UpgradePolicyMode, "upgrade-policy-mode", "Manual", "Automatic, Manual or Rolling")
	f.StringVar(&o.OrchestrationMode, "orchestration-mode", "Uniform", "Uniform or Flexible")
	f.StringVar(&o.AdminUsername, "admin-username", defaultAdmin(), "username of the instances")
	f.StringVar(&o.AdminPassword, "admin-password", "", "password of the instances")
	wordsVar(create, &o.SSHKeys, "ssh-key-values", "", "space-separated SSH public keys or files")
	f.Bool("generate-ssh-keys", false, "accepted for az compatibility (nimbus instances need no key)")
	f.String("authentication-type", "ssh", "accepted for az compatibility: ssh, password, all")
	f.StringVar(&o.CustomData, "custom-data", "", "custom init script file (or text), base64-encoded into osProfile.customData")
	f.StringVar(&o.ComputerNamePrefix, "computer-name-prefix", "", "computer name prefix of the instances (default: the first 8 letters and digits of the name)")
	f.StringVar(&o.VNetName, "vnet-name", "", "name of the virtual network (default: an existing one with room, else {name}VNET)")
	f.StringVar(&o.Subnet, "subnet", "", "name or ID of the subnet (default: {name}Subnet)")
	f.StringVar(&o.VNetAddressPrefix, "vnet-address-prefix", "10.0.0.0/16", "address prefix of a new virtual network")
	f.StringVar(&o.SubnetAddressPrefix, "subnet-address-prefix", "", "address prefix of a new subnet (default: the smallest /24…/16 with room)")
	f.StringVar(lb, "load-balancer", "", `name or ID of the load balancer, created if it does not exist (default {name}LB); "" for none`)
	alias(create, "lb", "load-balancer")
	f.StringVar(&o.LBSku, "lb-sku", "Standard", "SKU of a new load balancer: Basic, Standard")
	f.StringVar(&o.BackendPoolName, "backend-pool-name", "", "backend pool (default {lb}BEPool, or the existing LB's only pool)")
	f.StringVar(&o.NatPoolName, "nat-pool-name", "", "inbound NAT pool (default {lb}NatPool, or the existing LB's only pool)")
	f.IntVar(&o.BackendPort, "backend-port", 22, "backend port of the new NAT pool")
	f.StringVar(&o.PublicIP, "public-ip-address", "", "public IP of a new load balancer (default {lb}PublicIP)")
	f.StringVar(&o.PublicIPAllocation, "public-ip-address-allocation", "", "allocation of a new public IP: Static, Dynamic")
	f.StringVar(&o.HealthProbe, "health-probe", "", "name or ID of a load balancer probe used as the scale set's health probe")
	f.StringVar(&o.SinglePlacementGroup, "single-placement-group", "", "true or false")
	wordsVar(create, &o.Tags, "tags", "", "space-separated tags: key[=value]")
}

// actionCmds are the POST verbs taking --instance-ids: start, stop
// (poweroff), restart, deallocate, reimage, update-instances (manualupgrade),
// delete-instances (delete).
func actionCmds(g *globals) []*cobra.Command {
	type action struct {
		use, short, op string
		required       bool // --instance-ids required (no default "*")
	}
	actions := []action{
		{"start", "Start instances", "start", false},
		{"stop", "Power off (stop) instances", "poweroff", false},
		{"restart", "Restart instances", "restart", false},
		{"deallocate", "Deallocate instances", "deallocate", false},
		{"reimage", "Reimage instances", "reimage", false},
		{"update-instances", "Upgrade instances to the latest scale set model", "manualupgrade", true},
		{"delete-instances", "Delete instances from a scale set", "delete", true},
	}
	var out []*cobra.Command
	for _, a := range actions {
		var rg, name string
		var ids []string
		var noWait, skipShutdown, force bool
		c := leaf(a.use, a.short, g, func(e *env) error {
			req := []string{"resource-group", "name"}
			if a.required {
				req = append(req, "instance-ids")
			}
			if err := need(e.cmd, req...); err != nil {
				return err
			}
			c, err := e.Client()
			if err != nil {
				return err
			}
			path := c.ResourcePath(rg, typeVMSS, name) + "/" + a.op
			q := url.Values{}
			if skipShutdown {
				q.Set("skipShutdown", "true")
			}
			if force {
				q.Set("forceDeletion", "true")
			}
			if len(q) > 0 {
				path += "?" + q.Encode()
			}
			_, err = c.Post(e.ctx, path, ComputeAPIVersion, InstanceIDsBody(ids), !noWait)
			return err
		})
		addRGName(c, &rg, &name, "name of the scale set")
		wordsVar(c, &ids, "instance-ids", "", "space-separated instance IDs, or * for all (default *)")
		addNoWait(c, &noWait)
		switch a.op {
		case "poweroff":
			c.Flags().BoolVar(&skipShutdown, "skip-shutdown", false, "power off without a graceful shutdown")
		case "delete":
			c.Flags().BoolVar(&force, "force-deletion", false, "force the deletion")
		}
		out = append(out, c)
	}
	return out
}

// natLBRef finds, in a scale set, the primary NIC, its IP configuration
// that uses a NAT pool (else the first with a backend pool) and that pool's
// id.
func natLBRef(vmss any) (nic, ipc any, lbRef string, err error) {
	nics := asList(field(field(field(field(vmss, "properties"), "virtualMachineProfile"), "networkProfile"), "networkInterfaceConfigurations"))
	for _, n := range nics {
		if p, _ := field(field(n, "properties"), "primary").(bool); p || len(nics) == 1 {
			nic = n
			break
		}
	}
	if nic == nil {
		return nil, nil, "", fmt.Errorf("could not find a primary NIC which is needed to search to load balancer")
	}
	for _, i := range asList(field(field(nic, "properties"), "ipConfigurations")) {
		if len(asList(field(field(i, "properties"), "loadBalancerInboundNatPools"))) > 0 {
			ipc = i
			break
		}
	}
	if ipc != nil {
		lbRef, _ = field(asList(field(field(ipc, "properties"), "loadBalancerInboundNatPools"))[0], "id").(string)
	} else {
		for _, i := range asList(field(field(nic, "properties"), "ipConfigurations")) {
			if ps := asList(field(field(i, "properties"), "loadBalancerBackendAddressPools")); len(ps) > 0 {
				ipc = i
				lbRef, _ = field(ps[0], "id").(string)
				break
			}
		}
	}
	if ipc == nil || lbRef == "" {
		return nil, nil, "", fmt.Errorf("No load balancer exists to retrieve public IP address")
	}
	return nic, ipc, lbRef, nil
}

// poolNATEndpoints adds to out, for each instance of the scale set, the
// frontend ip:port of its pool-wide (v2) NAT rule, from the port mappings
// of backend pool poolName of lbID for the instance's nic/ipc.
func (c *Client) poolNATEndpoints(ctx context.Context, vmssPath, vmssID, lbID, poolName string, nic, ipc any, ip string, out map[string]any) error {
	vms, err := c.List(ctx, vmssPath+"/virtualMachines", ComputeAPIVersion)
	if err != nil {
		return err
	}
	nicName, _ := field(nic, "name").(string)
	ipcName, _ := field(ipc, "name").(string)
	ids := make([]string, 0, len(vms))
	for _, vm := range vms {
		if id, _ := field(vm, "instanceId").(string); id != "" {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	for _, id := range ids {
		cfg := vmssID + "/virtualMachines/" + id + "/networkInterfaces/" + nicName + "/ipConfigurations/" + ipcName
		res, err := c.Post(ctx, lbID+"/backendAddressPools/"+url.PathEscape(poolName)+"/queryInboundNatRulePortMapping",
			NetworkAPIVersion, map[string]any{"ipConfiguration": map[string]any{"id": cfg}}, true)
		if err != nil {
			return err
		}
		for _, m := range asList(field(res, "inboundNatRulePortMappings")) {
			out["instance "+id] = fmt.Sprintf("%s:%s", ip, cellText(field(m, "frontendPort")))
			break
		}
	}
	return nil
}

// InstanceIDsBody is the body of the instance actions: {"instanceIds":
// ids}, with ["*"] (all) when ids is empty, as az sends.
func InstanceIDsBody(ids []string) map[string]any {
	if len(ids) == 0 {
		ids = []string{"*"}
	}
	return map[string]any{"instanceIds": toAny(ids)}
}

// ConnectionInfo answers `vmss list-instance-connection-info`: for each
// instance, "instance N" → "frontendIP:port" of its inbound NAT rule, from
// the NAT rules a NAT pool generated ({pool}.{n}, backendIPConfiguration)
// or, for pool-wide (v2) NAT rules, from the backend pool's port mappings.
func (c *Client) ConnectionInfo(ctx context.Context, rg, name string) (map[string]any, error) {
	vmssPath := c.ResourcePath(rg, typeVMSS, name)
	v, err := c.Get(ctx, vmssPath, ComputeAPIVersion)
	if err != nil {
		return nil, err
	}
	vmssID, _ := field(v, "id").(string)
	if vmssID == "" {
		vmssID = vmssPath
	}
	nic, ipc, lbRef, err := natLBRef(v)
	if err != nil {
		return nil, err
	}
	lbID := lbRef
	if i := strings.Index(strings.ToLower(lbRef), "/inboundnatpools/"); i >= 0 {
		lbID = lbRef[:i]
	}
	if i := strings.Index(strings.ToLower(lbRef), "/backendaddresspools/"); i >= 0 {
		lbID = lbRef[:i]
	}
	lb, err := c.Get(ctx, lbID, NetworkAPIVersion)
	if err != nil {
		return nil, err
	}
	lp := field(lb, "properties")
	fes := asList(field(lp, resource.CollFrontendIPConfigurations))
	if len(fes) == 0 {
		return nil, fmt.Errorf("load balancer %s has no frontend IP configuration", lastSegment(lbID))
	}
	pipID, _ := field(field(field(fes[0], "properties"), "publicIPAddress"), "id").(string)
	if pipID == "" {
		return nil, fmt.Errorf("The VM scale-set uses an internal load balancer, hence no connection information")
	}
	pip, err := c.Get(ctx, pipID, NetworkAPIVersion)
	if err != nil {
		return nil, err
	}
	ip, _ := field(field(pip, "properties"), "ipAddress").(string)
	out := map[string]any{}
	marker := "/virtualmachinescalesets/" + strings.ToLower(lastSegment(vmssID)) + "/virtualmachines/"
	v1 := false
	for _, r := range asList(field(lp, resource.CollInboundNatRules)) {
		rp := field(r, "properties")
		bid, _ := field(field(rp, "backendIPConfiguration"), "id").(string)
		i := strings.Index(strings.ToLower(bid), marker)
		if i < 0 {
			continue
		}
		v1 = true
		inst := bid[i+len(marker):]
		inst, _, _ = strings.Cut(inst, "/")
		out["instance "+inst] = fmt.Sprintf("%s:%s", ip, cellText(field(rp, "frontendPort")))
	}
	if v1 {
		return out, nil
	}
	// Pool-wide (v2) NAT rules: ask the backend pool for each instance's mapping.
	poolName := lastSegment(lbRef)
	if strings.Contains(strings.ToLower(lbRef), "/inboundnatpools/") {
		return out, nil
	}
	if err := c.poolNATEndpoints(ctx, vmssPath, vmssID, lbID, poolName, nic, ipc, ip, out); err != nil {
		return nil, err
	}
	return out, nil
}
