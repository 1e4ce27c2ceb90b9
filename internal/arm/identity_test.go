package arm_test

import (
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"
)

// TestAzidentityManagedIdentity drives azidentity's managed-identity
// credential (App Service protocol: IDENTITY_ENDPOINT + IDENTITY_HEADER)
// against the node's MSI endpoint and uses the token with the SDK.
func TestAzidentityManagedIdentity(t *testing.T) {
	n := startTestNode(t)
	t.Setenv("IDENTITY_ENDPOINT", n.Endpoint.MSIEndpoint)
	t.Setenv("IDENTITY_HEADER", n.Endpoint.IdentityHeader)
	cred, err := azidentity.NewManagedIdentityCredential(&azidentity.ManagedIdentityCredentialOptions{
		ClientOptions: policy.ClientOptions{Transport: n.client},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := testCtx(t)
	c, err := armresources.NewResourceGroupsClient(n.sub, cred, n.options)
	if err != nil {
		t.Fatal(err)
	}
	if ex, err := c.CheckExistence(ctx, "missing", nil); err != nil || ex.Success {
		t.Fatalf("request with managed-identity token: %v %v", err, ex.Success)
	}
}
