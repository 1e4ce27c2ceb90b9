package system

// Address plan: the API's public pool is 127.77.0.0/16 (loopback, as a
// rootless nimbus serves it); inside nimbus's namespace it is
// 198.18.0.0/16. Private frontends use 10.0.0.0/24 (never mapped).

import (
	"context"
	"errors"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/rootless"
)

const lbA = "/subscriptions/s/resourcegroups/rg/providers/microsoft.network/loadbalancers/a"

func TestAddrMap(t *testing.T) {
	m, err := newAddrMap(netip.MustParsePrefix("127.77.0.0/16"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ api, inner string }{
		{"127.77.0.1", "198.18.0.1"},
		{"127.77.3.200", "198.18.3.200"},
		{"127.77.255.255", "198.18.255.255"},
	} {
		a, i := netip.MustParseAddr(c.api), netip.MustParseAddr(c.inner)
		if got := m.in(a); got != i {
			t.Errorf("in(%s) = %s, want %s", a, got, i)
		}
		if got := m.out(i); got != a {
			t.Errorf("out(%s) = %s, want %s", i, got, a)
		}
	}
	for _, a := range []string{"10.0.0.5", "127.0.0.1", "198.19.255.253"} {
		x := netip.MustParseAddr(a)
		if m.in(x) != x || m.out(x) != x {
			t.Errorf("%s is outside both pools but was mapped", x)
		}
	}
	small, err := newAddrMap(netip.MustParsePrefix("127.50.7.0/24"))
	if err != nil || small.in(netip.MustParseAddr("127.50.7.9")) != netip.MustParseAddr("198.18.0.9") {
		t.Errorf("a /24 pool maps to 198.18.0.0/24: %v %v", small, err)
	}
	for _, bad := range []string{"198.18.64.0/18", "127.0.0.0/8", "2001:db8::/64"} {
		if _, err := newAddrMap(netip.MustParsePrefix(bad)); err == nil {
			t.Errorf("newAddrMap(%s) succeeded; a rootless pool is a loopback /16 or longer", bad)
		}
	}
	// inward maps every public address and leaves the caller's Config alone.
	pub, priv := netip.MustParseAddr("127.77.0.4"), netip.MustParseAddr("10.0.0.9")
	cfg := dataplane.Config{
		Rules:       []dataplane.Rule{{ID: "r", Frontend: dataplane.Frontend{IP: pub}}, {ID: "i", Frontend: dataplane.Frontend{IP: priv, Internal: true}}},
		NATRules:    []dataplane.NATRule{{ID: "n", Frontend: dataplane.Frontend{IP: pub}}},
		Outbound:    []dataplane.SNATAllocation{{RuleID: "o", Frontend: dataplane.Frontend{IP: pub}}},
		InstanceIPs: []dataplane.InstancePublicIP{{PublicIP: netip.MustParseAddr("127.77.1.1")}},
	}
	in := m.inward(cfg)
	if in.Rules[0].Frontend.IP.String() != "198.18.0.4" || in.Rules[1].Frontend.IP != priv ||
		in.NATRules[0].Frontend.IP.String() != "198.18.0.4" || in.Outbound[0].Frontend.IP.String() != "198.18.0.4" ||
		in.InstanceIPs[0].PublicIP.String() != "198.18.1.1" {
		t.Errorf("inward = %+v", in)
	}
	if cfg.Rules[0].Frontend.IP != pub || cfg.InstanceIPs[0].PublicIP.String() != "127.77.1.1" {
		t.Error("inward modified its argument")
	}
}

func TestForwardsOf(t *testing.T) {
	m, _ := newAddrMap(netip.MustParsePrefix("127.77.0.0/16"))
	fe := dataplane.Frontend{ID: lbA + "/frontendipconfigurations/fe", IP: netip.MustParseAddr("127.77.0.4")}
	cfg := dataplane.Config{
		Rules: []dataplane.Rule{
			{ID: lbA + "/loadbalancingrules/web", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 8080},
			{ID: lbA + "/loadbalancingrules/dns", Frontend: fe, Protocol: dataplane.All, FrontendPort: 53},
			{ID: lbA + "/loadbalancingrules/ha", Frontend: fe, Protocol: dataplane.All}, // HA ports: no port to listen on
			{ID: lbA + "/loadbalancingrules/int", Frontend: dataplane.Frontend{IP: netip.MustParseAddr("10.0.0.9"), Internal: true}, Protocol: dataplane.TCP, FrontendPort: 80},
		},
		NATRules: []dataplane.NATRule{{ID: lbA + "/inboundnatrules/ssh.0", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 50000}},
	}
	fws, owners := forwardsOf(cfg, m)
	var got []string
	for _, f := range fws {
		got = append(got, f.String())
	}
	want := []string{
		"tcp 127.77.0.4:50000 → 198.18.0.4:50000",
		"tcp 127.77.0.4:53 → 198.18.0.4:53",
		"tcp 127.77.0.4:8080 → 198.18.0.4:8080",
		"udp 127.77.0.4:53 → 198.18.0.4:53",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("forwards:\n got %q\nwant %q", got, want)
	}
	if o := owners[fws[2]]; len(o) != 1 || !strings.HasSuffix(o[0].rule, "/web") || o[0].frontend != fe.ID {
		t.Errorf("owners of %s = %+v", fws[2], o)
	}
}

// fakeEngine records applies and fails with err.
type fakeEngine struct {
	applied []dataplane.Config
	err     error
}

func (f *fakeEngine) Apply(_ context.Context, cfg dataplane.Config) error {
	f.applied = append(f.applied, cfg)
	return f.err
}
func (f *fakeEngine) SetHealth(context.Context, dataplane.Health) error { return nil }
func (f *fakeEngine) Close() error                                      { return nil }

func TestProxyLimits(t *testing.T) {
	fe := dataplane.Frontend{ID: lbA + "/frontendipconfigurations/fe", IP: netip.MustParseAddr("127.77.0.4")}
	cfg := dataplane.Config{
		Rules: []dataplane.Rule{
			{ID: lbA + "/loadbalancingrules/web", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 80},
			{ID: lbA + "/loadbalancingrules/ha", Frontend: fe, Protocol: dataplane.All},
			{ID: lbA + "/loadbalancingrules/float", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 81, FloatingIP: true},
		},
		Outbound: []dataplane.SNATAllocation{
			{RuleID: lbA + "/outboundrules/egress", Frontend: fe, PortStart: 1024, PortEnd: 2047},
			{RuleID: lbA + "/outboundrules/egress", Frontend: fe, PortStart: 2048, PortEnd: 3071},
			{RuleID: lbA + "/loadbalancingrules/web", Frontend: fe, PortStart: 3072, PortEnd: 4095}, // implicit: no advisory
		},
		InstanceIPs: []dataplane.InstancePublicIP{{PublicIP: netip.MustParseAddr("127.77.1.1")}},
	}
	inner := &fakeEngine{}
	e := &proxyLimits{Engine: inner}
	err := e.Apply(context.Background(), cfg)
	var ae *dataplane.ApplyError
	if !errors.As(err, &ae) || len(ae.Rules) != 1 || !strings.HasSuffix(ae.Rules[0].RuleID, "/ha") || ae.Rules[0].Reason != ReasonNotSupportedInProxyMode {
		t.Fatalf("Apply = %v, want the HA-ports rule refused with %s", err, ReasonNotSupportedInProxyMode)
	}
	if len(inner.applied) != 1 {
		t.Fatal("the inner engine did not get the Config")
	}
	adv := e.Advisories()
	if len(adv) != 1 || !strings.HasSuffix(adv[0].RuleID, "/outboundrules/egress") {
		t.Errorf("advisories = %+v, want the outbound rule once", adv)
	}
	lim := e.limits()
	for _, k := range []string{"haPortsRules", "floatingIPRules", "instancePublicIPs", "outboundSNAT"} {
		if lim[k] == "" {
			t.Errorf("limits lack %s: %v", k, lim)
		}
	}
	// The engine's own rule errors are kept beside the refusals.
	inner.err = &dataplane.ApplyError{Rules: []dataplane.RuleError{{RuleID: lbA + "/loadbalancingrules/web", Reason: dataplane.ReasonPortInUse}}}
	if err := e.Apply(context.Background(), cfg); !errors.As(err, &ae) || len(ae.Rules) != 2 {
		t.Errorf("Apply with an engine failure = %v, want both rules", err)
	}
	// A Config the mode carries whole applies cleanly.
	inner.err = nil
	if err := e.Apply(context.Background(), dataplane.Config{Rules: cfg.Rules[:1]}); err != nil {
		t.Errorf("Apply of a plain rule = %v", err)
	}
	if len(e.Advisories()) != 0 || len(e.limits()) != 0 {
		t.Errorf("stale advisories %v / limits %v", e.Advisories(), e.limits())
	}
}

func TestRootlessEngineMapsAndForwards(t *testing.T) {
	m, _ := newAddrMap(netip.MustParsePrefix("127.77.0.0/16"))
	inner := &fakeEngine{}
	fwd := rootless.NewForwarder(nil, nil)
	e := newRootlessEngine(inner, m, fwd, nil)
	defer e.Close()
	fe := dataplane.Frontend{ID: lbA + "/frontendipconfigurations/fe", IP: netip.MustParseAddr("127.77.0.4")}
	cfg := dataplane.Config{Rules: []dataplane.Rule{{ID: lbA + "/loadbalancingrules/web", Frontend: fe, Protocol: dataplane.TCP, FrontendPort: 18080}}}
	inner.err = &dataplane.ApplyError{Rules: []dataplane.RuleError{{RuleID: cfg.Rules[0].ID, Listen: netip.MustParseAddrPort("198.18.0.4:18080"), Reason: dataplane.ReasonOther}}}
	err := e.Apply(context.Background(), cfg)
	var ae *dataplane.ApplyError
	if !errors.As(err, &ae) || ae.Rules[0].Listen.String() != "127.77.0.4:18080" {
		t.Errorf("Apply = %v, want the engine's error with the API's address", err)
	}
	if got := inner.applied[0].Rules[0].Frontend.IP.String(); got != "198.18.0.4" {
		t.Errorf("the kernel engine got frontend %s, want 198.18.0.4", got)
	}
	if open := fwd.Open(); len(open) != 1 || open[0].String() != "tcp 127.77.0.4:18080 → 198.18.0.4:18080" {
		t.Errorf("forwards in force = %v", open)
	}
	inner.err = nil
	if err := e.Apply(context.Background(), dataplane.Config{}); err != nil || len(fwd.Open()) != 0 {
		t.Errorf("after the rule left: %v, forwards %v", err, fwd.Open())
	}
}
