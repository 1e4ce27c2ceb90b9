package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Env is what the engine needs from the server: the deployment's resources
// are applied, read and described through it. Implementations must be safe
// for concurrent use: Run puts independent resources in parallel.
type Env interface {
	// PutResource creates or updates r and returns when the resource has
	// reached a terminal provisioning state. A failure should be an *Error
	// carrying the resource provider's own code, message and HTTP status.
	PutResource(ctx context.Context, r Resource) (PutResult, error)
	// GetResource reads a resource by id (reference()); the result is the
	// resource's full ARM JSON body.
	GetResource(ctx context.Context, id, apiVersion string) (map[string]any, error)
	// Providers describes a resource type (providers()).
	Providers(ctx context.Context, namespace, resourceType string) (Provider, error)
}

// PutResult is the answer to a PutResource: the HTTP status of the PUT (200
// or 201) and the resource body.
type PutResult struct {
	StatusCode int
	Body       map[string]any
}

// Provider describes a resource type of a resource provider, as providers()
// returns it.
type Provider struct {
	Namespace    string
	ResourceType string
	Locations    []string
	APIVersions  []string
}

// Resource is one resource to put: its ARM id, fully qualified type, full
// name (segments joined by "/"), apiVersion, location, and Body, the PUT
// body with every expression evaluated (location, tags, sku, properties,
// and any other resource field). The template-only fields (type, name,
// apiVersion, dependsOn, condition, copy, resources, comments) are not in
// Body.
type Resource struct {
	ID         string
	Type       string
	Name       string
	APIVersion string
	Location   string
	Body       map[string]any
}

// PlannedResource is a resource of a Plan. Its Body may hold Unknown values
// where it depends on reference(); Path is its position in the template
// ("resources[2]", "resources[1].resources[0]"); DependsOn lists the ids of
// the resources it waits for.
type PlannedResource struct {
	Resource
	Path      string
	DependsOn []string
}

// Input is a deployment to validate: the template and the parameter values
// (the deployment's properties.template and properties.parameters, as JSON),
// the scope, and the time utcNow() reports (zero means now).
type Input struct {
	Template   json.RawMessage
	Parameters json.RawMessage
	Scope      Scope
	Now        time.Time
}

// Plan is a validated deployment, ready to Run. A Plan is immutable; Run
// may be called more than once (each call deploys again).
type Plan struct {
	ev        *evaluator
	instances []*instance // every expanded resource, in template order
	outputs   map[string]any
	defs      map[string]any // user-defined types (languageVersion 2.0 "definitions")
}

// instance is one expanded resource (one iteration of a copy loop).
type instance struct {
	path       string
	decl       map[string]any
	declName   string // the name as the template declares it (a nested child's is relative)
	symbol     string // languageVersion 2.0 symbolic name ("" in array templates)
	loopIndex  int    // the iteration of the resource's copy loop
	existing   bool   // "existing": true — read by reference(), never put
	loops      []loopFrame
	loopName   string
	parent     *instance
	enabled    bool
	typ        string
	name       string
	apiVersion string
	id         string
	dependsOn  []string
	refs       []string
	serialDeps []*instance
	body       map[string]any
	location   string
	deps       []*instance
}

// templateOnly are the resource fields that are not sent to the provider.
var templateOnly = map[string]bool{
	"type": true, "name": true, "apiversion": true, "dependson": true, "condition": true,
	"copy": true, "resources": true, "comments": true, "subscriptionid": true, "resourcegroup": true,
	"existing": true,
}

// Validate checks a deployment and plans it; see the package doc. env is
// used only for providers(). The error is an *Error with code
// InvalidTemplate.
func Validate(ctx context.Context, in Input, env Env) (*Plan, error) {
	std, err := StandardJSON(in.Template)
	if err != nil {
		return nil, invalidTemplate("template", "The template is not valid JSON: %v", err)
	}
	tv, err := decodeJSON(std)
	if err != nil {
		return nil, invalidTemplate("template", "The template is not valid JSON: %v", err)
	}
	tmpl, ok := tv.(map[string]any)
	if !ok {
		return nil, invalidTemplate("template", "The template must be a JSON object")
	}
	var given any
	if len(strings.TrimSpace(string(in.Parameters))) > 0 {
		std, err := StandardJSON(in.Parameters)
		if err == nil {
			given, err = decodeJSON(std)
		}
		if err != nil {
			return nil, invalidTemplate("parameters", "The deployment parameters are not valid JSON: %v", err)
		}
	}
	now := in.Now
	if now.IsZero() {
		now = time.Now()
	}
	ev := &evaluator{
		env:      env,
		scope:    in.Scope,
		now:      now,
		varRaw:   map[string]any{},
		vars:     map[string]any{},
		varState: map[string]int{},
		funcs:    map[string]*userFunc{},
		mu:       &sync.Mutex{},
		parsed:   map[string]node{},
	}
	if err := ev.parseFunctions(tmpl); err != nil {
		return nil, err
	}
	defs, _ := lookupOr(tmpl, "definitions").(map[string]any)
	decls, err := parseParamDecls(lookupOr(tmpl, "parameters"), defs)
	if err != nil {
		return nil, err
	}
	ev.deployment = deploymentObject(in.Scope, tmpl)
	if err := ev.bindParameters(ctx, decls, given); err != nil {
		return nil, err
	}
	if err := ev.bindVariables(ctx, lookupOr(tmpl, "variables")); err != nil {
		return nil, err
	}
	p := &Plan{ev: ev, defs: defs}
	resources := lookupOr(tmpl, "resources")
	switch rs := resources.(type) {
	case nil:
	case []any:
		for i, r := range rs {
			insts, err := p.expand(ctx, r, fmt.Sprintf("resources[%d]", i), nil, nil)
			if err != nil {
				return nil, err
			}
			p.instances = append(p.instances, insts...)
		}
	case map[string]any:
		// languageVersion 2.0: resources keyed by symbolic name.
		for _, sym := range sortedKeys(rs) {
			insts, err := p.expand(ctx, rs[sym], joinPath("resources", sym), nil, nil)
			if err != nil {
				return nil, err
			}
			for _, inst := range insts {
				if inst.parent == nil {
					inst.symbol = sym
				}
			}
			p.instances = append(p.instances, insts...)
		}
	default:
		return nil, invalidTemplate("resources", "The template 'resources' section must be an array (or, with languageVersion 2.0, an object of symbolic names)")
	}
	for _, inst := range p.instances {
		if inst.enabled {
			if err := p.evalInstance(ctx, inst); err != nil {
				return nil, err
			}
		}
	}
	if err := p.resolveDependencies(); err != nil {
		return nil, err
	}
	if err := p.checkCycles(); err != nil {
		return nil, err
	}
	outs := lookupOr(tmpl, "outputs")
	if outs != nil {
		om, ok := outs.(map[string]any)
		if !ok {
			return nil, invalidTemplate("outputs", "The template 'outputs' section must be an object")
		}
		p.outputs = om
		if _, err := p.evalOutputs(ctx, ev); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func lookupOr(m map[string]any, key string) any {
	v, _ := lookupKey(m, key)
	return v
}

// deploymentObject is what deployment() returns.
func deploymentObject(sc Scope, tmpl map[string]any) map[string]any {
	t := map[string]any{}
	for _, k := range []string{"$schema", "contentVersion"} {
		if v, ok := lookupKey(tmpl, k); ok {
			t[k] = v
		}
	}
	return map[string]any{
		"name":     sc.DeploymentName,
		"location": sc.Location,
		"properties": map[string]any{
			"template": t,
			"mode":     "Incremental",
		},
	}
}

// parseFunctions reads the user-defined functions of the "functions" section.
func (e *evaluator) parseFunctions(tmpl map[string]any) error {
	raw, ok := lookupKey(tmpl, "functions")
	if !ok || raw == nil {
		return nil
	}
	list, ok := raw.([]any)
	if !ok {
		return invalidTemplate("functions", "The template 'functions' section must be an array")
	}
	for i, nsRaw := range list {
		path := fmt.Sprintf("functions[%d]", i)
		nsm, _ := nsRaw.(map[string]any)
		ns, _ := lookupOr(nsm, "namespace").(string)
		members, _ := lookupOr(nsm, "members").(map[string]any)
		if ns == "" || members == nil {
			return invalidTemplate(path, "A user-defined function namespace needs a 'namespace' and 'members'")
		}
		for _, name := range sortedKeys(members) {
			mm, _ := members[name].(map[string]any)
			out, _ := lookupOr(mm, "output").(map[string]any)
			val, hasVal := lookupKey(out, "value")
			if !hasVal {
				return invalidTemplate(path+".members."+name, "The user-defined function '%s.%s' needs an output value", ns, name)
			}
			uf := &userFunc{name: ns + "." + name, output: val}
			params, _ := lookupOr(mm, "parameters").([]any)
			for _, pr := range params {
				pm, _ := pr.(map[string]any)
				pn, _ := lookupOr(pm, "name").(string)
				if pn == "" {
					return invalidTemplate(path+".members."+name, "A parameter of the user-defined function '%s.%s' has no name", ns, name)
				}
				uf.params = append(uf.params, pn)
			}
			e.funcs[strings.ToLower(uf.name)] = uf
		}
	}
	return nil
}

// bindVariables records the variable declarations and evaluates them all.
func (e *evaluator) bindVariables(ctx context.Context, raw any) error {
	if raw == nil {
		return nil
	}
	vm, ok := raw.(map[string]any)
	if !ok {
		return invalidTemplate("variables", "The template 'variables' section must be an object")
	}
	for _, k := range sortedKeys(vm) {
		if strings.EqualFold(k, "copy") {
			loops, ok := vm[k].([]any)
			if !ok {
				return invalidTemplate("variables.copy", "The 'copy' of the variables section must be an array")
			}
			for i, l := range loops {
				lm, ok := l.(map[string]any)
				name, _ := lookupOr(lm, "name").(string)
				if !ok || name == "" {
					return invalidTemplate(fmt.Sprintf("variables.copy[%d]", i), "A variable copy loop needs a 'name'")
				}
				e.varRaw[name] = variableCopy{index: i, decl: lm}
			}
			continue
		}
		e.varRaw[k] = vm[k]
	}
	keys := make([]string, 0, len(e.varRaw))
	for k := range e.varRaw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if _, err := e.variable(&site{ctx: ctx, section: "variables"}, k); err != nil {
			return variableFailure(k, err)
		}
	}
	return nil
}

func variableFailure(name string, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	var ve *variableError
	if errors.As(err, &ve) {
		name, err = ve.name, ve.err
	}
	target := "variables." + name
	var pe *pathError
	if errors.As(err, &pe) {
		target = pe.path
	}
	return invalidTemplate(target, "The template variable '%s' is not valid: %s. Please see https://aka.ms/arm-functions for usage details", name, strings.TrimSuffix(innerMessageNoPath(err), "."))
}

// innerMessageNoPath is the message of an evaluation error without paths.
func innerMessageNoPath(err error) string {
	var pe *pathError
	for errors.As(err, &pe) {
		err = pe.err
	}
	var ve *variableError
	if errors.As(err, &ve) {
		return ve.Error()
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Message
	}
	return err.Error()
}

// resourceFailure turns an evaluation error in a resource into InvalidTemplate.
func resourceFailure(name, path string, err error) error {
	var te *Error
	if errors.As(err, &te) {
		return te
	}
	target := path
	var pe *pathError
	if errors.As(err, &pe) {
		target = pe.path
	}
	var ve *variableError
	if errors.As(err, &ve) {
		return variableFailure(ve.name, ve.err)
	}
	return invalidTemplate(target, "The template resource '%s' at '%s' is not valid: %s Please see https://aka.ms/arm-syntax-resources for usage details", name, target, ensureDot(innerMessageNoPath(err)))
}

func ensureDot(s string) string {
	if strings.HasSuffix(s, ".") {
		return s
	}
	return s + "."
}

// evalString evaluates a resource header field that must be a known String.
func (p *Plan) headerString(s *site, decl map[string]any, key, path, resName string, required bool) (string, error) {
	raw, ok := lookupKey(decl, key)
	if !ok || raw == nil {
		if required {
			return "", invalidTemplate(path, "The template resource '%s' at '%s' is not valid: the '%s' property is required", resName, path, key)
		}
		return "", nil
	}
	v, err := p.ev.evalValue(s, raw, joinPath(path, key))
	if err != nil {
		return "", resourceFailure(resName, path, err)
	}
	if isUnknown(v) {
		return "", invalidTemplate(joinPath(path, key), "The template resource '%s' at '%s' is not valid: its '%s' must be known at the start of the deployment; reference() cannot be used in it", resName, path, key)
	}
	str, ok := v.(string)
	if !ok || (required && str == "") {
		return "", invalidTemplate(joinPath(path, key), "The template resource '%s' at '%s' is not valid: its '%s' must be a non-empty String, got %s", resName, path, key, typeName(v))
	}
	return str, nil
}

// expand expands one resource declaration into its instances (copy loop)
// and those of its nested children.
func (p *Plan) expand(ctx context.Context, raw any, path string, parent *instance, loops []loopFrame) ([]*instance, error) {
	decl, ok := raw.(map[string]any)
	if !ok {
		return nil, invalidTemplate(path, "A template resource must be an object")
	}
	rawName := toText(lookupOr(decl, "name"))
	s := &site{ctx: ctx, section: "resources", loops: loops}
	type iteration struct {
		loops []loopFrame
		name  string
		index int
	}
	iterations := []iteration{{loops: loops}}
	serial := 0
	if cp, ok := lookupKey(decl, "copy"); ok && cp != nil {
		cm, ok := cp.(map[string]any)
		if !ok {
			return nil, invalidTemplate(path+".copy", "The template resource '%s' at '%s' is not valid: 'copy' must be an object", rawName, path)
		}
		name, count, err := p.ev.copyHeader(s, cm, path+".copy")
		if err != nil {
			return nil, resourceFailure(rawName, path, err)
		}
		if mode, _ := lookupOr(cm, "mode").(string); strings.EqualFold(mode, "serial") {
			serial = 1
			if bs, ok := lookupKey(cm, "batchSize"); ok {
				bv, err := p.ev.evalValue(s, bs, path+".copy.batchSize")
				if err != nil {
					return nil, resourceFailure(rawName, path, err)
				}
				n, err := asInt(coerceIntString(bv))
				if err != nil || n < 1 {
					return nil, invalidTemplate(path+".copy.batchSize", "The template resource '%s' at '%s' is not valid: the copy batchSize must be a positive Integer", rawName, path)
				}
				serial = int(n)
			}
		} else if mode != "" && !strings.EqualFold(mode, "parallel") {
			return nil, invalidTemplate(path+".copy.mode", "The template resource '%s' at '%s' is not valid: the copy mode must be 'Serial' or 'Parallel', got '%s'", rawName, path, mode)
		}
		iterations = iterations[:0]
		for i := range count {
			iterations = append(iterations, iteration{
				loops: append(append([]loopFrame(nil), loops...), loopFrame{name: name, index: i, resource: true}),
				name:  name,
				index: i,
			})
		}
	}
	var out, loopInsts []*instance
	for _, it := range iterations {
		inst := &instance{path: path, decl: decl, loops: it.loops, loopName: it.name, loopIndex: it.index, parent: parent, enabled: true}
		is := &site{ctx: ctx, section: "resources", loops: it.loops}
		if ex, ok := lookupKey(decl, "existing"); ok {
			b, isBool := ex.(bool)
			if !isBool {
				return nil, invalidTemplate(path+".existing", "The template resource '%s' at '%s' is not valid: 'existing' must be a Boolean", rawName, path)
			}
			inst.existing = b
		}
		if parent != nil && !parent.enabled {
			inst.enabled = false
		}
		if cond, ok := lookupKey(decl, "condition"); ok {
			cv, err := p.ev.evalValue(is, cond, path+".condition")
			if err != nil {
				return nil, resourceFailure(rawName, path, err)
			}
			b, isBool := coerceBoolString(cv).(bool)
			if !isBool {
				return nil, invalidTemplate(path+".condition", "The template resource '%s' at '%s' is not valid: the condition must be a Boolean known at the start of the deployment, got %s", rawName, path, typeName(cv))
			}
			inst.enabled = inst.enabled && b
		}
		typ, err := p.headerString(is, decl, "type", path, rawName, true)
		if err != nil {
			return nil, err
		}
		name, err := p.headerString(is, decl, "name", path, rawName, true)
		if err != nil {
			return nil, err
		}
		if inst.apiVersion, err = p.headerString(is, decl, "apiVersion", path, name, true); err != nil {
			return nil, err
		}
		if err := inst.qualify(typ, name); err != nil {
			return nil, err
		}
		sub, rg := p.ev.scope.SubscriptionID, p.ev.scope.ResourceGroup
		if strings.EqualFold(inst.typ, DeploymentType) {
			// A nested deployment may target another group or subscription.
			if v, err := p.headerString(is, decl, "subscriptionId", path, name, false); err != nil {
				return nil, err
			} else if v != "" {
				sub = v
			}
			if v, err := p.headerString(is, decl, "resourceGroup", path, name, false); err != nil {
				return nil, err
			} else if v != "" {
				rg = v
			}
		}
		inst.id = ResourceID(sub, rg, inst.typ, strings.Split(inst.name, "/"))
		out = append(out, inst)
		loopInsts = append(loopInsts, inst)
		if children, ok := lookupKey(decl, "resources"); ok && children != nil {
			list, ok := children.([]any)
			if !ok {
				return nil, invalidTemplate(path+".resources", "The template resource '%s' at '%s' is not valid: nested 'resources' must be an array", name, path)
			}
			for j, c := range list {
				sub, err := p.expand(ctx, c, fmt.Sprintf("%s.resources[%d]", path, j), inst, inst.loops)
				if err != nil {
					return nil, err
				}
				out = append(out, sub...)
			}
		}
	}
	if serial > 0 {
		var enabled []*instance
		for _, inst := range loopInsts {
			if inst.enabled {
				enabled = append(enabled, inst)
			}
		}
		for i, inst := range enabled {
			batch := i / serial
			if batch == 0 {
				continue
			}
			inst.serialDeps = append(inst.serialDeps, enabled[(batch-1)*serial:batch*serial]...)
		}
	}
	return out, nil
}

// coerceBoolString turns "true"/"false" into a bool.
func coerceBoolString(v any) any {
	if s, ok := v.(string); ok {
		switch strings.ToLower(strings.TrimSpace(s)) {
		case "true":
			return true
		case "false":
			return false
		}
	}
	return v
}

// qualify sets the instance's full type and name from the declared ones,
// prefixing a nested child's relative type and name with its parent's.
func (inst *instance) qualify(typ, name string) error {
	fullType, fullName := typ, name
	inst.declName = name
	if inst.parent != nil {
		firstSeg, _, _ := strings.Cut(typ, "/")
		if !strings.Contains(firstSeg, ".") {
			fullType = inst.parent.typ + "/" + typ
		}
		if strings.Count(name, "/") < strings.Count(fullType, "/")-1 {
			fullName = inst.parent.name + "/" + name
		}
	}
	segs := strings.Split(fullType, "/")
	if len(segs) < 2 || !strings.Contains(segs[0], ".") {
		return invalidTemplate(inst.path+".type", "The template resource '%s' at '%s' is not valid: the resource type '%s' is not a fully qualified type such as 'Microsoft.Network/loadBalancers'", name, inst.path, fullType)
	}
	for _, s := range segs {
		if s == "" {
			return invalidTemplate(inst.path+".type", "The template resource '%s' at '%s' is not valid: the resource type '%s' has an empty segment", name, inst.path, fullType)
		}
	}
	names := strings.Split(fullName, "/")
	if len(names) != len(segs)-1 {
		return invalidTemplate(inst.path+".name", "The template resource '%s' at '%s' is not valid: the resource name '%s' has %d segment(s) but the type '%s' needs %d. Please see https://aka.ms/arm-syntax-resources for usage details", name, inst.path, fullName, len(names), fullType, len(segs)-1)
	}
	for _, n := range names {
		if n == "" {
			return invalidTemplate(inst.path+".name", "The template resource '%s' at '%s' is not valid: the resource name '%s' has an empty segment", name, inst.path, fullName)
		}
	}
	inst.typ, inst.name = fullType, fullName
	return nil
}

// evalInstance evaluates an enabled instance's dependsOn and body in
// validate mode.
func (p *Plan) evalInstance(ctx context.Context, inst *instance) error {
	s := &site{ctx: ctx, section: "resources", loops: inst.loops}
	if dep, ok := lookupKey(inst.decl, "dependsOn"); ok && dep != nil {
		dv, err := p.ev.evalValue(s, dep, inst.path+".dependsOn")
		if err != nil {
			return resourceFailure(inst.name, inst.path, err)
		}
		list, ok := dv.([]any)
		if !ok {
			return invalidTemplate(inst.path+".dependsOn", "The template resource '%s' at '%s' is not valid: 'dependsOn' must be an array", inst.name, inst.path)
		}
		for i, d := range list {
			str, ok := d.(string)
			if !ok || str == "" {
				return invalidTemplate(fmt.Sprintf("%s.dependsOn[%d]", inst.path, i), "The template resource '%s' at '%s' is not valid: a dependsOn entry must be a non-empty String known at the start of the deployment, got %s", inst.name, inst.path, typeName(d))
			}
			inst.dependsOn = append(inst.dependsOn, str)
		}
	}
	var mu sync.Mutex
	s.onReference = func(target string) {
		mu.Lock()
		inst.refs = append(inst.refs, target)
		mu.Unlock()
	}
	body, err := p.evalBody(s, inst)
	if err != nil {
		return err
	}
	inst.body = body
	if loc, ok := body["location"].(string); ok {
		inst.location = loc
	}
	return nil
}

// evalBody evaluates the resource's provider fields.
func (p *Plan) evalBody(s *site, inst *instance) (map[string]any, error) {
	body := map[string]any{}
	for _, k := range sortedKeys(inst.decl) {
		if templateOnly[strings.ToLower(k)] {
			continue
		}
		if strings.EqualFold(k, "properties") && strings.EqualFold(inst.typ, DeploymentType) && innerScope(inst.decl[k]) {
			v, err := p.evalInnerDeployment(s, inst, inst.decl[k].(map[string]any), joinPath(inst.path, k))
			if err != nil {
				return nil, err
			}
			body[k] = v
			continue
		}
		v, err := p.ev.evalValue(s, inst.decl[k], joinPath(inst.path, k))
		if err != nil {
			return nil, resourceFailure(inst.name, inst.path, err)
		}
		body[k] = v
	}
	return body, nil
}

// DeploymentType is the type of a nested deployment. Its inline template is
// evaluated in the parent's context (ARM's default "outer" scope: the
// template's expressions see the parent's parameters and variables), unless
// properties.expressionEvaluationOptions.scope is "inner" (as Bicep modules
// set): then the template is passed on untouched, to be deployed with its
// own parameters, and only the other properties (parameters, mode) are
// evaluated here.
const DeploymentType = "Microsoft.Resources/deployments"

// innerScope reports whether a nested deployment's properties ask for inner
// expression evaluation.
func innerScope(props any) bool {
	m, ok := props.(map[string]any)
	if !ok {
		return false
	}
	opts, _ := lookupOr(m, "expressionEvaluationOptions").(map[string]any)
	scope, _ := lookupOr(opts, "scope").(string)
	return strings.EqualFold(scope, "inner")
}

// evalInnerDeployment evaluates an inner-scope nested deployment's
// properties, leaving its template as written.
func (p *Plan) evalInnerDeployment(s *site, inst *instance, props map[string]any, path string) (map[string]any, error) {
	out := map[string]any{}
	for _, k := range sortedKeys(props) {
		if strings.EqualFold(k, "template") {
			out[k] = deepCopy(props[k])
			continue
		}
		v, err := p.ev.evalValue(s, props[k], joinPath(path, k))
		if err != nil {
			return nil, resourceFailure(inst.name, inst.path, err)
		}
		out[k] = v
	}
	return out, nil
}

// match finds the instances a dependsOn or reference() string names: a
// resource id, "type/name", a resource name, or a copy loop name.
func (p *Plan) match(ref string) []*instance {
	ref = strings.TrimSuffix(ref, "/")
	var out []*instance
	// languageVersion 2.0 symbolic names: "sym", or "sym[i]" for one
	// iteration of a copy loop.
	sym, idx := ref, -1
	if open := strings.IndexByte(ref, '['); open > 0 && strings.HasSuffix(ref, "]") {
		if n, err := strconv.Atoi(ref[open+1 : len(ref)-1]); err == nil {
			sym, idx = ref[:open], n
		}
	}
	for _, inst := range p.instances {
		if inst.symbol != "" && inst.symbol == sym && (idx < 0 || (inst.loopName != "" && inst.loopIndex == idx)) {
			out = append(out, inst)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, inst := range p.instances {
		if strings.EqualFold(ref, inst.id) ||
			strings.EqualFold(ref, inst.typ+"/"+inst.name) ||
			strings.EqualFold(ref, typeNamePath(inst.typ, strings.Split(inst.name, "/"))) ||
			strings.EqualFold(ref, inst.name) ||
			(inst.parent != nil && strings.EqualFold(ref, inst.declName)) {
			out = append(out, inst)
		}
	}
	if len(out) > 0 {
		return out
	}
	for _, inst := range p.instances {
		if inst.loopName != "" && strings.EqualFold(ref, inst.loopName) {
			out = append(out, inst)
		}
	}
	if len(out) > 0 {
		return out
	}
	// A resource group named by subscriptionResourceId():
	// /subscriptions/{s}/providers/Microsoft.Resources/resourceGroups/{name}.
	for _, inst := range p.instances {
		if strings.EqualFold(inst.typ, ResourceGroupType) &&
			strings.EqualFold(ref, "/subscriptions/"+p.ev.scope.SubscriptionID+"/providers/"+ResourceGroupType+"/"+inst.name) {
			out = append(out, inst)
		}
	}
	if len(out) > 0 {
		return out
	}
	// A resource id of this resource group, written with another casing or
	// form of the type.
	if sub, rg, typ, names, ok := parseResourceID(ref); ok {
		id := ResourceID(sub, rg, typ, names)
		for _, inst := range p.instances {
			if strings.EqualFold(id, inst.id) {
				out = append(out, inst)
			}
		}
	}
	return out
}

// resolveDependencies turns dependsOn, reference() targets, parents and
// serial copy batches into instance edges.
func (p *Plan) resolveDependencies() error {
	for _, inst := range p.instances {
		if !inst.enabled {
			continue
		}
		seen := map[*instance]bool{}
		add := func(d *instance) {
			if d.enabled && !d.existing && !seen[d] {
				seen[d] = true
				inst.deps = append(inst.deps, d)
			}
		}
		for i, d := range inst.dependsOn {
			m := p.match(d)
			if len(m) == 0 {
				return invalidTemplate(fmt.Sprintf("%s.dependsOn[%d]", inst.path, i), "The resource '%s' is not defined in the template (it is named in the dependsOn of '%s'). Please see https://aka.ms/arm-syntax-resources for usage details", d, inst.name)
			}
			for _, x := range m {
				if x != inst {
					add(x)
				}
			}
		}
		for _, r := range inst.refs {
			m := p.match(r)
			if len(m) == 0 && !strings.HasPrefix(r, "/") {
				return invalidTemplate(inst.path, "The template resource '%s' at '%s' is not valid: The template function 'reference' refers to the resource '%s', which is not defined in the template", inst.name, inst.path, r)
			}
			for _, x := range m {
				add(x)
			}
		}
		if inst.parent != nil {
			add(inst.parent)
		}
		for _, d := range inst.serialDeps {
			add(d)
		}
	}
	return nil
}

// checkCycles rejects a dependency cycle, naming the resources on it.
func (p *Plan) checkCycles() error {
	const (
		white = iota
		grey
		black
	)
	color := map[*instance]int{}
	var stack []*instance
	var cycle []*instance
	var visit func(n *instance) bool
	visit = func(n *instance) bool {
		color[n] = grey
		stack = append(stack, n)
		for _, d := range n.deps {
			switch color[d] {
			case grey:
				for i, s := range stack {
					if s == d {
						cycle = append(append([]*instance(nil), stack[i:]...), d)
						break
					}
				}
				return true
			case white:
				if visit(d) {
					return true
				}
			}
		}
		stack = stack[:len(stack)-1]
		color[n] = black
		return false
	}
	for _, inst := range p.instances {
		if inst.enabled && color[inst] == white && visit(inst) {
			names := make([]string, len(cycle))
			for i, c := range cycle {
				names[i] = c.typ + "/" + c.name
			}
			return invalidTemplate(cycle[0].path, "Circular dependency detected on resource: '%s'. The cycle is %s. Please see https://aka.ms/arm-syntax-resources for usage details", cycle[0].id, strings.Join(names, " -> "))
		}
	}
	return nil
}

// Resources lists the resources the plan deploys (conditions false left
// out), in template order.
func (p *Plan) Resources() []PlannedResource {
	var out []PlannedResource
	for _, inst := range p.instances {
		if !inst.enabled || inst.existing {
			continue
		}
		pr := PlannedResource{Resource: inst.resource(inst.body), Path: inst.path}
		for _, d := range inst.deps {
			pr.DependsOn = append(pr.DependsOn, d.id)
		}
		out = append(out, pr)
	}
	return out
}

func (inst *instance) resource(body map[string]any) Resource {
	loc, _ := body["location"].(string)
	return Resource{
		ID:         inst.id,
		Type:       inst.typ,
		Name:       inst.name,
		APIVersion: inst.apiVersion,
		Location:   loc,
		Body:       body,
	}
}

// Parameters returns the deployment's parameter values keyed by their
// declared names, as a deployment reports them; secure values are left out.
func (p *Plan) Parameters() map[string]ParameterValue {
	out := map[string]ParameterValue{}
	for key, d := range p.ev.paramDecls {
		pv := ParameterValue{Type: paramTypes[d.typ]}
		if !isSecure(d.typ) {
			pv.Value = p.ev.params[key]
		}
		out[d.name] = pv
	}
	return out
}
