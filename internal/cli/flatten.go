package cli

import (
	"reflect"
	"slices"
	"strings"
)

// az shows resources as the Azure SDK models them: the "properties" bag of
// network and compute resources (and of their embedded children) is
// flattened into the object, so `--query probes[0].port` and
// `--set virtualMachineProfile.networkProfile.healthProbe=...` work. nimbus
// does the same on the wire JSON: Flatten for output and generic updates,
// and Unflatten to send an updated object back.

// envelopeKeys stay at the top level of a resource; everything else a
// generic update adds to a flattened object goes into "properties".
var envelopeKeys = []string{
	"id", "name", "type", "etag", "location", "tags", "sku", "zones", "identity", "plan",
	"extendedLocation", "kind", "managedBy", "instanceId",
}

// Flattened is a flattened resource and what Unflatten needs to rebuild the
// wire form.
type Flattened struct {
	// Value is the flattened JSON value.
	Value any
	// moved records, per flattened object, the keys that came from its
	// "properties" bag (and, in top, those that were outside it).
	moved map[uintptr]shape
}

type shape struct{ moved, top []string }

func mapKey(m map[string]any) uintptr { return reflect.ValueOf(m).Pointer() }

// Flatten moves every object's "properties" object into the object itself
// (at any depth; a key present in both keeps the outer value), except for
// resource groups, whose properties az shows nested. It changes v in place.
func Flatten(v any) *Flattened {
	f := &Flattened{Value: v, moved: map[uintptr]shape{}}
	f.flatten(v)
	return f
}

func isResourceGroup(m map[string]any) bool {
	t, _ := m["type"].(string)
	return strings.EqualFold(t, "Microsoft.Resources/resourceGroups")
}

func (f *Flattened) flatten(v any) {
	switch t := v.(type) {
	case []any:
		for _, x := range t {
			f.flatten(x)
		}
	case map[string]any:
		if p, ok := t["properties"].(map[string]any); ok && !isResourceGroup(t) {
			delete(t, "properties")
			var sh shape
			for k := range t {
				sh.top = append(sh.top, k)
			}
			for k, x := range p {
				if _, clash := t[k]; clash {
					continue
				}
				t[k] = x
				sh.moved = append(sh.moved, k)
			}
			f.moved[mapKey(t)] = sh
		}
		for _, x := range t {
			f.flatten(x)
		}
	}
}

// Unflatten returns the wire form of the (possibly edited) flattened value:
// keys that came from "properties" go back, as do keys a generic update
// added to a flattened object (unless they are envelope keys such as tags),
// and objects added to a list of flattened objects are shaped like their
// siblings.
func (f *Flattened) Unflatten() any {
	return f.unflatten(f.Value, false)
}

func (f *Flattened) unflatten(v any, likeSiblings bool) any {
	switch t := v.(type) {
	case []any:
		sib := false
		for _, x := range t {
			if m, ok := x.(map[string]any); ok {
				if _, ok := f.moved[mapKey(m)]; ok {
					sib = true
				}
			}
		}
		out := make([]any, len(t))
		for i, x := range t {
			out[i] = f.unflatten(x, sib)
		}
		return out
	case map[string]any:
		sh, tracked := f.moved[mapKey(t)]
		out := make(map[string]any, len(t))
		var props map[string]any
		if tracked || likeSiblings {
			props = map[string]any{}
		}
		for k, x := range t {
			x = f.unflatten(x, false)
			switch {
			case props == nil:
				out[k] = x
			case slices.Contains(sh.moved, k):
				props[k] = x
			case slices.Contains(sh.top, k) || slices.Contains(envelopeKeys, k):
				out[k] = x
			default:
				props[k] = x
			}
		}
		if props != nil {
			out["properties"] = props
		}
		return out
	}
	return v
}
