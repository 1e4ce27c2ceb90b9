package template

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"
)

// Provisioning states of a deployment operation.
const (
	StateRunning   = "Running"
	StateSucceeded = "Succeeded"
	StateFailed    = "Failed"
)

// Operation is one deployment operation: the put of one resource. Its JSON
// is the "properties" object of ARM's deployment operation.
type Operation struct {
	OperationID           string         `json:"-"`
	ProvisioningOperation string         `json:"provisioningOperation"`
	ProvisioningState     string         `json:"provisioningState"`
	Started               time.Time      `json:"-"`
	Timestamp             time.Time      `json:"timestamp"`
	Duration              string         `json:"duration"`
	StatusCode            string         `json:"statusCode,omitempty"`
	StatusMessage         any            `json:"statusMessage,omitempty"`
	TargetResource        TargetResource `json:"targetResource"`
}

// TargetResource names the resource of an Operation.
type TargetResource struct {
	ID           string `json:"id"`
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
	APIVersion   string `json:"apiVersion,omitempty"`
}

// Output is one deployment output as ARM reports it: Type is ARM's
// capitalized type ("String", "Int", "Bool", "Object", "Array",
// "SecureString", "SecureObject"); Value is nil, and not marshaled, for
// secure types.
type Output struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// MarshalJSON leaves the value out for SecureString and SecureObject.
func (o Output) MarshalJSON() ([]byte, error) { return marshalTypedValue(o.Type, o.Value) }

// Run deploys the plan through env: each resource is put as soon as the
// resources it depends on have succeeded, independent resources in
// parallel. progress, if not nil, is called (never concurrently) whenever an
// operation starts or ends, with a copy of the operation. After the first
// failure no new resource is started; the resources already running finish.
// The error is an *Error with code DeploymentFailed (one detail per failed
// resource, carrying the resource's own error) or
// DeploymentOutputEvaluationFailed, or ctx's error when ctx ended first.
// ops lists one operation per resource that was started, in start order.
func (p *Plan) Run(ctx context.Context, env Env, progress func(Operation)) (outputs map[string]Output, ops []Operation, err error) {
	ev := *p.ev
	ev.env = env
	ev.resolve = func(ctx context.Context, target, apiVersion string, full bool) (any, error) {
		return p.reference(ctx, env, target, apiVersion, full)
	}
	r := &runner{plan: p, ev: &ev, env: env, progress: progress, remaining: map[*instance]int{}, dependents: map[*instance][]*instance{}}
	r.run(ctx)
	ops = r.operations()
	if len(r.failures) > 0 {
		return nil, ops, &Error{
			Code:       CodeDeploymentFailed,
			Message:    "At least one resource deployment operation failed. Please list deployment operations for details. Please see https://aka.ms/arm-deployment-operations for usage details.",
			Details:    r.failures,
			StatusCode: http.StatusConflict,
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, ops, fmt.Errorf("deployment: %w", err)
	}
	outputs, err = p.evalOutputs(ctx, &ev)
	if err != nil {
		return nil, ops, err
	}
	return outputs, ops, nil
}

// reference answers reference() during Run.
func (p *Plan) reference(ctx context.Context, env Env, target, apiVersion string, full bool) (any, error) {
	id := ""
	var enabled []*instance
	for _, inst := range p.match(target) {
		if inst.enabled {
			enabled = append(enabled, inst)
		}
	}
	switch {
	case len(enabled) > 1:
		return nil, errf("The template function 'reference' refers to '%s', which names %d resources of the template; use resourceId().", target, len(enabled))
	case len(enabled) == 1:
		id = enabled[0].id
		if apiVersion == "" {
			apiVersion = enabled[0].apiVersion
		}
	case strings.HasPrefix(target, "/"):
		id = target
	default:
		return nil, errf("The template function 'reference' refers to the resource '%s', which is not defined in the template.", target)
	}
	if apiVersion == "" {
		_, _, typ, _, ok := parseResourceID(id)
		if !ok {
			return nil, errf("The template function 'reference' needs an apiVersion for '%s'.", id)
		}
		ns, rt, _ := strings.Cut(typ, "/")
		prov, err := env.Providers(ctx, ns, rt)
		if err != nil || len(prov.APIVersions) == 0 {
			return nil, errf("The template function 'reference' needs an apiVersion for '%s'.", id)
		}
		apiVersion = prov.APIVersions[0]
	}
	body, err := env.GetResource(ctx, id, apiVersion)
	if err != nil {
		return nil, errf("The template function 'reference' could not read '%s': %v", id, err)
	}
	body = Normalize(body).(map[string]any)
	if full {
		if _, ok := body["apiVersion"]; !ok {
			body["apiVersion"] = apiVersion
		}
		if _, ok := body["resourceId"]; !ok {
			body["resourceId"] = id
		}
		return body, nil
	}
	props, _ := body["properties"].(map[string]any)
	if props == nil {
		props = map[string]any{}
	}
	return props, nil
}

// runner schedules one Run.
type runner struct {
	plan     *Plan
	ev       *evaluator
	env      Env
	progress func(Operation)

	mu         sync.Mutex
	wg         sync.WaitGroup
	stopped    bool
	remaining  map[*instance]int
	dependents map[*instance][]*instance
	ops        []*Operation
	failures   []*Error
	progressMu sync.Mutex
}

func (r *runner) run(ctx context.Context) {
	var ready []*instance
	r.mu.Lock()
	for _, inst := range r.plan.instances {
		if !inst.enabled || inst.existing {
			continue
		}
		r.remaining[inst] = len(inst.deps)
		for _, d := range inst.deps {
			r.dependents[d] = append(r.dependents[d], inst)
		}
		if len(inst.deps) == 0 {
			ready = append(ready, inst)
		}
	}
	for _, inst := range ready {
		r.startLocked(ctx, inst)
	}
	r.mu.Unlock()
	r.wg.Wait()
}

// startLocked starts one resource; r.mu is held.
func (r *runner) startLocked(ctx context.Context, inst *instance) {
	if r.stopped || ctx.Err() != nil {
		return
	}
	now := time.Now()
	op := &Operation{
		OperationID:           operationID(r.ev.scope, inst.id),
		ProvisioningOperation: "Create",
		ProvisioningState:     StateRunning,
		Started:               now,
		Timestamp:             now,
		Duration:              "PT0S",
		TargetResource:        TargetResource{ID: inst.id, ResourceType: inst.typ, ResourceName: inst.name, APIVersion: inst.apiVersion},
	}
	r.ops = append(r.ops, op)
	r.report(*op)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		status, err := r.put(ctx, inst)
		r.mu.Lock()
		defer r.mu.Unlock()
		end := time.Now()
		op.Timestamp = end
		op.Duration = isoDuration(end.Sub(op.Started))
		if err != nil {
			e := resourceError(inst, err)
			if status == 0 {
				status = e.StatusCode
			}
			if status == 0 {
				status = http.StatusBadRequest
			}
			op.ProvisioningState = StateFailed
			op.StatusCode = statusText(status)
			op.StatusMessage = map[string]any{"status": "Failed", "error": e}
			r.failures = append(r.failures, e)
			r.stopped = true
			r.report(*op)
			return
		}
		op.ProvisioningState = StateSucceeded
		op.StatusCode = statusText(status)
		r.report(*op)
		for _, d := range r.dependents[inst] {
			r.remaining[d]--
			if r.remaining[d] == 0 {
				r.startLocked(ctx, d)
			}
		}
	}()
}

// report calls the progress callback outside of concurrent calls.
func (r *runner) report(op Operation) {
	if r.progress == nil {
		return
	}
	r.progressMu.Lock()
	defer r.progressMu.Unlock()
	r.progress(op)
}

// put evaluates a resource against the current state and puts it.
func (r *runner) put(ctx context.Context, inst *instance) (int, error) {
	s := &site{ctx: ctx, section: "resources", loops: inst.loops}
	body, err := r.plan.evalBodyWith(r.ev, s, inst)
	if err != nil {
		return http.StatusBadRequest, err
	}
	res, err := r.env.PutResource(ctx, inst.resource(body))
	if err != nil {
		var te *Error
		if errors.As(err, &te) && te.StatusCode != 0 {
			return te.StatusCode, err
		}
		return 0, err
	}
	if res.StatusCode == 0 {
		return http.StatusOK, nil
	}
	return res.StatusCode, nil
}

// evalBodyWith evaluates a resource's body with the given evaluator.
func (p *Plan) evalBodyWith(ev *evaluator, s *site, inst *instance) (map[string]any, error) {
	q := *p
	q.ev = ev
	return q.evalBody(s, inst)
}

// resourceError is the detail of DeploymentFailed for a failed resource:
// the resource's own code and message, targeted at the resource's id. When
// the resource's error had a target of its own (a property path), the
// original error is kept as the single nested detail.
func resourceError(inst *instance, err error) *Error {
	var te *Error
	if errors.As(err, &te) {
		c := *te
		if c.Target != "" && c.Target != inst.id {
			orig := *te
			c.Details = []*Error{&orig}
		}
		c.Target = inst.id
		return &c
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &Error{Code: "Canceled", Message: fmt.Sprintf("The deployment of '%s' was canceled: %v", inst.id, err), Target: inst.id}
	}
	return &Error{Code: CodeResourceDeploymentFailure, Message: err.Error(), Target: inst.id, StatusCode: http.StatusInternalServerError}
}

func (r *runner) operations() []Operation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Operation, len(r.ops))
	for i, op := range r.ops {
		out[i] = *op
	}
	return out
}

// operationID is a stable id for a resource's operation in a deployment.
func operationID(sc Scope, resourceID string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(sc.ResourceGroupID() + "|" + sc.DeploymentName + "|" + resourceID)))
	return strings.ToUpper(hex.EncodeToString(sum[:8]))
}

// isoDuration renders d as an ISO 8601 duration (PT1.234S).
func isoDuration(d time.Duration) string {
	return fmt.Sprintf("PT%sS", trimFloat(d.Seconds()))
}

func trimFloat(f float64) string {
	s := fmt.Sprintf("%.7f", f)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

var outputTypes = map[string]string{
	"string": "String", "securestring": "SecureString", "int": "Int", "bool": "Bool",
	"object": "Object", "secureobject": "SecureObject", "array": "Array",
}

// evalOutputs evaluates the template's outputs with ev (validate mode when
// ev.resolve is nil).
func (p *Plan) evalOutputs(ctx context.Context, ev *evaluator) (map[string]Output, error) {
	validate := ev.resolve == nil
	out := map[string]Output{}
	names := make([]string, 0, len(p.outputs))
	for k := range p.outputs {
		names = append(names, k)
	}
	sort.Strings(names)
	fail := func(name, target string, err error) error {
		if validate {
			return invalidTemplate(target, "The template output '%s' is not valid: %s Please see https://aka.ms/arm-outputs for usage details", name, ensureDot(innerMessageNoPath(err)))
		}
		return &Error{
			Code:       CodeOutputEvaluationFailed,
			Message:    fmt.Sprintf("Unable to evaluate template outputs: '%s'. Please see error details and deployment operations. Please see https://aka.ms/arm-common-errors for usage details.", name),
			Details:    []*Error{{Code: CodeInvalidTemplate, Message: innerMessageNoPath(err), Target: target}},
			StatusCode: http.StatusBadRequest,
		}
	}
	for _, name := range names {
		path := joinPath("outputs", name)
		decl, ok := p.outputs[name].(map[string]any)
		if !ok {
			return nil, fail(name, path, errf("an output must be an object with 'type' and 'value'"))
		}
		decl, err := resolveRef(decl, p.defs, path)
		if err != nil {
			return nil, err
		}
		s := &site{ctx: ctx, section: "outputs"}
		typRaw, _ := lookupOr(decl, "type").(string)
		typ := strings.ToLower(typRaw)
		armType, known := outputTypes[typ]
		if !known {
			return nil, fail(name, path+".type", errf("the output type '%s' is not one of string, securestring, int, bool, object, secureobject, array", typRaw))
		}
		if cond, ok := lookupKey(decl, "condition"); ok {
			cv, err := ev.evalValue(s, cond, path+".condition")
			if err != nil {
				return nil, fail(name, path+".condition", err)
			}
			if isUnknown(cv) {
				if validate {
					continue
				}
			}
			b, isBool := coerceBoolString(cv).(bool)
			if !isBool {
				return nil, fail(name, path+".condition", errf("the output condition must be a Boolean, got %s", typeName(cv)))
			}
			if !b {
				continue
			}
		}
		var val any
		if cp, ok := lookupKey(decl, "copy"); ok {
			cm, isObj := cp.(map[string]any)
			if !isObj {
				return nil, fail(name, path+".copy", errf("an output copy must be an object with 'count' and 'input'"))
			}
			count, cerr := ev.copyCount(s, cm, path+".copy")
			if cerr != nil {
				return nil, fail(name, path+".copy.count", cerr)
			}
			input, _ := lookupKey(cm, "input")
			arr := make([]any, 0, count)
			for i := range count {
				v, ierr := ev.evalValue(s.withLoop(loopFrame{name: name, index: i, resource: true}), input, path+".copy.input")
				if ierr != nil {
					return nil, fail(name, path+".copy.input", ierr)
				}
				arr = append(arr, v)
			}
			val = arr
		} else {
			raw, has := lookupKey(decl, "value")
			if !has {
				return nil, fail(name, path, errf("the output has no 'value'"))
			}
			val, err = ev.evalValue(s, raw, path+".value")
			if err != nil {
				return nil, fail(name, path+".value", err)
			}
		}
		if !validate || !containsUnknown(val) {
			val, err = checkOutputType(typ, val)
			if err != nil {
				return nil, fail(name, path+".value", err)
			}
		}
		o := Output{Type: armType}
		if !isSecure(typ) {
			o.Value = val
		}
		out[name] = o
	}
	if validate {
		for _, name := range names {
			if err := p.checkOutputRefs(ctx, ev, name); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// checkOutputRefs verifies that reference() calls in an output name
// resources of the template (or ids).
func (p *Plan) checkOutputRefs(ctx context.Context, ev *evaluator, name string) error {
	decl, _ := p.outputs[name].(map[string]any)
	var refs []string
	s := &site{ctx: ctx, section: "outputs", onReference: func(t string) { refs = append(refs, t) }}
	raw, has := lookupKey(decl, "value")
	if !has {
		return nil
	}
	if _, err := ev.evalValue(s, raw, "outputs."+name+".value"); err != nil {
		return nil
	}
	for _, r := range refs {
		if len(p.match(r)) == 0 && !strings.HasPrefix(r, "/") {
			return invalidTemplate("outputs."+name+".value", "The template output '%s' is not valid: The template function 'reference' refers to the resource '%s', which is not defined in the template. Please see https://aka.ms/arm-outputs for usage details", name, r)
		}
	}
	return nil
}

// checkOutputType converts an output value to its declared type.
func checkOutputType(typ string, v any) (any, error) {
	bad := func() (any, error) {
		return nil, errf("the output value of type %s does not match the declared type '%s'", typeName(v), typ)
	}
	switch typ {
	case "string", "securestring":
		switch v.(type) {
		case string:
			return v, nil
		case int64, bool, float64:
			return toText(v), nil
		}
		return bad()
	case "int":
		switch x := coerceIntString(v).(type) {
		case int64:
			return x, nil
		}
		return bad()
	case "bool":
		if b, ok := coerceBoolString(v).(bool); ok {
			return b, nil
		}
		return bad()
	case "object", "secureobject":
		if _, ok := v.(map[string]any); ok {
			return v, nil
		}
		return bad()
	case "array":
		if _, ok := v.([]any); ok {
			return v, nil
		}
		return bad()
	}
	return bad()
}
