package template

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// paramDecl is one declared template parameter.
type paramDecl struct {
	name string
	typ  string // lower case: string, securestring, int, bool, object, secureobject, array
	raw  map[string]any
}

var paramTypes = map[string]string{
	"string":       "String",
	"securestring": "SecureString",
	"int":          "Int",
	"bool":         "Bool",
	"object":       "Object",
	"secureobject": "SecureObject",
	"array":        "Array",
}

// isSecure reports whether a parameter or output type hides its value.
func isSecure(typ string) bool {
	return typ == "securestring" || typ == "secureobject"
}

// parseParamDecls reads the template's "parameters" section.
func parseParamDecls(v any, defs map[string]any) (map[string]*paramDecl, error) {
	out := map[string]*paramDecl{}
	if v == nil {
		return out, nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidTemplate("parameters", "The template 'parameters' section must be an object")
	}
	for _, name := range sortedKeys(m) {
		d, ok := m[name].(map[string]any)
		if !ok {
			return nil, invalidTemplate("parameters."+name, "The template parameter '%s' must be an object with a 'type'", name)
		}
		d, err := resolveRef(d, defs, "parameters."+name)
		if err != nil {
			return nil, err
		}
		t, _ := lookupKey(d, "type")
		ts, _ := t.(string)
		lt := strings.ToLower(ts)
		if _, known := paramTypes[lt]; !known {
			return nil, invalidTemplate("parameters."+name, "The template parameter '%s' has the type '%v', which is not one of string, securestring, int, bool, object, secureobject, array", name, ts)
		}
		out[strings.ToLower(name)] = &paramDecl{name: name, typ: lt, raw: d}
	}
	return out, nil
}

// resolveRef replaces a declaration's "$ref": "#/definitions/name" (a
// languageVersion 2.0 user-defined type) with the definition, keeping the
// declaration's own keys (defaultValue, nullable, metadata). Only the type
// and its top-level constraints are checked, not an object's properties.
func resolveRef(d map[string]any, defs map[string]any, target string) (map[string]any, error) {
	for range 32 {
		ref, ok := lookupOr(d, "$ref").(string)
		if !ok {
			return d, nil
		}
		name, found := strings.CutPrefix(ref, "#/definitions/")
		def, isObj := lookupOr(defs, name).(map[string]any)
		if !found || !isObj {
			return nil, invalidTemplate(target, "The type reference '%s' does not name a definition of the template", ref)
		}
		merged := map[string]any{}
		for k, v := range def {
			merged[k] = v
		}
		for k, v := range d {
			if k != "$ref" {
				merged[k] = v
			}
		}
		d = merged
	}
	return nil, invalidTemplate(target, "The type references of '%s' form a cycle", target)
}

// bindParameters takes the deployment's parameter values, checks them
// against the declarations and records them (and the defaults to evaluate
// on demand) in e.
func (e *evaluator) bindParameters(ctx context.Context, decls map[string]*paramDecl, given any) error {
	e.paramDecls = decls
	e.params = map[string]any{}
	e.paramTypes = map[string]string{}
	values := map[string]any{}
	if given != nil {
		gm, ok := given.(map[string]any)
		if !ok {
			return invalidTemplate("parameters", "The deployment parameters must be an object of {\"name\": {\"value\": ...}}")
		}
		var extra []string
		for _, k := range sortedKeys(gm) {
			if _, ok := decls[strings.ToLower(k)]; !ok {
				extra = append(extra, k)
				continue
			}
			entry, ok := gm[k].(map[string]any)
			if !ok {
				return invalidTemplate("parameters."+k, "The value of the deployment parameter '%s' must be an object with a 'value'", k)
			}
			if _, isRef := lookupKey(entry, "reference"); isRef {
				return invalidTemplate("parameters."+k, "The deployment parameter '%s' uses a Key Vault reference, which nimbus does not support; pass the value instead", k)
			}
			v, ok := lookupKey(entry, "value")
			if !ok {
				return invalidTemplate("parameters."+k, "The deployment parameter '%s' has no 'value'", k)
			}
			values[strings.ToLower(k)] = v
		}
		if len(extra) > 0 {
			return invalidTemplate("parameters", "The template parameters '%s' in the parameters file are not valid; they are not present in the original template and can therefore not be provided at deployment time. The only supported parameters for this template are '%s'", strings.Join(extra, ", "), strings.Join(declNames(decls), ", "))
		}
	}
	e.paramGiven = values
	e.paramState = map[string]int{}
	for _, k := range sortedDeclKeys(decls) {
		if _, err := e.parameterValue(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

func declNames(decls map[string]*paramDecl) []string {
	var out []string
	for _, k := range sortedDeclKeys(decls) {
		out = append(out, decls[k].name)
	}
	return out
}

func sortedDeclKeys(decls map[string]*paramDecl) []string {
	keys := make([]string, 0, len(decls))
	for k := range decls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// parameter answers parameters(name).
func (e *evaluator) parameter(s *site, name string) (any, error) {
	key := strings.ToLower(name)
	if _, ok := e.paramDecls[key]; !ok {
		return nil, errf("The template parameter '%s' is not found. Please see https://aka.ms/arm-syntax-parameters for usage details.", name)
	}
	return e.parameterValue(s.ctx, key)
}

// parameterValue returns a parameter's checked value, evaluating its
// default on first use.
func (e *evaluator) parameterValue(ctx context.Context, key string) (any, error) {
	e.mu.Lock()
	state := e.paramState[key]
	v := e.params[key]
	e.mu.Unlock()
	d := e.paramDecls[key]
	switch state {
	case 2:
		return v, nil
	case 1:
		return nil, errf("The default value of the template parameter '%s' refers to itself.", d.name)
	}
	e.mu.Lock()
	e.paramState[key] = 1
	e.mu.Unlock()
	v, err := e.resolveParameter(ctx, d)
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil {
		delete(e.paramState, key)
		return nil, err
	}
	e.paramState[key] = 2
	e.params[key] = v
	e.paramTypes[key] = d.typ
	return v, nil
}

func (e *evaluator) resolveParameter(ctx context.Context, d *paramDecl) (any, error) {
	target := "parameters." + d.name
	v, given := e.paramGiven[strings.ToLower(d.name)]
	if !given {
		def, hasDefault := lookupKey(d.raw, "defaultValue")
		if nullable, _ := lookupOr(d.raw, "nullable").(bool); nullable && !hasDefault {
			return nil, nil
		}
		if !hasDefault {
			return nil, invalidTemplate(target, "The value for the template parameter '%s' is not provided. Please see https://aka.ms/arm-create-parameter-file for usage details", d.name)
		}
		dv, err := e.evalValue(&site{ctx: ctx, section: "parameters"}, def, target+".defaultValue")
		if err != nil {
			var te *Error
			if errors.As(err, &te) {
				return nil, err
			}
			return nil, invalidTemplate(target, "The template parameter '%s' is not valid: %s", d.name, innerMessage(err))
		}
		v = dv
	}
	v, err := checkParameter(d, v)
	if err != nil {
		return nil, invalidTemplate(target, "%s", err.Error())
	}
	return v, nil
}

// checkParameter coerces a value to the parameter's type and checks its
// constraints.
func checkParameter(d *paramDecl, v any) (any, error) {
	v = Normalize(v)
	if nullable, _ := lookupOr(d.raw, "nullable").(bool); nullable && v == nil {
		return nil, nil
	}
	want := paramTypes[d.typ]
	bad := func() error {
		return fmt.Errorf("The provided value for the template parameter '%s' is not valid. Expected a value of type '%s', but received a value of type '%s'", d.name, want, typeName(v))
	}
	switch d.typ {
	case "string", "securestring":
		if _, ok := v.(string); !ok {
			return nil, bad()
		}
	case "int":
		switch x := v.(type) {
		case int64:
		case string:
			i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
			if err != nil {
				return nil, bad()
			}
			v = i
		default:
			return nil, bad()
		}
	case "bool":
		switch x := v.(type) {
		case bool:
		case string:
			switch strings.ToLower(strings.TrimSpace(x)) {
			case "true":
				v = true
			case "false":
				v = false
			default:
				return nil, bad()
			}
		default:
			return nil, bad()
		}
	case "object", "secureobject":
		if s, ok := v.(string); ok {
			if parsed, err := decodeJSON([]byte(s)); err == nil {
				v = parsed
			}
		}
		if _, ok := v.(map[string]any); !ok {
			return nil, bad()
		}
	case "array":
		if s, ok := v.(string); ok {
			if parsed, err := decodeJSON([]byte(s)); err == nil {
				v = parsed
			}
		}
		if _, ok := v.([]any); !ok {
			return nil, bad()
		}
	}
	if allowed, ok := lookupKey(d.raw, "allowedValues"); ok {
		list, _ := Normalize(allowed).([]any)
		check := []any{v}
		if arr, isArr := v.([]any); isArr {
			check = arr
		}
		for _, c := range check {
			found := false
			for _, a := range list {
				if deepEqual(a, c) {
					found = true
					break
				}
			}
			if !found {
				names := make([]string, len(list))
				for i, a := range list {
					names[i] = toText(a)
				}
				shown := toText(c)
				if isSecure(d.typ) {
					shown = "<secure>"
				}
				return nil, fmt.Errorf("The provided value '%s' for the template parameter '%s' is not valid. The parameter value is not part of the allowed value(s): '%s'", shown, d.name, strings.Join(names, ","))
			}
		}
	}
	if n, ok := v.(int64); ok {
		if lo, has := lookupKey(d.raw, "minValue"); has {
			if l, err := asInt(Normalize(lo)); err == nil && n < l {
				return nil, fmt.Errorf("The provided value '%d' for the template parameter '%s' is not valid. The parameter value is less than the minimum value of '%d'", n, d.name, l)
			}
		}
		if hi, has := lookupKey(d.raw, "maxValue"); has {
			if h, err := asInt(Normalize(hi)); err == nil && n > h {
				return nil, fmt.Errorf("The provided value '%d' for the template parameter '%s' is not valid. The parameter value is greater than the maximum value of '%d'", n, d.name, h)
			}
		}
	}
	length := -1
	switch x := v.(type) {
	case string:
		length = len([]rune(x))
	case []any:
		length = len(x)
	}
	if length >= 0 {
		if lo, has := lookupKey(d.raw, "minLength"); has {
			if l, err := asInt(Normalize(lo)); err == nil && int64(length) < l {
				return nil, fmt.Errorf("The provided value for the template parameter '%s' is not valid. Its length %d is less than the minimum length of '%d'", d.name, length, l)
			}
		}
		if hi, has := lookupKey(d.raw, "maxLength"); has {
			if h, err := asInt(Normalize(hi)); err == nil && int64(length) > h {
				return nil, fmt.Errorf("The provided value for the template parameter '%s' is not valid. Its length %d is greater than the maximum length of '%d'", d.name, length, h)
			}
		}
	}
	return v, nil
}

// innerMessage is the message of an evaluation error without its path.
func innerMessage(err error) string {
	var pe *pathError
	if errors.As(err, &pe) {
		return pe.path + ": " + innerMessage(pe.err)
	}
	var te *Error
	if errors.As(err, &te) {
		return te.Message
	}
	return strings.TrimSuffix(err.Error(), ".")
}

// ParameterValue is a deployment parameter as ARM reports it back in a
// deployment's properties.parameters: Type is ARM's capitalized type name;
// Value is nil, and not marshaled, for the secure types.
type ParameterValue struct {
	Type  string `json:"type"`
	Value any    `json:"value"`
}

// MarshalJSON leaves the value out for SecureString and SecureObject.
func (p ParameterValue) MarshalJSON() ([]byte, error) {
	return marshalTypedValue(p.Type, p.Value)
}

// marshalTypedValue writes {"type": typ, "value": v}, without the value for
// secure types.
func marshalTypedValue(typ string, v any) ([]byte, error) {
	if typ == "SecureString" || typ == "SecureObject" {
		return json.Marshal(struct {
			Type string `json:"type"`
		}{typ})
	}
	return json.Marshal(struct {
		Type  string `json:"type"`
		Value any    `json:"value"`
	}{typ, v})
}
