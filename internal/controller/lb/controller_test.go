package lb

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/resource"
	"nimbus/internal/store"
	"nimbus/internal/store/bolt"
)

// Address plan: as compile_test.go; the public IP moves from 198.18.10.1 to
// 198.18.10.2 in the torn-read test. No traffic is sent.

func openStore(t *testing.T) store.Store {
	t.Helper()
	st, err := bolt.Open(t.Context(), filepath.Join(t.TempDir(), "db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func mustKey(t *testing.T, id string) string {
	t.Helper()
	pid, err := resource.ParseID(id)
	if err != nil {
		t.Fatal(err)
	}
	return resource.Key(pid)
}

func putJSON(t *testing.T, st store.Store, key string, v any) int64 {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := st.Put(t.Context(), key, b, store.AnyRevision)
	if err != nil {
		t.Fatal(err)
	}
	return rev
}

func testPublicIP(addr string) *resource.PublicIPAddress {
	return &resource.PublicIPAddress{Envelope: resource.Envelope{ID: pip, Name: "pip1", Type: resource.PublicIPType},
		Properties: resource.PublicIPProperties{IPAddress: addr}}
}

// seed stores testLB, its public IP and instance 0 (running), and returns
// the revision.
func seed(t *testing.T, st store.Store) int64 {
	t.Helper()
	putJSON(t, st, mustKey(t, lbID), testLB())
	putJSON(t, st, mustKey(t, pip), testPublicIP("198.18.10.1"))
	return putJSON(t, st, resource.InstanceKey(vmss, "0"), testInstance("0", "10.0.0.4", "127.100.0.4", 50000))
}

// writeAfterRead is a store whose first read (List or ListPrefixes) is
// followed, before the caller reads again, by a concurrent writer's Txn.
type writeAfterRead struct {
	store.Store
	once  sync.Once
	write func()
	reads int
}

func (w *writeAfterRead) List(ctx context.Context, prefix string) ([]store.KV, int64, error) {
	w.reads++
	kvs, rev, err := w.Store.List(ctx, prefix)
	w.once.Do(w.write)
	return kvs, rev, err
}

func (w *writeAfterRead) ListPrefixes(ctx context.Context, prefixes []string) ([][]store.KV, int64, error) {
	w.reads++
	out, rev, err := w.Store.ListPrefixes(ctx, prefixes)
	w.once.Do(w.write)
	return out, rev, err
}

// TestReadSnapshotOneRevision: a writer that moves the public IP and stops
// the instance in one Txn, right after the first read, cannot give a
// snapshot that has one change and not the other; the revision returned is
// the one the whole snapshot reflects.
func TestReadSnapshotOneRevision(t *testing.T) {
	st := openStore(t)
	before := seed(t, st)
	var after int64
	w := &writeAfterRead{Store: st}
	w.write = func() {
		stopped := testInstance("0", "10.0.0.4", "127.100.0.4", 50000)
		stopped.Power, stopped.Actual = resource.PowerStopped, resource.PowerStopped
		pb, _ := json.Marshal(testPublicIP("198.18.10.2"))
		ib, _ := json.Marshal(stopped)
		var err error
		after, err = st.Txn(context.Background(), []store.Op{
			{Key: mustKey(t, pip), Value: pb, Expected: store.AnyRevision},
			{Key: resource.InstanceKey(vmss, "0"), Value: ib, Expected: store.AnyRevision},
		})
		if err != nil {
			t.Error(err)
		}
	}
	snap, rev, err := ReadSnapshot(t.Context(), w)
	if err != nil {
		t.Fatal(err)
	}
	if w.reads != 1 {
		t.Errorf("ReadSnapshot read the store %d times, want once", w.reads)
	}
	moved := snap.PublicIPs[norm(pip)] == netip.MustParseAddr("198.18.10.2")
	stopped := len(snap.Instances) == 1 && snap.Instances[0].Power == resource.PowerStopped
	if moved != stopped {
		t.Fatalf("torn snapshot at revision %d: public IP %v, instance power %s", rev, snap.PublicIPs[norm(pip)], snap.Instances[0].Power)
	}
	if rev != before || moved || after <= before {
		t.Errorf("snapshot at revision %d (moved %v), want the state at %d before the write at %d", rev, moved, before, after)
	}
	// The next read sees the whole write.
	snap, rev, err = ReadSnapshot(t.Context(), st)
	if err != nil || rev != after || snap.PublicIPs[norm(pip)] != netip.MustParseAddr("198.18.10.2") || snap.Instances[0].Power != resource.PowerStopped {
		t.Errorf("second read at %d: %+v, %v", rev, snap, err)
	}
}

// TestReadSnapshotClassifiesByID: only top-level load balancers, public
// IPs, network security groups and virtual networks under the
// subscriptions and instance records are read, each decoded through its
// type; other resources, groups and instance counters are not.
func TestReadSnapshotClassifiesByID(t *testing.T) {
	st := openStore(t)
	seed(t, st)
	putJSON(t, st, mustKey(t, sub), map[string]string{"name": "rg"})
	putJSON(t, st, mustKey(t, sub+"/providers/Microsoft.Network/routeTables/rt"), map[string]any{"properties": 1})
	putJSON(t, st, mustKey(t, vmss), map[string]any{"properties": "not a scale set"})
	putJSON(t, st, resource.InstanceCounterKey(vmss), resource.InstanceCounter{Next: 1})
	noAddr := *testPublicIP("")
	noAddr.ID = sub + "/providers/Microsoft.Network/publicIPAddresses/pending"
	putJSON(t, st, mustKey(t, noAddr.ID), &noAddr)
	if _, err := st.Put(t.Context(), resource.RefKey(pip, lbID), []byte("{"), store.AnyRevision); err != nil {
		t.Fatal(err)
	}
	snap, _, err := ReadSnapshot(t.Context(), st)
	if err != nil {
		t.Fatal(err)
	}
	if len(snap.LoadBalancers) != 1 || !resource.SameID(snap.LoadBalancers[0].ID, lbID) {
		t.Errorf("load balancers = %+v", snap.LoadBalancers)
	}
	if len(snap.PublicIPs) != 1 || snap.PublicIPs[norm(pip)] != netip.MustParseAddr("198.18.10.1") {
		t.Errorf("public IPs = %v", snap.PublicIPs)
	}
	if len(snap.Instances) != 1 || snap.Instances[0].InstanceID != "0" {
		t.Errorf("instances = %+v", snap.Instances)
	}

	for _, key := range []string{mustKey(t, lbID), mustKey(t, pip), resource.InstanceKey(vmss, "0"),
		mustKey(t, sub+"/providers/Microsoft.Network/virtualNetworks/vn"), mustKey(t, sub+"/providers/Microsoft.Network/networkSecurityGroups/nsg")} {
		t.Run("bad value at "+key, func(t *testing.T) {
			st := openStore(t)
			seed(t, st)
			if _, err := st.Put(t.Context(), key, []byte(`{"properties": [`), store.AnyRevision); err != nil {
				t.Fatal(err)
			}
			if _, _, err := ReadSnapshot(t.Context(), st); err == nil {
				t.Error("ReadSnapshot decoded a broken value")
			}
		})
	}
}

// fakeEngine records what the controller applies.
type fakeEngine struct {
	mu      sync.Mutex
	applies []dataplane.Config
	fail    error
	// partial, when set, is returned by Apply after it applied the Config.
	partial *dataplane.ApplyError
}

func (e *fakeEngine) Apply(_ context.Context, cfg dataplane.Config) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.fail != nil {
		return e.fail
	}
	e.applies = append(e.applies, cfg)
	if e.partial != nil {
		return e.partial
	}
	return nil
}

func (e *fakeEngine) SetHealth(context.Context, dataplane.Health) error { return nil }
func (e *fakeEngine) Close() error                                      { return nil }

func (e *fakeEngine) count() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.applies)
}

// fakeProber records the probes it is given.
type fakeProber struct{ updates [][]dataplane.Probe }

func (p *fakeProber) Update(probes []dataplane.Probe) { p.updates = append(p.updates, probes) }

func TestSyncAppliesOnChangeOnly(t *testing.T) {
	st := openStore(t)
	rev := seed(t, st)
	eng, pr := &fakeEngine{}, &fakeProber{}
	var applied []int64
	c := New(Options{Store: st, Engine: eng, Prober: pr, ProbeInterval: 250 * time.Millisecond,
		OnApplied: func(rev int64, _ dataplane.Config) { applied = append(applied, rev) }})
	if cfg, r := c.Config(); r != 0 || len(cfg.Rules) != 0 {
		t.Fatalf("Config before any sync = %+v at %d", cfg, r)
	}
	for range 2 {
		if err := c.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if eng.count() != 1 || len(pr.updates) != 1 {
		t.Fatalf("same snapshot applied %d times, probes updated %d times; want once", eng.count(), len(pr.updates))
	}
	if len(pr.updates[0]) != 1 || pr.updates[0][0].Interval != 250*time.Millisecond || len(pr.updates[0][0].Backends) != 1 {
		t.Errorf("probes handed to the prober = %+v", pr.updates[0])
	}
	if cfg, r := c.Config(); r != rev || len(cfg.Rules) != 2 || cfg.Probes[0].Interval != 250*time.Millisecond {
		t.Errorf("Config = %+v at %d, want the applied one at %d", cfg, r, rev)
	}
	if len(applied) != 2 || applied[0] != rev || applied[1] != rev {
		t.Errorf("OnApplied revisions = %v, want [%d %d]", applied, rev, rev)
	}

	eng.fail = errors.New("engine down")
	rev2 := putJSON(t, st, resource.InstanceKey(vmss, "1"), testInstance("1", "10.0.0.5", "127.100.0.5", 50001))
	if err := c.Sync(t.Context()); !errors.Is(err, eng.fail) {
		t.Fatalf("Sync with a failing engine: %v", err)
	}
	if _, r := c.Config(); r != rev {
		t.Errorf("a failed apply moved the applied revision to %d", r)
	}
	eng.fail = nil
	if err := c.Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if cfg, r := c.Config(); r != rev2 || len(cfg.Rules[0].Backends) != 2 || len(pr.updates) != 2 {
		t.Errorf("after the retry: %d backends at %d, %d probe updates", len(cfg.Rules[0].Backends), r, len(pr.updates))
	}
}

func TestRunAndWaitApplied(t *testing.T) {
	st := openStore(t)
	seed(t, st)
	eng := &fakeEngine{}
	c := New(Options{Store: st, Engine: eng, Resync: time.Hour})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})

	rev := putJSON(t, st, resource.InstanceKey(vmss, "1"), testInstance("1", "10.0.0.5", "127.100.0.5", 50001))
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := c.WaitApplied(wctx, rev); err != nil {
		t.Fatalf("WaitApplied(%d): %v", rev, err)
	}
	if cfg, r := c.Config(); r < rev || len(cfg.Rules[0].Backends) != 2 {
		t.Errorf("applied %+v at %d, want both instances at >= %d", cfg.Rules[0].Backends, r, rev)
	}
	if err := c.WaitApplied(wctx, rev); err != nil {
		t.Errorf("WaitApplied of an applied revision: %v", err)
	}
	short, scancel := context.WithCancel(ctx)
	scancel()
	if err := c.WaitApplied(short, rev+1000); !errors.Is(err, context.Canceled) {
		t.Errorf("WaitApplied of a future revision with a cancelled ctx: %v", err)
	}
}

// TestFailedRulesAreKeptAndRetried: a rule the engine could not apply fails
// its load balancer alone (Failures names it, by LB id in any case), counts
// as applied for WaitApplied, is logged once however often the retry fails,
// and is applied again on every Sync until it applies.
func TestFailedRulesAreKeptAndRetried(t *testing.T) {
	st := openStore(t)
	rev := seed(t, st)
	ruleID := norm(lbID) + "/loadbalancingrules/http"
	eng := &fakeEngine{partial: &dataplane.ApplyError{Rules: []dataplane.RuleError{{RuleID: ruleID,
		Reason: dataplane.ReasonPortInUse, Listen: netip.MustParseAddrPort("198.18.10.1:80"), Protocol: dataplane.TCP}}}}
	var logs strings.Builder
	c := New(Options{Store: st, Engine: eng, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for range 3 {
		if err := c.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.WaitApplied(t.Context(), rev); err != nil {
		t.Fatalf("WaitApplied with a failed rule: %v", err)
	}
	if got := c.Failures(strings.ToUpper(lbID)); len(got) != 1 || got[0].RuleID != ruleID {
		t.Fatalf("Failures = %+v, want the http rule", got)
	}
	if got := c.Failures(norm(lbID) + "x"); got != nil {
		t.Errorf("Failures of another LB = %+v", got)
	}
	if eng.count() != 3 {
		t.Errorf("the same Config with a failed rule applied %d times in 3 syncs, want 3 (retries)", eng.count())
	}
	if n := strings.Count(logs.String(), "rule not applied"); n != 1 {
		t.Errorf("failure logged %d times, want once:\n%s", n, logs.String())
	}
	eng.mu.Lock()
	eng.partial = nil
	eng.mu.Unlock()
	for range 2 {
		if err := c.Sync(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if got := c.Failures(lbID); got != nil {
		t.Errorf("Failures after the rule applied = %+v", got)
	}
	if eng.count() != 4 {
		t.Errorf("applied %d times, want 4: no retry once every rule is in force", eng.count())
	}
	if !strings.Contains(logs.String(), "rule no longer failing") {
		t.Errorf("recovery not logged:\n%s", logs.String())
	}
}

func TestLoadBalancerOf(t *testing.T) {
	lb := "/subscriptions/s/resourcegroups/g/providers/microsoft.network/loadbalancers/lb1"
	for _, tc := range []struct{ in, want string }{
		{lb + "/loadBalancingRules/r", lb},
		{strings.ToUpper(lb) + "/inboundnatrules/ssh/" + lb + "x/whatever", lb},
		{lb, lb},
		{"/subscriptions/s/resourcegroups/g/providers/microsoft.network/publicipaddresses/p", ""},
	} {
		if got := LoadBalancerOf(tc.in); got != tc.want {
			t.Errorf("LoadBalancerOf(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
