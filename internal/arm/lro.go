package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// Operation statuses (arm-clients.md §1.3).
const (
	StatusInProgress = "InProgress"
	StatusSucceeded  = "Succeeded"
	StatusFailed     = "Failed"
	StatusCanceled   = "Canceled"
)

// OpRetention is how long a finished operation record stays readable.
const OpRetention = 2 * time.Hour

// sweepEvery is how often Ops.Run deletes expired records.
const sweepEvery = 5 * time.Minute

// OpTimeout is how long an operation may stay InProgress; the sweeper then
// fails it with OperationTimedOut, so a component that never calls Finish
// cannot leave clients polling forever.
const OpTimeout = 24 * time.Hour

// Op identifies a long-running operation and where its status URLs live:
// /subscriptions/{Subscription}/providers/{Namespace}/locations/{Location}/operations/{ID}.
type Op struct {
	ID           string `json:"id"`
	Subscription string `json:"subscription"`
	Namespace    string `json:"namespace"`
	Location     string `json:"location"`
}

// OpRecord is the stored form of an operation (key resource.OpsPrefix + ID).
type OpRecord struct {
	Op
	ResourceID  string          `json:"resourceId,omitempty"`
	Status      string          `json:"status"`
	StartTime   time.Time       `json:"startTime"`
	EndTime     time.Time       `json:"endTime,omitzero"`
	Error       *ErrorBody      `json:"error,omitempty"`
	ErrorStatus int             `json:"errorStatus,omitempty"`
	Result      json.RawMessage `json:"result,omitempty"`
	// InProcess marks operations finished by a goroutine of this process
	// (Ops.Go): after a restart they can never finish and are failed.
	InProcess bool `json:"inProcess,omitempty"`
}

// OpKey returns the store key of an operation record.
func OpKey(id string) string { return resource.OpsPrefix + id }

// Ops keeps long-running operation records in the store. An operation is
// started inside a write (Tx) or with Start, and finished either at once, by
// a function run with Go, or later by any component calling Finish (for
// example a controller that has started a scale set's instances). Records
// stay readable for OpRetention after they finish. Safe for concurrent use.
type Ops struct {
	st  store.Store
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	wg      sync.WaitGroup
	cancels map[string]context.CancelFunc
	stopped bool
}

func newOps(st store.Store, log *slog.Logger, now func() time.Time) *Ops {
	return &Ops{st: st, log: log, now: now, cancels: map[string]context.CancelFunc{}}
}

// NewOp returns a fresh operation handle for target (its namespace, or
// Microsoft.Resources for groups) in location. Nothing is stored yet.
func NewOp(target resource.ID, location string) Op {
	ns := target.Namespace
	if ns == "" {
		ns = "Microsoft.Resources"
	}
	if location == "" {
		location = "global"
	}
	return Op{ID: uuid.NewString(), Subscription: target.Subscription, Namespace: ns, Location: location}
}

// Start stores a new InProgress operation for target and returns it. The
// caller must eventually call Finish (or hand it to Go).
func (o *Ops) Start(ctx context.Context, target resource.ID, location string) (Op, error) {
	op := NewOp(target, location)
	rec := OpRecord{Op: op, ResourceID: target.String(), Status: StatusInProgress, StartTime: o.now().UTC()}
	b, err := json.Marshal(rec)
	if err != nil {
		return Op{}, fmt.Errorf("arm: start operation: %w", err)
	}
	if _, err := o.st.Put(ctx, OpKey(op.ID), b, store.MustNotExist); err != nil {
		return Op{}, fmt.Errorf("arm: start operation: %w", err)
	}
	return op, nil
}

// Finish ends operation id: Succeeded when opErr is nil (result, if non-nil,
// is what the operationResults URL returns, as JSON), else Failed with
// opErr mapped to an ARM error. Finishing a finished operation is a no-op.
func (o *Ops) Finish(ctx context.Context, id string, result any, opErr error) error {
	var raw json.RawMessage
	if result != nil && opErr == nil {
		b, err := json.Marshal(FillEmpty(result))
		if err != nil {
			return fmt.Errorf("arm: finish operation %s: %w", id, err)
		}
		raw = b
	}
	for range 10 {
		kv, err := o.st.Get(ctx, OpKey(id))
		if err != nil {
			return fmt.Errorf("arm: finish operation %s: %w", id, err)
		}
		var rec OpRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			return fmt.Errorf("arm: finish operation %s: %w", id, err)
		}
		if rec.Status != StatusInProgress {
			return nil
		}
		FinishRecord(&rec, o.now(), raw, opErr)
		b, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("arm: finish operation %s: %w", id, err)
		}
		_, err = o.st.Put(ctx, OpKey(id), b, kv.Revision)
		var ce *store.ConflictError
		if errors.As(err, &ce) {
			continue
		}
		if err != nil {
			return fmt.Errorf("arm: finish operation %s: %w", id, err)
		}
		return nil
	}
	return fmt.Errorf("arm: finish operation %s: too many concurrent updates", id)
}

func FinishRecord(rec *OpRecord, now time.Time, result json.RawMessage, opErr error) {
	rec.EndTime = now.UTC()
	if opErr != nil {
		e := AsARMError(opErr)
		b := ToErrorBody(e)
		rec.Status, rec.Error, rec.ErrorStatus = StatusFailed, &b, e.Status
		return
	}
	rec.Status, rec.Result = StatusSucceeded, result
}

// Go runs fn in the background and finishes op with its result when it
// returns. fn's context is ctx without its cancellation (a request context
// may end first), cancelled when Run stops. Go returns at once.
func (o *Ops) Go(ctx context.Context, op Op, fn func(ctx context.Context) (any, error)) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	o.mu.Lock()
	if o.stopped {
		o.mu.Unlock()
		cancel()
		o.log.Warn("operation not started: shutting down", slog.String("op", op.ID))
		return
	}
	o.cancels[op.ID] = cancel
	o.wg.Add(1)
	o.mu.Unlock()
	go func() {
		defer o.wg.Done()
		defer func() {
			o.mu.Lock()
			delete(o.cancels, op.ID)
			o.mu.Unlock()
			cancel()
		}()
		result, err := fn(ctx)
		if ferr := o.Finish(context.WithoutCancel(ctx), op.ID, result, err); ferr != nil {
			o.log.Error("finish operation", slog.String("op", op.ID), slog.Any("err", ferr))
		}
	}()
}

// Run fails operations left InProgress by a previous process (InProcess
// ones), then every few minutes deletes expired records and fails
// operations older than OpTimeout, until ctx ends; then it cancels and waits
// for the functions started with Go.
func (o *Ops) Run(ctx context.Context) error {
	defer func() {
		o.mu.Lock()
		o.stopped = true
		for _, c := range o.cancels {
			c()
		}
		o.mu.Unlock()
		o.wg.Wait()
	}()
	if err := o.sweep(ctx, true); err != nil && ctx.Err() == nil {
		o.log.Warn("sweep operations", slog.Any("err", err))
	}
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if err := o.sweep(ctx, false); err != nil && ctx.Err() == nil {
				o.log.Warn("sweep operations", slog.Any("err", err))
			}
		}
	}
}

// sweep deletes records finished more than OpRetention ago and fails
// operations InProgress for more than OpTimeout; at startup it also fails
// InProcess operations, which can no longer finish.
func (o *Ops) sweep(ctx context.Context, startup bool) error {
	kvs, _, err := o.st.List(ctx, resource.OpsPrefix)
	if err != nil {
		return fmt.Errorf("arm: sweep operations: %w", err)
	}
	now := o.now()
	for _, kv := range kvs {
		var rec OpRecord
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			continue
		}
		switch {
		case rec.Status != StatusInProgress && now.Sub(rec.EndTime) > OpRetention:
			if _, err := o.st.Delete(ctx, kv.Key, kv.Revision); err != nil && !isConflictOrMissing(err) {
				return fmt.Errorf("arm: sweep operations: %w", err)
			}
		case rec.Status == StatusInProgress && ((startup && rec.InProcess) || now.Sub(rec.StartTime) > OpTimeout):
			if now.Sub(rec.StartTime) > OpTimeout {
				FinishRecord(&rec, now, nil, resource.Errorf(http.StatusInternalServerError, "OperationTimedOut",
					"The operation did not finish within %s.", OpTimeout))
			} else {
				FinishRecord(&rec, now, nil, resource.Errorf(http.StatusInternalServerError, "OperationInterrupted",
					"The operation was interrupted by a restart of the service."))
			}
			b, err := json.Marshal(rec)
			if err != nil {
				return fmt.Errorf("arm: sweep operations: %w", err)
			}
			if _, err := o.st.Put(ctx, kv.Key, b, kv.Revision); err != nil && !isConflictOrMissing(err) {
				return fmt.Errorf("arm: sweep operations: %w", err)
			}
		}
	}
	return nil
}

func isConflictOrMissing(err error) bool {
	var ce *store.ConflictError
	return errors.As(err, &ce) || errors.Is(err, store.ErrNotFound)
}

// OperationStatus is the wire form of GET …/operations/{id}.
type OperationStatus struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	Status    string     `json:"status"`
	StartTime time.Time  `json:"startTime"`
	EndTime   *time.Time `json:"endTime,omitempty"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// opPath returns the path of op's status (kind "operations") or result ("operationResults") URL.
func opPath(op Op, kind string) string {
	return "/subscriptions/" + op.Subscription + "/providers/" + op.Namespace + "/locations/" +
		url.PathEscape(op.Location) + "/" + kind + "/" + op.ID
}

// opURL returns the absolute status or result URL of op for a request.
func (r *Request) opURL(op Op, kind string) string {
	v := r.APIVersion
	if v == "" {
		v = r.server.allVersions[0]
	}
	return r.BaseURL() + opPath(op, kind) + "?api-version=" + url.QueryEscape(v)
}

// Async answers a PUT or PATCH whose operation is op: status (201 create,
// 200 update) with body, Azure-AsyncOperation and Retry-After: 1.
func (r *Request) Async(status int, body any, op Op) *Response {
	h := http.Header{}
	h.Set("Azure-AsyncOperation", r.opURL(op, "operations"))
	h.Set("Retry-After", "1")
	return &Response{Status: status, Header: h, Body: body}
}

// Accepted answers a DELETE or POST action whose operation is op: 202 with
// Location (operationResults), Azure-AsyncOperation and Retry-After: 1.
func (r *Request) Accepted(op Op) *Response {
	h := http.Header{}
	h.Set("Azure-AsyncOperation", r.opURL(op, "operations"))
	h.Set("Location", r.opURL(op, "operationResults"))
	h.Set("Retry-After", "1")
	return &Response{Status: http.StatusAccepted, Header: h}
}

func (s *Server) loadOp(ctx context.Context, r *Request) (OpRecord, error) {
	var rec OpRecord
	kv, err := s.st.Get(ctx, OpKey(r.Param("op")))
	if errors.Is(err, store.ErrNotFound) {
		return rec, resource.NotFound("OperationNotFound", "The operation '%s' could not be found.", r.Param("op"))
	}
	if err != nil {
		return rec, err
	}
	if err := json.Unmarshal(kv.Value, &rec); err != nil {
		return rec, fmt.Errorf("arm: decode operation: %w", err)
	}
	if !strings.EqualFold(rec.Subscription, r.Param("sub")) {
		return rec, resource.NotFound("OperationNotFound", "The operation '%s' could not be found.", r.Param("op"))
	}
	return rec, nil
}

func (s *Server) getOperation(ctx context.Context, r *Request) (*Response, error) {
	rec, err := s.loadOp(ctx, r)
	if err != nil {
		return nil, err
	}
	st := OperationStatus{ID: opPath(rec.Op, "operations"), Name: rec.ID, Status: rec.Status, StartTime: rec.StartTime, Error: rec.Error}
	if !rec.EndTime.IsZero() {
		st.EndTime = &rec.EndTime
	}
	resp := JSON(http.StatusOK, st)
	if rec.Status == StatusInProgress {
		resp.Header = http.Header{"Retry-After": {"1"}}
	}
	return resp, nil
}

func (s *Server) getOperationResult(ctx context.Context, r *Request) (*Response, error) {
	rec, err := s.loadOp(ctx, r)
	if err != nil {
		return nil, err
	}
	switch rec.Status {
	case StatusInProgress:
		h := http.Header{}
		h.Set("Location", r.BaseURL()+r.HTTP.URL.RequestURI())
		h.Set("Retry-After", "1")
		return &Response{Status: http.StatusAccepted, Header: h}, nil
	case StatusSucceeded:
		if len(rec.Result) > 0 {
			return JSON(http.StatusOK, rec.Result), nil
		}
		return NoContent(http.StatusNoContent), nil
	}
	status := rec.ErrorStatus
	// A retriable status would make azcore's Location poller poll forever.
	if status < 400 || status >= 500 || status == http.StatusRequestTimeout || status == http.StatusTooManyRequests {
		status = http.StatusConflict
	}
	e := &resource.Error{Status: status, Code: "OperationFailed", Message: "The operation failed."}
	if rec.Error != nil {
		e.Code, e.Message, e.Target = rec.Error.Code, rec.Error.Message, rec.Error.Target
	}
	return nil, e
}

// registerLro registers the routes of lro.go.
func (s *Server) registerLro() {
	base := "/subscriptions/{sub}/providers/{ns}/locations/{loc}/"
	s.HandleAnyVersion(http.MethodGet, base+"operations/{op}", s.getOperation)
	s.HandleAnyVersion(http.MethodGet, base+"operationResults/{op}", s.getOperationResult)
}
