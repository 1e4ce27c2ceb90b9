// Package auth keeps nimbus's identity material in the data directory: the
// tenant and default subscription IDs, the secret the managed-identity
// endpoint checks, the CA and server certificate for HTTPS, and the key that
// signs and verifies bearer tokens (JWT, ES256).
//
// Files in the data directory (created on first use, mode 0600 for secrets):
//
//	identity.json    tenantId, subscriptionId, identityHeader
//	ca.pem           the CA certificate clients trust (REQUESTS_CA_BUNDLE, RootCAs)
//	ca-key.pem       the CA key
//	server.pem       the server certificate (issued by the CA)
//	server-key.pem   its key
//	token-key.pem    the ECDSA P-256 key signing bearer tokens
package auth

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/uuid"
)

// Identity is the tenant, default subscription and managed-identity secret of one nimbus installation.
type Identity struct {
	TenantID       string `json:"tenantId"`
	SubscriptionID string `json:"subscriptionId"`
	// IdentityHeader is the secret azidentity clients send as X-Identity-Header.
	IdentityHeader string `json:"identityHeader"`
}

// LoadOrCreateIdentity reads dir/identity.json, creating it with fresh random IDs if absent.
func LoadOrCreateIdentity(dir string) (Identity, error) {
	p := filepath.Join(dir, "identity.json")
	var id Identity
	b, err := os.ReadFile(p)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &id); err != nil {
			return Identity{}, fmt.Errorf("auth: read %s: %w", p, err)
		}
		return id, nil
	case !errors.Is(err, fs.ErrNotExist):
		return Identity{}, fmt.Errorf("auth: %w", err)
	}
	secret := make([]byte, 24)
	if _, err := rand.Read(secret); err != nil {
		return Identity{}, fmt.Errorf("auth: %w", err)
	}
	id = Identity{TenantID: uuid.NewString(), SubscriptionID: uuid.NewString(), IdentityHeader: hex.EncodeToString(secret)}
	b, err = json.MarshalIndent(id, "", "  ")
	if err != nil {
		return Identity{}, fmt.Errorf("auth: %w", err)
	}
	created, err := createFileExclusive(p, append(b, '\n'), 0o600)
	if err != nil {
		return Identity{}, err
	}
	if !created {
		// Another process (nimbus serve and nimbus token starting together) won.
		return LoadOrCreateIdentity(dir)
	}
	return id, nil
}

// createFileExclusive writes data to path only if path does not exist yet,
// atomically (temporary file, fsync, hard link). created is false when
// another writer got there first.
func createFileExclusive(path string, data []byte, perm os.FileMode) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return false, fmt.Errorf("auth: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(data)
	if werr == nil {
		werr = tmp.Chmod(perm)
	}
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return false, fmt.Errorf("auth: write %s: %w", path, werr)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return false, nil
		}
		return false, fmt.Errorf("auth: %w", err)
	}
	return true, nil
}

// writeFileAtomic writes data to path through a temporary file and rename, so
// a crash never leaves a half-written file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: write %s: %w", path, err)
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("auth: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	return nil
}

// WriteFileAtomic writes data to path atomically (temporary file, fsync, rename).
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	return writeFileAtomic(path, data, perm)
}
