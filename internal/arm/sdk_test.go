package arm_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/resources/armresources"

	"nimbus/internal/arm/armtest"
)

// Address plan: public pool 127.77.0.0/16 (the default; first address
// 127.77.0.1); virtual networks 10.0.0.0/16 (private addresses never leave
// the store in these tests).

var poll = &runtime.PollUntilDoneOptions{Frequency: 200 * time.Millisecond}

func TestSDKResourceGroups(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	c, err := armresources.NewResourceGroupsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	created, err := c.CreateOrUpdate(ctx, "RG-One", armresources.ResourceGroup{Location: to.Ptr("East US"), Tags: map[string]*string{"env": to.Ptr("test")}}, nil)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	if *created.Name != "RG-One" || *created.Location != "eastus" || *created.Properties.ProvisioningState != "Succeeded" {
		t.Fatalf("create returned %+v", created.ResourceGroup)
	}
	got, err := c.Get(ctx, "rg-one", nil)
	if err != nil || *got.Name != "RG-One" || *got.Tags["env"] != "test" {
		t.Fatalf("get: %v %+v", err, got)
	}
	if ex, err := c.CheckExistence(ctx, "rg-one", nil); err != nil || !ex.Success {
		t.Fatalf("check existence: %v %v", err, ex.Success)
	}
	if ex, err := c.CheckExistence(ctx, "nope", nil); err != nil || ex.Success {
		t.Fatalf("check existence of missing group: %v %v", err, ex.Success)
	}
	upd, err := c.Update(ctx, "RG-One", armresources.ResourceGroupPatchable{Tags: map[string]*string{"env": to.Ptr("prod")}}, nil)
	if err != nil || *upd.Tags["env"] != "prod" {
		t.Fatalf("update: %v %+v", err, upd)
	}
	if _, err := c.CreateOrUpdate(ctx, "rg-two", armresources.ResourceGroup{Location: to.Ptr("westus")}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = c.CreateOrUpdate(ctx, "rg-two", armresources.ResourceGroup{Location: to.Ptr("eastus")}, nil)
	if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusConflict || re.ErrorCode != "InvalidResourceGroupLocation" {
		t.Fatalf("location change: %v", err)
	}
	var names []string
	for p := c.NewListPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range page.Value {
			names = append(names, *g.Name)
		}
	}
	if len(names) != 2 {
		t.Fatalf("list: %v", names)
	}
	poller, err := c.BeginDelete(ctx, "RG-One", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := poller.PollUntilDone(ctx, poll); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.Get(ctx, "RG-One", nil)
	if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusNotFound || re.ErrorCode != "ResourceGroupNotFound" {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestSDKProvidersAndGenericResources(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	n.Group("rg")
	if st, _, b := n.Do("PUT", n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip1")+"?api-version=2025-01-01", `{"location":"eastus"}`); st != 201 {
		t.Fatalf("pip: %d %s", st, b)
	}
	pc, err := armresources.NewProvidersClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	p, err := pc.Get(ctx, "Microsoft.Network", nil)
	if err != nil || *p.Namespace != "Microsoft.Network" || *p.RegistrationState != "Registered" || len(p.ResourceTypes) == 0 {
		t.Fatalf("provider: %v %+v", err, p)
	}
	rc, err := armresources.NewClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	filter := "resourceType eq 'Microsoft.Network/publicIPAddresses'"
	for pg := rc.NewListPager(&armresources.ClientListOptions{Filter: &filter}); pg.More(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			ids = append(ids, *r.ID)
		}
	}
	if len(ids) != 1 || ids[0] != n.RGPath("rg", "Microsoft.Network/publicIPAddresses/pip1") {
		t.Fatalf("resources: %v", ids)
	}
	ids = nil
	for pg := rc.NewListByResourceGroupPager("rg", nil); pg.More(); {
		page, err := pg.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Value {
			ids = append(ids, *r.ID)
		}
	}
	if len(ids) != 1 {
		t.Fatalf("group resources: %v", ids)
	}
}
