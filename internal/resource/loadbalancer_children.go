package resource

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ChildAPI says which endpoints ARM has under
// .../loadBalancers/{lb}/{collection} for a child collection.
type ChildAPI int

const (
	// ChildNoAPI: no child endpoints; the children are written only
	// through the load balancer body (inboundNatPools).
	ChildNoAPI ChildAPI = iota
	// ChildReadOnly: GET of the collection (a list page) and of one child.
	ChildReadOnly
	// ChildReadWrite: ChildReadOnly plus PUT and DELETE of one child.
	ChildReadWrite
)

// ErrUnknownChildCollection is the error LBChild returns (wrapped) for a name
// that is no load balancer child collection.
var ErrUnknownChildCollection = errors.New("unknown load balancer child collection")

// LBChildCollection describes one child collection of a load balancer
// (probes, loadBalancingRules, ...) and reads and writes it in a
// *LoadBalancer. The values are the entries of LBChildren; they hold no state
// and are safe for concurrent use (the load balancers passed in are not).
//
// Indexes are positions in the collection's slice, names match
// case-insensitively, and an lb with a nil collection has no children.
type LBChildCollection interface {
	// Name is the collection's JSON property in the LB's properties and its
	// path segment under .../loadBalancers/{lb}/, e.g. "probes".
	Name() string
	// Path is the collection's JSON path in the LB body: "properties.probes".
	Path() string
	// Type is the ARM type of a child, e.g.
	// "Microsoft.Network/loadBalancers/probes".
	Type() string
	// Display is the child's type as messages and help text name it, in
	// lower case: "probe", "load balancing rule".
	Display() string
	// API is which child endpoints ARM serves for the collection.
	API() ChildAPI
	// ChildID is the id of the child named name under the LB lbID.
	ChildID(lbID, name string) string

	// Len is the number of children in lb.
	Len(lb *LoadBalancer) int
	// Index is the index of the first child named name, or -1.
	Index(lb *LoadBalancer, name string) int
	// NameAt, IDAt and EtagAt are the name, id and etag of child i.
	NameAt(lb *LoadBalancer, i int) string
	IDAt(lb *LoadBalancer, i int) string
	EtagAt(lb *LoadBalancer, i int) string
	// At is child i as a pointer into lb (*Probe, ...).
	At(lb *LoadBalancer, i int) any
	// Get is the child named name as a pointer into lb (*Probe, ...), or an
	// untyped nil when there is none.
	Get(lb *LoadBalancer, name string) any
	// List is every child as a pointer into lb, in order; nil when empty.
	List(lb *LoadBalancer) []any
	// RawAt is child i in its JSON wire form.
	RawAt(lb *LoadBalancer, i int) (json.RawMessage, error)

	// New returns a pointer to a new zero child (*Probe, ...), for decoding
	// a child body into.
	New() any
	// Set gives child (a pointer from New, or a value or pointer of the
	// child's type) the name name and stores a copy of it in lb: it replaces
	// the first child of that name, or is appended. created reports an
	// append. The id, type and defaults are left to NormalizeLoadBalancer.
	Set(lb *LoadBalancer, name string, child any) (created bool, err error)
	// SetRaw is Set with the child decoded from its JSON wire form.
	SetRaw(lb *LoadBalancer, name string, raw []byte) (created bool, err error)
	// Delete removes every child named name and reports whether there was one.
	Delete(lb *LoadBalancer, name string) bool

	// Normalize normalizes one child (a pointer of the child's type) as
	// NormalizeLoadBalancer does: id and type from lbID, canonical enum case,
	// Azure's defaults, read-only fields cleared. field is the child's JSON
	// path for error messages ("" for a child PUT body).
	Normalize(lbID, field string, child any) error

	normalizeAll(lb *LoadBalancer, lbID string) error
	sameAll(a, b *LoadBalancer) bool
	assignEtags(lb, old *LoadBalancer, newTag func() string)
	emptyIfNil(lb *LoadBalancer)
}

// The child collections, one variable each for typed access.
var (
	LBFrontendIPConfigurations = &ChildCollection[FrontendIPConfiguration]{
		name: CollFrontendIPConfigurations, typ: FrontendIPConfigurationType, display: "frontend IP configuration", api: ChildReadOnly,
		items: func(p *LoadBalancerProps) *[]FrontendIPConfiguration { return &p.FrontendIPConfigurations },
		fields: func(c *FrontendIPConfiguration) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normFrontend,
		same: func(a, b *FrontendIPConfiguration) bool {
			return reflect.DeepEqual(cleanFrontend(*a), cleanFrontend(*b))
		},
	}
	LBBackendAddressPools = &ChildCollection[BackendAddressPool]{
		name: CollBackendAddressPools, typ: BackendAddressPoolType, display: "backend address pool", api: ChildReadWrite,
		items: func(p *LoadBalancerProps) *[]BackendAddressPool { return &p.BackendAddressPools },
		fields: func(c *BackendAddressPool) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normPool,
		same:      func(a, b *BackendAddressPool) bool { return reflect.DeepEqual(cleanPool(*a), cleanPool(*b)) },
	}
	LBLoadBalancingRules = &ChildCollection[LoadBalancingRule]{
		name: CollLoadBalancingRules, typ: LoadBalancingRuleType, display: "load balancing rule", api: ChildReadOnly,
		items: func(p *LoadBalancerProps) *[]LoadBalancingRule { return &p.LoadBalancingRules },
		fields: func(c *LoadBalancingRule) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normRule,
		same:      sameRule,
	}
	LBProbes = &ChildCollection[Probe]{
		name: CollProbes, typ: ProbeType, display: "probe", api: ChildReadOnly,
		items: func(p *LoadBalancerProps) *[]Probe { return &p.Probes },
		fields: func(c *Probe) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normProbe,
		same:      sameProbe,
	}
	LBInboundNatRules = &ChildCollection[InboundNatRule]{
		name: CollInboundNatRules, typ: InboundNatRuleType, display: "inbound NAT rule", api: ChildReadWrite,
		items: func(p *LoadBalancerProps) *[]InboundNatRule { return &p.InboundNatRules },
		fields: func(c *InboundNatRule) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normNatRule,
		same:      sameNatRule,
	}
	LBInboundNatPools = &ChildCollection[InboundNatPool]{
		name: CollInboundNatPools, typ: InboundNatPoolType, display: "inbound NAT pool", api: ChildNoAPI,
		items: func(p *LoadBalancerProps) *[]InboundNatPool { return &p.InboundNatPools },
		fields: func(c *InboundNatPool) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normNatPool,
		same:      sameNatPool,
	}
	LBOutboundRules = &ChildCollection[OutboundRule]{
		name: CollOutboundRules, typ: OutboundRuleType, display: "outbound rule", api: ChildReadOnly,
		items: func(p *LoadBalancerProps) *[]OutboundRule { return &p.OutboundRules },
		fields: func(c *OutboundRule) childFields {
			return childFields{&c.ID, &c.Name, &c.Type, &c.Etag, &c.Properties.ProvisioningState}
		},
		normalize: normOutbound,
		same:      sameOutbound,
	}
)

// LBChildren is every child collection of a load balancer, in the order the
// LB body lists them; normalization and validation report the first error
// in this order.
var LBChildren = []LBChildCollection{
	LBFrontendIPConfigurations, LBBackendAddressPools, LBLoadBalancingRules, LBProbes,
	LBInboundNatRules, LBInboundNatPools, LBOutboundRules,
}

// LBChild returns the collection named name (any case), or an error wrapping
// ErrUnknownChildCollection.
func LBChild(name string) (LBChildCollection, error) {
	for _, c := range LBChildren {
		if strings.EqualFold(c.Name(), name) {
			return c, nil
		}
	}
	return nil, fmt.Errorf("resource: %w %q", ErrUnknownChildCollection, name)
}

// childFields points at the fields every child has.
type childFields struct {
	id, name, typ, etag, state *string
}

// ChildCollection is the LBChildCollection whose children have type T. Its
// typed methods (Items, Item, Find) give the child values without a type
// assertion. The zero value is not usable; the values are LBChildren's.
type ChildCollection[T any] struct {
	name, typ, display string
	api                ChildAPI
	// items returns the collection's slice in the LB's properties.
	items func(p *LoadBalancerProps) *[]T
	// fields points at the child's common fields.
	fields func(c *T) childFields
	// normalize does the child's own normalization after the common part
	// (id, type, provisioningState cleared); pref is the JSON path of the
	// child's properties with a trailing dot, for error messages.
	normalize func(pref string, c *T) error
	// same reports whether two children have equal client-settable content
	// (read-only fields ignored, reference ids compared case-insensitively);
	// equal children keep their etag. It must not allocate: it runs for
	// every child of every LB write.
	same func(a, b *T) bool
}

var _ LBChildCollection = (*ChildCollection[Probe])(nil)

// Name implements LBChildCollection.
func (c *ChildCollection[T]) Name() string { return c.name }

// Path implements LBChildCollection.
func (c *ChildCollection[T]) Path() string { return "properties." + c.name }

// Type implements LBChildCollection.
func (c *ChildCollection[T]) Type() string { return c.typ }

// Display implements LBChildCollection.
func (c *ChildCollection[T]) Display() string { return c.display }

// API implements LBChildCollection.
func (c *ChildCollection[T]) API() ChildAPI { return c.api }

// ChildID implements LBChildCollection.
func (c *ChildCollection[T]) ChildID(lbID, name string) string { return ChildID(lbID, c.name, name) }

// Items returns lb's children of this collection (the slice in lb, not a
// copy); nil when there are none.
func (c *ChildCollection[T]) Items(lb *LoadBalancer) []T { return *c.items(&lb.Properties) }

// Item returns child i as a pointer into lb.
func (c *ChildCollection[T]) Item(lb *LoadBalancer, i int) *T { return &c.Items(lb)[i] }

// Find returns the first child named name as a pointer into lb, or nil.
func (c *ChildCollection[T]) Find(lb *LoadBalancer, name string) *T {
	if i := c.Index(lb, name); i >= 0 {
		return c.Item(lb, i)
	}
	return nil
}

// Len implements LBChildCollection.
func (c *ChildCollection[T]) Len(lb *LoadBalancer) int { return len(c.Items(lb)) }

// Index implements LBChildCollection.
func (c *ChildCollection[T]) Index(lb *LoadBalancer, name string) int {
	items := c.Items(lb)
	for i := range items {
		if strings.EqualFold(*c.fields(&items[i]).name, name) {
			return i
		}
	}
	return -1
}

// NameAt implements LBChildCollection.
func (c *ChildCollection[T]) NameAt(lb *LoadBalancer, i int) string {
	return *c.fields(c.Item(lb, i)).name
}

// IDAt implements LBChildCollection.
func (c *ChildCollection[T]) IDAt(lb *LoadBalancer, i int) string { return *c.fields(c.Item(lb, i)).id }

// EtagAt implements LBChildCollection.
func (c *ChildCollection[T]) EtagAt(lb *LoadBalancer, i int) string {
	return *c.fields(c.Item(lb, i)).etag
}

// At implements LBChildCollection.
func (c *ChildCollection[T]) At(lb *LoadBalancer, i int) any { return c.Item(lb, i) }

// Get implements LBChildCollection.
func (c *ChildCollection[T]) Get(lb *LoadBalancer, name string) any {
	if p := c.Find(lb, name); p != nil {
		return p
	}
	return nil
}

// List implements LBChildCollection.
func (c *ChildCollection[T]) List(lb *LoadBalancer) []any {
	items := c.Items(lb)
	if len(items) == 0 {
		return nil
	}
	out := make([]any, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	return out
}

// RawAt implements LBChildCollection.
func (c *ChildCollection[T]) RawAt(lb *LoadBalancer, i int) (json.RawMessage, error) {
	b, err := json.Marshal(c.Item(lb, i))
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", c.display, err)
	}
	return b, nil
}

// New implements LBChildCollection.
func (c *ChildCollection[T]) New() any { return new(T) }

// Set implements LBChildCollection.
func (c *ChildCollection[T]) Set(lb *LoadBalancer, name string, child any) (bool, error) {
	var v T
	switch x := child.(type) {
	case *T:
		if x == nil {
			return false, fmt.Errorf("set %s: nil child", c.display)
		}
		v = *x
	case T:
		v = x
	default:
		return false, fmt.Errorf("set %s: child is %T, want *%T", c.display, child, v)
	}
	return c.put(lb, name, v), nil
}

// SetRaw implements LBChildCollection.
func (c *ChildCollection[T]) SetRaw(lb *LoadBalancer, name string, raw []byte) (bool, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return false, fmt.Errorf("decode %s: %w", c.display, err)
	}
	return c.put(lb, name, v), nil
}

// put names v and replaces the child of that name or appends v.
func (c *ChildCollection[T]) put(lb *LoadBalancer, name string, v T) bool {
	*c.fields(&v).name = name
	if i := c.Index(lb, name); i >= 0 {
		c.Items(lb)[i] = v
		return false
	}
	p := c.items(&lb.Properties)
	*p = append(*p, v)
	return true
}

// Delete implements LBChildCollection.
func (c *ChildCollection[T]) Delete(lb *LoadBalancer, name string) bool {
	p := c.items(&lb.Properties)
	out := (*p)[:0]
	for i := range *p {
		if !strings.EqualFold(*c.fields(&(*p)[i]).name, name) {
			out = append(out, (*p)[i])
		}
	}
	found := len(out) != len(*p)
	*p = out
	return found
}

// Normalize implements LBChildCollection.
func (c *ChildCollection[T]) Normalize(lbID, field string, child any) error {
	x, ok := child.(*T)
	if !ok || x == nil {
		var v T
		return fmt.Errorf("normalize %s: child is %T, want *%T", c.display, child, v)
	}
	return c.normalizeOne(lbID, joinField(field, "properties."), x)
}

// normalizeOne sets the child's id and type, clears its provisioningState
// and runs the collection's own normalizer; pref is the JSON path of the
// child's properties ("properties.probes[0].properties.").
func (c *ChildCollection[T]) normalizeOne(lbID, pref string, x *T) error {
	f := c.fields(x)
	*f.id, *f.typ, *f.state = ChildID(lbID, c.name, *f.name), c.typ, ""
	return c.normalize(pref, x)
}

func (c *ChildCollection[T]) normalizeAll(lb *LoadBalancer, lbID string) error {
	items := c.Items(lb)
	for i := range items {
		if err := c.normalizeOne(lbID, "properties."+c.name+"["+strconv.Itoa(i)+"].properties.", &items[i]); err != nil {
			return err
		}
	}
	return nil
}

// sameAll reports whether a and b (either may be nil: no children) have the
// same children by name, each with equal content.
func (c *ChildCollection[T]) sameAll(a, b *LoadBalancer) bool {
	var as, bs []T
	if a != nil {
		as = c.Items(a)
	}
	if b != nil {
		bs = c.Items(b)
	}
	if len(as) != len(bs) {
		return false
	}
	byName := make(map[string]*T, len(bs))
	for i := range bs {
		byName[strings.ToLower(*c.fields(&bs[i]).name)] = &bs[i]
	}
	for i := range as {
		o, ok := byName[strings.ToLower(*c.fields(&as[i]).name)]
		if !ok || !c.same(o, &as[i]) {
			return false
		}
	}
	return true
}

// assignEtags gives each child of lb the etag of the same-named child of old
// (nil: none) when its content is unchanged, else newTag(), and
// provisioningState Succeeded.
func (c *ChildCollection[T]) assignEtags(lb, old *LoadBalancer, newTag func() string) {
	var prev map[string]*T
	if old != nil {
		olds := c.Items(old)
		prev = make(map[string]*T, len(olds))
		for i := range olds {
			prev[strings.ToLower(*c.fields(&olds[i]).name)] = &olds[i]
		}
	}
	items := c.Items(lb)
	for i := range items {
		x := &items[i]
		f := c.fields(x)
		if o, ok := prev[strings.ToLower(*f.name)]; ok && *c.fields(o).etag != "" && c.same(o, x) {
			*f.etag = *c.fields(o).etag
		} else {
			*f.etag = newTag()
		}
		*f.state = Succeeded
	}
}

// emptyIfNil replaces a nil collection with an empty one (GET shows []).
func (c *ChildCollection[T]) emptyIfNil(lb *LoadBalancer) {
	if p := c.items(&lb.Properties); *p == nil {
		*p = []T{}
	}
}
