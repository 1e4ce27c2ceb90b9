// Command sdkquickstart is the README's Azure SDK for Go quick start, as a
// whole program: it signs in with nimbus's managed identity, creates a
// resource group, a Standard public IP and a load balancer with a rule,
// prints the frontend's address and deletes the group again. Run it while
// `nimbus serve` runs, as the user who owns nimbus's data directory:
//
//	go run ./examples/sdkquickstart
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log"
	"net/http"
	"os"
	"path/filepath"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// endpoint is the part of nimbus's endpoint.json a client needs.
type endpoint struct {
	Endpoint       string `json:"endpoint"`
	SubscriptionID string `json:"subscriptionId"`
	CAFile         string `json:"caFile"`
	MSIEndpoint    string `json:"msiEndpoint"`
	IdentityHeader string `json:"identityHeader"`
	Audience       string `json:"audience"`
}

func main() {
	ctx := context.Background()
	dataDir := os.Getenv("NIMBUS_DATA_DIR")
	if dataDir == "" {
		home, _ := os.UserHomeDir()
		dataDir = filepath.Join(home, ".local", "share", "nimbus")
	}
	b, err := os.ReadFile(filepath.Join(dataDir, "endpoint.json"))
	if err != nil {
		log.Fatalf("is nimbus serve running? %v", err)
	}
	var ep endpoint
	if err := json.Unmarshal(b, &ep); err != nil {
		log.Fatal(err)
	}

	// nimbus's API is HTTPS with its own CA.
	pem, err := os.ReadFile(ep.CAFile)
	if err != nil {
		log.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}

	// The managed identity, as on an Azure VM or App Service: azidentity
	// reads IDENTITY_ENDPOINT and IDENTITY_HEADER.
	os.Setenv("IDENTITY_ENDPOINT", ep.MSIEndpoint)
	os.Setenv("IDENTITY_HEADER", ep.IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: azcore.ClientOptions{Transport: hc}})
	if err != nil {
		log.Fatal(err)
	}
	opts := &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: ep.Endpoint, Audience: ep.Audience}}},
		Transport: hc,
	}}

	groups, err := armresources.NewResourceGroupsClient(ep.SubscriptionID, cred, opts)
	if err != nil {
		log.Fatal(err)
	}
	pips, err := armnetwork.NewPublicIPAddressesClient(ep.SubscriptionID, cred, opts)
	if err != nil {
		log.Fatal(err)
	}
	lbs, err := armnetwork.NewLoadBalancersClient(ep.SubscriptionID, cred, opts)
	if err != nil {
		log.Fatal(err)
	}

	const rg, loc = "sdk-quickstart", "eastus"
	if _, err := groups.CreateOrUpdate(ctx, rg, armresources.ResourceGroup{Location: to.Ptr(loc)}, nil); err != nil {
		log.Fatal(err)
	}
	pp, err := pips.BeginCreateOrUpdate(ctx, rg, "web-ip", armnetwork.PublicIPAddress{
		Location: to.Ptr(loc),
		SKU:      &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{
			PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic)},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	pip, err := pp.PollUntilDone(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}

	lbID := fmt.Sprintf("/subscriptions/%s/resourceGroups/%s/providers/Microsoft.Network/loadBalancers/web-lb", ep.SubscriptionID, rg)
	lp, err := lbs.BeginCreateOrUpdate(ctx, rg, "web-lb", armnetwork.LoadBalancer{
		Location: to.Ptr(loc),
		SKU:      &armnetwork.LoadBalancerSKU{Name: to.Ptr(armnetwork.LoadBalancerSKUNameStandard)},
		Properties: &armnetwork.LoadBalancerPropertiesFormat{
			FrontendIPConfigurations: []*armnetwork.FrontendIPConfiguration{{Name: to.Ptr("fe"),
				Properties: &armnetwork.FrontendIPConfigurationPropertiesFormat{PublicIPAddress: &armnetwork.PublicIPAddress{ID: pip.ID}}}},
			BackendAddressPools: []*armnetwork.BackendAddressPool{{Name: to.Ptr("pool")}},
			Probes: []*armnetwork.Probe{{Name: to.Ptr("http"), Properties: &armnetwork.ProbePropertiesFormat{
				Protocol: to.Ptr(armnetwork.ProbeProtocolHTTP), Port: to.Ptr[int32](80), RequestPath: to.Ptr("/health")}}},
			LoadBalancingRules: []*armnetwork.LoadBalancingRule{{Name: to.Ptr("web"), Properties: &armnetwork.LoadBalancingRulePropertiesFormat{
				Protocol: to.Ptr(armnetwork.TransportProtocolTCP), FrontendPort: to.Ptr[int32](80), BackendPort: to.Ptr[int32](80),
				FrontendIPConfiguration: &armnetwork.SubResource{ID: to.Ptr(lbID + "/frontendIPConfigurations/fe")},
				BackendAddressPool:      &armnetwork.SubResource{ID: to.Ptr(lbID + "/backendAddressPools/pool")},
				Probe:                   &armnetwork.SubResource{ID: to.Ptr(lbID + "/probes/http")}}}},
		},
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	lb, err := lp.PollUntilDone(ctx, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("load balancer %s: frontend fe at %s, rule web on port 80\n", *lb.Name, *pip.Properties.IPAddress)

	dp, err := groups.BeginDelete(ctx, rg, nil)
	if err != nil {
		log.Fatal(err)
	}
	if _, err := dp.PollUntilDone(ctx, nil); err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted resource group", rg)
}
