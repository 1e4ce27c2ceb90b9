package network

import (
	"context"
	"net/http"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// DataplaneStatus is an optional power of the server's arm.Runtime, found by
// type assertion: what the data plane made of a load balancer. With it, an
// LB write's operation finishes once the data plane has applied it, Failed
// when a rule of the LB could not be put in force, and GETs show those rules
// on their frontends (frontendIPConfigurations[].properties.
// nimbusDataplaneErrors). Without it (an API served from the store alone)
// LB writes finish at once and GETs show nothing of the kind.
//
// Azure's load balancers have no such state: provisioningState stays
// Succeeded (the LB is stored and nimbus keeps retrying; the rule comes up
// by itself when its port frees up), and the errors clear on their own.
type DataplaneStatus interface {
	// WaitLoadBalancer blocks until the data plane has applied the store
	// as it is at the call (the caller's write is committed) and returns
	// the rules of lbID it could not apply then.
	WaitLoadBalancer(ctx context.Context, lbID string) ([]FrontendError, error)
	// LoadBalancerErrors returns the rules of lbID the data plane could not
	// apply at its last apply (nil when every rule is in force).
	LoadBalancerErrors(lbID string) []FrontendError
}

// FrontendError is one rule the data plane could not put in force, on the
// frontend (frontendIPConfiguration id, any case) it uses.
type FrontendError struct {
	Frontend string
	resource.DataplaneError
}

// dataplane returns the runtime's DataplaneStatus, or nil.
func (s *server) dataplane() DataplaneStatus {
	d, _ := s.Runtime().(DataplaneStatus)
	return d
}

// waitApplied makes the operation of an LB write finish when the data plane
// has applied it: Failed, with the first failed rule's code, when a rule of
// the LB could not be put in force.
func (m lbModel) waitApplied(tx *arm.Tx, lbID string) {
	d := m.s.dataplane()
	if d == nil {
		return
	}
	tx.After(func(ctx context.Context) (any, error) {
		errs, err := d.WaitLoadBalancer(ctx, lbID)
		if err != nil {
			return nil, err
		}
		return nil, applyError(errs)
	})
}

// applyError is the operation error for the failed rules errs (nil when
// there are none): a 409 with the first rule's code and message, every rule
// listed in details.
func applyError(errs []FrontendError) error {
	if len(errs) == 0 {
		return nil
	}
	first := errs[0]
	e := resource.Errorf(http.StatusConflict, first.Code, "%s", first.Message)
	e.Target = first.Target
	for _, f := range errs {
		d := resource.Errorf(http.StatusConflict, f.Code, "%s", f.Message)
		d.Target = f.Target
		e.Details = append(e.Details, d)
	}
	return e
}

// renderDataplaneErrors puts the data plane's current errors for lb on its
// frontends.
func (s *server) renderDataplaneErrors(lb *resource.LoadBalancer) {
	d := s.dataplane()
	if d == nil {
		return
	}
	errs := d.LoadBalancerErrors(lb.ID)
	if len(errs) == 0 {
		return
	}
	fes := lb.Properties.FrontendIPConfigurations
	for i := range fes {
		for _, f := range errs {
			if resource.NormalizeRefID(f.Frontend) == resource.NormalizeRefID(fes[i].ID) {
				fes[i].Properties.NimbusDataplaneErrors = append(fes[i].Properties.NimbusDataplaneErrors, f.DataplaneError)
			}
		}
	}
}

// dropDataplaneErrors removes the read-only data-plane errors a client may
// echo back from a GET: they are rendered, never stored.
func dropDataplaneErrors(lb *resource.LoadBalancer) {
	for i := range lb.Properties.FrontendIPConfigurations {
		lb.Properties.FrontendIPConfigurations[i].Properties.NimbusDataplaneErrors = nil
	}
}
