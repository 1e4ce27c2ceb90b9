package dptest

import (
	"net/netip"
	"testing"
	"time"

	"nimbus/internal/dataplane"
	"nimbus/internal/poll"
)

// The network security scenarios: a load-balancing rule over two backends
// whose NICs network security groups guard, driven from the clients'
// sockets. The backends' virtual network is their own two addresses, so
// every client is Internet.

const (
	secSubnet = "/nsg/subnet"
	secNIC    = "/nsg/nic"
)

// secRule is an inbound TCP rule on the backends' port from src.
func secRule(id string, prio int32, allow bool, src dataplane.AddressSet, port uint16) dataplane.SecurityRule {
	return dataplane.SecurityRule{ID: id, Priority: prio, Direction: dataplane.Inbound, Allow: allow, Protocol: dataplane.ProtoTCP,
		Source: src, Destination: dataplane.AddressSet{Tag: dataplane.TagAny}, DestinationPorts: []dataplane.PortRange{{First: port, Last: port}}}
}

// secGroup is a group with rules and Azure's inbound defaults.
func secGroup(id string, flush bool, rules ...dataplane.SecurityRule) dataplane.SecurityGroup {
	any := dataplane.AddressSet{Tag: dataplane.TagAny}
	vn := dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}
	all := append(append([]dataplane.SecurityRule(nil), rules...),
		dataplane.SecurityRule{ID: id + "/allowvnetinbound", Priority: 65000, Direction: dataplane.Inbound, Allow: true, Source: vn, Destination: vn},
		dataplane.SecurityRule{ID: id + "/allowazureloadbalancerinbound", Priority: 65001, Direction: dataplane.Inbound, Allow: true,
			Source: dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}, Destination: any},
		dataplane.SecurityRule{ID: id + "/denyallinbound", Priority: 65500, Direction: dataplane.Inbound, Source: any, Destination: any},
		dataplane.SecurityRule{ID: id + "/allowinternetoutbound", Priority: 65001, Direction: dataplane.Outbound, Allow: true,
			Source: any, Destination: dataplane.AddressSet{Tag: dataplane.TagInternet}},
	)
	dataplane.SortSecurityRules(all)
	return dataplane.SecurityGroup{ID: id, FlushConnection: flush, Rules: all}
}

func host(ip netip.Addr) dataplane.AddressSet {
	return dataplane.AddressSet{Prefixes: []netip.Prefix{netip.PrefixFrom(ip, ip.BitLen())}}
}

// guard puts the backends of r behind the given subnet and NIC groups.
func (e *env) guard(r dataplane.Rule, subnet, nic string, groups ...dataplane.SecurityGroup) dataplane.Security {
	var vnet []netip.Prefix
	for _, b := range r.Backends {
		vnet = append(vnet, netip.PrefixFrom(b.IP, b.IP.BitLen()))
	}
	s := dataplane.Security{Groups: groups}
	for _, b := range r.Backends {
		s.Interfaces = append(s.Interfaces, dataplane.InterfaceSecurity{ID: b.ID, IP: b.IP, DialIP: b.DialIP, VirtualNetwork: vnet,
			SubnetGroup: subnet, NICGroup: nic})
	}
	return s
}

// reaches reports whether client gets through to a backend (a denied flow
// is dropped by the kernel engine and reset by the userspace engine).
func (e *env) reaches(client int) bool {
	c, err := e.f.connect(e.ctx, client, e.fe(0))
	if err != nil {
		return false
	}
	c.Close()
	return true
}

func (e *env) expect(t *testing.T, what string, client int, want bool) {
	t.Helper()
	if got := e.reaches(client); got != want {
		t.Fatalf("%s: client %d reaches a backend = %v, want %v", what, client, got, want)
	}
}

// applyUntil applies cfg and waits until client's reachability is want
// (a listener just opened may take a moment).
func (e *env) applyUntil(t *testing.T, cfg dataplane.Config, client int, want bool, what string) {
	t.Helper()
	e.apply(t, cfg)
	if want {
		poll.Until(t, 3*time.Second, what, func() error {
			if !e.reaches(client) {
				return errNotYet
			}
			return nil
		})
		return
	}
	e.expect(t, what, client, false)
}

type errString string

func (e errString) Error() string { return string(e) }

const errNotYet = errString("not yet")

func testNetworkSecurity(t *testing.T, h *Harness) {
	if !h.NetworkSecurity {
		t.Skip("this engine does not enforce network security groups yet")
	}
	t.Run("SecureByDefault", func(t *testing.T) {
		e := newEnv(t, h, 2)
		r := e.rule("secure", 0, dataplane.TCP, 2)
		// Basic (not Secure) without groups: open.
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}}, 0, true, "a Basic frontend without NSG")
		// Standard: closed without an NSG.
		r.Frontend.Secure = true
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}}, 0, false, "a Standard frontend without NSG")
		// An NSG that allows the port opens it.
		g := secGroup(secSubnet, false, secRule(secSubnet+"/allow", 100, true, dataplane.AddressSet{Tag: dataplane.TagInternet}, e.f.port))
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 0, true, "allowed by the subnet's NSG")
		// The default rules alone deny the Internet.
		g = secGroup(secSubnet, false)
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 0, false, "denied by DenyAllInBound")
		// An NSG applies to a Basic frontend too.
		r.Frontend.Secure = false
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 0, false, "a Basic frontend with a denying NSG")
	})
	t.Run("PriorityAndPrefixes", func(t *testing.T) {
		e := newEnv(t, h, 2)
		r := e.rule("prio", 0, dataplane.TCP, 2)
		r.Frontend.Secure = true
		c0, c1 := h.ClientIP(0), h.ClientIP(1)
		g := secGroup(secSubnet, false,
			secRule(secSubnet+"/deny-c1", 100, false, host(c1), e.f.port),
			secRule(secSubnet+"/allow-all", 200, true, dataplane.AddressSet{Tag: dataplane.TagAny}, e.f.port))
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 0, true, "client 0 allowed")
		e.expect(t, "client 1 denied by the rule at 100, before the allow at 200", 1, false)
		// Swap the priorities: the allow comes first.
		g = secGroup(secSubnet, false,
			secRule(secSubnet+"/deny-c1", 300, false, host(c1), e.f.port),
			secRule(secSubnet+"/allow-all", 200, true, dataplane.AddressSet{Tag: dataplane.TagAny}, e.f.port))
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 1, true, "client 1 allowed first")
		// A rule for another port does not match.
		g = secGroup(secSubnet, false, secRule(secSubnet+"/other", 100, true, host(c0), e.f.port+1))
		e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", g)}, 0, false, "a rule for another port")
	})
	t.Run("SubnetThenNIC", func(t *testing.T) {
		e := newEnv(t, h, 2)
		r := e.rule("layers", 0, dataplane.TCP, 2)
		r.Frontend.Secure = true
		anyAddr := dataplane.AddressSet{Tag: dataplane.TagAny}
		sub := secGroup(secSubnet, false, secRule(secSubnet+"/allow", 100, true, anyAddr, e.f.port))
		nicDeny := secGroup(secNIC, false, secRule(secNIC+"/deny-c0", 100, false, host(h.ClientIP(0)), e.f.port),
			secRule(secNIC+"/allow", 200, true, anyAddr, e.f.port))
		cfg := dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, secNIC, sub, nicDeny)}
		e.applyUntil(t, cfg, 1, true, "both groups allow client 1")
		e.expect(t, "the NIC's group denies client 0 after the subnet's allowed it", 0, false)
		subDeny := secGroup(secSubnet, false)
		nicAllow := secGroup(secNIC, false, secRule(secNIC+"/allow", 100, true, anyAddr, e.f.port))
		cfg = dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, secNIC, subDeny, nicAllow)}
		e.applyUntil(t, cfg, 1, false, "the subnet's group denies before the NIC's allows")
	})
	t.Run("StatefulAndFlush", func(t *testing.T) {
		for _, flush := range []bool{false, true} {
			name := "Kept"
			if flush {
				name = "FlushConnection"
			}
			t.Run(name, func(t *testing.T) {
				e := newEnv(t, h, 2)
				r := e.rule("stateful", 0, dataplane.TCP, 2)
				r.Frontend.Secure = true
				allow := secGroup(secSubnet, flush, secRule(secSubnet+"/allow", 100, true, dataplane.AddressSet{Tag: dataplane.TagAny}, e.f.port))
				e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", allow)}, 0, true, "allowed")
				c, err := e.f.connect(e.ctx, 0, e.fe(0))
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				// Return traffic of the allowed flow passes although no
				// rule allows the backend's port as a source.
				if err := c.echo("before"); err != nil {
					t.Fatalf("echo on an allowed flow: %v", err)
				}
				e.applyUntil(t, dataplane.Config{Rules: []dataplane.Rule{r}, Security: e.guard(r, secSubnet, "", secGroup(secSubnet, flush))}, 0, false,
					"a new flow after the allowing rule is removed")
				err = c.echo("after")
				if flush && err == nil {
					t.Fatal("flushConnection: the established flow survived the rule's removal")
				}
				if !flush && err != nil {
					t.Fatalf("an established flow was interrupted by a rule change: %v", err)
				}
			})
		}
	})
}
