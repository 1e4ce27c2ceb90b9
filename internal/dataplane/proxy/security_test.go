package proxy

import (
	"context"
	"net"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/metrics"
)

// Address plan: frontend 127.88.24.1, backend 127.88.25.1, client 127.0.0.1.

// TestSecurityRuleHits: every new flow counts one hit of the rule that
// decided it in nimbus_security_rule_hits_total, a NAT rule's flows are
// evaluated like a load-balancing rule's, and a Standard frontend without
// any group counts under standard-sku-closed-without-nsg.
func TestSecurityRuleHits(t *testing.T) {
	ctx := context.Background()
	fe := lo(24, 1)
	be := echoServer(t, netip.AddrPortFrom(lo(25, 1), 0), "b0")
	web := tcpRule("/rules/web", fe, freePort(t, fe), be)
	web.Frontend.Secure = true
	nat := dataplane.NATRule{ID: "/nat/admin", Frontend: web.Frontend, Protocol: dataplane.TCP, FrontendPort: freePort(t, fe),
		BackendPort: be.Port(), Backend: web.Backends[0]}
	any := dataplane.AddressSet{Tag: dataplane.TagAny}
	g := dataplane.SecurityGroup{ID: "/nsg/web", Rules: []dataplane.SecurityRule{
		{ID: "/nsg/web/securityrules/deny-nat-client", Priority: 100, Direction: dataplane.Inbound, Protocol: dataplane.ProtoTCP,
			Source: dataplane.AddressSet{Prefixes: []netip.Prefix{netip.MustParsePrefix("127.0.0.2/32")}}, Destination: any},
		{ID: "/nsg/web/securityrules/allow", Priority: 200, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
			Source: any, Destination: any, DestinationPorts: []dataplane.PortRange{{First: be.Port(), Last: be.Port()}}},
	}}
	sec := dataplane.Security{Groups: []dataplane.SecurityGroup{g}, Interfaces: []dataplane.InterfaceSecurity{
		{ID: web.Backends[0].ID, IP: web.Backends[0].IP, SubnetGroup: g.ID}}}
	m := metrics.New()
	e := New(Options{Metrics: m})
	defer e.Close()
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{web}, NATRules: []dataplane.NATRule{nat}, Security: sec}); err != nil {
		t.Fatal(err)
	}
	reaches := func(port uint16, src string) bool {
		d := net.Dialer{Timeout: time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
		c, err := d.Dial("tcp", netip.AddrPortFrom(fe, port).String())
		if err != nil {
			return false
		}
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		buf := make([]byte, 3)
		n, _ := c.Read(buf)
		return n == 3
	}
	if !reaches(web.FrontendPort, "127.0.0.1") || !reaches(nat.FrontendPort, "127.0.0.1") {
		t.Fatal("allowed flows did not reach the backend")
	}
	if reaches(nat.FrontendPort, "127.0.0.2") {
		t.Fatal("a flow the NSG denies reached the backend through a NAT rule")
	}
	// Without the group, the Standard frontend is closed.
	if err := e.Apply(ctx, dataplane.Config{Rules: []dataplane.Rule{web}}); err != nil {
		t.Fatal(err)
	}
	if reaches(web.FrontendPort, "127.0.0.1") {
		t.Fatal("a Standard frontend without an NSG is open")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`nimbus_security_rule_hits_total{Access="Allow",NetworkSecurityGroup="web",SecurityRule="allow"} 2`,
		`nimbus_security_rule_hits_total{Access="Deny",NetworkSecurityGroup="web",SecurityRule="deny-nat-client"} 1`,
		`nimbus_security_rule_hits_total{Access="Deny",NetworkSecurityGroup="",SecurityRule="standard-sku-closed-without-nsg"} 1`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
