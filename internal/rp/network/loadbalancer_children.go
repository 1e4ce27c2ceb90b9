package network

import (
	"context"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// registerLBChildren adds the LB child endpoints Azure has
// (arm-clients.md §1.2): GET/list for every child collection, PUT/DELETE for
// backendAddressPools and inboundNatRules, the networkInterfaces list, and
// the health and NAT port-mapping actions. inboundNatPools has no endpoint.
func registerLBChildren(s *server, k *arm.Kind) {
	base := "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{name}/"
	for _, coll := range []string{resource.CollFrontendIPConfigurations, resource.CollBackendAddressPools, resource.CollLoadBalancingRules,
		resource.CollProbes, resource.CollInboundNatRules, resource.CollOutboundRules} {
		s.Handle(http.MethodGet, base+coll, Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.listLBChildren(ctx, r, coll)
		})
		s.Handle(http.MethodGet, base+coll+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.getLBChild(ctx, r, coll)
		})
	}
	for _, coll := range []string{resource.CollBackendAddressPools, resource.CollInboundNatRules} {
		s.Handle(http.MethodPut, base+coll+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.putLBChild(ctx, r, coll)
		})
		s.Handle(http.MethodDelete, base+coll+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.deleteLBChild(ctx, r, coll)
		})
	}
	s.Handle(http.MethodGet, base+"networkInterfaces", Versions, s.listLBNICs)
	s.Handle(http.MethodPost, base+"loadBalancingRules/{child}/health", Versions, s.ruleHealth)
	s.Handle(http.MethodPost, base+"backendAddressPools/{child}/queryInboundNatRulePortMapping", Versions, s.queryNatPortMapping)
}

// lbChildren returns the children of one collection (pointers into lb) and their names.
func lbChildren(lb *resource.LoadBalancer, coll string) ([]any, []string) {
	var items []any
	var names []string
	p := &lb.Properties
	switch coll {
	case resource.CollFrontendIPConfigurations:
		for i := range p.FrontendIPConfigurations {
			items, names = append(items, &p.FrontendIPConfigurations[i]), append(names, p.FrontendIPConfigurations[i].Name)
		}
	case resource.CollBackendAddressPools:
		for i := range p.BackendAddressPools {
			items, names = append(items, &p.BackendAddressPools[i]), append(names, p.BackendAddressPools[i].Name)
		}
	case resource.CollLoadBalancingRules:
		for i := range p.LoadBalancingRules {
			items, names = append(items, &p.LoadBalancingRules[i]), append(names, p.LoadBalancingRules[i].Name)
		}
	case resource.CollProbes:
		for i := range p.Probes {
			items, names = append(items, &p.Probes[i]), append(names, p.Probes[i].Name)
		}
	case resource.CollInboundNatRules:
		for i := range p.InboundNatRules {
			items, names = append(items, &p.InboundNatRules[i]), append(names, p.InboundNatRules[i].Name)
		}
	case resource.CollOutboundRules:
		for i := range p.OutboundRules {
			items, names = append(items, &p.OutboundRules[i]), append(names, p.OutboundRules[i].Name)
		}
	}
	return items, names
}

// findLBChild returns the child named name of coll, or nil.
func findLBChild(lb *resource.LoadBalancer, coll, name string) any {
	items, names := lbChildren(lb, coll)
	for i, n := range names {
		if strings.EqualFold(n, name) {
			return items[i]
		}
	}
	return nil
}

func childNotFound(r *arm.Request, coll string) error {
	return resource.NotFound("NotFound", "Resource %s/%s/%s not found.", lbIDOf(r).String(), coll, r.Param("child"))
}

func (s *server) listLBChildren(ctx context.Context, r *arm.Request, coll string) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	items, _ := lbChildren(lb, coll)
	return r.Page(items)
}

func (s *server) getLBChild(ctx context.Context, r *arm.Request, coll string) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	c := findLBChild(lb, coll, r.Param("child"))
	if c == nil {
		return nil, childNotFound(r, coll)
	}
	return arm.JSON(http.StatusOK, c), nil
}

// childEtag returns the etag of a child value.
func childEtag(c any) string {
	switch v := c.(type) {
	case *resource.BackendAddressPool:
		return v.Etag
	case *resource.InboundNatRule:
		return v.Etag
	}
	return ""
}

// putLBChild creates or replaces a backend pool or NAT rule: the stored LB
// with the child replaced goes through the whole LB pipeline (validation,
// etags, atomic write), answered as an LRO with the child.
func (s *server) putLBChild(ctx context.Context, r *arm.Request, coll string) (*arm.Response, error) {
	name := r.Param("child")
	var pool resource.BackendAddressPool
	var rule resource.InboundNatRule
	var body any = &pool
	if coll == resource.CollInboundNatRules {
		body = &rule
	}
	if err := r.Decode(body); err != nil {
		return nil, err
	}
	if err := checkChildName(name); err != nil {
		return nil, err
	}
	pool.Name, rule.Name = name, name
	ifMatch, ifNone := r.HTTP.Header.Get("If-Match"), r.HTTP.Header.Get("If-None-Match")
	created := false
	lbID := lbIDOf(r)
	res, err := s.Apply(ctx, arm.Write{Kind: s.lbKind(), ID: lbID,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(lbID)
			}
			lb := old.(*resource.LoadBalancer)
			cur := findLBChild(lb, coll, name)
			if err := arm.CheckPreconditions(ifMatch, ifNone, cur != nil, childEtag(cur)); err != nil {
				return nil, err
			}
			created = cur == nil
			p := &lb.Properties
			switch coll {
			case resource.CollBackendAddressPools:
				if cur != nil {
					*cur.(*resource.BackendAddressPool) = pool
				} else {
					p.BackendAddressPools = append(p.BackendAddressPools, pool)
				}
			case resource.CollInboundNatRules:
				if cur != nil {
					*cur.(*resource.InboundNatRule) = rule
				} else {
					p.InboundNatRules = append(p.InboundNatRules, rule)
				}
			}
			return lb, nil
		}})
	if err != nil {
		return nil, err
	}
	out, err := s.Render(ctx, s.lbKind(), res.Object)
	if err != nil {
		return nil, err
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.Async(status, findLBChild(out.(*resource.LoadBalancer), coll, name), res.Op), nil
}

func checkChildName(name string) error {
	if name == "" || len(name) > 80 || strings.HasSuffix(name, ".") {
		return resource.InvalidParameter("name", "The child resource name '%s' is invalid: 1-80 characters, not ending with '.'.", name)
	}
	return nil
}

// deleteLBChild removes a backend pool or NAT rule (LRO; 204 when absent).
func (s *server) deleteLBChild(ctx context.Context, r *arm.Request, coll string) (*arm.Response, error) {
	name := r.Param("child")
	lbID := lbIDOf(r)
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, s.lbKind(), lbID)
	if err != nil {
		if e := arm.AsARMError(err); e.Status == http.StatusNotFound && e.Code == "ResourceNotFound" {
			return arm.NoContent(http.StatusNoContent), nil
		}
		return nil, err
	}
	if findLBChild(obj.(*resource.LoadBalancer), coll, name) == nil {
		return arm.NoContent(http.StatusNoContent), nil
	}
	ifMatch := r.HTTP.Header.Get("If-Match")
	res, err := s.Apply(ctx, arm.Write{Kind: s.lbKind(), ID: lbID,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(lbID)
			}
			lb := old.(*resource.LoadBalancer)
			cur := findLBChild(lb, coll, name)
			if err := arm.CheckPreconditions(ifMatch, "", cur != nil, childEtag(cur)); err != nil {
				return nil, err
			}
			p := &lb.Properties
			switch coll {
			case resource.CollBackendAddressPools:
				out := p.BackendAddressPools[:0]
				for _, x := range p.BackendAddressPools {
					if !strings.EqualFold(x.Name, name) {
						out = append(out, x)
					}
				}
				p.BackendAddressPools = out
			case resource.CollInboundNatRules:
				out := p.InboundNatRules[:0]
				for _, x := range p.InboundNatRules {
					if !strings.EqualFold(x.Name, name) {
						out = append(out, x)
					}
				}
				p.InboundNatRules = out
			}
			return lb, nil
		}})
	if err != nil {
		return nil, err
	}
	return r.Accepted(res.Op), nil
}

// nicDoc is the minimal networkInterface shape the LB's networkInterfaces
// list returns for scale-set instance NICs.
type nicDoc struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Type       string `json:"type"`
	Location   string `json:"location,omitempty"`
	Properties struct {
		IPConfigurations  []nicIPConfig `json:"ipConfigurations"`
		ProvisioningState string        `json:"provisioningState"`
	} `json:"properties"`
}

type nicIPConfig struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Properties struct {
		PrivateIPAddress                string                 `json:"privateIPAddress,omitempty"`
		LoadBalancerBackendAddressPools []resource.SubResource `json:"loadBalancerBackendAddressPools"`
		ProvisioningState               string                 `json:"provisioningState"`
	} `json:"properties"`
}

func (s *server) listLBNICs(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	mem, err := s.members.Membership(ctx, arm.StoreReader{Store: s.Store()}, lb.ID)
	if err != nil {
		return nil, err
	}
	var items []any
	byNIC := map[string]*nicDoc{}
	for _, m := range mem.Members {
		nicID, ipcName, _ := strings.Cut(m.IPConfigID, "/ipConfigurations/")
		n := byNIC[nicID]
		if n == nil {
			n = &nicDoc{ID: nicID, Name: nicID[strings.LastIndex(nicID, "/")+1:], Type: "Microsoft.Network/networkInterfaces", Location: lb.Location}
			n.Properties.ProvisioningState = resource.Succeeded
			byNIC[nicID] = n
			items = append(items, n)
		}
		ipc := nicIPConfig{ID: m.IPConfigID, Name: ipcName}
		ipc.Properties.PrivateIPAddress = m.IPAddress
		ipc.Properties.ProvisioningState = resource.Succeeded
		for _, p := range m.Pools {
			if bp := lb.Pool(p); bp != nil {
				ipc.Properties.LoadBalancerBackendAddressPools = append(ipc.Properties.LoadBalancerBackendAddressPools, resource.SubResource{ID: bp.ID})
			}
		}
		n.Properties.IPConfigurations = append(n.Properties.IPConfigurations, ipc)
	}
	return r.Page(items)
}

// ruleHealthBody is LoadBalancerHealthPerRule.
type ruleHealthBody struct {
	Up                           int32           `json:"up"`
	Down                         int32           `json:"down"`
	LoadBalancerBackendAddresses []backendHealth `json:"loadBalancerBackendAddresses"`
}

type backendHealth struct {
	IPAddress                         string `json:"ipAddress,omitempty"`
	NetworkInterfaceIPConfigurationID string `json:"networkInterfaceIPConfigurationId,omitempty"`
	State                             string `json:"state"`
	Reason                            string `json:"reason,omitempty"`
}

// ruleHealth answers POST …/loadBalancingRules/{r}/health: every backend of
// the rule's pools with its probe state (Runtime.BackendHealth). A rule
// without a probe counts every backend as up; without a runtime the state
// is Unknown.
func (s *server) ruleHealth(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	c := findLBChild(lb, resource.CollLoadBalancingRules, r.Param("child"))
	if c == nil {
		return nil, childNotFound(r, resource.CollLoadBalancingRules)
	}
	rule := c.(*resource.LoadBalancingRule)
	mem, err := s.members.Membership(ctx, arm.StoreReader{Store: s.Store()}, lb.ID)
	if err != nil {
		return nil, err
	}
	out := ruleHealthBody{LoadBalancerBackendAddresses: []backendHealth{}}
	pools := rule.RulePools()
	for _, m := range mem.Members {
		in := false
		for _, p := range pools {
			in = in || containsFold(m.Pools, p)
		}
		if !in {
			continue
		}
		h := backendHealth{IPAddress: m.IPAddress, NetworkInterfaceIPConfigurationID: m.IPConfigID}
		switch rt := s.Runtime(); {
		case rule.Properties.Probe == nil:
			h.State, h.Reason = "Up", "No health probe: every backend receives traffic."
		case rt == nil:
			h.State, h.Reason = "Unknown", "No health prober is running."
		default:
			up, known, reason := rt.BackendHealth(rule.Properties.Probe.ID, m.IPConfigID)
			switch {
			case !known:
				h.State = "Unknown"
			case up:
				h.State = "Up"
			default:
				h.State = "Down"
			}
			h.Reason = reason
		}
		switch h.State {
		case "Up":
			out.Up++
		case "Down":
			out.Down++
		}
		out.LoadBalancerBackendAddresses = append(out.LoadBalancerBackendAddresses, h)
	}
	return arm.JSON(http.StatusOK, out), nil
}

func containsFold(list []string, id string) bool {
	for _, x := range list {
		if resource.SameID(x, id) {
			return true
		}
	}
	return false
}

// natMappingQuery is QueryInboundNatRulePortMappingRequest.
type natMappingQuery struct {
	IPAddress       string                `json:"ipAddress"`
	IPConfiguration *resource.SubResource `json:"ipConfiguration"`
}

// queryNatPortMapping answers POST …/backendAddressPools/{p}/queryInboundNatRulePortMapping:
// the frontend ports NAT rules v2 on the pool give the backend named by
// ipConfiguration or ipAddress.
func (s *server) queryNatPortMapping(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	var q natMappingQuery
	if err := r.Decode(&q); err != nil {
		return nil, err
	}
	if q.IPAddress == "" && (q.IPConfiguration == nil || q.IPConfiguration.ID == "") {
		return nil, resource.InvalidParameter("ipConfiguration", "Either ipConfiguration or ipAddress is required.")
	}
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	c := findLBChild(lb, resource.CollBackendAddressPools, r.Param("child"))
	if c == nil {
		return nil, childNotFound(r, resource.CollBackendAddressPools)
	}
	pool := c.(*resource.BackendAddressPool)
	mem, err := s.members.Membership(ctx, arm.StoreReader{Store: s.Store()}, lb.ID)
	if err != nil {
		return nil, err
	}
	out := struct {
		InboundNatRulePortMappings []resource.NatRulePortMapping `json:"inboundNatRulePortMappings"`
	}{InboundNatRulePortMappings: []resource.NatRulePortMapping{}}
	for _, m := range mem.Members {
		if !containsFold(m.Pools, pool.ID) {
			continue
		}
		if q.IPConfiguration != nil && q.IPConfiguration.ID != "" && !resource.SameID(q.IPConfiguration.ID, m.IPConfigID) {
			continue
		}
		if q.IPAddress != "" && q.IPAddress != m.IPAddress {
			continue
		}
		for _, rule := range lb.Properties.InboundNatRules {
			rp := rule.Properties
			if rp.BackendAddressPool == nil || !resource.SameID(rp.BackendAddressPool.ID, pool.ID) {
				continue
			}
			port, ok := m.NATPorts[resource.NormalizeRefID(rule.ID)]
			if !ok {
				continue
			}
			out.InboundNatRulePortMappings = append(out.InboundNatRulePortMappings, resource.NatRulePortMapping{
				InboundNatRuleName: rule.Name, Protocol: rp.Protocol, FrontendPort: int32(port), BackendPort: *rp.BackendPort})
		}
	}
	return arm.JSON(http.StatusOK, out), nil
}
