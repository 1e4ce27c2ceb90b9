package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/auth"
)

// TestAzidentityManagedIdentity drives azidentity's managed-identity
// credential (App Service protocol: IDENTITY_ENDPOINT + IDENTITY_HEADER)
// against the node's MSI endpoint and uses the token with the SDK.
func TestAzidentityManagedIdentity(t *testing.T) {
	n := armtest.Start(t)
	t.Setenv("IDENTITY_ENDPOINT", n.Endpoint.MSIEndpoint)
	t.Setenv("IDENTITY_HEADER", n.Endpoint.IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: n.Client},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := armtest.Ctx(t)
	c, err := armresources.NewResourceGroupsClient(n.Sub, cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	if ex, err := c.CheckExistence(ctx, "missing", nil); err != nil || ex.Success {
		t.Fatalf("request with managed-identity token: %v %v", err, ex.Success)
	}
}

// TestAzidentityClientSecret signs in as nimbus's service principal through
// the AAD-style authority (no instance discovery) and uses the token.
func TestAzidentityClientSecret(t *testing.T) {
	n := armtest.Start(t)
	opts := &azidentity.ClientSecretCredentialOptions{DisableInstanceDiscovery: true,
		ClientOptions: policy.ClientOptions{Transport: n.Client, Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: n.Base + "/"}}}
	cred, err := azidentity.NewClientSecretCredential(n.Endpoint.TenantID, auth.ObjectID, n.Endpoint.IdentityHeader, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx := armtest.Ctx(t)
	c, err := armresources.NewResourceGroupsClient(n.Sub, cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	if ex, err := c.CheckExistence(ctx, "missing", nil); err != nil || ex.Success {
		t.Fatalf("request with client-secret token: %v %v", err, ex.Success)
	}
	bad, err := azidentity.NewClientSecretCredential(n.Endpoint.TenantID, auth.ObjectID, "wrong", opts)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bad.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{"https://management.core.windows.net//.default"}}); err == nil {
		t.Fatal("wrong secret accepted")
	}
}
