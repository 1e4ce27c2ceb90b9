// Package network is nimbus's Microsoft.Network resource provider: load
// balancers and their child collections, public IP addresses, virtual
// networks and subnets, network security groups. It validates, defaults and
// stores them through Resource Manager's pipeline (internal/arm) and
// renders what Azure computes at read time (back-references, pool members,
// generated NAT rules); the controllers turn them into traffic.
package network

import (
	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// server is the provider's view of Resource Manager: the ARM server, whose
// pipeline (Apply, Remove, Load, Handle) the handlers use, and the source of
// load balancer membership.
type server struct {
	*arm.Server
	members MembershipSource
}

// Register adds Microsoft.Network to srv: its namespace, kinds and child
// routes. members answers which scale sets and instances use a load
// balancer (the compute provider's, or StoreMembership{} when nil). Call it
// once, before srv serves requests.
func Register(srv *arm.Server, members MembershipSource) {
	if members == nil {
		members = StoreMembership{}
	}
	s := &server{Server: srv, members: members}
	srv.RegisterNamespace("Microsoft.Network", Versions)
	registerLoadbalancer(s)
	registerNsg(s)
	registerAsg(s)
	registerPublicip(s)
	registerVnet(s)
	registerVnetIp(s)
}

// networkName is the network provider's naming rule for its top-level
// types (load balancers, public IPs, NSGs): 1 to 80 characters.
func networkName(name string) error {
	return resource.CheckNetworkName(name, 1, resource.MaxNetworkNameLen)
}
