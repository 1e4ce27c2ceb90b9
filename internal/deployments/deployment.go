package deployments

// Template deployments: Microsoft.Resources/deployments at resource-group
// scope. A PUT validates the template (internal/template) at once — a bad
// template is a 400 and nothing is stored or created — then stores the
// deployment as Accepted and runs it in the background as a long-running
// operation: every resource is put through this server's own handlers
// (deploymentEnv), so it gets the same validation as a direct PUT. The
// deployment record keeps the state, outputs, error and one operation per
// resource, served by GET …/deployments/{name}/operations.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/template"
)

// DeploymentType is the resource type of template deployments.
const DeploymentType = "Microsoft.Resources/deployments"

// Deployment provisioning states.
const (
	deployAccepted  = "Accepted"
	deployRunning   = "Running"
	deploySucceeded = "Succeeded"
	deployFailed    = "Failed"
	deployCanceled  = "Canceled"
)

// deploymentRequest is the body of PUT, validate and whatIf.
type deploymentRequest struct {
	Location   string            `json:"location,omitempty"`
	Tags       map[string]string `json:"tags,omitempty"`
	Properties *struct {
		Template       json.RawMessage `json:"template"`
		TemplateLink   json.RawMessage `json:"templateLink"`
		Parameters     json.RawMessage `json:"parameters"`
		ParametersLink json.RawMessage `json:"parametersLink"`
		Mode           string          `json:"mode"`
	} `json:"properties"`
}

// deployment is a deployment as clients see it (DeploymentExtended).
type deployment struct {
	ID         string               `json:"id"`
	Name       string               `json:"name"`
	Type       string               `json:"type"`
	Location   string               `json:"location,omitempty"`
	Tags       map[string]string    `json:"tags,omitempty"`
	Properties deploymentProperties `json:"properties"`
}

type deploymentProperties struct {
	TemplateHash       string                             `json:"templateHash"`
	Parameters         map[string]template.ParameterValue `json:"parameters"`
	Mode               string                             `json:"mode"`
	ProvisioningState  string                             `json:"provisioningState"`
	Timestamp          time.Time                          `json:"timestamp"`
	Duration           string                             `json:"duration"`
	CorrelationID      string                             `json:"correlationId"`
	Providers          []deploymentProvider               `json:"providers"`
	Dependencies       []deploymentDependency             `json:"dependencies"`
	Outputs            map[string]template.Output         `json:"outputs,omitempty"`
	OutputResources    []resource.SubResource             `json:"outputResources,omitempty"`
	ValidatedResources []resource.SubResource             `json:"validatedResources,omitempty"`
	Error              *arm.ErrorBody                     `json:"error,omitempty"`
}

type deploymentProvider struct {
	Namespace     string                   `json:"namespace"`
	ResourceTypes []deploymentProviderType `json:"resourceTypes"`
}

type deploymentProviderType struct {
	ResourceType string   `json:"resourceType"`
	Locations    []string `json:"locations"`
}

type deploymentDependency struct {
	ID           string                `json:"id"`
	ResourceType string                `json:"resourceType"`
	ResourceName string                `json:"resourceName"`
	DependsOn    []deploymentDependsOn `json:"dependsOn"`
}

type deploymentDependsOn struct {
	ID           string `json:"id"`
	ResourceType string `json:"resourceType"`
	ResourceName string `json:"resourceName"`
}

// storedDeployment is the store value of a deployment.
type storedDeployment struct {
	Deployment deployment           `json:"deployment"`
	Template   json.RawMessage      `json:"template"`
	Operations []template.Operation `json:"operations"`
	// OperationIDs are the Operations' ids (not part of their JSON).
	OperationIDs []string `json:"operationIds"`
	// Op is the long-running operation of the PUT.
	Op arm.Op `json:"op"`
	// Started is when the run started.
	Started time.Time `json:"started"`
}

func deploymentID(r *arm.Request) resource.ID {
	return resource.NewID(r.Param("sub"), r.Param("rg"), DeploymentType, r.Param("name"))
}

// deploymentName is ARM's rule for deployment names.
var deploymentName = regexp.MustCompile(`^[-\w\._\(\)]+$`)

func validateDeploymentName(name string) error {
	if len(name) > 64 {
		return resource.BadRequest("DeploymentNameLengthLimitExceeded",
			"The provided deployment name '%s' has a length of '%d' which exceeds the maximum length of '64'. Please see https://aka.ms/arm-deploy for usage details.", name, len(name))
	}
	if !deploymentName.MatchString(name) {
		return resource.BadRequest("DeploymentNameInvalidCharacters",
			"The provided deployment name '%s' has these invalid characters: '%s'. The name can only be a letter, digit, '-', '.', '(', ')' or '_'. Please see https://aka.ms/arm-deploy for usage details.", name, invalidChars(name))
	}
	return nil
}

func invalidChars(name string) string {
	var b strings.Builder
	for _, c := range name {
		if !deploymentName.MatchString(string(c)) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// runKey identifies a running deployment of one server.
type runKey struct {
	s  *server
	id string // lower-case deployment id
}

// deploymentRuns holds the cancel function of every deployment running in
// this process.
var deploymentRuns sync.Map // runKey → context.CancelFunc

func (s *server) runningDeployment(id resource.ID) (context.CancelFunc, bool) {
	v, ok := deploymentRuns.Load(runKey{s, strings.ToLower(id.String())})
	if !ok {
		return nil, false
	}
	return v.(context.CancelFunc), true
}

// templateError converts the engine's error to the server's.
func templateError(err error) error {
	var te *template.Error
	if !errors.As(err, &te) {
		return err
	}
	return toResourceError(te)
}

func toResourceError(te *template.Error) *resource.Error {
	e := &resource.Error{Status: te.StatusCode, Code: te.Code, Message: te.Message, Target: te.Target}
	if e.Status == 0 {
		e.Status = http.StatusBadRequest
	}
	for _, d := range te.Details {
		e.Details = append(e.Details, toResourceError(d))
	}
	return e
}

// decodeDeploymentRequest reads and checks a deployment body.
func decodeDeploymentRequest(r *arm.Request) (*deploymentRequest, error) {
	var req deploymentRequest
	// ARM reads deployment bodies leniently, and az relies on it (an
	// unquoted "template" key, comments in template files).
	body, err := template.StandardJSON(r.Body)
	if err != nil {
		return nil, resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: %v.", err)
	}
	if err := arm.DecodeBody(body, &req); err != nil {
		return nil, err
	}
	p := req.Properties
	if p == nil {
		return nil, resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: the 'properties' of the deployment are required.")
	}
	if len(p.TemplateLink) > 0 && string(p.TemplateLink) != "null" {
		return nil, resource.BadRequest("InvalidTemplateDeployment", "The deployment uses 'templateLink'; nimbus fetches nothing from the network. Send the template inline in 'properties.template'.")
	}
	if len(p.ParametersLink) > 0 && string(p.ParametersLink) != "null" {
		return nil, resource.BadRequest("InvalidTemplateDeployment", "The deployment uses 'parametersLink'; nimbus fetches nothing from the network. Send the parameters inline in 'properties.parameters'.")
	}
	if len(p.Template) == 0 || string(p.Template) == "null" {
		return nil, resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: 'properties.template' is required.")
	}
	// A template sent as a JSON string holds the template's text.
	var text string
	if json.Unmarshal(p.Template, &text) == nil {
		std, err := template.StandardJSON([]byte(text))
		if err != nil {
			return nil, resource.BadRequest("InvalidTemplate", "The template text could not be read: %v.", err)
		}
		p.Template = std
	}
	switch {
	case p.Mode == "", strings.EqualFold(p.Mode, "Incremental"):
		p.Mode = "Incremental"
	case strings.EqualFold(p.Mode, "Complete"):
		return nil, resource.BadRequest("InvalidDeploymentMode", "The deployment mode 'Complete' is not supported by nimbus; use 'Incremental'.")
	default:
		return nil, resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: the deployment mode '%s' is not one of 'Incremental', 'Complete'.", p.Mode)
	}
	return &req, nil
}

// deploymentScope is the template scope of a deployment in group rg.
// rg "" is a subscription-scope deployment at location.
func (s *server) deploymentScope(ctx context.Context, sub, rg, name, location string) (template.Scope, error) {
	sc := template.Scope{TenantID: s.Identity().TenantID, SubscriptionID: sub, DeploymentName: name}
	if rg == "" {
		if err := s.requireDeploymentParent(ctx, sub, ""); err != nil {
			return sc, err
		}
		if location == "" {
			return sc, resource.BadRequest("LocationRequired", "The location property is required for a subscription-scope deployment.")
		}
		sc.Location = arm.NormalizeLocation(location)
		if !slices.Contains(arm.Locations, sc.Location) {
			return sc, resource.BadRequest("LocationNotAvailableForDeployment",
				"The provided location '%s' is not available for deployment. List of available regions is '%s'.",
				sc.Location, strings.Join(arm.Locations, ","))
		}
	} else {
		g, _, err := s.LoadGroup(ctx, resource.GroupID(sub, rg))
		if err != nil {
			return sc, err
		}
		sc.ResourceGroup, sc.Location, sc.ResourceGroupTags = g.Name, g.Location, g.Tags
	}
	if kv, err := s.Store().Get(ctx, resource.Key(resource.SubscriptionID(sub))); err == nil {
		var subRec resource.Subscription
		if json.Unmarshal(kv.Value, &subRec) == nil {
			sc.SubscriptionDisplayName = subRec.DisplayName
			if subRec.TenantID != "" {
				sc.TenantID = subRec.TenantID
			}
		}
	}
	return sc, nil
}

// planDeployment validates a deployment request into a plan.
func (s *server) planDeployment(ctx context.Context, r *arm.Request, req *deploymentRequest, env *deploymentEnv) (*template.Plan, template.Scope, error) {
	sub, rg, name := r.Param("sub"), r.Param("rg"), r.Param("name")
	if err := validateDeploymentName(name); err != nil {
		return nil, template.Scope{}, err
	}
	sc, err := s.deploymentScope(ctx, sub, rg, name, req.Location)
	if err != nil {
		return nil, sc, err
	}
	sc.ResourceManagerEndpoint = r.BaseURL()
	plan, err := template.Validate(ctx, template.Input{
		Template:   req.Properties.Template,
		Parameters: req.Properties.Parameters,
		Scope:      sc,
		Now:        s.Now(),
	}, env)
	if err != nil {
		return nil, sc, templateError(err)
	}
	if err := s.preflight(ctx, sub, name, plan); err != nil {
		return nil, sc, err
	}
	return plan, sc, nil
}

// preflight checks, before anything is created, that nimbus serves every
// resource type of the plan at the apiVersion the template asks for, as
// ARM's preflight validation does: a top-level type through its provider's
// registration, a child type ("virtualMachineScaleSets/extensions") through
// a route for its PUT. A type nimbus does not serve passes when its
// resource group stores unserved types (arm.Server.StoresUnserved): it is
// then stored without behaviour.
func (s *server) preflight(ctx context.Context, sub, name string, plan *template.Plan) error {
	var details []*resource.Error
	for _, p := range plan.Resources() {
		segs := strings.Split(p.Type, "/")
		if len(segs) < 2 || strings.EqualFold(p.Type, DeploymentType) {
			continue
		}
		if len(segs) > 2 {
			if s.Serves(http.MethodPut, p.ID) {
				continue
			}
			if rg := groupOf(p.ID); rg != "" && s.StoresUnserved(ctx, sub, rg) {
				continue
			}
			e := resource.BadRequest("InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s' for api version '%s': nimbus does not serve it.", strings.Join(segs[1:], "/"), segs[0], p.APIVersion)
			e.Target = p.ID
			details = append(details, e)
			continue
		}
		var versions arm.Versions
		if strings.EqualFold(p.Type, template.ResourceGroupType) {
			versions = arm.ResourcesVersions
		} else if prov := s.Provider(sub, segs[0]); prov != nil {
			for _, rt := range prov.ResourceTypes {
				if strings.EqualFold(rt.ResourceType, segs[1]) {
					versions = rt.APIVersions
				}
			}
		}
		switch {
		case versions == nil:
			if rg := groupOf(p.ID); rg != "" && s.StoresUnserved(ctx, sub, rg) {
				continue
			}
			e := resource.BadRequest("InvalidResourceType", "The resource type '%s' could not be found in the namespace '%s' for api version '%s': nimbus does not serve it.", segs[1], segs[0], p.APIVersion)
			e.Target = p.ID
			details = append(details, e)
		case !versions.Has(p.APIVersion):
			e := resource.BadRequest("NoRegisteredProviderFound", "No registered resource provider found for location '%s' and API version '%s' for type '%s'. The supported api-versions are '%s'.", p.Location, p.APIVersion, segs[1], strings.Join(versions, ", "))
			e.Target = p.ID
			details = append(details, e)
		}
	}
	if len(details) == 0 {
		return nil
	}
	return &resource.Error{Status: http.StatusBadRequest, Code: "InvalidTemplateDeployment", Details: details,
		Message: fmt.Sprintf("The template deployment '%s' is not valid according to the validation procedure. See inner errors for details.", name)}
}

// groupOf returns the resource group of a resource-group-scoped id, or "".
func groupOf(id string) string {
	parts := strings.Split(strings.Trim(id, "/"), "/")
	if len(parts) >= 4 && strings.EqualFold(parts[0], "subscriptions") && strings.EqualFold(parts[2], "resourceGroups") {
		return parts[3]
	}
	return ""
}

// newDeployment builds the record of a validated deployment.
func (s *server) newDeployment(r *arm.Request, req *deploymentRequest, plan *template.Plan, state string) deployment {
	id := deploymentID(r)
	corr := r.HTTP.Header.Get("x-ms-correlation-request-id")
	if corr == "" {
		corr = uuid.NewString()
	}
	h := fnv.New64a()
	_, _ = h.Write(req.Properties.Template)
	d := deployment{
		ID:       id.String(),
		Name:     r.Param("name"),
		Type:     DeploymentType,
		Location: arm.NormalizeLocation(req.Location),
		Tags:     req.Tags,
		Properties: deploymentProperties{
			TemplateHash:      strconv.FormatUint(h.Sum64(), 10),
			Parameters:        plan.Parameters(),
			Mode:              req.Properties.Mode,
			ProvisioningState: state,
			Timestamp:         s.Now().UTC(),
			Duration:          "PT0S",
			CorrelationID:     corr,
		},
	}
	planned := plan.Resources()
	byID := map[string]template.PlannedResource{}
	for _, p := range planned {
		byID[strings.ToLower(p.ID)] = p
	}
	provs := map[string]map[string]map[string]bool{}
	for _, p := range planned {
		ns, typ, _ := strings.Cut(p.Type, "/")
		if provs[ns] == nil {
			provs[ns] = map[string]map[string]bool{}
		}
		if provs[ns][typ] == nil {
			provs[ns][typ] = map[string]bool{}
		}
		if loc := arm.NormalizeLocation(p.Location); loc != "" {
			provs[ns][typ][loc] = true
		}
		if len(p.DependsOn) > 0 {
			dep := deploymentDependency{ID: p.ID, ResourceType: p.Type, ResourceName: p.Name}
			for _, did := range p.DependsOn {
				o := byID[strings.ToLower(did)]
				dep.DependsOn = append(dep.DependsOn, deploymentDependsOn{ID: o.ID, ResourceType: o.Type, ResourceName: o.Name})
			}
			d.Properties.Dependencies = append(d.Properties.Dependencies, dep)
		}
	}
	for _, ns := range sortedMapKeys(provs) {
		dp := deploymentProvider{Namespace: ns}
		for _, typ := range sortedMapKeys(provs[ns]) {
			dp.ResourceTypes = append(dp.ResourceTypes, deploymentProviderType{ResourceType: typ, Locations: sortedMapKeys(provs[ns][typ])})
		}
		d.Properties.Providers = append(d.Properties.Providers, dp)
	}
	return d
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// requireDeploymentParent checks that the group rg, or the subscription
// when rg is "", exists.
func (s *server) requireDeploymentParent(ctx context.Context, sub, rg string) error {
	if rg != "" {
		return s.RequireGroup(ctx, arm.StoreReader{Store: s.Store()}, sub, rg)
	}
	if _, err := s.Store().Get(ctx, resource.Key(resource.SubscriptionID(sub))); arm.IsNotFound(err) {
		return resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", sub)
	} else if err != nil {
		return err
	}
	return nil
}

// loadDeployment reads a stored deployment; a missing one is 404
// DeploymentNotFound (or ResourceGroupNotFound).
func (s *server) loadDeployment(ctx context.Context, id resource.ID) (*storedDeployment, store.KV, error) {
	// Look at the runs before reading: a run writes its final state before
	// it unregisters, so a record read after a "not running" answer is final.
	_, running := s.runningDeployment(id)
	kv, err := s.Store().Get(ctx, resource.Key(id))
	if arm.IsNotFound(err) {
		if gerr := s.requireDeploymentParent(ctx, id.Subscription, id.ResourceGroup); gerr != nil {
			return nil, kv, gerr
		}
		return nil, kv, resource.NotFound("DeploymentNotFound", "Deployment '%s' could not be found.", id.Name())
	}
	if err != nil {
		return nil, kv, err
	}
	var sd storedDeployment
	if err := json.Unmarshal(kv.Value, &sd); err != nil {
		return nil, kv, fmt.Errorf("arm: decode deployment: %w", err)
	}
	settleInterrupted(&sd, running)
	return &sd, kv, nil
}

// settleInterrupted reports a deployment left Accepted or Running by a
// process that no longer runs it as Failed. running says whether this
// process was running it when the record was read.
func settleInterrupted(sd *storedDeployment, running bool) {
	st := sd.Deployment.Properties.ProvisioningState
	if running || (st != deployAccepted && st != deployRunning) {
		return
	}
	sd.Deployment.Properties.ProvisioningState = deployFailed
	sd.Deployment.Properties.Error = &arm.ErrorBody{Code: "DeploymentInterrupted",
		Message: "The deployment was interrupted by a restart of the service; deploy it again.", Details: []arm.ErrorBody{}}
}

// runningIDs returns the lower-case ids of the deployments this server runs.
func (s *server) runningIDs() map[string]bool {
	out := map[string]bool{}
	deploymentRuns.Range(func(k, _ any) bool {
		if rk := k.(runKey); rk.s == s {
			out[rk.id] = true
		}
		return true
	})
	return out
}

// putDeployment serves PUT …/deployments/{name}.
func (s *server) putDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := deploymentID(r)
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
	d := s.newDeployment(r, req, plan, deployAccepted)
	op := arm.NewOp(id, "global")
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	key := runKey{s, strings.ToLower(id.String())}
	if _, loaded := deploymentRuns.LoadOrStore(key, cancel); loaded {
		cancel()
		return nil, resource.Conflict("DeploymentActive",
			"Unable to edit or replace deployment '%s': previous deployment is still active (state: %s). Please see https://aka.ms/arm-deploy for usage details.", id.Name(), deployRunning)
	}
	started := false
	defer func() {
		if !started {
			deploymentRuns.Delete(key)
			cancel()
		}
	}()
	sd := storedDeployment{Deployment: d, Template: req.Properties.Template, Op: op, Started: s.Now().UTC(), Operations: []template.Operation{}, OperationIDs: []string{}}
	created, rev, err := s.storeNewRun(ctx, id, &sd)
	if err != nil {
		return nil, err
	}
	started = true
	resp := sd.Deployment // the run changes sd from now on
	s.Ops.Go(runCtx, op, func(opCtx context.Context) (any, error) {
		defer deploymentRuns.Delete(key)
		defer cancel()
		// The run ends when it is canceled (runCtx) or the server stops (opCtx).
		stop := context.AfterFunc(opCtx, cancel)
		defer stop()
		return nil, s.runDeployment(runCtx, id, plan, env, &sd, rev)
	})
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	return r.Async(status, &resp, op), nil
}

// storeNewRun stores the deployment record and its InProgress operation in
// one transaction, replacing a finished deployment of the same name.
func (s *server) storeNewRun(ctx context.Context, id resource.ID, sd *storedDeployment) (created bool, rev int64, err error) {
	key := resource.Key(id)
	for attempt := 0; ; attempt++ {
		kv, gerr := s.Store().Get(ctx, key)
		expected := store.MustNotExist
		switch {
		case gerr == nil:
			expected = kv.Revision
		case !arm.IsNotFound(gerr):
			return false, 0, gerr
		}
		tx := arm.NewOpTx(s.Store(), sd.Op)
		if err := tx.PutJSON(key, sd, expected); err != nil {
			return false, 0, err
		}
		rec := arm.OpRecord{Op: sd.Op, ResourceID: id.String(), Status: arm.StatusInProgress, StartTime: sd.Started, InProcess: true}
		if err := tx.PutJSON(arm.OpKey(sd.Op.ID), rec, store.MustNotExist); err != nil {
			return false, 0, err
		}
		rev, err := tx.Commit(ctx, s.Store())
		var ce *store.ConflictError
		if errors.As(err, &ce) && attempt < 5 {
			continue
		}
		if err != nil {
			return false, 0, err
		}
		return gerr != nil, rev, nil
	}
}

// runDeployment runs a plan and records its progress and outcome. The
// returned error finishes the PUT's operation.
func (s *server) runDeployment(ctx context.Context, id resource.ID, plan *template.Plan, env *deploymentEnv, sd *storedDeployment, rev int64) error {
	rec := &deploymentWriter{s: s, id: id, sd: sd, rev: rev}
	rec.update(context.WithoutCancel(ctx), func(sd *storedDeployment) { sd.Deployment.Properties.ProvisioningState = deployRunning })
	outputs, ops, err := plan.Run(ctx, env, func(op template.Operation) {
		rec.progress(context.WithoutCancel(ctx), func(sd *storedDeployment) { sd.setOperation(op) })
	})
	var result error
	rec.update(context.WithoutCancel(ctx), func(sd *storedDeployment) {
		for _, op := range ops {
			sd.setOperation(op)
		}
		p := &sd.Deployment.Properties
		now := s.Now().UTC()
		p.Timestamp = now
		p.Duration = isoDuration(now.Sub(sd.Started))
		var te *template.Error
		switch {
		case err == nil:
			p.ProvisioningState = deploySucceeded
			p.Outputs = outputs
			for _, op := range ops {
				p.OutputResources = append(p.OutputResources, resource.SubResource{ID: op.TargetResource.ID})
			}
		case ctx.Err() != nil:
			p.ProvisioningState = deployCanceled
			e := resource.Conflict("DeploymentCanceled", "The deployment '%s' was canceled.", id.Name())
			b := arm.ToErrorBody(e)
			p.Error = &b
			result = e
		case errors.As(err, &te):
			p.ProvisioningState = deployFailed
			e := toResourceError(te)
			b := arm.ToErrorBody(e)
			p.Error = &b
			result = e
		default:
			p.ProvisioningState = deployFailed
			e := arm.AsARMError(err)
			b := arm.ToErrorBody(e)
			p.Error = &b
			result = err
		}
	})
	return result
}

// setOperation inserts or replaces the record of op.
func (sd *storedDeployment) setOperation(op template.Operation) {
	for i, id := range sd.OperationIDs {
		if id == op.OperationID {
			sd.Operations[i] = op
			return
		}
	}
	sd.OperationIDs = append(sd.OperationIDs, op.OperationID)
	sd.Operations = append(sd.Operations, op)
}

// deploymentWriter writes a running deployment's record. It stops writing
// once the record was deleted or replaced underneath (a group delete).
type deploymentWriter struct {
	s    *server
	id   resource.ID
	mu   sync.Mutex
	sd   *storedDeployment
	rev  int64
	gone bool
	last time.Time // of the last write
}

// progressEvery bounds how often operation progress is written: a record
// holds every operation, so writing it per event would cost O(n²) for n
// resources. The final state is always written.
const progressEvery = 100 * time.Millisecond

// progress applies change and writes the record unless it was written
// less than progressEvery ago.
func (w *deploymentWriter) progress(ctx context.Context, change func(sd *storedDeployment)) {
	w.mu.Lock()
	recent := time.Since(w.last) < progressEvery
	if recent {
		change(w.sd)
	}
	w.mu.Unlock()
	if !recent {
		w.update(ctx, change)
	}
}

func (w *deploymentWriter) update(ctx context.Context, change func(sd *storedDeployment)) {
	w.mu.Lock()
	defer w.mu.Unlock()
	change(w.sd)
	if w.gone {
		return
	}
	b, err := json.Marshal(w.sd)
	if err != nil {
		w.s.Logger().Error("encode deployment", "resource", w.id.String(), "err", err)
		return
	}
	rev, err := w.s.Store().Put(ctx, resource.Key(w.id), b, w.rev)
	if err != nil {
		w.gone = true
		w.s.Logger().Warn("deployment record not updated", "resource", w.id.String(), "err", err)
		return
	}
	w.rev, w.last = rev, time.Now()
}

// isoDuration renders d as ARM does (PT1.2345S).
func isoDuration(d time.Duration) string {
	s := strconv.FormatFloat(d.Seconds(), 'f', 7, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	return "PT" + s + "S"
}

// getDeployment serves GET …/deployments/{name}.
func (s *server) getDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	sd, _, err := s.loadDeployment(ctx, deploymentID(r))
	if err != nil {
		return nil, err
	}
	return arm.JSON(http.StatusOK, &sd.Deployment), nil
}

// headDeployment serves HEAD …/deployments/{name} (CheckExistence).
func (s *server) headDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	_, _, err := s.loadDeployment(ctx, deploymentID(r))
	var re *resource.Error
	if errors.As(err, &re) && re.Status == http.StatusNotFound {
		return arm.NoContent(http.StatusNotFound), nil
	}
	if err != nil {
		return nil, err
	}
	return arm.NoContent(http.StatusNoContent), nil
}

// listDeployments serves GET …/resourceGroups/{rg}/providers/Microsoft.Resources/deployments.
func (s *server) listDeployments(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	sub, rg := r.Param("sub"), r.Param("rg")
	if err := s.requireDeploymentParent(ctx, sub, rg); err != nil {
		return nil, err
	}
	stateFilter := ""
	if f := r.Query("$filter"); f != "" {
		m := regexp.MustCompile(`(?i)^\s*provisioningState\s+eq\s+'([^']*)'\s*$`).FindStringSubmatch(f)
		if m == nil {
			return nil, resource.BadRequest("InvalidFilterInQueryString", "Invalid $filter '%s'. Supported: provisioningState eq '<state>'.", f)
		}
		stateFilter = m[1]
	}
	running := s.runningIDs()
	prefix := resource.TypePrefix(sub, rg, DeploymentType)
	if rg == "" {
		prefix = resource.SubscriptionsPrefix + strings.ToLower(sub) + "/providers/" + strings.ToLower(DeploymentType) + "/"
	}
	kvs, _, err := s.Store().List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	items := []any{}
	for _, kv := range kvs {
		var sd storedDeployment
		if err := json.Unmarshal(kv.Value, &sd); err != nil {
			return nil, fmt.Errorf("arm: decode deployment %s: %w", kv.Key, err)
		}
		settleInterrupted(&sd, running[strings.ToLower(sd.Deployment.ID)])
		if stateFilter != "" && !strings.EqualFold(stateFilter, sd.Deployment.Properties.ProvisioningState) {
			continue
		}
		d := sd.Deployment
		items = append(items, &d)
	}
	if top := r.Query("$top"); top != "" {
		n, err := strconv.Atoi(top)
		if err != nil || n < 0 {
			return nil, resource.BadRequest("InvalidQueryParameterValue", "The value '%s' of $top is not valid.", top)
		}
		if n < len(items) {
			items = items[:n]
		}
	}
	return r.Page(items)
}

// deleteDeployment serves DELETE …/deployments/{name}: the record goes, the
// deployed resources stay (as in ARM).
func (s *server) deleteDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := deploymentID(r)
	if _, running := s.runningDeployment(id); running {
		return nil, resource.Conflict("DeploymentActive",
			"The deployment '%s' is still active; cancel it before deleting it. Please see https://aka.ms/arm-deploy for usage details.", id.Name())
	}
	_, kv, err := s.loadDeployment(ctx, id)
	var re *resource.Error
	if errors.As(err, &re) && re.Code == "DeploymentNotFound" {
		return arm.NoContent(http.StatusNoContent), nil
	}
	if err != nil {
		return nil, err
	}
	op := arm.NewOp(id, "global")
	tx := arm.NewOpTx(s.Store(), op)
	tx.Delete(resource.Key(id), kv.Revision)
	now := s.Now().UTC()
	rec := arm.OpRecord{Op: op, ResourceID: id.String(), Status: arm.StatusInProgress, StartTime: now}
	arm.FinishRecord(&rec, now, nil, nil)
	if err := tx.PutJSON(arm.OpKey(op.ID), rec, store.MustNotExist); err != nil {
		return nil, err
	}
	if _, err := tx.Commit(ctx, s.Store()); err != nil {
		return nil, err
	}
	return r.Accepted(op), nil
}

// cancelDeployment serves POST …/deployments/{name}/cancel.
func (s *server) cancelDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	id := deploymentID(r)
	sd, _, err := s.loadDeployment(ctx, id)
	if err != nil {
		return nil, err
	}
	cancel, running := s.runningDeployment(id)
	if !running {
		return nil, resource.Conflict("DeploymentCannotBeCancelled",
			"The deployment '%s' cannot be canceled: it is in the terminal state '%s'. Please see https://aka.ms/arm-deploy for usage details.", id.Name(), sd.Deployment.Properties.ProvisioningState)
	}
	cancel()
	return arm.NoContent(http.StatusNoContent), nil
}

// validateDeployment serves POST …/deployments/{name}/validate: 200 with
// the would-be deployment, or 400 with the template's error.
func (s *server) validateDeployment(ctx context.Context, r *arm.Request) (*arm.Response, error) {
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
	d := s.newDeployment(r, req, plan, deploySucceeded)
	for _, p := range plan.Resources() {
		d.Properties.ValidatedResources = append(d.Properties.ValidatedResources, resource.SubResource{ID: p.ID})
	}
	return arm.JSON(http.StatusOK, &d), nil
}

// deploymentOperation is one entry of GET …/deployments/{name}/operations.
type deploymentOperation struct {
	ID          string             `json:"id"`
	OperationID string             `json:"operationId"`
	Properties  template.Operation `json:"properties"`
}

func (sd *storedDeployment) operation(i int) deploymentOperation {
	id := sd.OperationIDs[i]
	return deploymentOperation{ID: sd.Deployment.ID + "/operations/" + id, OperationID: id, Properties: sd.Operations[i]}
}

// listDeploymentOperations serves GET …/deployments/{name}/operations.
func (s *server) listDeploymentOperations(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	sd, _, err := s.loadDeployment(ctx, deploymentID(r))
	if err != nil {
		return nil, err
	}
	items := []any{}
	for i := range sd.Operations {
		items = append(items, sd.operation(i))
	}
	return r.Page(items)
}

// getDeploymentOperation serves GET …/deployments/{name}/operations/{op}.
func (s *server) getDeploymentOperation(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	sd, _, err := s.loadDeployment(ctx, deploymentID(r))
	if err != nil {
		return nil, err
	}
	for i, id := range sd.OperationIDs {
		if strings.EqualFold(id, r.Param("op")) {
			return arm.JSON(http.StatusOK, sd.operation(i)), nil
		}
	}
	return nil, resource.NotFound("DeploymentOperationNotFound", "The deployment operation '%s' could not be found.", r.Param("op"))
}

// exportDeploymentTemplate serves POST …/deployments/{name}/exportTemplate.
func (s *server) exportDeploymentTemplate(ctx context.Context, r *arm.Request) (*arm.Response, error) {
	sd, _, err := s.loadDeployment(ctx, deploymentID(r))
	if err != nil {
		return nil, err
	}
	return arm.JSON(http.StatusOK, map[string]any{"template": sd.Template}), nil
}

// registerDeployment registers the routes of deployment.go.
func registerDeployment(s *server) {
	// Resource-group scope, and subscription scope (no {rg}).
	for _, scope := range []string{"/subscriptions/{sub}/resourceGroups/{rg}", "/subscriptions/{sub}"} {
		group := scope + "/providers/" + DeploymentType
		one := group + "/{name}"
		s.Handle(http.MethodPut, one, arm.ResourcesVersions, s.putDeployment)
		s.Handle(http.MethodGet, one, arm.ResourcesVersions, s.getDeployment)
		s.Handle(http.MethodHead, one, arm.ResourcesVersions, s.headDeployment)
		s.Handle(http.MethodDelete, one, arm.ResourcesVersions, s.deleteDeployment)
		s.Handle(http.MethodGet, group, arm.ResourcesVersions, s.listDeployments)
		s.Handle(http.MethodPost, one+"/cancel", arm.ResourcesVersions, s.cancelDeployment)
		s.Handle(http.MethodPost, one+"/validate", arm.ResourcesVersions, s.validateDeployment)
		s.Handle(http.MethodPost, one+"/whatIf", arm.ResourcesVersions, s.whatIfDeployment)
		s.Handle(http.MethodPost, one+"/exportTemplate", arm.ResourcesVersions, s.exportDeploymentTemplate)
		// ARM serves deployment operations without the provider segment
		// (…/resourcegroups/{rg}/deployments/{name}/operations); accept both.
		for _, base := range []string{one, scope + "/deployments/{name}"} {
			s.Handle(http.MethodGet, base+"/operations", arm.ResourcesVersions, s.listDeploymentOperations)
			s.Handle(http.MethodGet, base+"/operations/{op}", arm.ResourcesVersions, s.getDeploymentOperation)
		}
	}
}
