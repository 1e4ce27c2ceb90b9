package template

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// evaluator holds everything expressions can see: the deployment's scope,
// parameter and variable values, the Env, and how reference() is answered.
// After Validate its maps are read-only, so Run may evaluate concurrently.
type evaluator struct {
	env        Env
	scope      Scope
	now        time.Time
	params     map[string]any // lower-case name → checked value
	paramTypes map[string]string
	paramDecls map[string]*paramDecl
	paramGiven map[string]any
	paramState map[string]int // 1 evaluating, 2 done
	varRaw     map[string]any
	vars       map[string]any
	varState   map[string]int // 1 evaluating, 2 done
	funcs      map[string]*userFunc
	deployment map[string]any

	// resolve answers reference() in Run; nil during Validate, where
	// reference() yields Unknown.
	resolve func(ctx context.Context, target, apiVersion string, full bool) (any, error)

	mu     *sync.Mutex // guards varState, vars and parsed
	parsed map[string]node
}

// loopFrame is one active copy loop.
type loopFrame struct {
	name     string
	index    int
	resource bool // a resource or output loop: the one copyIndex() without a name means
}

// site is where an evaluation happens.
type site struct {
	ctx      context.Context
	section  string // "parameters", "variables", "resources", "outputs", "functions"
	loops    []loopFrame
	fnParams map[string]any // arguments inside a user-defined function

	// onReference, when set, learns the first argument of every reference()
	// call (for implicit dependencies).
	onReference func(target string)

	// lambdaVars are the bound variables of the lambdas being evaluated.
	lambdaVars map[string]any
}

func (s *site) withLoop(f loopFrame) *site {
	c := *s
	c.loops = append(append([]loopFrame(nil), s.loops...), f)
	return &c
}

// parse parses an expression, caching the result.
func (e *evaluator) parse(src string) (node, error) {
	e.mu.Lock()
	n, ok := e.parsed[src]
	e.mu.Unlock()
	if ok {
		return n, nil
	}
	n, err := parseExpression(src)
	if err != nil {
		return nil, err
	}
	if err := checkFunctions(n, e.funcs); err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.parsed[src] = n
	e.mu.Unlock()
	return n, nil
}

// unknownFunctionError names a function the engine does not provide.
type unknownFunctionError struct{ name string }

func (e *unknownFunctionError) Error() string {
	return fmt.Sprintf("The template function '%s' is not valid. Please see https://aka.ms/arm-functions for usage details.", e.name)
}

// checkFunctions rejects calls to unknown functions and wrong argument
// counts, before anything is evaluated.
func checkFunctions(n node, funcs map[string]*userFunc) error {
	var err error
	walkCalls(n, func(c *callNode) {
		if err != nil {
			return
		}
		lname := strings.ToLower(c.name)
		if strings.Contains(lname, ".") {
			uf, ok := funcs[lname]
			if !ok {
				err = &unknownFunctionError{name: c.name}
				return
			}
			if len(c.args) != len(uf.params) {
				err = errf("The template function '%s' expects %d argument(s) but got %d.", c.name, len(uf.params), len(c.args))
			}
			return
		}
		spec, ok := builtins[lname]
		if !ok {
			err = &unknownFunctionError{name: c.name}
			return
		}
		if len(c.args) < spec.min || (spec.max >= 0 && len(c.args) > spec.max) {
			err = errf("The template language function '%s' %s.", c.name, arityText(spec.min, spec.max, len(c.args)))
		}
	})
	return err
}

func arityText(lo, hi, got int) string {
	switch {
	case lo == hi:
		return fmt.Sprintf("must have %d argument(s), got %d", lo, got)
	case hi < 0:
		return fmt.Sprintf("must have at least %d argument(s), got %d", lo, got)
	}
	return fmt.Sprintf("must have between %d and %d arguments, got %d", lo, hi, got)
}

// evalString evaluates one template string: an expression or a literal.
// An Unknown result carries the string.
func (e *evaluator) evalString(s *site, str string) (any, error) {
	src, lit, ok := isExpression(str)
	if !ok {
		return lit, nil
	}
	n, err := e.parse(src)
	if err != nil {
		return nil, err
	}
	v, err := e.eval(s, n)
	if err != nil {
		var ee *exprError
		if errors.As(err, &ee) && ee.expr == "" {
			return nil, &exprError{expr: str, msg: ee.msg}
		}
		return nil, err
	}
	if isUnknown(v) {
		return Unknown{Expr: str}, nil
	}
	return v, nil
}

// evalValue evaluates a JSON value: strings as template strings, objects
// with property copy loops ("copy": [{name, count, input}]) expanded.
// Errors carry the path where they happened.
func (e *evaluator) evalValue(s *site, v any, path string) (any, error) {
	switch x := v.(type) {
	case string:
		out, err := e.evalString(s, x)
		if err != nil {
			return nil, &pathError{path: path, err: err}
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, el := range x {
			r, err := e.evalValue(s, el, fmt.Sprintf("%s[%d]", path, i))
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for _, k := range sortedKeys(x) {
			el := x[k]
			if strings.EqualFold(k, "copy") {
				if loops, ok := el.([]any); ok {
					if err := e.propertyCopy(s, loops, joinPath(path, k), out); err != nil {
						return nil, err
					}
					continue
				}
			}
			key := k
			if _, _, isExpr := isExpression(k); isExpr {
				kv, err := e.evalString(s, k)
				if err != nil {
					return nil, &pathError{path: joinPath(path, k), err: err}
				}
				if ks, ok := kv.(string); ok {
					key = ks
				} else if !isUnknown(kv) {
					return nil, &pathError{path: joinPath(path, k), err: errf("a property name must be a String, got %s", typeName(kv))}
				}
			} else {
				_, key, _ = isExpression(k)
			}
			r, err := e.evalValue(s, el, joinPath(path, k))
			if err != nil {
				return nil, err
			}
			out[key] = r
		}
		return out, nil
	}
	return v, nil
}

// maxCopyCount is ARM's limit on the iterations of one copy loop.
const maxCopyCount = 800

// propertyCopy expands a property copy array into out.
func (e *evaluator) propertyCopy(s *site, loops []any, path string, out map[string]any) error {
	for i, l := range loops {
		lp := fmt.Sprintf("%s[%d]", path, i)
		m, ok := l.(map[string]any)
		if !ok {
			return &pathError{path: lp, err: errf("a copy element must be an object")}
		}
		name, count, err := e.copyHeader(s, m, lp)
		if err != nil {
			return err
		}
		input, ok := lookupKey(m, "input")
		if !ok {
			return &pathError{path: lp, err: errf("the copy '%s' has no 'input'", name)}
		}
		arr := make([]any, 0, count)
		for idx := range count {
			v, err := e.evalValue(s.withLoop(loopFrame{name: name, index: idx}), input, joinPath(lp, "input"))
			if err != nil {
				return err
			}
			arr = append(arr, v)
		}
		out[name] = arr
	}
	return nil
}

// copyHeader evaluates a copy element's name and count.
func (e *evaluator) copyHeader(s *site, m map[string]any, path string) (string, int, error) {
	rawName, _ := lookupKey(m, "name")
	nv, err := e.evalValue(s, rawName, joinPath(path, "name"))
	if err != nil {
		return "", 0, err
	}
	name, ok := nv.(string)
	if !ok || name == "" {
		return "", 0, &pathError{path: joinPath(path, "name"), err: errf("a copy loop needs a non-empty String 'name'")}
	}
	count, err := e.copyCount(s, m, path)
	return name, count, err
}

// copyCount evaluates a copy element's count.
func (e *evaluator) copyCount(s *site, m map[string]any, path string) (int, error) {
	rawCount, ok := lookupKey(m, "count")
	if !ok {
		return 0, &pathError{path: path, err: errf("a copy loop needs a 'count'")}
	}
	cv, err := e.evalValue(s, rawCount, joinPath(path, "count"))
	if err != nil {
		return 0, err
	}
	if isUnknown(cv) {
		return 0, &pathError{path: joinPath(path, "count"), err: errf("the copy count must be known at the start of the deployment; reference() cannot be used in it")}
	}
	c, err := asInt(coerceIntString(cv))
	if err != nil {
		return 0, &pathError{path: joinPath(path, "count"), err: errf("the copy count %s", err)}
	}
	if c < 0 || c > maxCopyCount {
		return 0, &pathError{path: joinPath(path, "count"), err: errf("the copy count must be between 0 and %d, got %d", maxCopyCount, c)}
	}
	return int(c), nil
}

// pathError is an evaluation error at a path inside a section.
type pathError struct {
	path string
	err  error
}

func (e *pathError) Error() string { return e.path + ": " + e.err.Error() }
func (e *pathError) Unwrap() error { return e.err }

func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	if isPlainIdent(key) {
		return path + "." + key
	}
	return path + "['" + strings.ReplaceAll(key, "'", "''") + "']"
}

func isPlainIdent(k string) bool {
	if k == "" || !isIdentStart(k[0]) {
		return false
	}
	for i := 1; i < len(k); i++ {
		if !isIdentChar(k[i]) {
			return false
		}
	}
	return true
}

// eval evaluates a parsed expression.
func (e *evaluator) eval(s *site, n node) (any, error) {
	switch x := n.(type) {
	case *litNode:
		return x.v, nil
	case *memberNode:
		v, err := e.eval(s, x.x)
		if err != nil {
			return nil, err
		}
		return member(v, x.name)
	case *indexNode:
		v, err := e.eval(s, x.x)
		if err != nil {
			return nil, err
		}
		i, err := e.eval(s, x.i)
		if err != nil {
			return nil, err
		}
		return index(v, i)
	case *callNode:
		return e.call(s, x)
	}
	return nil, errf("unknown expression node %T", n)
}

func member(v any, name string) (any, error) {
	switch x := v.(type) {
	case Unknown:
		return x, nil
	case map[string]any:
		r, ok := lookupKey(x, name)
		if !ok {
			return nil, errf("The language expression property '%s' doesn't exist, available properties are '%s'.", name, strings.Join(sortedKeys(x), ", "))
		}
		return r, nil
	}
	return nil, errf("The language expression property '%s' can't be evaluated, property name must be a string, the object is of type '%s'.", name, typeName(v))
}

func index(v, i any) (any, error) {
	if isUnknown(v) || isUnknown(i) {
		return Unknown{}, nil
	}
	switch x := v.(type) {
	case map[string]any:
		k, ok := i.(string)
		if !ok {
			return nil, errf("an object can only be indexed with a String, got %s", typeName(i))
		}
		return member(x, k)
	case []any:
		k, ok := i.(int64)
		if !ok {
			return nil, errf("an array can only be indexed with an Integer, got %s", typeName(i))
		}
		if k < 0 || k >= int64(len(x)) {
			return nil, errf("The language expression property array index '%d' is out of bounds.", k)
		}
		return x[k], nil
	}
	return nil, errf("a value of type %s cannot be indexed", typeName(v))
}

// call evaluates a function call.
func (e *evaluator) call(s *site, c *callNode) (any, error) {
	lname := strings.ToLower(c.name)
	if strings.Contains(lname, ".") {
		return e.callUser(s, c, lname)
	}
	spec := builtins[lname]
	if spec == nil {
		return nil, &unknownFunctionError{name: c.name}
	}
	if spec.lazy != nil {
		v, err := spec.lazy(e, s, c.args)
		if err == nil && tooLarge(v) {
			return nil, errf("The template language function '%s' produced a value larger than %d elements or characters.", c.name, maxValueSize)
		}
		return v, err
	}
	args := make([]any, len(c.args))
	for i, a := range c.args {
		v, err := e.eval(s, a)
		if err != nil {
			return nil, err
		}
		args[i] = v
	}
	if !spec.passUnknown {
		for _, a := range args {
			if containsUnknown(a) {
				return Unknown{}, nil
			}
		}
	}
	v, err := spec.fn(e, s, args)
	if err == nil && tooLarge(v) {
		return nil, errf("The template language function '%s' produced a value larger than %d elements or characters.", c.name, maxValueSize)
	}
	if err != nil {
		var ee *exprError
		var uf *unknownFunctionError
		var pe *pathError
		if errors.As(err, &ee) || errors.As(err, &uf) || errors.As(err, &pe) {
			return nil, err
		}
		return nil, errf("The template language function '%s' failed: %v", c.name, err)
	}
	return v, nil
}

// userFunc is a user-defined template function (the template's
// "functions" section).
type userFunc struct {
	name   string
	params []string
	output any
}

func (e *evaluator) callUser(s *site, c *callNode, lname string) (any, error) {
	uf := e.funcs[lname]
	if uf == nil {
		return nil, &unknownFunctionError{name: c.name}
	}
	args := map[string]any{}
	for i, a := range c.args {
		v, err := e.eval(s, a)
		if err != nil {
			return nil, err
		}
		args[uf.params[i]] = v
	}
	inner := &site{ctx: s.ctx, section: "functions", fnParams: args, onReference: s.onReference}
	v, err := e.evalValue(inner, uf.output, "")
	if err != nil {
		return nil, errf("The user-defined function '%s' failed: %v", uf.name, err)
	}
	if u, ok := v.(Unknown); ok {
		return Unknown{Expr: u.Expr}, nil
	}
	return v, nil
}

// variable returns a variable's value, evaluating it on first use.
func (e *evaluator) variable(s *site, name string) (any, error) {
	key := ""
	for k := range e.varRaw {
		if strings.EqualFold(k, name) {
			key = k
			break
		}
	}
	if key == "" {
		return nil, errf("The template variable '%s' is not found. Please see https://aka.ms/arm-syntax-variables for usage details.", name)
	}
	e.mu.Lock()
	state := e.varState[key]
	v := e.vars[key]
	e.mu.Unlock()
	switch state {
	case 2:
		return v, nil
	case 1:
		return nil, errf("The template variable '%s' refers to itself (a cycle through variables()).", key)
	}
	if e.resolve != nil {
		return nil, errf("The template variable '%s' was not evaluated.", key)
	}
	e.mu.Lock()
	e.varState[key] = 1
	e.mu.Unlock()
	v, err := e.evalVariable(s.ctx, key)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		delete(e.varState, key)
		return nil, err
	}
	e.varState[key] = 2
	e.vars[key] = v
	return v, nil
}

// evalVariable evaluates one variable's declaration.
func (e *evaluator) evalVariable(ctx context.Context, key string) (any, error) {
	s := &site{ctx: ctx, section: "variables"}
	raw := e.varRaw[key]
	var v any
	var err error
	if loop, ok := raw.(variableCopy); ok {
		out := map[string]any{}
		err = e.propertyCopy(s, []any{loop.decl}, joinPath("variables.copy", fmt.Sprint(loop.index)), out)
		v = out[key]
	} else {
		v, err = e.evalValue(s, raw, joinPath("variables", key))
	}
	if err != nil {
		var ve *variableError
		if errors.As(err, &ve) {
			return nil, err
		}
		return nil, &variableError{name: key, err: err}
	}
	if containsUnknown(v) {
		return nil, &variableError{name: key, err: errf("The template function 'reference' is not expected in variables. Please see https://aka.ms/arm-functions for usage details.")}
	}
	return v, nil
}

// variableCopy is a variable declared by the top-level copy of "variables".
type variableCopy struct {
	index int
	decl  map[string]any
}

// variableError is a failure evaluating a variable.
type variableError struct {
	name string
	err  error
}

func (e *variableError) Error() string {
	return fmt.Sprintf("The template variable '%s' is not valid: %v", e.name, e.err)
}

func (e *variableError) Unwrap() error { return e.err }

// maxValueSize bounds the size of any function result (characters of a
// string plus elements of arrays and objects), so that nested calls cannot
// grow values exponentially.
const maxValueSize = 1 << 20

// tooLarge reports whether v exceeds maxValueSize; it stops counting early.
func tooLarge(v any) bool { return sizeOf(v, maxValueSize) > maxValueSize }

// sizeOf is v's size (characters of strings plus elements of arrays and
// objects), counted up to limit+1 at most.
func sizeOf(v any, limit int) int {
	budget := limit
	var walk func(v any) bool
	walk = func(v any) bool {
		switch x := v.(type) {
		case string:
			budget -= len(x)
		case []any:
			budget -= len(x)
			for _, e := range x {
				if budget < 0 || walk(e) {
					return true
				}
			}
		case map[string]any:
			budget -= len(x)
			for k, e := range x {
				budget -= len(k)
				if budget < 0 || walk(e) {
					return true
				}
			}
		}
		return budget < 0
	}
	walk(v)
	if budget < 0 {
		return limit + 1
	}
	return limit - budget
}
