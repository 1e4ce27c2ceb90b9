package nft

import (
	"github.com/google/nftables"
)

// The base chains are fixed: every per-item value lives in the maps, so
// most changes are element updates. Each chain lists the rules of the
// concerns it serves, in order; the rules themselves are next to the
// elements they read (compile_*.go).

// baseChains are the hooked chains, in the table's order.
func baseChains(o compileOptions) []*chainSpec {
	return []*chainSpec{mangleChain(), preroutingChain(), outputChain(), postroutingChain(o.uplink), forwardChain(), inputChain()}
}

// mangleChain runs after conntrack and before NAT: ct timeouts must be set
// here (priority raw is too early).
func mangleChain() *chainSpec {
	rules := idleTimeoutRules()
	rules = append(rules, resetIdleRule(), restoreFloatMarkRule())
	return &chainSpec{
		name: chainMangle, comment: "after conntrack, before NAT: ct timeouts must be set here (priority raw is too early)",
		hook: nftables.ChainHookPrerouting, hookText: "prerouting", prio: nftables.ChainPriorityMangle, prioText: "mangle", typ: nftables.ChainTypeFilter,
		rules: rules,
	}
}

// preroutingChain dispatches the first packet of a flow: LB rules, HA
// ports, NAT rules (floating IP marks first), instance public IPs.
func preroutingChain() *chainSpec {
	return &chainSpec{
		name: chainPrerouting, comment: "nat sees only the first packet of a flow: conntrack pins the rest",
		hook: nftables.ChainHookPrerouting, hookText: "prerouting", prio: nftables.ChainPriorityNATDest, prioText: "dstnat", typ: nftables.ChainTypeNAT,
		rules: []ruleSpec{dispatchRule(), haDispatchRule(), natMarkRule(), natRule(), instanceIPInRule()},
	}
}

// outputChain does the same for connections nimbus itself opens from its
// namespace (hostnet.Net's dialer), without the floating-IP NAT marks.
func outputChain() *chainSpec {
	return &chainSpec{
		name: chainOutput, comment: "frontends reached from nimbus's own namespace",
		hook: nftables.ChainHookOutput, hookText: "output", prio: nftables.ChainPriorityNATDest, prioText: "dstnat", typ: nftables.ChainTypeNAT,
		rules: []ruleSpec{dispatchRule(), haDispatchRule(), natRule(), instanceIPInRule()},
	}
}

// postroutingChain SNATs: through the uplink (when there is one) instance
// public IPs first, then outbound port blocks; then hairpin.
func postroutingChain(uplink string) *chainSpec {
	post := &chainSpec{
		name: chainPostrouting, comment: "outbound SNAT and hairpin",
		hook: nftables.ChainHookPostrouting, hookText: "postrouting", prio: nftables.ChainPriorityNATSource, prioText: "srcnat", typ: nftables.ChainTypeNAT,
	}
	if uplink != "" {
		post.rules = append(post.rules, instanceIPOutRule(uplink), outboundSNATRule(uplink))
	}
	post.rules = append(post.rules, hairpinRules()...)
	return post
}

// forwardChain answers late packets of TCP-reset flows, lets floating-IP
// packets through and drops what reaches a frontend and no rule took.
func forwardChain() *chainSpec {
	rules := invalidTCPRules()
	rules = append(rules, acceptFloatingRule())
	rules = append(rules, securityRules()...)
	rules = append(rules, dropFrontendsRule())
	return &chainSpec{
		name: chainForward, comment: "unused frontend ports are dropped silently, as Azure does",
		hook: nftables.ChainHookForward, hookText: "forward", prio: nftables.ChainPriorityFilter, prioText: "filter", typ: nftables.ChainTypeFilter,
		rules: rules,
	}
}

// inputChain drops the same for frontends local to nimbus's namespace.
func inputChain() *chainSpec {
	return &chainSpec{
		name: chainInput,
		hook: nftables.ChainHookInput, hookText: "input", prio: nftables.ChainPriorityFilter, prioText: "filter", typ: nftables.ChainTypeFilter,
		rules: []ruleSpec{dropFrontendsRule()},
	}
}
