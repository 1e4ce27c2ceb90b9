package network_test

import (
	"testing"

	"nimbus/internal/arm/armtest"
)

// networkGaps are the network spec examples nimbus does not answer in
// full, and why.
var networkGaps = map[string]string{
	"InboundNatRuleCreate.json":                                            "backendIPConfiguration is a NIC the example has and this node does not",
	"LBBackendAddressPoolWithBackendAddressesPut.json":                     "the answer lists rules of the example's load balancer, not of the one this test made",
	"LoadBalancerCreateGlobalTier.json":                                    "the answer lists NAT rules the request does not have",
	"LoadBalancerCreateWithOutboundRules.json":                             "the answer gives a public frontend private-address fields",
	"LoadBalancerCreateGatewayLoadBalancerProviderWithOneBackendPool.json": "Gateway load balancers are not supported",
	"LoadBalancerCreateGatewayLoadBalancerProviderWithTwoBackendPool.json": "Gateway load balancers are not supported",
	"PublicIpAddressCreateCustomizedValues.json":                           "ipConfiguration is a NIC the example has; zones the request did not send",
	"PublicIpAddressCreateDefaults.json":                                   "ipConfiguration is a NIC the example has and this node does not",
	"PublicIpAddressCreateDns.json":                                        "ipConfiguration is a NIC the example has and this node does not",
	"PublicIpAddressCreateDnsWithDomainNameLabelScope.json":                "ipConfiguration is a NIC the example has and this node does not",
	"PublicIpPrefixCreateCustomizedValues.json":                            "public IP prefixes are not served",
	"PublicIpPrefixCreateDefaults.json":                                    "public IP prefixes are not served",
	"PublicIpPrefixCreateDefaultsStandardV2Sku.json":                       "public IP prefixes are not served",
	"PublicIpAddressCreateDefaultsStandardV2Sku.json":                      "ipConfiguration is a NIC the example has and this node does not",
	"SubnetCreateServiceEndpoint.json":                                     "service endpoint locations are Azure's regions for the service",
	"SubnetCreateServiceEndpointNetworkIdentifier.json":                    "service endpoint locations are Azure's regions for the service",
	"SubnetCreateWithDelegation.json":                                      "the generated request has no delegation, its answer has one",
	"SubnetCreateWithSharingScope.json":                                    "the generated request has no sharingScope, its answer has one",
	"VirtualNetworkCreateServiceEndpointPolicy.json":                       "location eastus2euap (a canary region) is not one nimbus lists",
	"VirtualNetworkCreateServiceEndpoints.json":                            "service endpoint locations are Azure's regions for the service",
	"VirtualNetworkCreateSubnetWithDelegation.json":                        "location westcentralus is not one nimbus lists",
	"VirtualNetworkCreateWithBgpCommunities.json":                          "regionalCommunity is Azure's value for the region",
	"VirtualNetworkCreateWithIpamPool.json":                                "address prefixes from an IPAM pool are not supported",
}

// TestSpecExamplesRoundTrip PUTs every network spec example (generated
// from the Azure SDK for Go's examples, which are the REST API spec's) and
// checks the GET answers every field of the example's answer.
func TestSpecExamplesRoundTrip(t *testing.T) {
	armtest.RunExamples(t, "testdata/arm-examples/sdk", "*.json", networkGaps)
}
