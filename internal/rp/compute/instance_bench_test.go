package compute_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"nimbus/internal/arm/armtest"
	"nimbus/internal/resource"
)

// BenchmarkInstanceAPI measures the instance API over HTTPS against a scale
// set of 1,000 instance records (written directly, no controllers): listing
// every instance (10 pages), GET of the load balancer with 1,000 pool
// members and generated NAT rules, and a restart of all instances. Address
// plan: subnet 198.18.0.0/16 (customer addresses), provider addresses
// 127.18.x.y; nothing is dialled.
func BenchmarkInstanceAPI(b *testing.B) {
	const count = 1000
	n := armtest.Start(b)
	n.Group("rg")
	put := func(rest string, body any) {
		st, _, out := n.Do(http.MethodPut, n.RGPath("rg", rest), body)
		if st != http.StatusOK && st != http.StatusCreated {
			b.Fatalf("PUT %s: %d %s", rest, st, out)
		}
	}
	subnet := n.RGPath("rg", "Microsoft.Network/virtualNetworks/vn1/subnets/default")
	lb := n.RGPath("rg", "Microsoft.Network/loadBalancers/ilb")
	put("Microsoft.Network/virtualNetworks/vn1?api-version=2025-01-01", map[string]any{"location": "eastus", "properties": map[string]any{
		"addressSpace": map[string]any{"addressPrefixes": []string{"198.18.0.0/16"}},
		"subnets":      []any{map[string]any{"name": "default", "properties": map[string]any{"addressPrefix": "198.18.0.0/16"}}}}})
	put("Microsoft.Network/loadBalancers/ilb?api-version=2025-01-01", map[string]any{"location": "eastus", "sku": map[string]any{"name": "Standard"},
		"properties": map[string]any{
			"frontendIPConfigurations": []any{map[string]any{"name": "fe", "properties": map[string]any{"subnet": map[string]any{"id": subnet}}}},
			"backendAddressPools":      []any{map[string]any{"name": "be"}},
			"inboundNatPools": []any{map[string]any{"name": "np", "properties": map[string]any{
				"frontendIPConfiguration": map[string]any{"id": lb + "/frontendIPConfigurations/fe"}, "protocol": "Tcp",
				"frontendPortRangeStart": 50000, "frontendPortRangeEnd": 51999, "backendPort": 22}}}}})
	put("Microsoft.Compute/virtualMachineScaleSets/big?api-version=2025-04-01", map[string]any{"location": "eastus",
		"sku": map[string]any{"name": "Standard_B1s", "capacity": count},
		"properties": map[string]any{"upgradePolicy": map[string]any{"mode": "Manual"}, "virtualMachineProfile": map[string]any{
			"osProfile":      map[string]any{"computerNamePrefix": "big", "adminUsername": "azureuser"},
			"storageProfile": map[string]any{"imageReference": map[string]any{"publisher": "nimbus", "offer": "workloads", "sku": "echo", "version": "latest"}},
			"networkProfile": map[string]any{"networkInterfaceConfigurations": []any{map[string]any{"name": "nic", "properties": map[string]any{
				"primary": true, "ipConfigurations": []any{map[string]any{"name": "ipc", "properties": map[string]any{
					"subnet":                          map[string]any{"id": subnet},
					"loadBalancerBackendAddressPools": []any{map[string]any{"id": lb + "/backendAddressPools/be"}},
					"loadBalancerInboundNatPools":     []any{map[string]any{"id": lb + "/inboundNatPools/np"}}}}}}}}}}}})
	vmssPath := n.RGPath("rg", "Microsoft.Compute/virtualMachineScaleSets/big")
	for i := range count {
		storeInstance(b, n, "big", i, func(in *resource.Instance) {
			in.PrivateIP = fmt.Sprintf("198.18.%d.%d", 1+i/250, 1+i%250)
			in.ProviderIP = fmt.Sprintf("127.18.%d.%d", 1+i/250, 1+i%250)
			in.NATPorts = map[string]uint16{resource.NormalizeRefID(lb + "/inboundNatPools/np"): uint16(50000 + i)}
		})
	}
	b.Run("list 1000 instances", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			next, got := vmssPath+"/virtualMachines?api-version=2025-04-01&$expand=instanceView", 0
			for next != "" {
				st, _, out := n.Do(http.MethodGet, next, nil)
				var page struct {
					Value    []json.RawMessage
					NextLink string
				}
				if st != http.StatusOK || json.Unmarshal(out, &page) != nil {
					b.Fatalf("list: %d %.200s", st, out)
				}
				got += len(page.Value)
				next = page.NextLink
			}
			if got != count {
				b.Fatalf("listed %d", got)
			}
		}
	})
	b.Run("get LB with 1000 members", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st, _, out := n.Do(http.MethodGet, lb+"?api-version=2025-01-01", nil)
			if st != http.StatusOK {
				b.Fatalf("get lb: %d %.200s", st, out)
			}
		}
	})
	b.Run("restart all 1000", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			st, _, out := n.Do(http.MethodPost, vmssPath+"/restart?api-version=2025-04-01", nil)
			if st != http.StatusAccepted {
				b.Fatalf("restart: %d %.200s", st, out)
			}
		}
	})
}
