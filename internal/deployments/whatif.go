package deployments

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"nimbus/internal/arm"
	"nimbus/internal/template"
)

// What-if: compare what a deployment would put with what exists. Each
// planned resource is reported as Create (absent), NoChange (every
// property the template sets already has that value) or Modify (with the
// differing properties in delta). Values that depend on reference() are
// shown as their expression and not compared.

// whatIfChange is one entry of a what-if result.
type whatIfChange struct {
	ResourceID string              `json:"resourceId"`
	ChangeType string              `json:"changeType"`
	Before     map[string]any      `json:"before,omitempty"`
	After      map[string]any      `json:"after,omitempty"`
	Delta      []whatIfPropertyDif `json:"delta,omitempty"`
}

// whatIfPropertyDif is one changed property.
type whatIfPropertyDif struct {
	Path               string `json:"path"`
	PropertyChangeType string `json:"propertyChangeType"`
	Before             any    `json:"before,omitempty"`
	After              any    `json:"after,omitempty"`
}

type whatIfResult struct {
	Status     string `json:"status"`
	Properties struct {
		Changes []whatIfChange `json:"changes"`
	} `json:"properties"`
}

// whatIfDeployment serves POST …/deployments/{name}/whatIf as an LRO whose
// result is the list of changes.
func (s *server) whatIfDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	req, err := decodeDeploymentRequest(r)
	if err != nil {
		return nil, err
	}
	env, err := s.newDeploymentEnv(r)
	if err != nil {
		return nil, err
	}
	plan, _, err := s.planDeployment(ctx, r, req, env)
	if err != nil {
		return nil, err
	}
	res := whatIfResult{Status: arm.StatusSucceeded}
	res.Properties.Changes = []whatIfChange{}
	for _, p := range plan.Resources() {
		after := map[string]any{"id": p.ID, "name": p.Name[strings.LastIndex(p.Name, "/")+1:], "type": p.Type, "apiVersion": p.APIVersion}
		for k, v := range p.Body {
			after[k] = v
		}
		cur, err := env.GetResource(ctx, p.ID, p.APIVersion)
		var te *template.Error
		switch {
		case errors.As(err, &te) && te.StatusCode == http.StatusNotFound:
			res.Properties.Changes = append(res.Properties.Changes, whatIfChange{ResourceID: p.ID, ChangeType: "Create", After: after})
			continue
		case err != nil:
			return nil, fmt.Errorf("arm: what-if read %s: %w", p.ID, err)
		}
		var delta []whatIfPropertyDif
		diffValues(p.Body, cur, "", &delta)
		c := whatIfChange{ResourceID: p.ID, ChangeType: "NoChange", Before: cur, After: after}
		if len(delta) > 0 {
			c.ChangeType, c.Delta = "Modify", delta
		}
		res.Properties.Changes = append(res.Properties.Changes, c)
	}
	op, err := s.Ops.Start(ctx, deploymentID(r), "global")
	if err != nil {
		return nil, err
	}
	if err := s.Ops.Finish(ctx, op.ID, res, nil); err != nil {
		return nil, err
	}
	return r.Accepted(op), nil
}

// diffValues records where want (the template's value) differs from have
// (the stored resource). Only what the template sets is compared; read-only
// fields the server adds do not count.
func diffValues(want, have any, path string, out *[]whatIfPropertyDif) {
	switch w := want.(type) {
	case nil, template.Unknown:
		return
	case map[string]any:
		h, _ := have.(map[string]any)
		for _, k := range sortedMapKeys(w) {
			p := k
			if path != "" {
				p = path + "." + k
			}
			hv, found := lookupFold(h, k)
			if !found {
				if w[k] != nil {
					*out = append(*out, whatIfPropertyDif{Path: p, PropertyChangeType: "Create", After: w[k]})
				}
				continue
			}
			diffValues(w[k], hv, p, out)
		}
	case []any:
		h, ok := have.([]any)
		if !ok || len(h) != len(w) {
			*out = append(*out, whatIfPropertyDif{Path: path, PropertyChangeType: "Array", Before: have, After: want})
			return
		}
		var inner []whatIfPropertyDif
		for i := range w {
			diffValues(w[i], h[i], fmt.Sprintf("%s[%d]", path, i), &inner)
		}
		*out = append(*out, inner...)
	default:
		if !scalarEqual(want, have) {
			*out = append(*out, whatIfPropertyDif{Path: path, PropertyChangeType: "Modify", Before: have, After: want})
		}
	}
}

func lookupFold(m map[string]any, key string) (any, bool) {
	if v, ok := m[key]; ok {
		return v, true
	}
	for k, v := range m {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

// scalarEqual compares scalars loosely, as a provider would read them:
// "50000" equals 50000, "East US" equals "eastus", case does not matter.
func scalarEqual(a, b any) bool {
	norm := func(v any) string {
		return strings.ToLower(strings.ReplaceAll(fmt.Sprint(v), " ", ""))
	}
	return norm(a) == norm(b)
}
