package nft_test

import (
	"strings"
	"testing"

	"nimbus/internal/dataplane"
)

func TestLoadBalanceKeepsClientIP(t *testing.T) {
	e := newEnv(t, 3)
	cfg := dataplane.Config{Rules: []dataplane.Rule{
		lbRule("rule/http", publicFE(feIP), dataplane.TCP, 80, 8080, e.backends()),
		lbRule("rule/dns", publicFE(feIP), dataplane.UDP, 53, 8080, e.backends()),
	}}
	e.apply(t, cfg)
	counts := map[string]int{}
	for i := 0; i < 60; i++ {
		r := mustGet(t, e.Host, hp(feIP, 80))
		counts[r.name]++
		if !strings.HasPrefix(r.client, e.Net.HostAddr().String()+":") {
			t.Fatalf("backend saw client %q, want %s", r.client, e.Net.HostAddr())
		}
	}
	if len(counts) != 3 {
		t.Errorf("spread over %v, want all 3 backends", counts)
	}
	u := getUDP(t, e.Host, hp(feIP, 53))
	if !strings.HasPrefix(u.client, e.Net.HostAddr().String()+":") {
		t.Errorf("UDP backend saw client %q", u.client)
	}
}
