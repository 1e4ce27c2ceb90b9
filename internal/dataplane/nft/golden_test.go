package nft

// Address plan: public frontends 198.18.100.10/.11, internal frontend
// 198.19.1.100, instances 198.19.1.4-.6, instance public IP 198.18.100.50.

import (
	"flag"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nimbus/internal/dataplane"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden")

func goldenConfig() dataplane.Config {
	pub := dataplane.Frontend{ID: "fe/pub", IP: netip.MustParseAddr("198.18.100.10")}
	pub2 := dataplane.Frontend{ID: "fe/pub2", IP: netip.MustParseAddr("198.18.100.11")}
	ilb := dataplane.Frontend{ID: "fe/ilb", IP: netip.MustParseAddr("198.19.1.100"), Internal: true}
	var bs []dataplane.Backend
	for i, n := range []string{"vm0", "vm1", "vm2"} {
		ip := netip.AddrFrom4([4]byte{198, 19, 1, byte(4 + i)})
		bs = append(bs, dataplane.Backend{ID: "nic/" + n, IP: ip, DialIP: ip})
	}
	return dataplane.Config{
		Rules: []dataplane.Rule{
			{ID: "rule/http", Frontend: pub, Protocol: dataplane.TCP, FrontendPort: 80, BackendPort: 8080, ProbeID: "probe/1", Backends: bs, TCPReset: true},
			{ID: "rule/dns", Frontend: pub, Protocol: dataplane.UDP, FrontendPort: 53, BackendPort: 53, Distribution: dataplane.SourceIPProtocol, Backends: bs},
			{ID: "rule/ssh", Frontend: pub, Protocol: dataplane.TCP, FrontendPort: 2222, BackendPort: 22, Distribution: dataplane.SourceIP, IdleTimeout: 30 * time.Minute, Backends: bs[:2]},
			{ID: "rule/ha", Frontend: ilb, Protocol: dataplane.All, Backends: bs[1:]},
			{ID: "rule/float", Frontend: pub2, Protocol: dataplane.TCP, FrontendPort: 443, BackendPort: 8443, FloatingIP: true, Backends: bs},
		},
		NATRules: []dataplane.NATRule{
			{ID: "nat/0", Frontend: pub, Protocol: dataplane.TCP, FrontendPort: 50000, BackendPort: 22, Backend: bs[0]},
			{ID: "nat/1", Frontend: pub, Protocol: dataplane.TCP, FrontendPort: 50001, BackendPort: 22, Backend: bs[1], FloatingIP: true},
		},
		Outbound: []dataplane.SNATAllocation{
			{RuleID: "out/1", Frontend: pub, Protocol: dataplane.All, Backend: bs[0], PortStart: 1024, PortEnd: 2047},
			{RuleID: "out/1", Frontend: pub, Protocol: dataplane.All, Backend: bs[1], PortStart: 2048, PortEnd: 3071},
		},
		InstanceIPs: []dataplane.InstancePublicIP{{PublicIP: netip.MustParseAddr("198.18.100.50"), Backend: bs[2]}},
	}
}

// securityConfig is goldenConfig with its public frontend Standard and the
// instances behind a subnet group (HTTP from two adjacent prefixes and an
// ASG-like host list, a deny on 22 from the Internet, Azure's defaults)
// and vm2 behind a NIC group too.
func securityConfig() dataplane.Config {
	cfg := goldenConfig()
	for i := range cfg.Rules {
		cfg.Rules[i].Frontend.Secure = !cfg.Rules[i].Frontend.Internal
	}
	for i := range cfg.NATRules {
		cfg.NATRules[i].Frontend.Secure = true
	}
	cfg.InstanceIPs[0].Secure = true
	cfg.Security = goldenSecurity(cfg)
	return cfg
}

func goldenSecurity(cfg dataplane.Config) dataplane.Security {
	any := dataplane.AddressSet{Tag: dataplane.TagAny}
	pfx := func(ss ...string) dataplane.AddressSet {
		var a dataplane.AddressSet
		for _, s := range ss {
			a.Prefixes = append(a.Prefixes, netip.MustParsePrefix(s))
		}
		return a
	}
	defaults := func(g string) []dataplane.SecurityRule {
		vn := dataplane.AddressSet{Tag: dataplane.TagVirtualNetwork}
		return []dataplane.SecurityRule{
			{ID: g + "/defaultsecurityrules/allowvnetinbound", Priority: 65000, Direction: dataplane.Inbound, Allow: true, Source: vn, Destination: vn},
			{ID: g + "/defaultsecurityrules/allowazureloadbalancerinbound", Priority: 65001, Direction: dataplane.Inbound, Allow: true,
				Source: dataplane.AddressSet{Tag: dataplane.TagAzureLoadBalancer}, Destination: any},
			{ID: g + "/defaultsecurityrules/denyallinbound", Priority: 65500, Direction: dataplane.Inbound, Source: any, Destination: any},
			{ID: g + "/defaultsecurityrules/allowvnetoutbound", Priority: 65000, Direction: dataplane.Outbound, Allow: true, Source: vn, Destination: vn},
			{ID: g + "/defaultsecurityrules/allowinternetoutbound", Priority: 65001, Direction: dataplane.Outbound, Allow: true,
				Source: any, Destination: dataplane.AddressSet{Tag: dataplane.TagInternet}},
			{ID: g + "/defaultsecurityrules/denyalloutbound", Priority: 65500, Direction: dataplane.Outbound, Source: any, Destination: any},
		}
	}
	sub := "nsg/subnet"
	subRules := append([]dataplane.SecurityRule{
		{ID: sub + "/securityrules/http", Priority: 100, Direction: dataplane.Inbound, Allow: true, Protocol: dataplane.ProtoTCP,
			Source: pfx("198.18.200.0/24", "198.18.201.0/24", "198.18.200.7/32"), Destination: any,
			DestinationPorts: []dataplane.PortRange{{First: 8080, Last: 8080}, {First: 8443, Last: 8443}, {First: 8000, Last: 8079}}},
		{ID: sub + "/securityrules/nossh", Priority: 200, Direction: dataplane.Inbound, Source: dataplane.AddressSet{Tag: dataplane.TagInternet},
			Destination: any, DestinationPorts: []dataplane.PortRange{{First: 22, Last: 22}}},
	}, defaults(sub)...)
	dataplane.SortSecurityRules(subRules)
	nic := "nsg/nic"
	nicRules := append([]dataplane.SecurityRule{
		{ID: nic + "/securityrules/web-only", Priority: 100, Direction: dataplane.Outbound, Protocol: dataplane.ProtoUDP,
			Source: any, Destination: pfx("198.18.250.1/32")},
	}, defaults(nic)...)
	dataplane.SortSecurityRules(nicRules)
	sec := dataplane.Security{Groups: []dataplane.SecurityGroup{{ID: nic, Rules: nicRules}, {ID: sub, Rules: subRules}}}
	vnet := []netip.Prefix{netip.MustParsePrefix("198.19.0.0/16")}
	for _, b := range cfg.Rules[0].Backends {
		in := dataplane.InterfaceSecurity{ID: b.ID, IP: b.IP, VirtualNetwork: vnet, SubnetGroup: sub}
		if b.ID == "nic/vm2" {
			in.NICGroup = nic
		}
		sec.Interfaces = append(sec.Interfaces, in)
	}
	return sec
}

func TestGolden(t *testing.T) {
	marks := map[netip.Addr]uint32{}
	opts := compileOptions{
		table:    DefaultTable,
		withText: true,
		uplink:   "nimbus0-lb",
		slotSize: func(string, int) uint64 { return 13 },
		floatMark: func(ip netip.Addr) uint32 {
			if _, ok := marks[ip]; !ok {
				marks[ip] = uint32(len(marks) + 1)
			}
			return floatTag | marks[ip]
		},
	}
	full := goldenConfig()
	tests := []struct {
		name   string
		cfg    dataplane.Config
		health dataplane.Health
	}{
		{"empty", dataplane.Config{}, nil},
		{"full", full, nil},
		{"vm1-down", full, dataplane.Health{{ProbeID: "probe/1", BackendID: "nic/vm1"}: false}},
		{"security", securityConfig(), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := compile(tc.cfg, tc.health, opts).text()
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update)", err)
			}
			if got != string(want) {
				t.Errorf("ruleset differs from %s (run with -update to accept):\n%s", path, diffLines(string(want), got))
			}
		})
	}
}

func TestCompileDeterministic(t *testing.T) {
	opts := compileOptions{table: DefaultTable, uplink: "up", withText: true}
	cfg := goldenConfig()
	a := compile(cfg, nil, opts).text()
	// Reversed input order must not matter.
	rev := goldenConfig()
	for i, j := 0, len(rev.Rules)-1; i < j; i, j = i+1, j-1 {
		rev.Rules[i], rev.Rules[j] = rev.Rules[j], rev.Rules[i]
	}
	if b := compile(rev, nil, opts).text(); a != b {
		t.Errorf("rule order changed the ruleset:\n%s", diffLines(a, b))
	}
}

func TestHealthChangeIsElementsOnly(t *testing.T) {
	opts := compileOptions{table: DefaultTable, uplink: "up", withText: true}
	cfg := goldenConfig()
	up := compile(cfg, nil, opts)
	down := compile(cfg, dataplane.Health{{ProbeID: "probe/1", BackendID: "nic/vm1"}: false}, opts)
	if up.structure() != down.structure() {
		t.Fatal("a health change altered the table structure")
	}
	if up.text() == down.text() {
		t.Fatal("a health change altered no element")
	}
}

func diffLines(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	for i := 0; i < len(w) || i < len(g); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			b.WriteString("line " + itoa(i+1) + ":\n  want: " + wl + "\n  got:  " + gl + "\n")
		}
	}
	return b.String()
}

func itoa(i int) string {
	const digits = "0123456789"
	if i < 10 {
		return digits[i : i+1]
	}
	return itoa(i/10) + digits[i%10:i%10+1]
}

func TestSlotTableSize(t *testing.T) {
	tests := []struct {
		backends int
		want     uint64
	}{{0, 251}, {1, 251}, {3, 509}, {10, 1021}, {100, 16381}, {1000, 65537}, {5000, 65537}}
	for _, tc := range tests {
		if got := SlotTableSize(tc.backends); got != tc.want {
			t.Errorf("SlotTableSize(%d) = %d, want %d", tc.backends, got, tc.want)
		}
	}
}
