package resource

import (
	"fmt"
	"net/http"
)

// Error is a client-visible ARM error: an HTTP status and the code, message
// and target of the ARM error envelope. Validation code returns *Error; the
// arm package turns it into the response. Details may be nil.
type Error struct {
	Status  int
	Code    string
	Message string
	Target  string
	Details []*Error
}

// Error implements error.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Errorf returns an *Error with the given status and code.
func Errorf(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// BadRequest returns a 400 *Error.
func BadRequest(code, format string, args ...any) *Error {
	return Errorf(http.StatusBadRequest, code, format, args...)
}

// InvalidParameter returns a 400 InvalidParameter error about the property at path target.
func InvalidParameter(target, format string, args ...any) *Error {
	e := Errorf(http.StatusBadRequest, "InvalidParameter", format, args...)
	e.Target = target
	return e
}

// NotFound returns a 404 *Error (codes ResourceNotFound, ResourceGroupNotFound, ...).
func NotFound(code, format string, args ...any) *Error {
	return Errorf(http.StatusNotFound, code, format, args...)
}

// Conflict returns a 409 *Error.
func Conflict(code, format string, args ...any) *Error {
	return Errorf(http.StatusConflict, code, format, args...)
}

// ResourceNotFoundError is the 404 ARM answers for a missing resource.
func ResourceNotFoundError(id ID) *Error {
	if id.IsGroup() {
		return NotFound("ResourceGroupNotFound", "Resource group '%s' could not be found.", id.ResourceGroup)
	}
	if id.Namespace == "" {
		return NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", id.Subscription)
	}
	return NotFound("ResourceNotFound", "The Resource '%s/%s' under resource group '%s' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix",
		id.Namespace+"/"+id.Types[0], id.Names[0], id.ResourceGroup)
}
