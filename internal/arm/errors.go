package arm

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"syscall"

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
// 409 AnotherOperationInProgress; a full disk or quota (store.ErrNoSpace) →
// 507 InsufficientStorage; any other storage failure
// (*store.UnavailableError: read-only file system, I/O error) → 503
// StorageUnavailable; a closed store or cancelled context → 503
// ServiceUnavailable; anything else → 500 InternalServerError. This is the
// only place errors become ARM codes.
//
// Why 507 for a full disk: it is HTTP's status for "cannot store what the
// request needs" (RFC 4918), and the condition needs an operator, not a
// quick retry. The Azure SDK for Go does not retry 507 (its retry policy
// retries 408, 429, 500, 502, 503 and 504), so a Go client gets the error
// at once; azure-core for Python (the az CLI) retries every status from 506
// up three times, then shows it. Other storage failures may clear by
// themselves (the store reopens its file), so they are 503s, which every
// Azure SDK retries.
func AsARMError(err error) *resource.Error {
	var re *resource.Error
	var ce *store.ConflictError
	var ue *store.UnavailableError
	switch {
	case errors.As(err, &re):
		return re
	case errors.As(err, &ce):
		return resource.Conflict("AnotherOperationInProgress", "The resource was changed by another operation in progress; retry the request.")
	case errors.Is(err, store.ErrNotFound):
		return resource.NotFound("ResourceNotFound", "The resource was not found.")
	case errors.Is(err, store.ErrNoSpace):
		return resource.Errorf(http.StatusInsufficientStorage, "InsufficientStorage",
			"The change was not saved: the server's disk is full. Reads still work, and deletes are still accepted; retry once the server's operator has freed disk space.")
	case errors.As(err, &ue):
		return resource.Errorf(http.StatusServiceUnavailable, "StorageUnavailable",
			"The change was not saved: the server's storage failed (%s). Reads may still work; retry the request later.", storageCause(ue))
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return resource.Errorf(http.StatusServiceUnavailable, "ServiceUnavailable", "The service is shutting down or the request timed out; retry the request.")
	}
	return resource.Errorf(http.StatusInternalServerError, "InternalServerError", "An internal error occurred.")
}

// storageCause names the OS error under a storage failure without paths
// ("read-only file system", "input/output error"), or a generic phrase.
func storageCause(ue *store.UnavailableError) string {
	var errno syscall.Errno
	if errors.As(ue, &errno) {
		return errno.Error()
	}
	return ue.Op + " failed"
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
