package network

import (
	"context"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// registerLBChildren adds the LB child endpoints Azure has
// (arm-clients.md §1.2), one set per collection of the model's table
// (resource.LBChildren): GET/list where the collection's API is read-only or
// read-write, PUT/DELETE where it is read-write (backendAddressPools and
// inboundNatRules); the networkInterfaces list; and the health and NAT
// port-mapping actions. inboundNatPools has no endpoint.
func registerLBChildren(s *server, k *arm.Kind) {
	base := "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/loadBalancers/{name}/"
	for _, c := range resource.LBChildren {
		if c.API() == resource.ChildNoAPI {
			continue
		}
		s.Handle(http.MethodGet, base+c.Name(), Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.listLBChildren(ctx, r, c)
		})
		s.Handle(http.MethodGet, base+c.Name()+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.getLBChild(ctx, r, c)
		})
		if c.API() != resource.ChildReadWrite {
			continue
		}
		s.Handle(http.MethodPut, base+c.Name()+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.putLBChild(ctx, r, c)
		})
		s.Handle(http.MethodDelete, base+c.Name()+"/{child}", Versions, func(ctx context.Context, r *arm.Request) (*arm.Response, error) {
			return s.deleteLBChild(ctx, r, c)
		})
	}
	s.Handle(http.MethodGet, base+"networkInterfaces", Versions, s.listLBNICs)
	s.Handle(http.MethodPost, base+"loadBalancingRules/{child}/health", Versions, s.ruleHealth)
	s.Handle(http.MethodPost, base+"backendAddressPools/{child}/queryInboundNatRulePortMapping", Versions, s.queryNatPortMapping)
}

func childNotFound(r *arm.Request, coll string) error {
	return resource.NotFound("NotFound", "Resource %s/%s/%s not found.", lbIDOf(r).String(), coll, r.Param("child"))
}

func (s *server) listLBChildren(ctx context.Context, r *arm.Request, c resource.LBChildCollection) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	return r.Page(c.List(lb))
}

func (s *server) getLBChild(ctx context.Context, r *arm.Request, c resource.LBChildCollection) (*arm.Response, error) {
	lb, err := s.loadLB(ctx, r)
	if err != nil {
		return nil, err
	}
	ch := c.Get(lb, r.Param("child"))
	if ch == nil {
		return nil, childNotFound(r, c.Name())
	}
	return arm.JSON(http.StatusOK, ch), nil
}

// childEtag returns the etag of the child named name of c in lb, and
// whether it exists.
func childEtag(c resource.LBChildCollection, lb *resource.LoadBalancer, name string) (string, bool) {
	i := c.Index(lb, name)
	if i < 0 {
		return "", false
	}
	return c.EtagAt(lb, i), true
}

// putLBChild creates or replaces a child of a read-write collection: the
// stored LB with the child replaced goes through the whole LB pipeline
// (validation, etags, atomic write), answered as an LRO with the child.
func (s *server) putLBChild(ctx context.Context, r *arm.Request, c resource.LBChildCollection) (*arm.Response, error) {
	name := r.Param("child")
	body := c.New()
	if err := r.Decode(body); err != nil {
		return nil, err
	}
	if err := checkChildName(name); err != nil {
		return nil, err
	}
	ifMatch, ifNone := r.HTTP.Header.Get("If-Match"), r.HTTP.Header.Get("If-None-Match")
	created := false
	lbID := lbIDOf(r)
	res, err := s.Apply(ctx, arm.Write{Kind: s.lbKind(), ID: lbID,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(lbID)
			}
			lb := old.(*resource.LoadBalancer)
			etag, exists := childEtag(c, lb, name)
			if err := arm.CheckPreconditions(ifMatch, ifNone, exists, etag); err != nil {
				return nil, err
			}
			var err error
			created, err = c.Set(lb, name, body) // Set copies body: a retried Build starts afresh
			return lb, err
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
	return r.Async(status, c.Get(out.(*resource.LoadBalancer), name), res.Op), nil
}

func checkChildName(name string) error {
	return resource.CheckNetworkName(name, 1, resource.MaxNetworkNameLen)
}

// deleteLBChild removes a child of a read-write collection (LRO; 204 when absent).
func (s *server) deleteLBChild(ctx context.Context, r *arm.Request, c resource.LBChildCollection) (*arm.Response, error) {
	name := r.Param("child")
	lbID := lbIDOf(r)
	obj, _, err := s.Load(ctx, arm.StoreReader{Store: s.Store()}, s.lbKind(), lbID)
	if err != nil {
		if e := arm.AsARMError(err); e.Status == http.StatusNotFound && e.Code == "ResourceNotFound" {
			return arm.NoContent(http.StatusNoContent), nil
		}
		return nil, err
	}
	if c.Get(obj.(*resource.LoadBalancer), name) == nil {
		return arm.NoContent(http.StatusNoContent), nil
	}
	ifMatch := r.HTTP.Header.Get("If-Match")
	res, err := s.Apply(ctx, arm.Write{Kind: s.lbKind(), ID: lbID,
		Build: func(_ context.Context, _ *arm.Tx, old arm.Object) (arm.Object, error) {
			if old == nil {
				return nil, resource.ResourceNotFoundError(lbID)
			}
			lb := old.(*resource.LoadBalancer)
			etag, exists := childEtag(c, lb, name)
			if err := arm.CheckPreconditions(ifMatch, "", exists, etag); err != nil {
				return nil, err
			}
			c.Delete(lb, name)
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
	rule := resource.LBLoadBalancingRules.Find(lb, r.Param("child"))
	if rule == nil {
		return nil, childNotFound(r, resource.CollLoadBalancingRules)
	}
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
	pool := resource.LBBackendAddressPools.Find(lb, r.Param("child"))
	if pool == nil {
		return nil, childNotFound(r, resource.CollBackendAddressPools)
	}
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
