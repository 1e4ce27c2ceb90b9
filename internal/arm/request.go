package arm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"

	"nimbus/internal/resource"
)

// maxBody bounds request bodies (Azure's own limit is 4 MiB).
const maxBody = 4 << 20

// Request is one routed ARM request.
type Request struct {
	// HTTP is the underlying request; its body has been read into Body.
	HTTP *http.Request
	// APIVersion is the request's api-version ("" for routes without one).
	APIVersion string
	// Body is the request body.
	Body []byte
	// Segments are the path segments, "//" collapsed, case as sent.
	Segments []string
	params   map[string]string
	server   *Server
}

// Param returns the path parameter named in the route pattern (case-insensitive name, value as sent).
func (r *Request) Param(name string) string { return r.params[strings.ToLower(name)] }

// Path returns the normalised request path ("/" + segments).
func (r *Request) Path() string { return "/" + strings.Join(r.Segments, "/") }

// BaseURL returns the absolute https URL of this server as the client reached it.
func (r *Request) BaseURL() string { return "https://" + r.HTTP.Host }

// Query returns the first value of a query parameter; names match case-insensitively.
func (r *Request) Query(name string) string {
	for k, v := range r.HTTP.URL.Query() {
		if strings.EqualFold(k, name) && len(v) > 0 {
			return v[0]
		}
	}
	return ""
}

// Decode decodes the JSON body into v. Unknown properties are ignored.
// Malformed JSON, an empty body and values of the wrong type are
// InvalidRequestContent errors naming the offending field.
func (r *Request) Decode(v any) error { return DecodeBody(r.Body, v) }

// DecodeBody decodes an ARM request body into v; see Request.Decode.
func DecodeBody(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: the request body is empty.")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: unexpected data after the JSON value.")
	}
	return nil
}

func decodeError(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	switch {
	case errors.As(err, &te):
		field := strings.ReplaceAll(te.Field, "Envelope.", "")
		if field == "" {
			field = "(root)"
		}
		e := resource.BadRequest("InvalidRequestContent",
			"The request content was invalid and could not be deserialized: could not convert %s to %s for property '%s' (path '%s', offset %d).",
			te.Value, typeName(te.Type), field, field, te.Offset)
		e.Target = field
		return e
	case errors.As(err, &se):
		return resource.BadRequest("InvalidRequestContent",
			"The request content was invalid and could not be deserialized: %s at offset %d.", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: unexpected end of JSON input.")
	}
	var fe *resource.Error
	if errors.As(err, &fe) {
		return fe
	}
	return resource.BadRequest("InvalidRequestContent", "The request content was invalid and could not be deserialized: %s.", err.Error())
}

func typeName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Map, reflect.Struct:
		return "object"
	}
	return t.String()
}

// Response is what a handler answers: a status, optional extra headers and a
// JSON body (nil for none). Collection properties of Body are sent as []
// when nil (see the resource package's JSON convention).
type Response struct {
	Status int
	Header http.Header
	Body   any
}

// JSON returns a response with status and body.
func JSON(status int, body any) *Response { return &Response{Status: status, Body: body} }

// NoContent returns an empty response with status.
func NoContent(status int) *Response { return &Response{Status: status} }

// list is the ARM list envelope.
type list struct {
	Value    []any  `json:"value"`
	NextLink string `json:"nextLink,omitempty"`
}

// PageSize is the number of items per list page.
const PageSize = 100

// Page returns a list response holding the page of items selected by the
// request's $skiptoken, with an absolute nextLink when more follow.
func (r *Request) Page(items []any) (*Response, error) {
	start := 0
	if tok := r.Query("$skiptoken"); tok != "" {
		if _, err := fmt.Sscanf(tok, "%d", &start); err != nil || start < 0 || start > len(items) {
			return nil, resource.BadRequest("InvalidSkipToken", "The $skiptoken '%s' is invalid.", tok)
		}
	}
	end := min(start+PageSize, len(items))
	out := list{Value: items[start:end]}
	if out.Value == nil {
		out.Value = []any{}
	}
	if end < len(items) {
		q := url.Values{}
		for k, v := range r.HTTP.URL.Query() {
			if !strings.EqualFold(k, "$skiptoken") {
				q[k] = v
			}
		}
		q.Set("$skiptoken", fmt.Sprint(end))
		out.NextLink = r.BaseURL() + r.Path() + "?" + q.Encode()
	}
	return JSON(http.StatusOK, out), nil
}
