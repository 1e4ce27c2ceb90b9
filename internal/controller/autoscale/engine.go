package autoscale

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"nimbus/internal/arm"
	"nimbus/internal/monitor"
	"nimbus/internal/resource"
	"nimbus/internal/rp/insights"
)

// DefaultInterval is how often settings are evaluated at the default grain
// (Azure's engine runs every 30 to 60 seconds).
const DefaultInterval = 30 * time.Second

// DefaultMaxEvents bounds the in-memory activity log.
const DefaultMaxEvents = 1000

// computeVersion is the api-version of the engine's own scale-set requests.
const computeVersion = "2024-07-01"

// Options configure an Engine. Server and History are required.
type Options struct {
	// Server is the ARM server: its store holds the settings and its
	// handler serves the engine's GET and PATCH of scale sets.
	Server *arm.Server
	// History is the metrics history; its grain is one Azure minute.
	History *monitor.History
	// Interval is the time between passes (default DefaultInterval scaled
	// like the history's grain: grain/2).
	Interval time.Duration
	// MaxEvents bounds the activity log (default DefaultMaxEvents).
	MaxEvents int
	// Now is the clock (default the server's).
	Now    func() time.Time
	Logger *slog.Logger
}

// Engine evaluates autoscale settings and scales their targets. Its
// activity log and cooldown clocks live in memory: a restart starts them
// empty. Safe for concurrent use.
type Engine struct {
	o Options

	mu sync.Mutex
	// last is the time of each setting's last scale action (lower-case ID).
	last   map[string]time.Time
	events []insights.Event
	token  string
	tokExp time.Time
}

// New returns an engine.
func New(o Options) *Engine {
	if o.Interval <= 0 {
		o.Interval = time.Duration(float64(DefaultInterval) * float64(o.History.Grain()) / float64(time.Minute))
	}
	if o.MaxEvents <= 0 {
		o.MaxEvents = DefaultMaxEvents
	}
	if o.Now == nil {
		o.Now = o.Server.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Engine{o: o, last: map[string]time.Time{}}
}

var _ insights.ActivitySource = (*Engine)(nil)

// ActivityLog returns the engine's events, oldest first.
func (e *Engine) ActivityLog() []insights.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]insights.Event(nil), e.events...)
}

// Run evaluates every Interval until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	t := time.NewTicker(e.o.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		if err := e.Pass(ctx); err != nil && ctx.Err() == nil {
			e.o.Logger.Warn("autoscale pass failed", "err", err)
		}
	}
}

// settingsInfix is in the store key of every autoscale setting.
var settingsInfix = "/providers/" + strings.ToLower(insights.AutoscaleType) + "/"

// Pass evaluates every autoscale setting once and applies the decisions.
func (e *Engine) Pass(ctx context.Context) error {
	kvs, _, err := e.o.Server.Store().List(ctx, resource.SubscriptionsPrefix)
	if err != nil {
		return fmt.Errorf("autoscale: list settings: %w", err)
	}
	for _, kv := range kvs {
		i := strings.Index(kv.Key, settingsInfix)
		if i < 0 || strings.Contains(kv.Key[i+len(settingsInfix):], "/") {
			continue
		}
		var obj insights.AutoscaleSettingResource
		if err := json.Unmarshal(kv.Value, &obj); err != nil {
			e.o.Logger.Warn("autoscale setting unreadable", "resource", kv.Key, "err", err)
			continue
		}
		s, err := insights.ParseSetting(&obj)
		if err != nil {
			e.o.Logger.Warn("autoscale setting invalid", "resource", obj.ID, "err", err)
			continue
		}
		if err := e.evaluate(ctx, s); err != nil && ctx.Err() == nil {
			e.o.Logger.Warn("autoscale evaluation failed", "resource", s.ID, "err", err)
		}
	}
	return nil
}

func (e *Engine) evaluate(ctx context.Context, s insights.Setting) error {
	if !s.Enabled {
		return nil
	}
	capacity, found, err := e.capacity(ctx, s.Target)
	if err != nil || !found {
		return err
	}
	key := strings.ToLower(s.ID)
	e.mu.Lock()
	last := e.last[key]
	e.mu.Unlock()
	now := e.o.Now()
	d := Evaluate(Input{Setting: s, History: e.o.History, Now: now, Capacity: capacity, LastScale: last})
	if !d.Scale {
		if d.Flapping {
			e.record(insights.Event{Time: now, SettingID: s.ID, TargetID: s.Target, Operation: insights.OpFlapping,
				Status: "Succeeded", Level: "Warning", Description: "Autoscale skipped a scale-in: " + d.Reason,
				Profile: d.Profile, OldCount: capacity, NewCount: capacity})
		}
		return nil
	}
	op := insights.OpScaleUp
	if d.Direction == "Decrease" {
		op = insights.OpScaleDown
	}
	ev := insights.Event{Time: now, SettingID: s.ID, TargetID: s.Target, Operation: op, Profile: d.Profile,
		OldCount: capacity, NewCount: d.NewCapacity, Status: "Succeeded", Level: "Informational",
		Description: fmt.Sprintf("The autoscale engine attempting to scale resource '%s' from %d instances count to %d instances count: %s.",
			s.Target, capacity, d.NewCapacity, d.Reason)}
	if d.Flapping {
		ev.Description += " (scale-in reduced to avoid flapping)"
	}
	if err := e.scale(ctx, s.Target, d.NewCapacity); err != nil {
		ev.Status, ev.Level, ev.Description = "Failed", "Error", ev.Description+" Failed: "+err.Error()
		e.record(ev)
		return err
	}
	e.mu.Lock()
	e.last[key] = now
	e.mu.Unlock()
	e.record(ev)
	e.o.Logger.Info("autoscale", "resource", s.Target, "setting", s.ID, "op", op,
		"from", capacity, "to", d.NewCapacity, "profile", d.Profile, "reason", d.Reason)
	return nil
}

func (e *Engine) record(ev insights.Event) {
	ev.ID = uuid.NewString()
	e.mu.Lock()
	defer e.mu.Unlock()
	e.events = append(e.events, ev)
	if n := len(e.events) - e.o.MaxEvents; n > 0 {
		e.events = append(e.events[:0], e.events[n:]...)
	}
}

// do sends one request through the server's handler with a token of its
// own, as a client would.
func (e *Engine) do(ctx context.Context, method, path string, body any) (int, []byte, error) {
	tok, err := e.bearer()
	if err != nil {
		return 0, nil, err
	}
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req := httptest.NewRequestWithContext(ctx, method, "https://nimbus.internal"+path+"?api-version="+computeVersion, rd)
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "nimbus-autoscale")
	rec := httptest.NewRecorder()
	e.o.Server.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes(), nil
}

func (e *Engine) bearer() (string, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.token != "" && time.Until(e.tokExp) > 5*time.Minute {
		return e.token, nil
	}
	tok, exp, err := e.o.Server.Tokens().Mint("", time.Hour)
	if err != nil {
		return "", fmt.Errorf("autoscale: mint token: %w", err)
	}
	e.token, e.tokExp = tok, exp
	return tok, nil
}

// capacity reads the target's sku.capacity through the API; found is false
// when the target is gone.
func (e *Engine) capacity(ctx context.Context, target string) (int, bool, error) {
	st, b, err := e.do(ctx, http.MethodGet, target, nil)
	if err != nil {
		return 0, false, err
	}
	if st == http.StatusNotFound {
		return 0, false, nil
	}
	if st != http.StatusOK {
		return 0, false, fmt.Errorf("autoscale: get %s: %d %s", target, st, b)
	}
	var v struct {
		SKU struct {
			Capacity int `json:"capacity"`
		} `json:"sku"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, false, fmt.Errorf("autoscale: decode %s: %w", target, err)
	}
	return v.SKU.Capacity, true, nil
}

// scale PATCHes the target's sku.capacity, as `az vmss scale` does.
func (e *Engine) scale(ctx context.Context, target string, n int) error {
	st, b, err := e.do(ctx, http.MethodPatch, target, map[string]any{"sku": map[string]any{"capacity": n}})
	if err != nil {
		return err
	}
	if st != http.StatusOK && st != http.StatusAccepted {
		var env arm.ErrorEnvelope
		if json.Unmarshal(b, &env) == nil && env.Error.Code != "" {
			return fmt.Errorf("autoscale: scale %s to %d: %s: %s", target, n, env.Error.Code, env.Error.Message)
		}
		return fmt.Errorf("autoscale: scale %s to %d: status %d", target, n, st)
	}
	return nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func ftoa(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }
