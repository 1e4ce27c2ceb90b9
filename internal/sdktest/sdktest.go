// Package sdktest connects the official Azure SDK for Go to a running nimbus
// in tests: client options that trust nimbus's CA and point Azure Resource
// Manager at its endpoint, and a credential that returns a token nimbus
// signed. Only tests import it, so the nimbus binary never links the SDK.
package sdktest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
)

// Minter mints a bearer token (auth.Issuer satisfies it).
type Minter interface {
	Mint(audience string, ttl time.Duration) (string, time.Time, error)
}

// Credential is an azcore.TokenCredential backed by a Minter.
type Credential struct {
	Minter   Minter
	Audience string
}

// GetToken mints a token valid for an hour.
func (c Credential) GetToken(_ context.Context, _ policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, exp, err := c.Minter.Mint(c.Audience, time.Hour)
	if err != nil {
		return azcore.AccessToken{}, err
	}
	return azcore.AccessToken{Token: tok, ExpiresOn: exp}, nil
}

// Options returns ARM client options for a nimbus at endpoint (https URL)
// whose CA certificate is in caFile. Polling is fast (Retry-After from the
// server is honoured) and retries are off so tests see errors at once.
func Options(endpoint, caFile string) (*arm.ClientOptions, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("read ca: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no certificate in %s", caFile)
	}
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	return &arm.ClientOptions{ClientOptions: policy.ClientOptions{
		Cloud: cloud.Configuration{Services: map[cloud.ServiceName]cloud.ServiceConfiguration{
			cloud.ResourceManager: {Endpoint: endpoint, Audience: "https://management.core.windows.net/"},
		}},
		Transport: hc,
		Retry:     policy.RetryOptions{MaxRetries: -1},
	}}, nil
}

// Poll is the polling option tests pass to PollUntilDone.
var Poll = &runtime.PollUntilDoneOptions{Frequency: 200 * time.Millisecond}
