package network_test

import (
	"net/http"
	"net/netip"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/to"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/network/armnetwork/v7"

	"nimbus/internal/arm/armtest"
)

func TestSDKPublicIPAddresses(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	n.Group("rg")
	c, err := armnetwork.NewPublicIPAddressesClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	create := func(name string, pip armnetwork.PublicIPAddress) (armnetwork.PublicIPAddress, error) {
		p, err := c.BeginCreateOrUpdate(ctx, "rg", name, pip, nil)
		if err != nil {
			return armnetwork.PublicIPAddress{}, err
		}
		r, err := p.PollUntilDone(ctx, armtest.Poll)
		return r.PublicIPAddress, err
	}
	std := armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
		SKU:        &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameStandard)},
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodStatic)}}
	p1, err := create("pip1", std)
	if err != nil {
		t.Fatalf("create pip1: %v", err)
	}
	if *p1.Properties.IPAddress != "127.77.0.1" || *p1.Properties.ProvisioningState != armnetwork.ProvisioningStateSucceeded ||
		*p1.Properties.IdleTimeoutInMinutes != 4 || *p1.SKU.Tier != armnetwork.PublicIPAddressSKUTierRegional || p1.Etag == nil {
		t.Fatalf("pip1 = %+v %+v", p1, p1.Properties)
	}
	basic, err := create("pip2", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
		Properties: &armnetwork.PublicIPAddressPropertiesFormat{DNSSettings: &armnetwork.PublicIPAddressDNSSettings{DomainNameLabel: to.Ptr("web1")}}})
	if err != nil {
		t.Fatalf("create pip2: %v", err)
	}
	if *basic.Properties.IPAddress != "127.77.0.2" || *basic.SKU.Name != "Basic" || *basic.Properties.PublicIPAllocationMethod != "Dynamic" ||
		*basic.Properties.DNSSettings.Fqdn != "web1.eastus.cloudapp.azure.com" {
		t.Fatalf("pip2 = %+v", basic.Properties)
	}
	// Updating keeps the address and changes the etag.
	std.Properties.IdleTimeoutInMinutes = to.Ptr[int32](30)
	p1b, err := create("pip1", std)
	if err != nil || *p1b.Properties.IPAddress != "127.77.0.1" || *p1b.Properties.IdleTimeoutInMinutes != 30 || *p1b.Etag == *p1.Etag {
		t.Fatalf("update pip1: %v %+v", err, p1b.Properties)
	}
	tagged, err := c.UpdateTags(ctx, "rg", "pip1", armnetwork.TagsObject{Tags: map[string]*string{"a": to.Ptr("b")}}, nil)
	if err != nil || *tagged.Tags["a"] != "b" {
		t.Fatalf("update tags: %v", err)
	}
	for _, tc := range []struct {
		name string
		pip  armnetwork.PublicIPAddress
		code string
	}{
		{"standard dynamic", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"), SKU: std.SKU,
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{PublicIPAllocationMethod: to.Ptr(armnetwork.IPAllocationMethodDynamic)}},
			"StandardSkuPublicIPAddressesMustBeStatic"},
		{"idle timeout 31", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{IdleTimeoutInMinutes: to.Ptr[int32](31)}}, "PublicIPIdleTimeoutIsOutOfRange"},
		{"idle timeout 3", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{IdleTimeoutInMinutes: to.Ptr[int32](3)}}, "PublicIPIdleTimeoutIsOutOfRange"},
		{"dns label taken", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{DNSSettings: &armnetwork.PublicIPAddressDNSSettings{DomainNameLabel: to.Ptr("web1")}}}, "DnsRecordInUse"},
		{"bad dns label", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
			Properties: &armnetwork.PublicIPAddressPropertiesFormat{DNSSettings: &armnetwork.PublicIPAddressDNSSettings{DomainNameLabel: to.Ptr("Web_1")}}}, "InvalidDomainNameLabel"},
		{"global basic", armnetwork.PublicIPAddress{Location: to.Ptr("eastus"),
			SKU: &armnetwork.PublicIPAddressSKU{Name: to.Ptr(armnetwork.PublicIPAddressSKUNameBasic), Tier: to.Ptr(armnetwork.PublicIPAddressSKUTierGlobal)}},
			"GlobalTierPublicIPAddressMustBeStandardSku"},
		{"no location", armnetwork.PublicIPAddress{}, "LocationRequired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := create("bad", tc.pip)
			if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusBadRequest || re.ErrorCode != tc.code {
				t.Fatalf("got %v, want 400 %s", err, tc.code)
			}
		})
	}
	var all []string
	for p := c.NewListAllPager(nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, x := range page.Value {
			all = append(all, *x.Name)
		}
	}
	if len(all) != 2 {
		t.Fatalf("list all: %v", all)
	}
	del, err := c.BeginDelete(ctx, "rg", "pip1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, armtest.Poll); err != nil {
		t.Fatalf("delete: %v", err)
	}
	_, err = c.Get(ctx, "rg", "pip1", nil)
	if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusNotFound || re.ErrorCode != "ResourceNotFound" {
		t.Fatalf("get deleted: %v", err)
	}
	// The released address is the lowest free one again.
	p3, err := create("pip3", std)
	if err != nil || *p3.Properties.IPAddress != "127.77.0.1" {
		t.Fatalf("pip3: %v %+v", err, p3.Properties)
	}
	// Deleting a missing address is 204, which the poller accepts.
	del, err = c.BeginDelete(ctx, "rg", "pip1", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := del.PollUntilDone(ctx, armtest.Poll); err != nil {
		t.Fatalf("delete missing: %v", err)
	}
	if a := netip.MustParseAddr(*p3.Properties.IPAddress); !netip.MustParsePrefix("127.77.0.0/16").Contains(a) {
		t.Fatalf("address %s outside the pool", a)
	}
}

func TestSDKVirtualNetworks(t *testing.T) {
	n := armtest.Start(t)
	ctx := armtest.Ctx(t)
	n.Group("rg")
	vc, err := armnetwork.NewVirtualNetworksClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := armnetwork.NewSubnetsClient(n.Sub, n.Cred, n.Options)
	if err != nil {
		t.Fatal(err)
	}
	vnet := func(prefixes []string, subnets ...[2]string) armnetwork.VirtualNetwork {
		v := armnetwork.VirtualNetwork{Location: to.Ptr("eastus"), Properties: &armnetwork.VirtualNetworkPropertiesFormat{
			AddressSpace: &armnetwork.AddressSpace{AddressPrefixes: to.SliceOfPtrs(prefixes...)}}}
		for _, s := range subnets {
			v.Properties.Subnets = append(v.Properties.Subnets, &armnetwork.Subnet{Name: to.Ptr(s[0]),
				Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr(s[1])}})
		}
		return v
	}
	put := func(name string, v armnetwork.VirtualNetwork) (armnetwork.VirtualNetwork, error) {
		p, err := vc.BeginCreateOrUpdate(ctx, "rg", name, v, nil)
		if err != nil {
			return armnetwork.VirtualNetwork{}, err
		}
		r, err := p.PollUntilDone(ctx, armtest.Poll)
		return r.VirtualNetwork, err
	}
	v, err := put("vn", vnet([]string{"10.0.0.0/16"}, [2]string{"default", "10.0.0.0/24"}))
	if err != nil {
		t.Fatalf("create vnet: %v", err)
	}
	if len(v.Properties.Subnets) != 1 || *v.Properties.Subnets[0].ID != n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn/subnets/default") {
		t.Fatalf("vnet subnets: %+v", v.Properties.Subnets)
	}
	for _, tc := range []struct {
		name string
		v    armnetwork.VirtualNetwork
		code string
	}{
		{"subnet outside", vnet([]string{"10.0.0.0/16"}, [2]string{"a", "10.1.0.0/24"}), "NetcfgSubnetRangeOutsideVnet"},
		{"subnets overlap", vnet([]string{"10.0.0.0/16"}, [2]string{"a", "10.0.0.0/24"}, [2]string{"b", "10.0.0.128/25"}), "NetcfgSubnetRangesOverlap"},
		{"spaces overlap", vnet([]string{"10.0.0.0/16", "10.0.1.0/24"}), "VnetAddressSpacesOverlap"},
		{"not cidr", vnet([]string{"10.0.0.1/16"}), "InvalidCIDRNotation"},
		{"garbage prefix", vnet([]string{"ten/8"}), "InvalidAddressPrefixFormat"},
		{"duplicate subnet", vnet([]string{"10.0.0.0/16"}, [2]string{"a", "10.0.0.0/24"}, [2]string{"A", "10.0.1.0/24"}), "DuplicateResourceName"},
		{"subnet too small", vnet([]string{"10.0.0.0/16"}, [2]string{"a", "10.0.0.0/30"}), "InvalidSubnetPrefixLength"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := put("bad", tc.v)
			if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusBadRequest || re.ErrorCode != tc.code {
				t.Fatalf("got %v, want 400 %s", err, tc.code)
			}
		})
	}
	sp, err := sc.BeginCreateOrUpdate(ctx, "rg", "vn", "web", armnetwork.Subnet{Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.0.1.0/24")}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	sr, err := sp.PollUntilDone(ctx, armtest.Poll)
	if err != nil || *sr.Name != "web" || *sr.Properties.AddressPrefix != "10.0.1.0/24" {
		t.Fatalf("create subnet: %v %+v", err, sr)
	}
	_, err = sc.BeginCreateOrUpdate(ctx, "rg", "vn", "clash", armnetwork.Subnet{Properties: &armnetwork.SubnetPropertiesFormat{AddressPrefix: to.Ptr("10.0.1.0/25")}}, nil)
	if re := armtest.ResponseError(t, err); re.ErrorCode != "NetcfgSubnetRangesOverlap" {
		t.Fatalf("overlapping subnet: %v", err)
	}
	got, err := sc.Get(ctx, "rg", "VN", "WEB", nil)
	if err != nil || *got.Name != "web" {
		t.Fatalf("get subnet: %v", err)
	}
	var names []string
	for p := sc.NewListPager("rg", "vn", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range page.Value {
			names = append(names, *s.Name)
		}
	}
	if len(names) != 2 {
		t.Fatalf("subnets: %v", names)
	}
	dp, err := sc.BeginDelete(ctx, "rg", "vn", "web", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dp.PollUntilDone(ctx, armtest.Poll); err != nil {
		t.Fatalf("delete subnet: %v", err)
	}
	_, err = sc.Get(ctx, "rg", "vn", "web", nil)
	if re := armtest.ResponseError(t, err); re.StatusCode != http.StatusNotFound {
		t.Fatalf("get deleted subnet: %v", err)
	}
	tv, err := vc.UpdateTags(ctx, "rg", "vn", armnetwork.TagsObject{Tags: map[string]*string{"k": to.Ptr("v")}}, nil)
	if err != nil || *tv.Tags["k"] != "v" || len(tv.Properties.Subnets) != 1 {
		t.Fatalf("update tags: %v", err)
	}
	count := 0
	for p := vc.NewListPager("rg", nil); p.More(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		count += len(page.Value)
	}
	if count != 1 {
		t.Fatalf("list: %d vnets", count)
	}
	vd, err := vc.BeginDelete(ctx, "rg", "vn", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := vd.PollUntilDone(ctx, armtest.Poll); err != nil {
		t.Fatalf("delete vnet: %v", err)
	}
}
