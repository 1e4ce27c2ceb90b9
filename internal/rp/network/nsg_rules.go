package network

import (
	"context"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// This file serves a network security group's rules as child resources,
// as Azure does (az network nsg rule create/update/show/list/delete):
// securityRules (GET, list, PUT, DELETE) and the six built-in
// defaultSecurityRules (GET, list). A rule PUT or DELETE rewrites the whole
// group through the NSG pipeline, so it is validated with the other rules
// (priorities unique per direction, names unique) and committed atomically.

// registerNSGRules adds the security-rule child routes.
func registerNSGRules(s *server) {
	base := "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/networkSecurityGroups/{name}/"
	s.Handle(http.MethodGet, base+"securityRules", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		n, err := s.loadNSG(ctx, r)
		if err != nil {
			return nil, err
		}
		return r.Page(ruleItems(n.Properties.SecurityRules))
	})
	s.Handle(http.MethodGet, base+"securityRules/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.getNSGRule(ctx, r, false)
	})
	s.Handle(http.MethodGet, base+"defaultSecurityRules", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		n, err := s.loadNSG(ctx, r)
		if err != nil {
			return nil, err
		}
		return r.Page(ruleItems(n.Properties.DefaultSecurityRules))
	})
	s.Handle(http.MethodGet, base+"defaultSecurityRules/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
		return s.getNSGRule(ctx, r, true)
	})
	s.Handle(http.MethodPut, base+"securityRules/{child}", Versions, s.putNSGRule)
	s.Handle(http.MethodDelete, base+"securityRules/{child}", Versions, s.deleteNSGRule)
}

func (s *server) nsgKind() *arm.Kind { return s.Kind(resource.NetworkSecurityGroupType) }

func nsgIDOf(r *arm.Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), resource.NetworkSecurityGroupType, r.Param("name"))
}

// loadNSG reads the group of the request, rendered.
func (s *server) loadNSG(ctx context.Context, r *arm.Request) (*resource.NetworkSecurityGroup, error) {
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, s.nsgKind(), nsgIDOf(r))
	if err != nil {
		return nil, err
	}
	if obj, err = s.Render(ctx, s.nsgKind(), obj); err != nil {
		return nil, err
	}
	return obj.(*resource.NetworkSecurityGroup), nil
}

func ruleItems(rules []resource.SecurityRule) []any {
	out := make([]any, 0, len(rules))
	for i := range rules {
		out = append(out, &rules[i])
	}
	return out
}

// findRule returns the index of the rule named name (case-insensitive), or -1.
func findRule(rules []resource.SecurityRule, name string) int {
	for i := range rules {
		if strings.EqualFold(rules[i].Name, name) {
			return i
		}
	}
	return -1
}

func ruleNotFound(r *arm.Request, coll string) error {
	return resource.NotFound("NotFound", "Resource %s/%s/%s not found.", nsgIDOf(r).String(), coll, r.Param("child"))
}

func (s *server) getNSGRule(ctx context.Context, r *arm.Request, builtIn bool) (*arm.Response, error) {
	n, err := s.loadNSG(ctx, r)
	if err != nil {
		return nil, err
	}
	rules, coll := n.Properties.SecurityRules, "securityRules"
	if builtIn {
		rules, coll = n.Properties.DefaultSecurityRules, "defaultSecurityRules"
	}
	i := findRule(rules, r.Param("child"))
	if i < 0 {
		return nil, ruleNotFound(r, coll)
	}
	return arm.JSON(http.StatusOK, &rules[i]), nil
}

// putNSGRule creates or replaces one rule (201 or 200 with the rule, as an
// LRO), with If-Match / If-None-Match on the rule's etag.
func (s *server) putNSGRule(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	name := r.Param("child")
	var rule resource.SecurityRule
	if err := r.Decode(&rule); err != nil {
		return nil, err
	}
	if err := resource.CheckNetworkName(name, 1, resource.MaxNetworkNameLen); err != nil {
		return nil, err
	}
	rule.Name = name
	ifMatch, ifNone := r.HTTP.Header.Get("If-Match"), r.HTTP.Header.Get("If-None-Match")
	id, created := nsgIDOf(r), false
	res, err := s.Apply(ctx, arm.Write{Kind: s.nsgKind(), ID: id,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(id)
			}
			n := old.(*resource.NetworkSecurityGroup)
			rules := n.Properties.SecurityRules
			i := findRule(rules, name)
			etag := ""
			if i >= 0 {
				etag = rules[i].Etag
			}
			if err := arm.CheckPreconditions(ifMatch, ifNone, i >= 0, etag); err != nil {
				return nil, err
			}
			next := rule
			next.ID, next.Etag = "", resource.NewEtag() // a changed rule gets a fresh etag
			created = i < 0
			if created {
				n.Properties.SecurityRules = append(rules, next)
			} else {
				rules[i] = next
			}
			return n, nil
		}})
	if err != nil {
		return nil, err
	}
	out, err := s.Render(ctx, s.nsgKind(), res.Object)
	if err != nil {
		return nil, err
	}
	n := out.(*resource.NetworkSecurityGroup)
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.Async(status, &n.Properties.SecurityRules[findRule(n.Properties.SecurityRules, name)], res.Op), nil
}

// deleteNSGRule removes one rule (202 as an LRO; 204 when there is none).
func (s *server) deleteNSGRule(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	name, id := r.Param("child"), nsgIDOf(r)
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, s.nsgKind(), id)
	if err != nil {
		if e := arm.AsARMError(err); e.Status == http.StatusNotFound && e.Code == "ResourceNotFound" {
			return arm.NoContent(http.StatusNoContent), nil
		}
		return nil, err
	}
	if findRule(obj.(*resource.NetworkSecurityGroup).Properties.SecurityRules, name) < 0 {
		return arm.NoContent(http.StatusNoContent), nil
	}
	ifMatch := r.HTTP.Header.Get("If-Match")
	res, err := s.Apply(ctx, arm.Write{Kind: s.nsgKind(), ID: id,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(id)
			}
			n := old.(*resource.NetworkSecurityGroup)
			i := findRule(n.Properties.SecurityRules, name)
			etag := ""
			if i >= 0 {
				etag = n.Properties.SecurityRules[i].Etag
			}
			if err := arm.CheckPreconditions(ifMatch, "", i >= 0, etag); err != nil {
				return nil, err
			}
			if i >= 0 {
				n.Properties.SecurityRules = append(n.Properties.SecurityRules[:i], n.Properties.SecurityRules[i+1:]...)
			}
			return n, nil
		}})
	if err != nil {
		return nil, err
	}
	return r.Accepted(res.Op), nil
}
