package arm

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/auth"
	"nimbus/internal/peercred"
)

// MSITokenTTL is the lifetime of tokens from the managed-identity endpoint.
const MSITokenTTL = time.Hour

// msiToken is the managed-identity token response (both protocols).
type msiToken struct {
	AccessToken string `json:"access_token"`
	TokenType   string `json:"token_type"`
	ExpiresOn   string `json:"expires_on"`
	ExpiresIn   string `json:"expires_in"`
	NotBefore   string `json:"not_before"`
	Resource    string `json:"resource"`
}

type msiError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveMSI is the managed-identity endpoint at /msi/token, answering only
// loopback peers owned by a trusted local user (see msiPeerAllowed). It speaks az 2.45's VM-extension protocol (POST, form
// resource=…, header Metadata: true), azidentity's App Service protocol
// (GET ?api-version=2019-08-01&resource=…, header X-Identity-Header = the
// identity secret) and IMDS-style GET with Metadata: true.
func (s *Server) serveMSI(w http.ResponseWriter, hr *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(msiError{Error: code, Description: desc})
	}
	if !isLoopback(hr) {
		fail(http.StatusForbidden, "access_denied", "the managed identity endpoint answers loopback clients only")
		return
	}
	if err := s.msiPeerAllowed(hr); err != nil {
		fail(http.StatusForbidden, "access_denied", err.Error())
		return
	}
	if hr.Method != http.MethodGet && hr.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "use GET or POST")
		return
	}
	if err := hr.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "the request form could not be parsed")
		return
	}
	idh := hr.Header.Get("X-Identity-Header")
	switch {
	case idh != "":
		if subtle.ConstantTimeCompare([]byte(idh), []byte(s.cfg.Identity.IdentityHeader)) != 1 {
			fail(http.StatusUnauthorized, "invalid_request", "the X-Identity-Header value is wrong")
			return
		}
	case strings.EqualFold(hr.Header.Get("Metadata"), "true"):
	default:
		fail(http.StatusBadRequest, "invalid_request", "required header Metadata: true or X-Identity-Header is missing")
		return
	}
	res := hr.Form.Get("resource")
	if res == "" {
		res = strings.TrimSuffix(hr.Form.Get("scope"), "/.default")
	}
	if res == "" {
		res = auth.DefaultAudience
	}
	tok, exp, err := s.cfg.Tokens.Mint(res, MSITokenTTL)
	if err != nil {
		s.log.Error("mint token", "err", err)
		fail(http.StatusInternalServerError, "server_error", "could not mint a token")
		return
	}
	now := s.now()
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_ = json.NewEncoder(w).Encode(msiToken{
		AccessToken: tok, TokenType: "Bearer", Resource: res,
		ExpiresOn: strconv.FormatInt(exp.Unix(), 10), ExpiresIn: strconv.Itoa(int(exp.Sub(now).Seconds())),
		NotBefore: strconv.FormatInt(now.Add(-5*time.Minute).Unix(), 10),
	})
}

// msiPeerAllowed returns nil if the loopback peer of hr belongs to root or
// to one of Config.TrustedUIDs, by finding the peer's socket in the
// kernel's socket table (package peercred), and otherwise an error saying
// why it is refused: another user, or a user that cannot be determined
// (the check fails closed).
func (s *Server) msiPeerAllowed(hr *http.Request) error {
	uid, err := peerUID(hr)
	if err != nil {
		return fmt.Errorf("the managed identity endpoint could not determine which local user is calling, so it refuses: %w", err)
	}
	if uid == 0 || slices.Contains(s.cfg.TrustedUIDs, uid) {
		return nil
	}
	return fmt.Errorf("local user %d may not use the managed identity endpoint: it serves only root and the owner of nimbus's data directory", uid)
}

// peerUID returns the uid owning the client end of hr's TCP connection.
func peerUID(hr *http.Request) (uint32, error) {
	la, ok := hr.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return 0, errors.New("the connection's local address is unknown")
	}
	ta, ok := la.(*net.TCPAddr)
	if !ok {
		return 0, fmt.Errorf("the connection is not TCP (%s)", la.Network())
	}
	remote, err := netip.ParseAddrPort(hr.RemoteAddr)
	if err != nil {
		return 0, fmt.Errorf("peer address %q: %w", hr.RemoteAddr, err)
	}
	return peercred.Lookup(ta.AddrPort(), remote)
}

// metadataAuth is the authentication block of the cloud metadata.
type metadataAuth struct {
	LoginEndpoint    string   `json:"loginEndpoint"`
	Audiences        []string `json:"audiences"`
	Tenant           string   `json:"tenant,omitempty"`
	IdentityProvider string   `json:"identityProvider,omitempty"`
}

// serveMetadata answers GET /metadata/endpoints (no authentication) for
// `az cloud register`: the legacy object for api-versions before
// 2019-05-01 (what az cloud register sends), the cloud array (for
// ARM_CLOUD_METADATA_URL) otherwise.
func (s *Server) serveMetadata(w http.ResponseWriter, hr *http.Request) {
	base := "https://" + hr.Host + "/"
	a := metadataAuth{LoginEndpoint: base + "adfs", Audiences: []string{auth.DefaultAudience}}
	v := hr.URL.Query().Get("api-version")
	if v == "" || v < "2019-05-01" {
		writeJSON(w, http.StatusOK, map[string]any{
			"galleryEndpoint": base, "graphEndpoint": base, "portalEndpoint": base, "authentication": a,
		})
		return
	}
	a.Tenant, a.IdentityProvider = s.cfg.Identity.TenantID, "ADFS"
	writeJSON(w, http.StatusOK, []map[string]any{{
		"name": "Nimbus", "resourceManager": base, "portal": base, "gallery": base, "graph": base,
		"graphAudience": base, "activeDirectoryDataLake": "", "batch": "", "media": "", "sqlManagement": "",
		"vmImageAliasDoc": "", "microsoftGraphResourceId": base,
		"authentication": a,
		"suffixes": map[string]string{"storage": "nimbus.local", "keyVaultDns": "vault.nimbus.local",
			"sqlServerHostname": "database.nimbus.local", "acrLoginServer": "acr.nimbus.local"},
	}})
}
