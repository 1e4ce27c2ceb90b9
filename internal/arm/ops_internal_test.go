package arm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/auth"
	"nimbus/internal/poll"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// widget is a test resource type whose PUT completes asynchronously:
// properties.mode "defer" leaves the operation to a later Ops.Finish,
// "fail" fails it from an After function, anything else finishes at once.
type widget struct {
	resource.Envelope
	Properties struct {
		Mode              string `json:"mode"`
		OpID              string `json:"opId,omitempty"`
		ProvisioningState string `json:"provisioningState,omitempty"`
	} `json:"properties"`
}

func (w *widget) SetProvisioningState(s string) { w.Properties.ProvisioningState = s }

type widgetModel struct{}

func (widgetModel) New() Object { return &widget{} }
func (widgetModel) Prepare(_ context.Context, tx *Tx, obj, _ Object) error {
	w := obj.(*widget)
	switch w.Properties.Mode {
	case "defer":
		tx.Defer()
		w.Properties.OpID = tx.Op().ID
		w.SetProvisioningState(resource.Creating)
	case "fail":
		tx.After(func(context.Context) (any, error) {
			return nil, resource.Conflict("WidgetJammed", "The widget jammed.")
		})
	}
	return nil
}
func (widgetModel) References(Object) []resource.Ref             { return nil }
func (widgetModel) Release(context.Context, *Tx, Object) error   { return nil }
func (widgetModel) Render(context.Context, Reader, Object) error { return nil }

type opsFixture struct {
	s     *Server
	ts    *httptest.Server
	token string
	sub   string
	now   time.Time
	mu    sync.Mutex
}

func (f *opsFixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *opsFixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

func newOpsFixture(t *testing.T) *opsFixture {
	t.Helper()
	dir := t.TempDir()
	st, err := bolt.Open(context.Background(), filepath.Join(dir, "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := auth.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	f := &opsFixture{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), sub: id.SubscriptionID}
	s, err := New(Config{Store: st, Tokens: iss, Identity: id, Now: f.clock})
	if err != nil {
		t.Fatal(err)
	}
	s.RegisterKind(&Kind{Type: "Nimbus.Test/widgets", Versions: testVersions, Model: widgetModel{}})
	if err := s.EnsureSubscription(context.Background()); err != nil {
		t.Fatal(err)
	}
	f.s = s
	f.ts = httptest.NewTLSServer(s)
	t.Cleanup(f.ts.Close)
	if f.token, _, err = iss.Mint("", time.Hour); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *opsFixture) do(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	if !strings.HasPrefix(url, "https://") {
		url = f.ts.URL + url
	}
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+f.token)
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (f *opsFixture) status(t *testing.T, asyncURL string) OperationStatus {
	t.Helper()
	st, _, b := f.do(t, "GET", asyncURL, "")
	var s OperationStatus
	if err := json.Unmarshal([]byte(b), &s); st != 200 || err != nil {
		t.Fatalf("operation status: %d %s", st, b)
	}
	return s
}

func TestDeferredAndFailedOperations(t *testing.T) {
	f := newOpsFixture(t)
	ctx := context.Background()
	if st, _, b := f.do(t, "PUT", "/subscriptions/"+f.sub+"/resourcegroups/rg?api-version=2021-04-01", `{"location":"eastus"}`); st != 201 {
		t.Fatalf("group: %d %s", st, b)
	}
	w := "/subscriptions/" + f.sub + "/resourceGroups/rg/providers/Nimbus.Test/widgets/"

	// Deferred: InProgress until another component calls Finish.
	st, h, b := f.do(t, "PUT", w+"w1?api-version=2025-01-01", `{"location":"eastus","properties":{"mode":"defer"}}`)
	if st != 201 || !strings.Contains(b, `"provisioningState":"Creating"`) {
		t.Fatalf("put: %d %s", st, b)
	}
	async := h.Get("Azure-AsyncOperation")
	if s := f.status(t, async); s.Status != StatusInProgress || s.EndTime != nil {
		t.Fatalf("deferred op: %+v", s)
	}
	var stored widget
	kv, err := f.s.st.Get(ctx, resource.Key(resource.NewID(f.sub, "rg", "Nimbus.Test/widgets", "w1")))
	if err != nil || json.Unmarshal(kv.Value, &stored) != nil || stored.Properties.OpID == "" {
		t.Fatalf("stored op id: %v %s", err, kv.Value)
	}
	if err := f.s.Ops.Finish(ctx, stored.Properties.OpID, map[string]string{"done": "yes"}, nil); err != nil {
		t.Fatal(err)
	}
	if s := f.status(t, async); s.Status != StatusSucceeded || s.EndTime == nil {
		t.Fatalf("finished op: %+v", s)
	}
	result := strings.Replace(async, "/operations/", "/operationResults/", 1)
	if st, _, b := f.do(t, "GET", result, ""); st != 200 || !strings.Contains(b, `"done":"yes"`) {
		t.Fatalf("operation result: %d %s", st, b)
	}
	if err := f.s.Ops.Finish(ctx, stored.Properties.OpID, nil, errors.New("late")); err != nil {
		t.Fatalf("finishing twice: %v", err)
	}
	if s := f.status(t, async); s.Status != StatusSucceeded {
		t.Fatalf("second Finish changed the op: %+v", s)
	}

	// After with an error: Failed with the error's code; the result URL
	// answers a non-retriable 4xx.
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- f.s.Ops.Run(runCtx) }()
	_, h, _ = f.do(t, "PUT", w+"w2?api-version=2025-01-01", `{"location":"eastus","properties":{"mode":"fail"}}`)
	async = h.Get("Azure-AsyncOperation")
	var s OperationStatus
	finished := func(url string) func() error {
		return func() error {
			if s = f.status(t, url); s.Status == StatusInProgress {
				return fmt.Errorf("status %s", s.Status)
			}
			return nil
		}
	}
	poll.Until(t, 10*time.Second, "the failing operation to finish", finished(async))
	if s.Status != StatusFailed || s.Error == nil || s.Error.Code != "WidgetJammed" {
		t.Fatalf("failed op: %+v", s)
	}
	if st, _, b := f.do(t, "GET", strings.Replace(async, "/operations/", "/operationResults/", 1), ""); st != 409 || !strings.Contains(b, "WidgetJammed") {
		t.Fatalf("failed result: %d %s", st, b)
	}

	// Standalone operations (POST actions) and Go.
	op, err := f.s.Ops.Start(ctx, resource.NewID(f.sub, "rg", "Nimbus.Test/widgets", "w1"), "eastus")
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	f.s.Ops.Go(ctx, op, func(context.Context) (any, error) { <-release; return nil, nil })
	url := f.ts.URL + opPath(op, "operations") + "?api-version=2025-01-01"
	if s := f.status(t, url); s.Status != StatusInProgress {
		t.Fatalf("running op: %+v", s)
	}
	close(release)
	poll.Until(t, 10*time.Second, "the operation run by Go to finish", finished(url))
	if s.Status != StatusSucceeded {
		t.Fatalf("op after Go: %+v", s)
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestOperationSweep(t *testing.T) {
	f := newOpsFixture(t)
	ctx := context.Background()
	target := resource.NewID(f.sub, "rg", "Nimbus.Test/widgets", "w")
	finished, err := f.s.Ops.Start(ctx, target, "eastus")
	if err != nil {
		t.Fatal(err)
	}
	if err := f.s.Ops.Finish(ctx, finished.ID, nil, nil); err != nil {
		t.Fatal(err)
	}
	// An in-process operation left running by a previous process.
	orphan := NewOp(target, "eastus")
	b, _ := json.Marshal(OpRecord{Op: orphan, Status: StatusInProgress, StartTime: f.clock(), InProcess: true})
	if _, err := f.s.st.Put(ctx, OpKey(orphan.ID), b, store.MustNotExist); err != nil {
		t.Fatal(err)
	}
	// A deferred operation nobody finishes.
	stuck, err := f.s.Ops.Start(ctx, target, "eastus")
	if err != nil {
		t.Fatal(err)
	}
	f.advance(time.Hour)
	if err := f.s.Ops.sweep(ctx, true); err != nil {
		t.Fatal(err)
	}
	url := func(op Op) string { return opPath(op, "operations") + "?api-version=2025-01-01" }
	if s := f.status(t, url(finished)); s.Status != StatusSucceeded {
		t.Fatalf("an hour-old record must stay: %+v", s)
	}
	if s := f.status(t, url(orphan)); s.Status != StatusFailed || s.Error.Code != "OperationInterrupted" {
		t.Fatalf("orphan: %+v", s)
	}
	if s := f.status(t, url(stuck)); s.Status != StatusInProgress {
		t.Fatalf("deferred op failed early: %+v", s)
	}
	f.advance(OpRetention)
	if err := f.s.Ops.sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	f.advance(OpTimeout)
	if err := f.s.Ops.sweep(ctx, false); err != nil {
		t.Fatal(err)
	}
	if s := f.status(t, url(stuck)); s.Status != StatusFailed || s.Error.Code != "OperationTimedOut" {
		t.Fatalf("stuck op: %+v", s)
	}
	if st, _, _ := f.do(t, "GET", url(finished), ""); st != 404 {
		t.Fatalf("expired record: %d", st)
	}
}
