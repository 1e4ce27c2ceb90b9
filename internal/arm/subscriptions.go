package arm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"nimbus/internal/resource"
	"nimbus/internal/store"
)

// EnsureSubscription creates the default subscription (Config.Identity) if
// the store has none. Called once at startup.
func (s *Server) EnsureSubscription(ctx context.Context) error {
	id := s.cfg.Identity
	sub := resource.NewSubscription(id.SubscriptionID, id.TenantID, "nimbus")
	b, err := json.Marshal(sub)
	if err != nil {
		return fmt.Errorf("arm: ensure subscription: %w", err)
	}
	_, err = s.st.Put(ctx, resource.Key(resource.SubscriptionID(id.SubscriptionID)), b, store.MustNotExist)
	if err != nil && !isConflictOrMissing(err) {
		return fmt.Errorf("arm: ensure subscription: %w", err)
	}
	return nil
}

// isSubscriptionKey reports whether key is a subscription's own key.
func isSubscriptionKey(key string) bool {
	rest, ok := strings.CutPrefix(key, resource.SubscriptionsPrefix)
	return ok && rest != "" && !strings.Contains(rest, "/")
}

func (s *Server) listSubscriptions(ctx context.Context, r *Request) (*Response, error) {
	kvs, _, err := s.st.List(ctx, resource.SubscriptionsPrefix)
	if err != nil {
		return nil, err
	}
	var items []any
	for _, kv := range kvs {
		if !isSubscriptionKey(kv.Key) {
			continue
		}
		var sub resource.Subscription
		if err := json.Unmarshal(kv.Value, &sub); err != nil {
			return nil, fmt.Errorf("arm: decode subscription: %w", err)
		}
		items = append(items, &sub)
	}
	return r.Page(items)
}

func (s *Server) getSubscription(ctx context.Context, r *Request) (*Response, error) {
	kv, err := s.st.Get(ctx, resource.Key(resource.SubscriptionID(r.Param("sub"))))
	if IsNotFound(err) {
		return nil, resource.NotFound("SubscriptionNotFound", "The subscription '%s' could not be found.", r.Param("sub"))
	}
	if err != nil {
		return nil, err
	}
	var sub resource.Subscription
	if err := json.Unmarshal(kv.Value, &sub); err != nil {
		return nil, fmt.Errorf("arm: decode subscription: %w", err)
	}
	return JSON(http.StatusOK, &sub), nil
}

// Locations are the regions nimbus lists; any location string is accepted on writes.
var Locations = []string{"eastus", "eastus2", "westus", "westus2", "westus3", "centralus", "northeurope", "westeurope", "uksouth", "southeastasia", "japaneast", "australiaeast"}

type location struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	Type        string `json:"type"`
}

func (s *Server) listLocations(ctx context.Context, r *Request) (*Response, error) {
	if _, err := s.getSubscription(ctx, r); err != nil {
		return nil, err
	}
	items := make([]any, 0, len(Locations))
	for _, l := range Locations {
		items = append(items, location{ID: "/subscriptions/" + r.Param("sub") + "/locations/" + l, Name: l, DisplayName: l, Type: "Region"})
	}
	return r.Page(items)
}

type tenant struct {
	ID       string `json:"id"`
	TenantID string `json:"tenantId"`
}

func (s *Server) listTenants(_ context.Context, r *Request) (*Response, error) {
	t := s.cfg.Identity.TenantID
	return r.Page([]any{tenant{ID: "/tenants/" + t, TenantID: t}})
}

// registerSubscriptions registers the routes of subscriptions.go.
func (s *Server) registerSubscriptions() {
	s.Handle(http.MethodGet, "/subscriptions", SubscriptionVersions, s.listSubscriptions)
	s.Handle(http.MethodGet, "/subscriptions/{sub}", SubscriptionVersions, s.getSubscription)
	s.Handle(http.MethodGet, "/subscriptions/{sub}/locations", SubscriptionVersions, s.listLocations)
	s.Handle(http.MethodGet, "/tenants", SubscriptionVersions, s.listTenants)
}
