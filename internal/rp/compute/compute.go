// Package compute is nimbus's Microsoft.Compute resource provider: virtual
// machine scale sets, their instances (virtualMachines under a scale set,
// with their network interfaces and public IPs), instance actions and the
// image catalogue. It stores the desired state through Resource Manager's
// pipeline (internal/arm); the scale-set controller makes it real and
// writes the instance records this package renders.
package compute

import (
	"nimbus/internal/arm"
	"nimbus/internal/workload"
)

// server is the provider's view of Resource Manager: the ARM server whose
// pipeline (Apply, Remove, Load, Handle) the handlers use.
type server struct {
	*arm.Server
	images *workload.ImageMap
}

// Options configure the provider. The zero value is the default.
type Options struct {
	// Images maps the images scale sets name to nimbus workloads; nil
	// means workload.DefaultImageMap. Scale sets naming an image it does
	// not map are refused; the scale-set controller must use the same map.
	Images *workload.ImageMap
}

// Register adds Microsoft.Compute to srv: its namespace, the scale-set kind,
// instance routes and actions, and the image endpoints. Call it once, before
// srv serves requests.
func Register(srv *arm.Server, opt Options) {
	if opt.Images == nil {
		opt.Images = workload.DefaultImageMap()
	}
	s := &server{Server: srv, images: opt.Images}
	srv.RegisterNamespace("Microsoft.Compute", Versions)
	registerImages(s)
	registerSkus(s)
	registerInstance(s)
	registerVmss(s)
	registerScaleSetOps(s)
	registerExtensions(s)
}
