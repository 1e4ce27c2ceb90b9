// Package cli is nimbus's az-shaped command-line client: an ordinary HTTPS
// client of the ARM API (Client), az's output formats and JMESPath --query
// (Printer), az's generic update (--set/--add/--remove) and the verbs
// themselves (group, network vnet/public-ip/lb and its children, vmss), one
// file per resource family. The verbs are cobra commands that cmd/nimbus
// registers; other programs (the demo) can use Client directly.
package cli

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/auth"
)

// API versions the client sends (those of the Go SDK nimbus is tested with).
const (
	NetworkAPIVersion   = "2025-01-01"
	ComputeAPIVersion   = "2025-04-01"
	ResourcesAPIVersion = "2021-04-01"
	SubscriptionsAPI    = "2022-12-01"
)

// Environment variables the client reads (see docs/cli.md).
const (
	EnvEndpoint     = "NIMBUS_ENDPOINT"
	EnvToken        = "NIMBUS_TOKEN"
	EnvCAFile       = "NIMBUS_CA_FILE"
	EnvSubscription = "NIMBUS_SUBSCRIPTION"
)

// Config says where the API is and how to authenticate. Empty fields are
// filled by NewClient from the environment and the data directory.
type Config struct {
	// DataDir holds endpoint.json, ca.pem, identity.json and token-key.pem of
	// a local server (default DefaultDataDir()).
	DataDir string
	// Endpoint is the ARM base URL, e.g. https://127.0.0.1:8443 (default
	// $NIMBUS_ENDPOINT, then endpoint.json).
	Endpoint string
	// Token is a bearer token (default $NIMBUS_TOKEN, then one minted with
	// the data directory's token key).
	Token string
	// CAFile is a PEM bundle to trust (default $NIMBUS_CA_FILE, then
	// endpoint.json's caFile, then DataDir/ca.pem).
	CAFile string
	// Subscription is the subscription ID (default $NIMBUS_SUBSCRIPTION,
	// then endpoint.json's subscriptionId, then the first of GET /subscriptions).
	Subscription string
	// HTTPClient, if set, is used as is (CAFile is then ignored).
	HTTPClient *http.Client
}

// Client is an ARM client: plain requests, paged lists and long-running
// operations (Azure-AsyncOperation / Location polling with Retry-After).
// Create it with NewClient or fill the fields directly. Safe for
// concurrent use once built.
type Client struct {
	// Endpoint is the ARM base URL without a trailing slash.
	Endpoint string
	// Subscription is the subscription ID resource paths are built with.
	Subscription string
	// Token is sent as "Authorization: Bearer <Token>".
	Token string
	// HTTP sends the requests.
	HTTP *http.Client
	// PollInterval is the wait between polls when the server sends no
	// Retry-After (zero: one second).
	PollInterval time.Duration
	// FirstPoll, if positive, replaces the server's initial Retry-After
	// before the first poll (later polls honour Retry-After). Operations of
	// a local nimbus usually end within milliseconds; the demo sets it to
	// poll sooner than the one second the server advises. Zero: honour it.
	FirstPoll time.Duration
	// Debug, if set, receives one line per request and response.
	Debug io.Writer
}

// NewClient resolves cfg (flags, then environment, then the data directory)
// into a Client. It reads the data directory but never writes it.
func NewClient(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.DataDir == "" {
		cfg.DataDir = DefaultDataDir()
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = os.Getenv(EnvEndpoint)
	}
	if cfg.Token == "" {
		cfg.Token = os.Getenv(EnvToken)
	}
	if cfg.CAFile == "" {
		cfg.CAFile = os.Getenv(EnvCAFile)
	}
	if cfg.Subscription == "" {
		cfg.Subscription = os.Getenv(EnvSubscription)
	}
	ep, epErr := readEndpoint(cfg.DataDir)
	if epErr == nil {
		if cfg.Endpoint == "" {
			cfg.Endpoint = ep.Endpoint
		}
		if cfg.CAFile == "" {
			cfg.CAFile = ep.CAFile
		}
		if cfg.Subscription == "" && strings.EqualFold(strings.TrimRight(cfg.Endpoint, "/"), strings.TrimRight(ep.Endpoint, "/")) {
			cfg.Subscription = ep.SubscriptionID
		}
	}
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("no nimbus endpoint: start `nimbus serve` (data directory %s), or set --endpoint or %s: %w", cfg.DataDir, EnvEndpoint, epErr)
	}
	if cfg.CAFile == "" {
		if p := filepath.Join(cfg.DataDir, auth.CAFile); fileExists(p) {
			cfg.CAFile = p
		}
	}
	if cfg.Token == "" {
		tok, err := mintLocalToken(cfg.DataDir)
		if err != nil {
			return nil, fmt.Errorf("no bearer token: set %s (see `nimbus token`) or use the server's data directory: %w", EnvToken, err)
		}
		cfg.Token = tok
	}
	hc := cfg.HTTPClient
	if hc == nil {
		var err error
		if hc, err = httpClient(cfg.CAFile); err != nil {
			return nil, err
		}
	}
	c := &Client{Endpoint: strings.TrimRight(cfg.Endpoint, "/"), Subscription: cfg.Subscription, Token: cfg.Token, HTTP: hc}
	if c.Subscription == "" {
		subs, err := c.List(ctx, "/subscriptions", SubscriptionsAPI)
		if err != nil {
			return nil, fmt.Errorf("find subscription: %w", err)
		}
		for _, s := range subs {
			if id, _ := field(s, "subscriptionId").(string); id != "" {
				c.Subscription = id
				break
			}
		}
		if c.Subscription == "" {
			return nil, errors.New("no subscription found: use --subscription")
		}
	}
	return c, nil
}

// DefaultDataDir is the data directory `nimbus serve` uses by default:
// $NIMBUS_DATA_DIR, or ~/.local/share/nimbus.
func DefaultDataDir() string {
	if d := os.Getenv("NIMBUS_DATA_DIR"); d != "" {
		return d
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), "nimbus")
	}
	return filepath.Join(home, ".local", "share", "nimbus")
}

// endpointFile is what `nimbus serve` writes into its data directory.
type endpointFile struct {
	Endpoint       string `json:"endpoint"`
	SubscriptionID string `json:"subscriptionId"`
	TenantID       string `json:"tenantId"`
	CAFile         string `json:"caFile"`
}

func readEndpoint(dir string) (endpointFile, error) {
	var e endpointFile
	b, err := os.ReadFile(filepath.Join(dir, "endpoint.json"))
	if err != nil {
		return e, err
	}
	if err := json.Unmarshal(b, &e); err != nil {
		return e, fmt.Errorf("endpoint.json: %w", err)
	}
	return e, nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// mintLocalToken signs a one-hour token with the token key of a local
// server's data directory. It never creates files: the directory must
// already hold identity.json and token-key.pem.
func mintLocalToken(dir string) (string, error) {
	for _, f := range []string{"identity.json", "token-key.pem"} {
		if !fileExists(filepath.Join(dir, f)) {
			return "", fmt.Errorf("%s not found in %s", f, dir)
		}
	}
	id, err := auth.LoadOrCreateIdentity(dir)
	if err != nil {
		return "", err
	}
	iss, err := auth.LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		return "", err
	}
	tok, _, err := iss.Mint(auth.DefaultAudience, time.Hour)
	return tok, err
}

// httpClient returns an HTTP client trusting the system roots plus caFile.
func httpClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("ca file: %w", err)
		}
		pool, err := x509.SystemCertPool()
		if err != nil || pool == nil {
			pool = x509.NewCertPool()
		}
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca file %s: no PEM certificates", caFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 2 * time.Minute}, nil
}

// Response is a raw ARM response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body (nil for an empty body).
func (r *Response) JSON() (any, error) {
	if len(bytes.TrimSpace(r.Body)) == 0 {
		return nil, nil
	}
	var v any
	if err := json.Unmarshal(r.Body, &v); err != nil {
		return nil, fmt.Errorf("decode response: %w", err)
	}
	return v, nil
}

// URL returns the absolute URL of an ARM path with its api-version. A path
// that is already an absolute URL is returned with only api-version added
// when missing.
func (c *Client) URL(path, apiVersion string) string {
	u := path
	if !strings.HasPrefix(path, "https://") && !strings.HasPrefix(path, "http://") {
		u = c.Endpoint + path
	}
	if apiVersion != "" && !strings.Contains(u, "api-version=") {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		u += sep + "api-version=" + url.QueryEscape(apiVersion)
	}
	return u
}

// Do sends one request and returns the response. Statuses of 400 and above
// become an *APIError.
func (c *Client) Do(ctx context.Context, method, path, apiVersion string, body any) (*Response, error) {
	u := c.URL(path, apiVersion)
	if err := c.sameHost(u); err != nil {
		return nil, err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, fmt.Errorf("encode request: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", "nimbus-cli")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "DEBUG: %s %s\n", method, u)
	}
	hr, err := c.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	defer hr.Body.Close()
	b, err := io.ReadAll(io.LimitReader(hr.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	if c.Debug != nil {
		fmt.Fprintf(c.Debug, "DEBUG: %d %s\n", hr.StatusCode, u)
	}
	resp := &Response{Status: hr.StatusCode, Header: hr.Header, Body: b}
	if hr.StatusCode >= 400 {
		return resp, parseAPIError(hr.StatusCode, hr.Header, b)
	}
	return resp, nil
}

// sameHost refuses to send the token to any host but the endpoint's (polling
// URLs and nextLinks come from the server).
func (c *Client) sameHost(u string) error {
	pu, err := url.Parse(u)
	if err != nil {
		return fmt.Errorf("bad url %q: %w", u, err)
	}
	eu, err := url.Parse(c.Endpoint)
	if err != nil {
		return fmt.Errorf("bad endpoint %q: %w", c.Endpoint, err)
	}
	if !strings.EqualFold(pu.Host, eu.Host) || pu.Scheme != eu.Scheme {
		return fmt.Errorf("refusing to send credentials to %s://%s (endpoint is %s)", pu.Scheme, pu.Host, c.Endpoint)
	}
	return nil
}

// Get returns the decoded body of GET path.
func (c *Client) Get(ctx context.Context, path, apiVersion string) (any, error) {
	resp, err := c.Do(ctx, http.MethodGet, path, apiVersion, nil)
	if err != nil {
		return nil, err
	}
	return resp.JSON()
}

// Exists reports whether HEAD path answers 2xx (false on 404).
func (c *Client) Exists(ctx context.Context, path, apiVersion string) (bool, error) {
	_, err := c.Do(ctx, http.MethodHead, path, apiVersion, nil)
	var ae *APIError
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return false, nil
	}
	return err == nil, err
}

// List returns every element of a paged ARM list, following nextLink.
func (c *Client) List(ctx context.Context, path, apiVersion string) ([]any, error) {
	var out []any
	next := c.URL(path, apiVersion)
	for pages := 0; next != "" && pages < 10000; pages++ {
		v, err := c.Get(ctx, next, "")
		if err != nil {
			return nil, err
		}
		m, _ := v.(map[string]any)
		vals, _ := m["value"].([]any)
		out = append(out, vals...)
		next, _ = m["nextLink"].(string)
	}
	if out == nil {
		out = []any{}
	}
	return out, nil
}

// Put sends PUT path with body. With wait it polls the operation to the end
// and returns the resource as a final GET reads it; without, it returns the
// PUT response body.
func (c *Client) Put(ctx context.Context, path, apiVersion string, body any, wait bool) (any, error) {
	return c.write(ctx, http.MethodPut, path, apiVersion, body, wait)
}

// Patch is Put with PATCH.
func (c *Client) Patch(ctx context.Context, path, apiVersion string, body any, wait bool) (any, error) {
	return c.write(ctx, http.MethodPatch, path, apiVersion, body, wait)
}

func (c *Client) write(ctx context.Context, method, path, apiVersion string, body any, wait bool) (any, error) {
	resp, err := c.Do(ctx, method, path, apiVersion, body)
	if err != nil {
		return nil, err
	}
	if !wait {
		return resp.JSON()
	}
	if pollURL(resp.Header) == "" {
		v, err := resp.JSON()
		if err != nil || !inProgress(v) {
			return v, err
		}
	}
	if _, err := c.Wait(ctx, resp); err != nil {
		return nil, err
	}
	return c.Get(ctx, path, apiVersion)
}

// Delete sends DELETE path and, with wait, polls the operation to the end.
func (c *Client) Delete(ctx context.Context, path, apiVersion string, wait bool) error {
	resp, err := c.Do(ctx, http.MethodDelete, path, apiVersion, nil)
	if err != nil {
		return err
	}
	if wait {
		_, err = c.Wait(ctx, resp)
	}
	return err
}

// Post sends POST path with body (nil for none) and, with wait, polls the
// operation to the end and returns its result (the Location URL's final
// body, or nil).
func (c *Client) Post(ctx context.Context, path, apiVersion string, body any, wait bool) (any, error) {
	resp, err := c.Do(ctx, http.MethodPost, path, apiVersion, body)
	if err != nil {
		return nil, err
	}
	if !wait {
		return resp.JSON()
	}
	return c.Wait(ctx, resp)
}

func pollURL(h http.Header) string {
	if u := h.Get("Azure-AsyncOperation"); u != "" {
		return u
	}
	return h.Get("Location")
}

func inProgress(v any) bool {
	s, _ := field(field(v, "properties"), "provisioningState").(string)
	switch strings.ToLower(s) {
	case "", "succeeded", "failed", "canceled", "cancelled":
		return false
	}
	return true
}

// Wait follows the long-running operation that resp started until it ends:
// the Azure-AsyncOperation status URL if present (then one GET of Location,
// whose body is returned), else the Location URL. A failed operation is an
// *APIError with the operation's error code and message.
func (c *Client) Wait(ctx context.Context, resp *Response) (any, error) {
	async, loc := resp.Header.Get("Azure-AsyncOperation"), resp.Header.Get("Location")
	delay := c.retryAfter(resp.Header)
	if c.FirstPoll > 0 {
		delay = c.FirstPoll
	}
	if async != "" {
		for {
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
			r, err := c.Do(ctx, http.MethodGet, async, "", nil)
			if err != nil {
				return nil, err
			}
			v, err := r.JSON()
			if err != nil {
				return nil, err
			}
			status, _ := field(v, "status").(string)
			switch strings.ToLower(status) {
			case "succeeded", "completed":
				if loc == "" || resp.Status == http.StatusOK || resp.Status == http.StatusCreated {
					return nil, nil
				}
				lr, err := c.Do(ctx, http.MethodGet, loc, "", nil)
				if err != nil {
					return nil, err
				}
				return lr.JSON()
			case "failed", "canceled", "cancelled":
				return nil, opError(r.Status, status, v)
			case "":
				return nil, fmt.Errorf("operation status response without status: %s", strings.TrimSpace(string(r.Body)))
			}
			delay = c.retryAfter(r.Header)
		}
	}
	if loc != "" {
		for {
			if err := sleep(ctx, delay); err != nil {
				return nil, err
			}
			r, err := c.Do(ctx, http.MethodGet, loc, "", nil)
			if err != nil {
				return nil, err
			}
			if r.Status != http.StatusAccepted {
				return r.JSON()
			}
			if l := r.Header.Get("Location"); l != "" {
				loc = l
			}
			delay = c.retryAfter(r.Header)
		}
	}
	return resp.JSON()
}

// retryAfter returns the server's Retry-After (seconds, or the -ms
// variants), else PollInterval, capped at a minute.
func (c *Client) retryAfter(h http.Header) time.Duration {
	d := c.PollInterval
	if d <= 0 {
		d = time.Second
	}
	for _, k := range []string{"Retry-After-Ms", "x-ms-retry-after-ms"} {
		if n, err := strconv.Atoi(h.Get(k)); err == nil && n >= 0 {
			return min(time.Duration(n)*time.Millisecond, time.Minute)
		}
	}
	if v := h.Get("Retry-After"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n >= 0 {
			return min(time.Duration(n)*time.Second, time.Minute)
		}
		if t, err := http.ParseTime(v); err == nil {
			return min(max(time.Until(t), 0), time.Minute)
		}
	}
	return d
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// field returns m[key] when v is a JSON object, else nil.
func field(v any, key string) any {
	m, ok := v.(map[string]any)
	if !ok {
		return nil
	}
	return m[key]
}
