package template

import (
	"sort"
	"strings"
)

// Lambdas: filter, map, reduce, sort and toObject take lambda('x', body)
// arguments (what Bicep's x => body compiles to); inside the body,
// lambdaVariables('x') is the bound value.

// lambdaNode is a parsed lambda('a', ['b',] body) argument.
type lambdaNode struct {
	params []string
	body   node
}

// asLambda checks that n is lambda(...) with want parameters.
func asLambda(fname string, n node, want int) (*lambdaNode, error) {
	c, ok := n.(*callNode)
	if !ok || !strings.EqualFold(c.name, "lambda") {
		return nil, errf("The template function '%s' expects a lambda('x', ...) argument.", fname)
	}
	if len(c.args)-1 != want {
		return nil, errf("The lambda given to '%s' must have %d parameter(s), it has %d.", fname, want, len(c.args)-1)
	}
	l := &lambdaNode{body: c.args[len(c.args)-1]}
	for _, a := range c.args[:len(c.args)-1] {
		lit, ok := a.(*litNode)
		name, isStr := lit.v.(string)
		if !ok || !isStr || name == "" {
			return nil, errf("The parameters of a lambda given to '%s' must be String literals.", fname)
		}
		l.params = append(l.params, name)
	}
	return l, nil
}

// call evaluates the lambda's body with its parameters bound to args.
func (l *lambdaNode) call(e *evaluator, s *site, args ...any) (any, error) {
	inner := *s
	inner.lambdaVars = make(map[string]any, len(s.lambdaVars)+len(args))
	for k, v := range s.lambdaVars {
		inner.lambdaVars[k] = v
	}
	for i, p := range l.params {
		inner.lambdaVars[p] = args[i]
	}
	return e.eval(&inner, l.body)
}

func fnLambdaOutside(*evaluator, *site, []node) (any, error) {
	return nil, errf("The template function 'lambda' can only be an argument of filter, map, reduce, sort or toObject.")
}

func fnLambdaVariables(_ *evaluator, s *site, a []any) (any, error) {
	name, ok := a[0].(string)
	if !ok {
		return nil, errf("The template function 'lambdaVariables' expects a String name.")
	}
	v, ok := s.lambdaVars[name]
	if !ok {
		return nil, errf("The lambda variable '%s' is not defined here.", name)
	}
	return v, nil
}

// lambdaArray evaluates the array argument of a lambda function.
func lambdaArray(e *evaluator, s *site, fname string, n node) ([]any, bool, error) {
	v, err := e.eval(s, n)
	if err != nil {
		return nil, false, err
	}
	if containsUnknown(v) {
		return nil, true, nil
	}
	arr, ok := v.([]any)
	if !ok {
		return nil, false, errf("The template function '%s' expects an array, got %s.", fname, typeName(v))
	}
	return arr, false, nil
}

func fnFilter(e *evaluator, s *site, args []node) (any, error) {
	arr, unknown, err := lambdaArray(e, s, "filter", args[0])
	if err != nil || unknown {
		return Unknown{}, err
	}
	l, err := asLambda("filter", args[1], 1)
	if err != nil {
		return nil, err
	}
	out := []any{}
	for _, el := range arr {
		keep, err := l.call(e, s, el)
		if err != nil {
			return nil, err
		}
		if isUnknown(keep) {
			return Unknown{}, nil
		}
		b, ok := keep.(bool)
		if !ok {
			return nil, errf("The lambda given to 'filter' must return a Boolean, got %s.", typeName(keep))
		}
		if b {
			out = append(out, el)
		}
	}
	return out, nil
}

func fnMap(e *evaluator, s *site, args []node) (any, error) {
	arr, unknown, err := lambdaArray(e, s, "map", args[0])
	if err != nil || unknown {
		return Unknown{}, err
	}
	l, err := asLambda("map", args[1], 1)
	if err != nil {
		return nil, err
	}
	out := make([]any, 0, len(arr))
	total := 0
	for _, el := range arr {
		v, err := l.call(e, s, el)
		if err != nil {
			return nil, err
		}
		if total += sizeOf(v, maxValueSize); total > maxValueSize {
			return nil, errf("The template language function 'map' produced a value larger than %d elements or characters.", maxValueSize)
		}
		out = append(out, v)
	}
	return out, nil
}

func fnReduce(e *evaluator, s *site, args []node) (any, error) {
	arr, unknown, err := lambdaArray(e, s, "reduce", args[0])
	if err != nil || unknown {
		return Unknown{}, err
	}
	acc, err := e.eval(s, args[1])
	if err != nil {
		return nil, err
	}
	l, err := asLambda("reduce", args[2], 2)
	if err != nil {
		return nil, err
	}
	for _, el := range arr {
		if acc, err = l.call(e, s, acc, el); err != nil {
			return nil, err
		}
	}
	return acc, nil
}

func fnSort(e *evaluator, s *site, args []node) (any, error) {
	arr, unknown, err := lambdaArray(e, s, "sort", args[0])
	if err != nil || unknown {
		return Unknown{}, err
	}
	l, err := asLambda("sort", args[1], 2)
	if err != nil {
		return nil, err
	}
	out := append([]any{}, arr...)
	var sortErr error
	sort.SliceStable(out, func(i, j int) bool {
		if sortErr != nil {
			return false
		}
		v, err := l.call(e, s, out[i], out[j])
		if err != nil {
			sortErr = err
			return false
		}
		b, ok := v.(bool)
		if !ok {
			sortErr = errf("The lambda given to 'sort' must return a Boolean, got %s.", typeName(v))
		}
		return b
	})
	if sortErr != nil {
		return nil, sortErr
	}
	return out, nil
}

func fnToObject(e *evaluator, s *site, args []node) (any, error) {
	arr, unknown, err := lambdaArray(e, s, "toObject", args[0])
	if err != nil || unknown {
		return Unknown{}, err
	}
	keyFn, err := asLambda("toObject", args[1], 1)
	if err != nil {
		return nil, err
	}
	var valFn *lambdaNode
	if len(args) == 3 {
		if valFn, err = asLambda("toObject", args[2], 1); err != nil {
			return nil, err
		}
	}
	out := map[string]any{}
	total := 0
	for _, el := range arr {
		k, err := keyFn.call(e, s, el)
		if err != nil {
			return nil, err
		}
		ks, ok := k.(string)
		if !ok {
			return nil, errf("The key lambda given to 'toObject' must return a String, got %s.", typeName(k))
		}
		v := el
		if valFn != nil {
			if v, err = valFn.call(e, s, el); err != nil {
				return nil, err
			}
		}
		if total += sizeOf(v, maxValueSize) + len(ks); total > maxValueSize {
			return nil, errf("The template language function 'toObject' produced a value larger than %d elements or characters.", maxValueSize)
		}
		out[ks] = v
	}
	return out, nil
}

func fnTryGet(_ *evaluator, _ *site, a []any) (any, error) {
	cur := a[0]
	for _, k := range a[1:] {
		switch x := cur.(type) {
		case map[string]any:
			ks, ok := k.(string)
			if !ok {
				return nil, nil
			}
			v, found := lookupKey(x, ks)
			if !found {
				return nil, nil
			}
			cur = v
		case []any:
			i, ok := k.(int64)
			if !ok || i < 0 || i >= int64(len(x)) {
				return nil, nil
			}
			cur = x[i]
		default:
			return nil, nil
		}
	}
	return cur, nil
}

func fnFlatten(_ *evaluator, _ *site, a []any) (any, error) {
	arr, ok := a[0].([]any)
	if !ok {
		return nil, errf("The template function 'flatten' expects an array of arrays, got %s.", typeName(a[0]))
	}
	out := []any{}
	for _, el := range arr {
		inner, ok := el.([]any)
		if !ok {
			return nil, errf("The template function 'flatten' expects an array of arrays; an element is %s.", typeName(el))
		}
		out = append(out, inner...)
	}
	return out, nil
}

func fnShallowMerge(_ *evaluator, _ *site, a []any) (any, error) {
	arr, ok := a[0].([]any)
	if !ok {
		return nil, errf("The template function 'shallowMerge' expects an array of objects, got %s.", typeName(a[0]))
	}
	out := map[string]any{}
	for _, el := range arr {
		m, ok := el.(map[string]any)
		if !ok {
			return nil, errf("The template function 'shallowMerge' expects an array of objects; an element is %s.", typeName(el))
		}
		for k, v := range m {
			out[k] = v
		}
	}
	return out, nil
}
