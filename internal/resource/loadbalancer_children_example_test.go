package resource_test

import (
	"encoding/json"
	"fmt"

	"nimbus/internal/resource"
)

// The child endpoints of ARM (GET/PUT/DELETE .../loadBalancers/{lb}/{coll}/{name})
// written once for every collection on top of the table.
func ExampleLBChildCollection() {
	const lbID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1"
	lb := &resource.LoadBalancer{}
	lb.Properties.BackendAddressPools = []resource.BackendAddressPool{{Name: "be"}}

	// Routing: which collections have which endpoints.
	for _, c := range resource.LBChildren {
		fmt.Println(c.Name(), c.API() != resource.ChildNoAPI, c.API() == resource.ChildReadWrite)
	}

	c, err := resource.LBChild("backendAddressPools") // from the path
	if err != nil {
		panic(err)
	}
	// PUT .../backendAddressPools/be2: decode the body, check the
	// preconditions against the current child, replace or append.
	body := c.New()
	if err := json.Unmarshal([]byte(`{"properties":{"drainPeriodInSeconds":30}}`), body); err != nil {
		panic(err)
	}
	i := c.Index(lb, "be2")
	fmt.Println("exists:", i >= 0)
	created, err := c.Set(lb, "be2", body)
	if err != nil {
		panic(err)
	}
	if err := resource.NormalizeLoadBalancer(lb, lbID, "lb1"); err != nil {
		panic(err)
	}
	fmt.Println("created:", created, c.Len(lb), c.IDAt(lb, 1))

	// GET .../backendAddressPools/BE2 (any case) and the list.
	pool := c.Get(lb, "BE2").(*resource.BackendAddressPool)
	fmt.Println(pool.Name, *pool.Properties.DrainPeriodInSeconds, len(c.List(lb)))

	// Typed access without an assertion.
	fmt.Println(resource.LBBackendAddressPools.Find(lb, "be").ID == c.ChildID(lbID, "be"))

	// DELETE .../backendAddressPools/be (204 when absent).
	fmt.Println(c.Delete(lb, "be"), c.Delete(lb, "be"), c.Len(lb))

	// Output:
	// frontendIPConfigurations true false
	// backendAddressPools true true
	// loadBalancingRules true false
	// probes true false
	// inboundNatRules true true
	// inboundNatPools false false
	// outboundRules true false
	// exists: false
	// created: true 2 /subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/loadBalancers/lb1/backendAddressPools/be2
	// be2 30 2
	// true
	// true false 1
}
