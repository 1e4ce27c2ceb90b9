package deployments

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
	"nimbus/internal/template"
)

// deploymentEnv is the template engine's view of this server: a deployment
// puts, reads and describes resources through the server's own routes and
// handlers (ServeHTTP with a token the server minted), so a resource in a
// template gets exactly the validation, defaults and long-running
// operation of a direct PUT. Safe for concurrent use.
type deploymentEnv struct {
	s     *server
	host  string // Host of the deployment request, for the URLs handlers build
	token string
	sub   string
}

var _ template.Env = (*deploymentEnv)(nil)

// deploymentTokenTTL bounds how long a deployment may run.
const deploymentTokenTTL = 6 * time.Hour

func (s *server) newDeploymentEnv(r *arm.Request) (*deploymentEnv, error) {
	tok, _, err := s.Tokens().Mint("", deploymentTokenTTL)
	if err != nil {
		return nil, fmt.Errorf("arm: deployment token: %w", err)
	}
	return &deploymentEnv{s: s, host: r.HTTP.Host, token: tok, sub: r.Param("sub")}, nil
}

// captureWriter is an http.ResponseWriter that keeps the response.
type captureWriter struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *captureWriter) Header() http.Header { return w.header }

func (w *captureWriter) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *captureWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}

// do sends one request to the server's handler.
func (e *deploymentEnv) do(ctx context.Context, method, path, query string, body []byte) (int, http.Header, []byte, error) {
	u := &url.URL{Scheme: "https", Host: e.host, Path: path, RawQuery: query}
	var rd *bytes.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	var hr *http.Request
	var err error
	if rd != nil {
		hr, err = http.NewRequestWithContext(ctx, method, u.String(), rd)
	} else {
		hr, err = http.NewRequestWithContext(ctx, method, u.String(), nil)
	}
	if err != nil {
		return 0, nil, nil, fmt.Errorf("arm: deployment request: %w", err)
	}
	hr.Header.Set("Authorization", "Bearer "+e.token)
	hr.Header.Set("Accept", "application/json")
	if body != nil {
		hr.Header.Set("Content-Type", "application/json")
	}
	hr.Header.Set("User-Agent", "nimbus-deployments")
	hr.RemoteAddr = "127.0.0.1:0"
	w := &captureWriter{header: http.Header{}}
	e.s.ServeHTTP(w, hr)
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.status, w.header, w.body.Bytes(), nil
}

// PutResource puts r through the server's PUT route and waits for its
// operation to end.
func (e *deploymentEnv) PutResource(ctx context.Context, r template.Resource) (template.PutResult, error) {
	// A nested deployment (a Bicep module) goes to this server's own
	// deployments route like any resource: it is validated and run as a
	// deployment of its own, and reference() reads its outputs.
	body := any(r.Body)
	if k := e.s.Kind(r.Type); k != nil {
		body = coerceToType(body, reflect.TypeOf(k.Model.New()))
	} else if t, ok := childModels[strings.ToLower(r.Type)]; ok {
		body = coerceToType(body, t)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return template.PutResult{}, fmt.Errorf("arm: encode %s: %w", r.ID, err)
	}
	status, hdr, resp, err := e.do(ctx, http.MethodPut, r.ID, "api-version="+url.QueryEscape(r.APIVersion), b)
	if err != nil {
		return template.PutResult{}, err
	}
	if status >= 300 {
		return template.PutResult{}, errorOf(status, resp)
	}
	if err := e.wait(ctx, hdr); err != nil {
		return template.PutResult{}, err
	}
	out := map[string]any{}
	if len(resp) > 0 {
		v, err := decodeGeneric(resp)
		if err != nil {
			return template.PutResult{}, fmt.Errorf("arm: decode %s: %w", r.ID, err)
		}
		if m, ok := v.(map[string]any); ok {
			out = m
		}
	}
	return template.PutResult{StatusCode: status, Body: out}, nil
}

// Polling bounds for a resource's long-running operation.
const (
	pollFirst = 10 * time.Millisecond
	pollMax   = 250 * time.Millisecond
)

// wait follows a write's Azure-AsyncOperation (or Location) URL until the
// operation ends; a failed operation is the resource's error.
func (e *deploymentEnv) wait(ctx context.Context, hdr http.Header) error {
	asyncURL := hdr.Get("Azure-AsyncOperation")
	location := hdr.Get("Location")
	if asyncURL == "" && location == "" {
		return nil
	}
	target := asyncURL
	if target == "" {
		target = location
	}
	u, err := url.Parse(target)
	if err != nil {
		return fmt.Errorf("arm: operation url %q: %w", target, err)
	}
	delay := pollFirst
	for {
		status, _, body, err := e.do(ctx, http.MethodGet, u.Path, u.RawQuery, nil)
		if err != nil {
			return err
		}
		if asyncURL == "" {
			// Location polling: 202 while running, then the result or an error.
			if status >= 300 && status != http.StatusAccepted {
				return errorOf(status, body)
			}
			if status != http.StatusAccepted {
				return nil
			}
		} else {
			if status >= 300 {
				return errorOf(status, body)
			}
			var st arm.OperationStatus
			if err := json.Unmarshal(body, &st); err != nil {
				return fmt.Errorf("arm: decode operation status: %w", err)
			}
			switch st.Status {
			case arm.StatusSucceeded:
				return nil
			case arm.StatusFailed, arm.StatusCanceled:
				te := &template.Error{Code: "ResourceDeploymentFailure", StatusCode: http.StatusConflict,
					Message: "The resource operation completed with terminal provisioning state '" + st.Status + "'."}
				if st.Error != nil {
					te = fromErrorBody(*st.Error)
					te.StatusCode = http.StatusConflict
				}
				return te
			}
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(delay*2, pollMax)
	}
}

// GetResource reads a resource through the server's GET route.
func (e *deploymentEnv) GetResource(ctx context.Context, id, apiVersion string) (map[string]any, error) {
	status, _, body, err := e.do(ctx, http.MethodGet, id, "api-version="+url.QueryEscape(apiVersion), nil)
	if err != nil {
		return nil, err
	}
	if status >= 300 {
		return nil, errorOf(status, body)
	}
	v, err := decodeGeneric(body)
	if err != nil {
		return nil, fmt.Errorf("arm: decode %s: %w", id, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("arm: %s is not a JSON object", id)
	}
	return m, nil
}

// Providers describes a resource type from the server's provider metadata.
func (e *deploymentEnv) Providers(_ context.Context, namespace, resourceType string) (template.Provider, error) {
	// The deployments engine's own types.
	for _, t := range []string{DeploymentType, template.ResourceGroupType} {
		if strings.EqualFold(namespace+"/"+resourceType, t) {
			ns, rt, _ := strings.Cut(t, "/")
			return template.Provider{Namespace: ns, ResourceType: rt, Locations: arm.Locations, APIVersions: arm.ResourcesVersions}, nil
		}
	}
	p := e.s.Provider(e.sub, namespace)
	if p == nil {
		return template.Provider{}, arm.NamespaceNotFound(namespace)
	}
	for _, rt := range p.ResourceTypes {
		if strings.EqualFold(rt.ResourceType, resourceType) {
			return template.Provider{Namespace: p.Namespace, ResourceType: rt.ResourceType, Locations: rt.Locations, APIVersions: rt.APIVersions}, nil
		}
	}
	return template.Provider{}, fmt.Errorf("the resource type '%s' could not be found in the namespace '%s'", resourceType, namespace)
}

// decodeGeneric decodes JSON with integral numbers as int64.
func decodeGeneric(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return template.Normalize(v), nil
}

// errorOf converts an ARM error response to the engine's error.
func errorOf(status int, body []byte) *template.Error {
	var env arm.ErrorEnvelope
	if err := json.Unmarshal(body, &env); err != nil || env.Error.Code == "" {
		return &template.Error{Code: "ResourceDeploymentFailure", StatusCode: status,
			Message: fmt.Sprintf("The resource request failed with status %d.", status)}
	}
	te := fromErrorBody(env.Error)
	te.StatusCode = status
	return te
}

func fromErrorBody(b arm.ErrorBody) *template.Error {
	te := &template.Error{Code: b.Code, Message: b.Message, Target: b.Target}
	for _, d := range b.Details {
		te.Details = append(te.Details, fromErrorBody(d))
	}
	return te
}

// childModels are the Go types of child resources that templates deploy on
// their own (az 2.45 deploys a Standard load balancer's NAT rule this way),
// for coerceToType.
var childModels = map[string]reflect.Type{
	"microsoft.network/loadbalancers/inboundnatrules":     reflect.TypeOf(&resource.InboundNatRule{}),
	"microsoft.network/loadbalancers/backendaddresspools": reflect.TypeOf(&resource.BackendAddressPool{}),
	"microsoft.network/virtualnetworks/subnets":           reflect.TypeOf(&resource.Subnet{}),
}

// coerceToType converts the strings of a generic JSON value that stand for
// integers, numbers or booleans where the Go type t (the resource's model,
// as the handler will decode it) has such a field: az sends
// "frontendPortRangeStart": "50000" and "primary": "true" inside templates,
// which Azure's providers accept. Everything else is left for the handler
// to validate.
func coerceToType(v any, t reflect.Type) any {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		fields := resource.JSONFields(t)
		out := make(map[string]any, len(m))
		for k, x := range m {
			if ft, ok := fields[strings.ToLower(k)]; ok {
				out[k] = coerceToType(x, ft)
			} else {
				out[k] = x
			}
		}
		return out
	case reflect.Slice, reflect.Array:
		arr, ok := v.([]any)
		if !ok || t.Elem().Kind() == reflect.Uint8 {
			return v
		}
		out := make([]any, len(arr))
		for i, x := range arr {
			out[i] = coerceToType(x, t.Elem())
		}
		return out
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return v
		}
		out := make(map[string]any, len(m))
		for k, x := range m {
			out[k] = coerceToType(x, t.Elem())
		}
		return out
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		if s, ok := v.(string); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
				return n
			}
		}
	case reflect.Float32, reflect.Float64:
		if s, ok := v.(string); ok {
			if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
				return f
			}
		}
	case reflect.Bool:
		if s, ok := v.(string); ok {
			if b, err := strconv.ParseBool(strings.TrimSpace(s)); err == nil {
				return b
			}
		}
	}
	return v
}
