package proxy

// Address plan (loopback only, Linux routes all of 127.0.0.0/8 to lo):
//   frontends 127.88.0.1-4   (Frontend.IP 198.18.0.1-4, ListenIP loopback)
//   backends  127.88.1.1-8
//   clients   127.88.2.1-16
// Ports are chosen by the kernel per test.

import (
	"net/netip"
	"runtime"
	"testing"

	"nimbus/internal/dataplane"
	"nimbus/internal/dataplane/dptest"
)

func lo(c, d int) netip.Addr { return netip.AddrFrom4([4]byte{127, 88, byte(c), byte(d)}) }

func harness() dptest.Harness {
	return dptest.Harness{
		NewEngine: func(t *testing.T) dataplane.Engine { return New(Options{}) },
		Frontend: func(i int) dataplane.Frontend {
			return dataplane.Frontend{ID: "/frontends/fe" + string(rune('0'+i)),
				IP: netip.AddrFrom4([4]byte{198, 18, 0, byte(i + 1)}), ListenIP: lo(0, i+1)}
		},
		BackendIP:       func(i int) netip.Addr { return lo(1, i+1) },
		ClientIP:        func(i int) netip.Addr { return lo(2, i+1) },
		ProxyProtocol:   true,
		NetworkSecurity: true,
	}
}

func TestConformance(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("the address plan uses 127.88.0.0/16, which only Linux routes to loopback without aliases")
	}
	h := harness()
	// Frontend.IP is what clients dial in the suite; on loopback the
	// listen address is what is reachable, so report it as the IP too.
	fe := h.Frontend
	h.Frontend = func(i int) dataplane.Frontend { f := fe(i); f.IP = f.ListenIP; return f }
	dptest.Run(t, h)
}
