package template

import (
	"fmt"
	"net/http"
	"strings"
)

// ARM error codes the engine produces.
const (
	// CodeInvalidTemplate is the code of everything Validate rejects.
	CodeInvalidTemplate = "InvalidTemplate"
	// CodeDeploymentFailed is the code of a Run in which a resource failed.
	CodeDeploymentFailed = "DeploymentFailed"
	// CodeOutputEvaluationFailed is the code of a Run whose resources all
	// succeeded but whose outputs could not be evaluated.
	CodeOutputEvaluationFailed = "DeploymentOutputEvaluationFailed"
	// CodeResourceDeploymentFailure is the code given to a failed resource
	// whose Env error carries no code of its own.
	CodeResourceDeploymentFailure = "ResourceDeploymentFailure"
)

// Error is an ARM error: the JSON shape of the "error" object of ARM's error
// body. StatusCode is the HTTP status the error maps to (0 when the caller
// should choose); it is not serialized.
type Error struct {
	Code       string   `json:"code"`
	Message    string   `json:"message"`
	Target     string   `json:"target,omitempty"`
	Details    []*Error `json:"details,omitempty"`
	StatusCode int      `json:"-"`
}

// Error renders the code, message and details on one line.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Code)
	b.WriteString(": ")
	b.WriteString(e.Message)
	for _, d := range e.Details {
		b.WriteString(" [")
		b.WriteString(d.Error())
		b.WriteString("]")
	}
	return b.String()
}

// invalidTemplate builds an InvalidTemplate error.
func invalidTemplate(target, format string, args ...any) *Error {
	return &Error{
		Code:       CodeInvalidTemplate,
		Message:    "Deployment template validation failed: '" + fmt.Sprintf(format, args...) + "'.",
		Target:     target,
		StatusCode: http.StatusBadRequest,
	}
}

// exprError is an evaluation failure inside an expression; the caller adds
// where the expression stands.
type exprError struct {
	expr string
	msg  string
}

func (e *exprError) Error() string {
	if e.expr == "" {
		return e.msg
	}
	return fmt.Sprintf("The language expression '%s' is not valid: %s", e.expr, e.msg)
}

func errf(format string, args ...any) error {
	return &exprError{msg: fmt.Sprintf(format, args...)}
}

// statusText is ARM's statusCode string for an HTTP status ("OK",
// "Created", "BadRequest").
func statusText(code int) string {
	t := http.StatusText(code)
	if t == "" {
		return fmt.Sprint(code)
	}
	return strings.ReplaceAll(strings.ReplaceAll(t, " ", ""), "-", "")
}
