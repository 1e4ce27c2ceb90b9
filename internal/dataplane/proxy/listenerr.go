package proxy

import (
	"errors"
	"net/netip"
	"syscall"

	"nimbus/internal/dataplane"
)

// listenError describes why listener k of spec s could not be opened.
func listenError(s *spec, k lkey, err error) dataplane.RuleError {
	re := dataplane.RuleError{RuleID: s.ruleID, FrontendID: s.frontend.ID, Protocol: k.proto,
		Listen: netip.AddrPortFrom(k.ip, k.port), Reason: dataplane.ReasonOther, Err: err}
	switch {
	case errors.Is(err, syscall.EADDRINUSE):
		re.Reason = dataplane.ReasonPortInUse
		re.Holder = portHolder(k)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		re.Reason = dataplane.ReasonAddressUnavailable
	}
	return re
}
