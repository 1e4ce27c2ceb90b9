package cli

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"nimbus/internal/auth"
)

// localDataDir makes a data directory as `nimbus serve` leaves it: identity,
// token key, CA and endpoint.json.
func localDataDir(t *testing.T) (string, auth.Identity, *auth.Issuer) {
	t.Helper()
	dir := t.TempDir()
	id, err := auth.LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := auth.LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := auth.ServerTLS(dir, []string{"127.0.0.1"}); err != nil {
		t.Fatal(err)
	}
	ep := `{"endpoint":"https://127.0.0.1:18999","subscriptionId":"` + id.SubscriptionID + `","tenantId":"` + id.TenantID +
		`","caFile":"` + filepath.Join(dir, auth.CAFile) + `"}`
	if err := os.WriteFile(filepath.Join(dir, "endpoint.json"), []byte(ep), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, id, iss
}

// TestNewClientConfig checks where the client takes its endpoint, token and
// subscription from: flags, then environment, then the data directory.
func TestNewClientConfig(t *testing.T) {
	dir, id, iss := localDataDir(t)
	tests := []struct {
		name                  string
		env                   map[string]string
		cfg                   Config
		wantEndpoint, wantSub string
		wantToken             string // "" = minted from the data directory
	}{
		{
			name: "all from the data directory", cfg: Config{DataDir: dir},
			wantEndpoint: "https://127.0.0.1:18999", wantSub: id.SubscriptionID,
		},
		{
			name: "data directory from NIMBUS_DATA_DIR", env: map[string]string{"NIMBUS_DATA_DIR": dir},
			wantEndpoint: "https://127.0.0.1:18999", wantSub: id.SubscriptionID,
		},
		{
			name: "environment over the data directory",
			env:  map[string]string{EnvEndpoint: "https://127.0.0.1:18998/", EnvToken: "tok", EnvSubscription: "sub-env"},
			cfg:  Config{DataDir: dir}, wantEndpoint: "https://127.0.0.1:18998", wantSub: "sub-env", wantToken: "tok",
		},
		{
			name:         "flags over the environment",
			env:          map[string]string{EnvEndpoint: "https://127.0.0.1:18998", EnvSubscription: "sub-env"},
			cfg:          Config{DataDir: dir, Endpoint: "https://127.0.0.1:18997", Subscription: "sub-flag", Token: "t2"},
			wantEndpoint: "https://127.0.0.1:18997", wantSub: "sub-flag", wantToken: "t2",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{"NIMBUS_DATA_DIR", EnvEndpoint, EnvToken, EnvSubscription, EnvCAFile} {
				t.Setenv(k, tt.env[k])
			}
			c, err := NewClient(context.Background(), tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if c.Endpoint != tt.wantEndpoint || c.Subscription != tt.wantSub {
				t.Errorf("endpoint %q subscription %q", c.Endpoint, c.Subscription)
			}
			if tt.wantToken != "" {
				if c.Token != tt.wantToken {
					t.Errorf("token %q", c.Token)
				}
			} else if _, err := iss.Verify(c.Token); err != nil {
				t.Errorf("minted token does not verify: %v", err)
			}
		})
	}
	t.Run("never writes the data directory", func(t *testing.T) {
		empty := t.TempDir()
		t.Setenv(EnvEndpoint, "https://127.0.0.1:18999")
		t.Setenv(EnvToken, "")
		if _, err := NewClient(context.Background(), Config{DataDir: empty}); err == nil {
			t.Fatal("client without a token")
		}
		if ents, _ := os.ReadDir(empty); len(ents) != 0 {
			t.Errorf("data directory written: %v", ents)
		}
	})
	t.Run("token only to the endpoint's host", func(t *testing.T) {
		c := &Client{Endpoint: "https://127.0.0.1:18999"}
		if err := c.sameHost("https://127.0.0.2:18999/x"); err == nil {
			t.Error("other host accepted")
		}
		if err := c.sameHost("http://127.0.0.1:18999/x"); err == nil {
			t.Error("plain http accepted")
		}
		if err := c.sameHost("https://127.0.0.1:18999/subscriptions/x/providers/y/operations/1?api-version=1"); err != nil {
			t.Error(err)
		}
	})
}
