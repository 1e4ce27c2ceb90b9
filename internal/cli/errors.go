package cli

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
)

// Exit codes, as az uses them.
const (
	// ExitError is the exit code of a failed request or command.
	ExitError = 1
	// ExitUsage is the exit code of a command line az's parser would reject.
	ExitUsage = 2
)

// APIError is an ARM error response (or a failed long-running operation).
// Its message is rendered as az renders it; the root command prefixes
// "ERROR: " and exits with ExitCode.
type APIError struct {
	// Status is the HTTP status (of the status poll for a failed operation).
	Status  int
	Code    string
	Message string
	Target  string
	Details []APIError
}

// Error renders the error as az does after "ERROR: ":
//
//	(Code) Message
//	Code: Code
//	Message: Message
func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "(%s) %s\nCode: %s\nMessage: %s", e.Code, e.Message, e.Code, e.Message)
	if e.Target != "" {
		fmt.Fprintf(&b, "\nTarget: %s", e.Target)
	}
	if len(e.Details) > 0 {
		b.WriteString("\nException Details:")
		for _, d := range e.Details {
			fmt.Fprintf(&b, "\t(%s) %s\n\tCode: %s\n\tMessage: %s", d.Code, d.Message, d.Code, d.Message)
			if d.Target != "" {
				fmt.Fprintf(&b, "\n\tTarget: %s", d.Target)
			}
		}
	}
	return b.String()
}

// ExitCode is ExitError.
func (e *APIError) ExitCode() int { return ExitError }

type wireError struct {
	Code    string      `json:"code"`
	Message string      `json:"message"`
	Target  string      `json:"target"`
	Details []wireError `json:"details"`
}

func (w wireError) toAPI(status int) APIError {
	e := APIError{Status: status, Code: w.Code, Message: w.Message, Target: w.Target}
	for _, d := range w.Details {
		e.Details = append(e.Details, d.toAPI(status))
	}
	return e
}

// parseAPIError builds an *APIError from an error response: the ARM
// envelope {"error":{...}}, an OData envelope, or, failing both, the
// x-ms-error-code header and the status text.
func parseAPIError(status int, h http.Header, body []byte) *APIError {
	var env struct {
		Error      *wireError `json:"error"`
		ODataError *wireError `json:"odata.error"`
	}
	if json.Unmarshal(body, &env) == nil {
		w := env.Error
		if w == nil {
			w = env.ODataError
		}
		if w != nil && (w.Code != "" || w.Message != "") {
			e := w.toAPI(status)
			return &e
		}
	}
	code := h.Get("x-ms-error-code")
	if code == "" {
		code = strings.ReplaceAll(http.StatusText(status), " ", "")
	}
	msg := strings.TrimSpace(string(body))
	if msg == "" {
		msg = fmt.Sprintf("Operation returned an invalid status '%s'", http.StatusText(status))
	}
	return &APIError{Status: status, Code: code, Message: msg}
}

// opError builds the error of a failed or canceled operation status body.
func opError(status int, state string, v any) *APIError {
	b, _ := json.Marshal(field(v, "error"))
	var w wireError
	if json.Unmarshal(b, &w) == nil && (w.Code != "" || w.Message != "") {
		e := w.toAPI(status)
		return &e
	}
	return &APIError{Status: status, Code: state, Message: "The operation ended with status " + state + "."}
}

// UsageError is a command line az's parser rejects (missing or invalid
// arguments); it exits with ExitUsage.
type UsageError struct{ Msg string }

// Error returns the message.
func (e *UsageError) Error() string { return e.Msg }

// ExitCode is ExitUsage.
func (e *UsageError) ExitCode() int { return ExitUsage }

// usagef returns a *UsageError.
func usagef(format string, args ...any) error {
	return &UsageError{Msg: fmt.Sprintf(format, args...)}
}
