package arm

import (
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"nimbus/internal/auth"
)

// Service-principal sign-in. nimbus has one principal: client ID
// auth.ObjectID, client secret the identity secret (Identity.IdentityHeader,
// endpoint.json's identityHeader). Two authority shapes are served, without
// a bearer token:
//
//	ADFS style (az login --service-principal with loginEndpoint https://host/adfs):
//	  GET  /adfs/.well-known/openid-configuration, POST /adfs/oauth2/token
//	AAD style (azidentity with DisableInstanceDiscovery and authority https://host/):
//	  GET  /{tenant}/v2.0/.well-known/openid-configuration, POST /{tenant}/oauth2/v2.0/token
//
// The token endpoint accepts grant_type=client_credentials only.

// oauthRoute reports whether segs is one of the sign-in paths, and which.
func oauthRoute(segs []string) (discovery, token bool) {
	lower := make([]string, len(segs))
	for i, s := range segs {
		lower[i] = strings.ToLower(s)
	}
	p := strings.Join(lower, "/")
	switch {
	case p == "adfs/.well-known/openid-configuration":
		return true, false
	case p == "adfs/oauth2/token":
		return false, true
	case len(lower) == 4 && lower[1] == "v2.0" && lower[2] == ".well-known" && lower[3] == "openid-configuration":
		return true, false
	case len(lower) == 4 && lower[1] == "oauth2" && lower[2] == "v2.0" && lower[3] == "token":
		return false, true
	}
	return false, false
}

type oauthError struct {
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// serveOpenIDConfiguration answers the OpenID discovery document of an authority.
func (s *Server) serveOpenIDConfiguration(w http.ResponseWriter, hr *http.Request, segs []string) {
	base := "https://" + hr.Host + "/" + segs[0]
	tokenPath := base + "/oauth2/token"
	if !strings.EqualFold(segs[0], "adfs") {
		tokenPath = base + "/oauth2/v2.0/token"
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                base,
		"authorization_endpoint":                base + "/oauth2/authorize",
		"token_endpoint":                        tokenPath,
		"jwks_uri":                              base + "/discovery/keys",
		"response_types_supported":              []string{"code", "id_token", "token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"ES256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_post"},
		"scopes_supported":                      []string{"openid"},
		"tenant_region_scope":                   nil,
	})
}

// serveOAuthToken issues a token for the client-credentials grant.
func (s *Server) serveOAuthToken(w http.ResponseWriter, hr *http.Request) {
	fail := func(status int, code, desc string) {
		w.Header().Set("Content-Type", "application/json; charset=utf-8")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(oauthError{Error: code, Description: desc})
	}
	if hr.Method != http.MethodPost {
		fail(http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if err := hr.ParseForm(); err != nil {
		fail(http.StatusBadRequest, "invalid_request", "the request form could not be parsed")
		return
	}
	if gt := hr.PostForm.Get("grant_type"); gt != "client_credentials" {
		fail(http.StatusBadRequest, "unsupported_grant_type", "only client_credentials is supported")
		return
	}
	id, secret := hr.PostForm.Get("client_id"), hr.PostForm.Get("client_secret")
	if u, p, ok := hr.BasicAuth(); ok {
		id, secret = u, p
	}
	if !strings.EqualFold(id, auth.ObjectID) || subtle.ConstantTimeCompare([]byte(secret), []byte(s.cfg.Identity.IdentityHeader)) != 1 {
		fail(http.StatusUnauthorized, "invalid_client", "the client ID or secret is wrong")
		return
	}
	aud := ""
	for _, sc := range strings.Fields(hr.PostForm.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			aud = strings.TrimSuffix(sc, ".default")
			aud = strings.TrimSuffix(aud, "/") + "/"
			break
		}
	}
	if aud == "" {
		aud = hr.PostForm.Get("resource")
	}
	tok, exp, err := s.cfg.Tokens.Mint(aud, MSITokenTTL)
	if err != nil {
		s.log.Error("mint token", "err", err)
		fail(http.StatusInternalServerError, "server_error", "could not mint a token")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token_type": "Bearer", "access_token": tok,
		"expires_in": int(exp.Sub(s.now()).Seconds()), "ext_expires_in": int(exp.Sub(s.now()).Seconds()),
	})
}
