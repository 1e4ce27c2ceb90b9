package cli

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"
)

// Resource types the verbs address.
const (
	typeLB    = "Microsoft.Network/loadBalancers"
	typePIP   = "Microsoft.Network/publicIPAddresses"
	typeVNet  = "Microsoft.Network/virtualNetworks"
	typeVMSS  = "Microsoft.Compute/virtualMachineScaleSets"
	typeGroup = "Microsoft.Resources/resourceGroups"
)

// GroupPath returns /subscriptions/{sub}/resourceGroups/{rg}.
func (c *Client) GroupPath(rg string) string {
	return "/subscriptions/" + url.PathEscape(c.Subscription) + "/resourceGroups/" + url.PathEscape(rg)
}

// ResourcePath returns the ARM path of resource name of type typ (e.g.
// Microsoft.Network/loadBalancers) in group rg. A name that already is an
// ARM id (starts with /subscriptions/) is returned unchanged.
func (c *Client) ResourcePath(rg, typ, name string) string {
	if isID(name) {
		return name
	}
	return c.GroupPath(rg) + "/providers/" + typ + "/" + url.PathEscape(name)
}

func isID(s string) bool { return strings.HasPrefix(strings.ToLower(s), "/subscriptions/") }

// lastSegment returns the name at the end of an ARM id.
func lastSegment(id string) string {
	id = strings.TrimRight(id, "/")
	return id[strings.LastIndex(id, "/")+1:]
}

// GroupLocation returns the location of resource group rg (az's default
// for -l/--location).
func (c *Client) GroupLocation(ctx context.Context, rg string) (string, error) {
	v, err := c.Get(ctx, c.GroupPath(rg), ResourcesAPIVersion)
	if err != nil {
		return "", err
	}
	loc, _ := field(v, "location").(string)
	if loc == "" {
		return "", fmt.Errorf("resource group %s has no location", rg)
	}
	return loc, nil
}

// groupTable is az's table for resource groups: Name, Location, Status.
func groupTable(v any) []Row {
	items, ok := v.([]any)
	if !ok {
		items = []any{v}
	}
	var rows []Row
	for _, it := range items {
		rows = append(rows, Row{
			{"Name", field(it, "name")},
			{"Location", field(it, "location")},
			{"Status", field(field(it, "properties"), "provisioningState")},
		})
	}
	return rows
}

// NewGroupCmd returns `nimbus group`: create, show, list, delete, exists.
func NewGroupCmd() *cobra.Command {
	cmd := group("group", "Manage resource groups")
	g := addGlobals(cmd)
	cmd.AddCommand(newGroupCreateCmd(g), newGroupShowCmd(g), newGroupListCmd(g), newGroupDeleteCmd(g), newGroupExistsCmd(g))
	return finalize(cmd)
}

// newGroupCreateCmd returns `group create`.
func newGroupCreateCmd(g *globals) *cobra.Command {
	var rg, loc string
	var tags []string
	create := leaf("create", "Create a new resource group", g, func(e *env) error {
		if err := need(e.cmd, "name", "location"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		body := map[string]any{"location": loc}
		if len(tags) > 0 {
			body["tags"] = parseTags(tags)
		}
		v, err := c.Put(e.ctx, c.GroupPath(rg), ResourcesAPIVersion, body, true)
		if err != nil {
			return err
		}
		return e.Print(v, groupTable)
	})
	create.Flags().StringVarP(&rg, "name", "n", "", "name of the new resource group")
	create.Flags().StringVarP(&rg, "resource-group", "g", "", "name of the new resource group")
	create.Flags().StringVarP(&loc, "location", "l", "", "location")
	wordsVar(create, &tags, "tags", "", "space-separated tags: key[=value]")
	fixNameAlias(create)
	return create
}

// newGroupShowCmd returns `group show`.
func newGroupShowCmd(g *globals) *cobra.Command {
	var showName string
	show := leaf("show", "Get a resource group", g, func(e *env) error {
		if err := need(e.cmd, "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.Get(e.ctx, c.GroupPath(showName), ResourcesAPIVersion)
		if err != nil {
			return err
		}
		return e.Print(v, groupTable)
	})
	show.Flags().StringVarP(&showName, "name", "n", "", "name of resource group")
	show.Flags().StringVarP(&showName, "resource-group", "g", "", "name of resource group")
	fixNameAlias(show)
	return show
}

// newGroupListCmd returns `group list`.
func newGroupListCmd(g *globals) *cobra.Command {
	list := leaf("list", "List resource groups", g, func(e *env) error {
		c, err := e.Client()
		if err != nil {
			return err
		}
		v, err := c.List(e.ctx, "/subscriptions/"+url.PathEscape(c.Subscription)+"/resourcegroups", ResourcesAPIVersion)
		if err != nil {
			return err
		}
		return e.Print(v, groupTable)
	})
	return list
}

// newGroupDeleteCmd returns `group delete`.
func newGroupDeleteCmd(g *globals) *cobra.Command {
	var delName string
	var yes, noWait bool
	del := leaf("delete", "Delete a resource group and everything in it", g, func(e *env) error {
		if err := need(e.cmd, "name"); err != nil {
			return err
		}
		if err := confirm(e, yes); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		return c.Delete(e.ctx, c.GroupPath(delName), ResourcesAPIVersion, !noWait)
	})
	del.Flags().StringVarP(&delName, "name", "n", "", "name of resource group")
	del.Flags().StringVarP(&delName, "resource-group", "g", "", "name of resource group")
	del.Flags().BoolVarP(&yes, "yes", "y", false, "do not prompt for confirmation")
	addNoWait(del, &noWait)
	fixNameAlias(del)
	return del
}

// newGroupExistsCmd returns `group exists`.
func newGroupExistsCmd(g *globals) *cobra.Command {
	var exName string
	exists := leaf("exists", "Check if a resource group exists", g, func(e *env) error {
		if err := need(e.cmd, "name"); err != nil {
			return err
		}
		c, err := e.Client()
		if err != nil {
			return err
		}
		ok, err := c.Exists(e.ctx, c.GroupPath(exName), ResourcesAPIVersion)
		if err != nil {
			return err
		}
		return e.Print(ok, nil)
	})
	exists.Flags().StringVarP(&exName, "name", "n", "", "name of resource group")
	exists.Flags().StringVarP(&exName, "resource-group", "g", "", "name of resource group")
	fixNameAlias(exists)
	return exists
}

// fixNameAlias makes --resource-group/-g an alias of --name/-n (az's group
// verbs accept both): need() checks "name", so mark it changed when the
// alias was given.
func fixNameAlias(cmd *cobra.Command) {
	prev := cmd.PreRunE
	cmd.PreRunE = func(c *cobra.Command, args []string) error {
		if f := c.Flags().Lookup("resource-group"); f != nil && f.Changed {
			c.Flags().Lookup("name").Changed = true
		}
		if prev != nil {
			return prev(c, args)
		}
		return nil
	}
}

// parseTags parses az's space-separated key[=value] tags.
func parseTags(tags []string) map[string]any {
	m := map[string]any{}
	for _, kv := range tags {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}
