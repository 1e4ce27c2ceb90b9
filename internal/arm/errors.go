package arm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// ErrorBody is the ARM error envelope's inner object.
type ErrorBody struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Target  string      `json:"target,omitempty"`
	Details []ErrorBody `json:"details"`
}

type ErrorEnvelope struct {
	Error ErrorBody `json:"error"`
}

// ToErrorBody converts a *resource.Error to its wire form.
func ToErrorBody(e *resource.Error) ErrorBody {
	b := ErrorBody{Code: e.Code, Message: e.Message, Target: e.Target, Details: []ErrorBody{}}
	for _, d := range e.Details {
		b.Details = append(b.Details, ToErrorBody(d))
	}
	return b
}

// AsARMError maps any error to the client-visible ARM error: *resource.Error
// as is; store.ErrNotFound → 404 ResourceNotFound; *store.ConflictError →
// 409 AnotherOperationInProgress; a closed store or cancelled context → 503;
// anything else → 500 InternalServerError. This is the only place errors
// become ARM codes.
func AsARMError(err error) *resource.Error {
	var re *resource.Error
	var ce *store.ConflictError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &ce):
		return resource.Conflict("AnotherOperationInProgress", "The resource was changed by another operation in progress; retry the request.")
	case errors.Is(err, store.ErrNotFound):
		return resource.NotFound("ResourceNotFound", "The resource was not found.")
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return resource.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "The service is shutting down or the request timed out; retry the request.")
	}
	return resource.Errorf(http.StatusInternalServerError, "InternalServerError", "An internal error occurred.")
}

// writeError writes err as an ARM error response, logging unexpected (5xx) errors.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	e := AsARMError(err)
	if e.Status >= 500 {
		s.log.Error("request failed", slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.Any("err", err))
	}
	h := w.Header()
	h.Set("x-ms-error-code", e.Code)
	if e.Status == http.StatusUnauthorized {
		h.Set("WWW-Authenticate", `Bearer authorization_uri="https://login.microsoftonline.com/common", error="invalid_token", error_description="the access token is missing, invalid or expired"`)
	}
	writeJSON(w, e.Status, ErrorEnvelope{Error: ToErrorBody(e)})
}
