package arm

import (
	"context"
	"fmt"
	"net/http"
	"strings"

	"nimbus/internal/resource"
)

// RegisterPagedLists serves the group and subscription lists of k, decoding
// and rendering only the requested page: with 1,000 stored load balancers a
// page costs 100 decodes, not 1,000. It must be called before
// RegisterKind(k) so that these routes win over the generic ones (the first
// registered of equally specific routes is used).
func (s *Server) RegisterPagedLists(k *Kind) {
	s.Handle(http.MethodGet, "/subscriptions/{sub}/resourceGroups/{rg}/providers/"+k.Type, k.Versions,
		func(ctx context.Context, r *Request) (*Response, error) { return s.pagedList(ctx, r, k, r.Param("rg")) })
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/"+k.Type, k.Versions,
		func(ctx context.Context, r *Request) (*Response, error) { return s.pagedList(ctx, r, k, "") })
}

// pagedList lists k in group rg (or the whole subscription when rg is ""),
// answering the page the request's $skiptoken selects.
func (s *Server) pagedList(ctx context.Context, r *Request, k *Kind, rg string) (*Response, error) {
	sub := r.Param("sub")
	rd := StoreReader{s.st}
	var prefix string
	if rg != "" {
		if err := s.RequireGroup(ctx, rd, sub, rg); err != nil {
			return nil, err
		}
		prefix = resource.TypePrefix(sub, rg, k.Type)
	} else {
		prefix = resource.GroupsPrefix(sub)
	}
	kvs, err := rd.List(ctx, prefix)
	if err != nil {
		return nil, err
	}
	want := "/providers/" + strings.ToLower(k.Type) + "/"
	var keep [][]byte
	for _, kv := range kvs {
		rest := kv.Key[len(prefix):]
		if rg == "" {
			grp, tail, ok := strings.Cut(rest, "/")
			if !ok || grp == "" || !strings.HasPrefix("/"+tail, want) {
				continue
			}
			rest = ("/" + tail)[len(want):]
		}
		if rest == "" || strings.Contains(rest, "/") {
			continue
		}
		keep = append(keep, kv.Value)
	}
	start := 0
	if tok := r.Query("$skiptoken"); tok != "" {
		if _, err := fmt.Sscanf(tok, "%d", &start); err != nil || start < 0 || start > len(keep) {
			return nil, resource.BadRequest("InvalidSkipToken", "The $skiptoken '%s' is invalid.", tok)
		}
	}
	// Page slices items[start:start+PageSize]; only those are decoded.
	items := make([]any, len(keep))
	for i := start; i < len(keep) && i < start+PageSize; i++ {
		obj, err := DecodeObject(k, keep[i])
		if err != nil {
			return nil, err
		}
		if err := k.Model.Render(ctx, rd, obj); err != nil {
			return nil, err
		}
		items[i] = obj
	}
	return r.Page(items)
}
