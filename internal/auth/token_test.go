package auth

import (
	"testing"
	"time"
)

func TestMintVerify(t *testing.T) {
	dir := t.TempDir()
	id, err := LoadOrCreateIdentity(dir)
	if err != nil {
		t.Fatal(err)
	}
	iss, err := LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	good, _, err := iss.Mint("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	expired, _, err := iss.Mint("", -time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := LoadOrCreateIssuer(t.TempDir(), id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := other.Mint("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// The same key, reloaded from the directory, verifies the token.
	again, err := LoadOrCreateIssuer(dir, id.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		iss   *Issuer
		token string
		ok    bool
	}{
		{"valid", iss, good, true},
		{"valid again (cached)", iss, good, true},
		{"reloaded key", again, good, true},
		{"expired", iss, expired, false},
		{"foreign key", iss, foreign, false},
		{"garbage", iss, "a.b.c", false},
		{"empty", iss, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := tc.iss.Verify(tc.token)
			if (err == nil) != tc.ok {
				t.Fatalf("Verify = %v, want ok %v", err, tc.ok)
			}
			if tc.ok && (c.TenantID != id.TenantID || c.ObjectID != ObjectID || c.ExpiresAt == nil || c.IssuedAt == nil || len(c.Audience) != 1) {
				t.Fatalf("claims %+v", c)
			}
		})
	}
	id2, err := LoadOrCreateIdentity(dir)
	if err != nil || id2 != id {
		t.Fatalf("identity not kept: %+v %v", id2, err)
	}
}

// TestConcurrentFirstUse starts several first uses of one directory at once
// (nimbus serve and nimbus token racing): all must agree on one identity and key.
func TestConcurrentFirstUse(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	ids := make(chan Identity, n)
	tokens := make(chan string, n)
	errs := make(chan error, 2*n)
	for range n {
		go func() {
			id, err := LoadOrCreateIdentity(dir)
			if err != nil {
				errs <- err
				ids <- Identity{}
				tokens <- ""
				return
			}
			ids <- id
			iss, err := LoadOrCreateIssuer(dir, id.TenantID)
			if err != nil {
				errs <- err
				tokens <- ""
				return
			}
			tok, _, err := iss.Mint("", time.Minute)
			if err != nil {
				errs <- err
			}
			tokens <- tok
		}()
	}
	first := <-ids
	for range n - 1 {
		if id := <-ids; id != first {
			t.Fatalf("identities differ: %+v vs %+v", id, first)
		}
	}
	iss, err := LoadOrCreateIssuer(dir, first.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if _, err := iss.Verify(<-tokens); err != nil {
			t.Fatalf("token from a racing issuer rejected: %v", err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}
