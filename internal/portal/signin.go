package portal

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// SignInDir is the directory, inside the data directory, holding the
// outstanding sign-in codes: one empty file per code, named by the code's
// SHA-256, its modification time the issue time. Only the data directory's
// owner (and root) can create them: the directory is 0700.
const SignInDir = "portal-signin"

// CodeTTL is how long a sign-in link stays valid.
const CodeTTL = 5 * time.Minute

// NewSignInLink creates a one-time sign-in code in dataDir and returns the
// link that spends it: endpoint (the node's https base URL, as in
// endpoint.json) + /portal/signin?code=…. The link works once, within
// CodeTTL, from a loopback connection. `nimbus serve` and `nimbus portal`
// call it; the server need not be running for the code to be created.
func NewSignInLink(dataDir, endpoint string) (string, error) {
	code := randomString(32)
	dir := filepath.Join(dataDir, SignInDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("portal: sign-in code: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, codeFile(code)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return "", fmt.Errorf("portal: sign-in code: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("portal: sign-in code: %w", err)
	}
	return strings.TrimSuffix(endpoint, "/") + Prefix + "signin?code=" + url.QueryEscape(code), nil
}

// errBadCode is the error of a code that is unknown, spent or expired.
var errBadCode = errors.New("unknown, used or expired sign-in code")

// spendCode removes code's file: the removal is what makes a code single
// use (of two racing sign-ins, one removes the file and the other fails).
// Expired codes are swept on the way.
func spendCode(dataDir, code string, now time.Time) error {
	dir := filepath.Join(dataDir, SignInDir)
	sweepCodes(dir, now)
	if code == "" {
		return fmt.Errorf("portal: sign-in: %w", errBadCode)
	}
	p := filepath.Join(dir, codeFile(code))
	fi, err := os.Lstat(p)
	if err != nil {
		return fmt.Errorf("portal: sign-in: %w", errBadCode)
	}
	if err := os.Remove(p); err != nil {
		return fmt.Errorf("portal: sign-in: %w", errBadCode)
	}
	if !fi.Mode().IsRegular() || now.Sub(fi.ModTime()) > CodeTTL || fi.ModTime().Sub(now) > time.Minute {
		return fmt.Errorf("portal: sign-in: %w", errBadCode)
	}
	return nil
}

// sweepCodes removes the expired codes in dir.
func sweepCodes(dir string, now time.Time) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err == nil && now.Sub(fi.ModTime()) > CodeTTL {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
}

// codeFile is the file name of code: its SHA-256, so the directory listing
// does not hold usable codes.
func codeFile(code string) string {
	h := sha256.Sum256([]byte(code))
	return hex.EncodeToString(h[:])
}
