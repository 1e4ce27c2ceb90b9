package template

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/google/uuid"
)

// fnSpec describes a built-in function: its argument count (max -1 for
// any), and either fn (arguments evaluated first; a call with an Unknown
// argument yields Unknown unless passUnknown) or lazy (gets the unevaluated
// arguments).
type fnSpec struct {
	min, max    int
	passUnknown bool
	fn          func(e *evaluator, s *site, args []any) (any, error)
	lazy        func(e *evaluator, s *site, args []node) (any, error)
}

// builtins maps lower-case function names to their implementation. It is
// filled in init to break the initialization cycle through eval.
var builtins map[string]*fnSpec

func init() {
	builtins = map[string]*fnSpec{
		// Deployment values.
		"parameters":             {min: 1, max: 1, fn: fnParameters},
		"variables":              {min: 1, max: 1, fn: fnVariables},
		"copyindex":              {min: 0, max: 2, fn: fnCopyIndex},
		"resourcegroup":          {min: 0, max: 0, fn: fnResourceGroup},
		"subscription":           {min: 0, max: 0, fn: fnSubscription},
		"tenant":                 {min: 0, max: 0, fn: fnTenant},
		"deployment":             {min: 0, max: 0, fn: fnDeployment},
		"environment":            {min: 0, max: 0, fn: fnEnvironment},
		"providers":              {min: 1, max: 2, fn: fnProviders},
		"reference":              {min: 1, max: 3, fn: fnReference},
		"resourceid":             {min: 2, max: -1, fn: fnResourceID},
		"subscriptionresourceid": {min: 2, max: -1, fn: fnSubscriptionResourceID},
		"tenantresourceid":       {min: 2, max: -1, fn: fnTenantResourceID},
		"extensionresourceid":    {min: 3, max: -1, fn: fnExtensionResourceID},
		"uniquestring":           {min: 1, max: -1, fn: fnUniqueString},
		"guid":                   {min: 1, max: -1, fn: fnGUID},
		"newguid":                {min: 0, max: 0, fn: fnNewGUID},
		"utcnow":                 {min: 0, max: 1, fn: fnUTCNow},

		// Logic and comparison.
		"if":              {min: 3, max: 3, lazy: fnIf},
		"equals":          {min: 2, max: 2, fn: func(_ *evaluator, _ *site, a []any) (any, error) { return deepEqual(a[0], a[1]), nil }},
		"not":             {min: 1, max: 1, fn: fnNot},
		"and":             {min: 2, max: -1, fn: fnAnd},
		"or":              {min: 2, max: -1, fn: fnOr},
		"less":            {min: 2, max: 2, fn: compareFn(func(c int) bool { return c < 0 })},
		"lessorequals":    {min: 2, max: 2, fn: compareFn(func(c int) bool { return c <= 0 })},
		"greater":         {min: 2, max: 2, fn: compareFn(func(c int) bool { return c > 0 })},
		"greaterorequals": {min: 2, max: 2, fn: compareFn(func(c int) bool { return c >= 0 })},
		"coalesce":        {min: 1, max: -1, passUnknown: true, fn: fnCoalesce},
		"true":            {min: 0, max: 0, fn: func(*evaluator, *site, []any) (any, error) { return true, nil }},
		"false":           {min: 0, max: 0, fn: func(*evaluator, *site, []any) (any, error) { return false, nil }},
		"null":            {min: 0, max: 0, fn: func(*evaluator, *site, []any) (any, error) { return nil, nil }},

		// Numbers.
		"add":   {min: 2, max: 2, fn: arith("add", func(a, b int64) (int64, error) { return addInt("add", a, b) })},
		"sub":   {min: 2, max: 2, fn: arith("sub", func(a, b int64) (int64, error) { return subInt("sub", a, b) })},
		"mul":   {min: 2, max: 2, fn: arith("mul", func(a, b int64) (int64, error) { return mulInt("mul", a, b) })},
		"div":   {min: 2, max: 2, fn: arith("div", divInt)},
		"mod":   {min: 2, max: 2, fn: arith("mod", modInt)},
		"min":   {min: 1, max: -1, fn: minMax("min", func(a, b int64) bool { return a < b })},
		"max":   {min: 1, max: -1, fn: minMax("max", func(a, b int64) bool { return a > b })},
		"range": {min: 2, max: 2, fn: fnRange},
		"int":   {min: 1, max: 1, fn: fnInt},
		"float": {min: 1, max: 1, fn: fnFloat},

		// Strings.
		"concat":               {min: 1, max: -1, passUnknown: true, fn: fnConcat},
		"format":               {min: 1, max: -1, fn: fnFormat},
		"string":               {min: 1, max: 1, fn: func(_ *evaluator, _ *site, a []any) (any, error) { return toText(a[0]), nil }},
		"bool":                 {min: 1, max: 1, fn: fnBool},
		"tolower":              {min: 1, max: 1, fn: strFn("toLower", strings.ToLower)},
		"toupper":              {min: 1, max: 1, fn: strFn("toUpper", strings.ToUpper)},
		"trim":                 {min: 1, max: 1, fn: strFn("trim", strings.TrimSpace)},
		"split":                {min: 2, max: 2, fn: fnSplit},
		"replace":              {min: 3, max: 3, fn: fnReplace},
		"join":                 {min: 2, max: 2, fn: fnJoin},
		"substring":            {min: 2, max: 3, fn: fnSubstring},
		"padleft":              {min: 2, max: 3, fn: fnPadLeft},
		"startswith":           {min: 2, max: 2, fn: strPred("startsWith", func(a, b string) bool { return strings.HasPrefix(strings.ToLower(a), strings.ToLower(b)) })},
		"endswith":             {min: 2, max: 2, fn: strPred("endsWith", func(a, b string) bool { return strings.HasSuffix(strings.ToLower(a), strings.ToLower(b)) })},
		"indexof":              {min: 2, max: 2, fn: indexFn("indexOf", false)},
		"lastindexof":          {min: 2, max: 2, fn: indexFn("lastIndexOf", true)},
		"base64":               {min: 1, max: 1, fn: strFn("base64", func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) })},
		"base64tostring":       {min: 1, max: 1, fn: fnBase64ToString},
		"base64tojson":         {min: 1, max: 1, fn: fnBase64ToJSON},
		"datauri":              {min: 1, max: 1, fn: fnDataURI},
		"datauritostring":      {min: 1, max: 1, fn: fnDataURIToString},
		"uri":                  {min: 2, max: 2, fn: fnURI},
		"uricomponent":         {min: 1, max: 1, fn: strFn("uriComponent", url.QueryEscape)},
		"uricomponenttostring": {min: 1, max: 1, fn: fnURIComponentToString},
		"json":                 {min: 1, max: 1, fn: fnJSON},

		// Arrays and objects.
		"createarray":  {min: 0, max: -1, passUnknown: true, fn: func(_ *evaluator, _ *site, a []any) (any, error) { return append([]any{}, a...), nil }},
		"createobject": {min: 0, max: -1, passUnknown: true, fn: fnCreateObject},
		"array":        {min: 1, max: 1, passUnknown: true, fn: fnArray},
		"length":       {min: 1, max: 1, fn: fnLength},
		"empty":        {min: 1, max: 1, fn: fnEmpty},
		"contains":     {min: 2, max: 2, fn: fnContains},
		"first":        {min: 1, max: 1, fn: edgeFn("first", true)},
		"last":         {min: 1, max: 1, fn: edgeFn("last", false)},
		"take":         {min: 2, max: 2, fn: takeSkip("take", true)},
		"skip":         {min: 2, max: 2, fn: takeSkip("skip", false)},
		"union":        {min: 1, max: -1, fn: fnUnion},
		"intersection": {min: 1, max: -1, fn: fnIntersection},
		"items":        {min: 1, max: 1, fn: fnItems},
		"objectkeys":   {min: 1, max: 1, fn: fnObjectKeys},
		"tryget":       {min: 2, max: -1, fn: fnTryGet},
		"flatten":      {min: 1, max: 1, fn: fnFlatten},
		"shallowmerge": {min: 1, max: 1, fn: fnShallowMerge},

		// Lambdas.
		"lambda":          {min: 2, max: 3, lazy: fnLambdaOutside},
		"lambdavariables": {min: 1, max: 1, fn: fnLambdaVariables},
		"filter":          {min: 2, max: 2, lazy: fnFilter},
		"map":             {min: 2, max: 2, lazy: fnMap},
		"reduce":          {min: 3, max: 3, lazy: fnReduce},
		"sort":            {min: 2, max: 2, lazy: fnSort},
		"toobject":        {min: 2, max: 3, lazy: fnToObject},

		// Networks.
		"parsecidr":  {min: 1, max: 1, fn: fnParseCIDR},
		"cidrsubnet": {min: 3, max: 3, fn: fnCIDRSubnet},
		"cidrhost":   {min: 2, max: 2, fn: fnCIDRHost},
	}
}

func fnParameters(e *evaluator, s *site, a []any) (any, error) {
	name, ok := a[0].(string)
	if !ok {
		return nil, errf("The template function 'parameters' expects a String argument, got %s.", typeName(a[0]))
	}
	if s.fnParams != nil {
		if v, ok := lookupKey(s.fnParams, name); ok {
			return v, nil
		}
		return nil, errf("The user-defined function parameter '%s' is not found.", name)
	}
	return e.parameter(s, name)
}

func fnVariables(e *evaluator, s *site, a []any) (any, error) {
	name, ok := a[0].(string)
	if !ok {
		return nil, errf("The template function 'variables' expects a String argument, got %s.", typeName(a[0]))
	}
	if s.section == "functions" {
		return nil, errf("The template function 'variables' cannot be used in user-defined functions.")
	}
	return e.variable(s, name)
}

func fnCopyIndex(_ *evaluator, s *site, a []any) (any, error) {
	var name string
	var offset int64
	switch len(a) {
	case 1:
		switch x := a[0].(type) {
		case string:
			name = x
		case int64:
			offset = x
		default:
			return nil, errf("The template function 'copyIndex' expects a loop name or an Integer offset, got %s.", typeName(a[0]))
		}
	case 2:
		n, ok := a[0].(string)
		off, ok2 := a[1].(int64)
		if !ok || !ok2 {
			return nil, errf("The template function 'copyIndex' expects (loop name, Integer offset).")
		}
		name, offset = n, off
	}
	for i := len(s.loops) - 1; i >= 0; i-- {
		f := s.loops[i]
		if (name == "" && f.resource) || (name != "" && strings.EqualFold(f.name, name)) {
			return addInt("copyIndex", int64(f.index), offset)
		}
	}
	if name == "" && len(s.loops) > 0 {
		return addInt("copyIndex", int64(s.loops[len(s.loops)-1].index), offset)
	}
	if name != "" {
		return nil, errf("The template function 'copyIndex' refers to the copy loop '%s', which is not in scope here.", name)
	}
	return nil, errf("The template function 'copyIndex' is not expected at this location. It can only be used in a resource, property, variable or output with a copy loop.")
}

func fnResourceGroup(e *evaluator, _ *site, _ []any) (any, error) {
	sc := e.scope
	if sc.ResourceGroup == "" {
		return nil, errf("The template function 'resourceGroup' is not expected in a subscription-scope deployment.")
	}
	props := map[string]any{"provisioningState": "Succeeded"}
	rg := map[string]any{
		"id":         sc.ResourceGroupID(),
		"name":       sc.ResourceGroup,
		"type":       "Microsoft.Resources/resourceGroups",
		"location":   sc.Location,
		"properties": props,
	}
	if len(sc.ResourceGroupTags) > 0 {
		tags := map[string]any{}
		for k, v := range sc.ResourceGroupTags {
			tags[k] = v
		}
		rg["tags"] = tags
	}
	return rg, nil
}

func fnSubscription(e *evaluator, _ *site, _ []any) (any, error) {
	sc := e.scope
	return map[string]any{
		"id":             "/subscriptions/" + sc.SubscriptionID,
		"subscriptionId": sc.SubscriptionID,
		"tenantId":       sc.TenantID,
		"displayName":    sc.SubscriptionDisplayName,
	}, nil
}

func fnTenant(e *evaluator, _ *site, _ []any) (any, error) {
	return map[string]any{"tenantId": e.scope.TenantID, "id": "/tenants/" + e.scope.TenantID}, nil
}

func fnDeployment(e *evaluator, _ *site, _ []any) (any, error) {
	return deepCopy(e.deployment), nil
}

// fnEnvironment describes the cloud: nimbus's ARM endpoint, with Azure's
// public-cloud suffixes so templates that build host names keep working.
func fnEnvironment(e *evaluator, _ *site, _ []any) (any, error) {
	return map[string]any{
		"name":            "nimbus",
		"resourceManager": e.scope.ResourceManagerEndpoint,
		"authentication": map[string]any{
			"tenant":    "common",
			"audiences": []any{"https://management.core.windows.net/", "https://management.azure.com/"},
		},
		"suffixes": map[string]any{
			"storage":           "core.windows.net",
			"keyvaultDns":       ".vault.azure.net",
			"sqlServerHostname": ".database.windows.net",
			"acrLoginServer":    ".azurecr.io",
		},
	}, nil
}

func fnProviders(e *evaluator, s *site, a []any) (any, error) {
	ns, ok := a[0].(string)
	if !ok {
		return nil, errf("The template function 'providers' expects a String namespace.")
	}
	typ := ""
	if len(a) == 2 {
		if typ, ok = a[1].(string); !ok {
			return nil, errf("The template function 'providers' expects a String resource type.")
		}
	}
	if e.env == nil {
		return nil, errf("The template function 'providers' needs a deployment environment.")
	}
	if typ == "" {
		return nil, errf("The template function 'providers' needs a resource type: providers('%s', '<type>').", ns)
	}
	p, err := e.env.Providers(s.ctx, ns, typ)
	if err != nil {
		return nil, errf("The template function 'providers' failed for '%s/%s': %v", ns, typ, err)
	}
	locs := make([]any, len(p.Locations))
	for i, l := range p.Locations {
		locs[i] = l
	}
	vers := make([]any, len(p.APIVersions))
	for i, v := range p.APIVersions {
		vers[i] = v
	}
	return map[string]any{
		"namespace":    p.Namespace,
		"resourceType": p.ResourceType,
		"locations":    locs,
		"apiVersions":  vers,
	}, nil
}

func fnReference(e *evaluator, s *site, a []any) (any, error) {
	target, ok := a[0].(string)
	if !ok || target == "" {
		return nil, errf("The template function 'reference' expects a resource name or id, got %s.", typeName(a[0]))
	}
	apiVersion := ""
	full := false
	if len(a) >= 2 {
		if apiVersion, ok = a[1].(string); !ok {
			return nil, errf("The template function 'reference' expects a String apiVersion, got %s.", typeName(a[1]))
		}
	}
	if len(a) == 3 {
		f, ok := a[2].(string)
		if !ok || !strings.EqualFold(f, "full") {
			return nil, errf("The template function 'reference' accepts only 'Full' as its third argument.")
		}
		full = true
	}
	switch s.section {
	case "variables":
		return nil, errf("The template function 'reference' is not expected in variables. Please see https://aka.ms/arm-functions for usage details.")
	case "parameters":
		return nil, errf("The template function 'reference' is not expected in parameter defaults.")
	}
	if s.onReference != nil {
		s.onReference(target)
	}
	if e.resolve == nil {
		return Unknown{}, nil
	}
	return e.resolve(s.ctx, target, apiVersion, full)
}

// splitIDArgs separates resourceId()'s leading scope arguments from the
// resource type (the first argument with a '/') and the names.
func splitIDArgs(fname string, a []any) (scopeArgs []string, typ string, names []string, err error) {
	strs := make([]string, len(a))
	for i, v := range a {
		s, ok := v.(string)
		if !ok {
			return nil, "", nil, errf("The template function '%s' expects String arguments, argument %d is %s.", fname, i+1, typeName(v))
		}
		strs[i] = s
	}
	ti := -1
	for i, s := range strs {
		if strings.Contains(s, "/") {
			ti = i
			break
		}
	}
	if ti < 0 {
		return nil, "", nil, errf("The template function '%s' needs a fully qualified resource type such as 'Microsoft.Network/loadBalancers'.", fname)
	}
	// Azure accepts a type with a leading or trailing '/'
	// ('Microsoft.Network/publicIPAddresses/', as quickstart templates
	// write it) and names with one ('vnet/'), and reads a name with inner
	// slashes as several segments ('vnet/subnet').
	typ = strings.Trim(strs[ti], "/")
	for _, n := range strs[ti+1:] {
		names = append(names, strings.Split(strings.Trim(n, "/"), "/")...)
	}
	segs := strings.Split(typ, "/")
	if len(segs)-1 != len(names) {
		return nil, "", nil, errf("The template function '%s' got %d resource name segment(s) for the type '%s', which needs %d.", fname, len(names), typ, len(segs)-1)
	}
	for _, n := range names {
		if n == "" {
			return nil, "", nil, errf("The template function '%s' got an empty resource name segment.", fname)
		}
	}
	return strs[:ti], typ, names, nil
}

func fnResourceID(e *evaluator, _ *site, a []any) (any, error) {
	scope, typ, names, err := splitIDArgs("resourceId", a)
	if err != nil {
		return nil, err
	}
	sub, rg := e.scope.SubscriptionID, e.scope.ResourceGroup
	switch len(scope) {
	case 0:
	case 1:
		rg = scope[0]
	case 2:
		sub, rg = scope[0], scope[1]
	default:
		return nil, errf("The template function 'resourceId' takes at most a subscription id and a resource group name before the resource type.")
	}
	return ResourceID(sub, rg, typ, names), nil
}

func fnSubscriptionResourceID(e *evaluator, _ *site, a []any) (any, error) {
	scope, typ, names, err := splitIDArgs("subscriptionResourceId", a)
	if err != nil {
		return nil, err
	}
	sub := e.scope.SubscriptionID
	switch len(scope) {
	case 0:
	case 1:
		sub = scope[0]
	default:
		return nil, errf("The template function 'subscriptionResourceId' takes at most a subscription id before the resource type.")
	}
	return "/subscriptions/" + sub + "/providers/" + typeNamePath(typ, names), nil
}

func fnTenantResourceID(_ *evaluator, _ *site, a []any) (any, error) {
	scope, typ, names, err := splitIDArgs("tenantResourceId", a)
	if err != nil {
		return nil, err
	}
	if len(scope) > 0 {
		return nil, errf("The template function 'tenantResourceId' takes no scope before the resource type.")
	}
	return "/providers/" + typeNamePath(typ, names), nil
}

func fnExtensionResourceID(_ *evaluator, _ *site, a []any) (any, error) {
	base, ok := a[0].(string)
	if !ok || !strings.HasPrefix(base, "/") {
		return nil, errf("The template function 'extensionResourceId' expects a resource id as its first argument.")
	}
	scope, typ, names, err := splitIDArgs("extensionResourceId", a[1:])
	if err != nil {
		return nil, err
	}
	if len(scope) > 0 {
		return nil, errf("The template function 'extensionResourceId' expects the resource type right after the scope id.")
	}
	return strings.TrimSuffix(base, "/") + "/providers/" + typeNamePath(typ, names), nil
}

func stringArgs(fname string, a []any) ([]string, error) {
	out := make([]string, len(a))
	for i, v := range a {
		s, ok := v.(string)
		if !ok {
			return nil, errf("The template function '%s' expects String arguments, argument %d is %s.", fname, i+1, typeName(v))
		}
		out[i] = s
	}
	return out, nil
}

func fnUniqueString(_ *evaluator, _ *site, a []any) (any, error) {
	strs, err := stringArgs("uniqueString", a)
	if err != nil {
		return nil, err
	}
	return UniqueString(strs...), nil
}

func fnGUID(_ *evaluator, _ *site, a []any) (any, error) {
	strs, err := stringArgs("guid", a)
	if err != nil {
		return nil, err
	}
	return GUID(strs...), nil
}

func fnNewGUID(e *evaluator, s *site, _ []any) (any, error) {
	if s.section != "parameters" {
		return nil, errf("The template function 'newGuid' can only be used in the default value of a parameter.")
	}
	return uuid.New().String(), nil
}

func fnUTCNow(e *evaluator, s *site, a []any) (any, error) {
	if s.section != "parameters" {
		return nil, errf("The template function 'utcNow' can only be used in the default value of a parameter.")
	}
	layout := "20060102T150405Z"
	if len(a) == 1 {
		f, ok := a[0].(string)
		if !ok {
			return nil, errf("The template function 'utcNow' expects a String format.")
		}
		layout = dotnetTimeLayout(f)
	}
	return e.now.UTC().Format(layout), nil
}

// dotnetTimeLayout converts the common .NET date format tokens to a Go
// layout ("u" and "o" standard formats, yyyy MM dd HH mm ss custom tokens).
func dotnetTimeLayout(f string) string {
	switch f {
	case "u":
		return "2006-01-02 15:04:05Z"
	case "o", "O":
		return "2006-01-02T15:04:05.0000000Z"
	case "d":
		return "1/2/2006"
	case "s":
		return "2006-01-02T15:04:05"
	}
	r := strings.NewReplacer("yyyy", "2006", "yy", "06", "MM", "01", "dd", "02", "HH", "15", "mm", "04", "ss", "05", "fff", "000")
	return r.Replace(f)
}

func fnIf(e *evaluator, s *site, args []node) (any, error) {
	c, err := e.eval(s, args[0])
	if err != nil {
		return nil, err
	}
	if isUnknown(c) {
		return Unknown{}, nil
	}
	b, ok := c.(bool)
	if !ok {
		return nil, errf("The template function 'if' expects a Boolean condition, got %s.", typeName(c))
	}
	if b {
		return e.eval(s, args[1])
	}
	return e.eval(s, args[2])
}

func asBool(fname string, v any) (bool, error) {
	b, ok := v.(bool)
	if !ok {
		return false, errf("The template function '%s' expects Boolean arguments, got %s.", fname, typeName(v))
	}
	return b, nil
}

func fnNot(_ *evaluator, _ *site, a []any) (any, error) {
	b, err := asBool("not", a[0])
	return !b, err
}

func fnAnd(_ *evaluator, _ *site, a []any) (any, error) {
	out := true
	for _, v := range a {
		b, err := asBool("and", v)
		if err != nil {
			return nil, err
		}
		out = out && b
	}
	return out, nil
}

func fnOr(_ *evaluator, _ *site, a []any) (any, error) {
	out := false
	for _, v := range a {
		b, err := asBool("or", v)
		if err != nil {
			return nil, err
		}
		out = out || b
	}
	return out, nil
}

func compareFn(ok func(int) bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		switch x := a[0].(type) {
		case int64:
			if y, isInt := a[1].(int64); isInt {
				switch {
				case x < y:
					return ok(-1), nil
				case x > y:
					return ok(1), nil
				}
				return ok(0), nil
			}
		case string:
			if y, isStr := a[1].(string); isStr {
				return ok(strings.Compare(x, y)), nil
			}
		}
		return nil, errf("comparison needs two Integers or two Strings, got %s and %s.", typeName(a[0]), typeName(a[1]))
	}
}

func fnCoalesce(_ *evaluator, _ *site, a []any) (any, error) {
	for _, v := range a {
		if isUnknown(v) {
			return Unknown{}, nil
		}
		if v != nil {
			return v, nil
		}
	}
	return nil, nil
}

func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case float64:
		if n, ok := floatToInt(x); ok && float64(n) == x {
			return n, nil
		}
	}
	return 0, fmt.Errorf("must be an Integer, got %s", typeName(v))
}

// coerceIntString turns an integer written as a string into int64 and
// returns other values unchanged.
func coerceIntString(v any) any {
	if s, ok := v.(string); ok {
		if i, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64); err == nil {
			return i
		}
	}
	return v
}

func arith(name string, op func(a, b int64) (int64, error)) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		x, err1 := asInt(a[0])
		y, err2 := asInt(a[1])
		if err1 != nil || err2 != nil {
			return nil, errf("The template language function '%s' expects Integer arguments, got %s and %s.", name, typeName(a[0]), typeName(a[1]))
		}
		return op(x, y)
	}
}

func minMax(name string, better func(a, b int64) bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		vals := a
		if len(a) == 1 {
			if arr, ok := a[0].([]any); ok {
				vals = arr
			}
		}
		if len(vals) == 0 {
			return nil, errf("The template language function '%s' needs at least one value.", name)
		}
		var best int64
		for i, v := range vals {
			n, err := asInt(v)
			if err != nil {
				return nil, errf("The template language function '%s' expects Integers, got %s.", name, typeName(v))
			}
			if i == 0 || better(n, best) {
				best = n
			}
		}
		return best, nil
	}
}

func fnRange(_ *evaluator, _ *site, a []any) (any, error) {
	start, err1 := asInt(a[0])
	count, err2 := asInt(a[1])
	if err1 != nil || err2 != nil {
		return nil, errf("The template language function 'range' expects Integer arguments.")
	}
	if count < 0 || count > 10000 {
		return nil, errf("The template language function 'range' needs a count between 0 and 10000, got %d.", count)
	}
	if count > 0 {
		if _, err := addInt("range", start, count-1); err != nil {
			return nil, errOverflow("range", "the last element "+itoa(start)+" + "+itoa(count-1))
		}
	}
	out := make([]any, count)
	for i := range out {
		out[i] = start + int64(i)
	}
	return out, nil
}

func fnInt(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case int64:
		return x, nil
	case float64:
		n, ok := floatToInt(x)
		if !ok {
			return nil, errOverflow("int", strconv.FormatFloat(x, 'g', -1, 64))
		}
		return n, nil
	case string:
		i, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if errors.Is(err, strconv.ErrRange) {
			return nil, errOverflow("int", "'"+x+"'")
		}
		if err != nil {
			return nil, errf("The template language function 'int' cannot convert '%s' to an Integer.", x)
		}
		return i, nil
	case bool:
		if x {
			return int64(1), nil
		}
		return int64(0), nil
	}
	return nil, errf("The template language function 'int' cannot convert a value of type %s.", typeName(a[0]))
}

func fnFloat(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case int64:
		return float64(x), nil
	case float64:
		return x, nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return nil, errf("The template language function 'float' cannot convert '%s'.", x)
		}
		return f, nil
	}
	return nil, errf("The template language function 'float' cannot convert a value of type %s.", typeName(a[0]))
}

func fnBool(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case bool:
		return x, nil
	case int64:
		return x != 0, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, errf("The template language function 'bool' cannot convert '%s' to a Boolean.", x)
	}
	return nil, errf("The template language function 'bool' cannot convert a value of type %s.", typeName(a[0]))
}

func fnConcat(_ *evaluator, _ *site, a []any) (any, error) {
	if _, isArr := a[0].([]any); isArr || a[0] == nil {
		anyArr := false
		for _, v := range a {
			if _, ok := v.([]any); ok {
				anyArr = true
			}
		}
		if anyArr {
			var out []any
			for _, v := range a {
				switch x := v.(type) {
				case []any:
					out = append(out, x...)
				case nil:
				default:
					return nil, errf("The template language function 'concat' cannot mix arrays and %s values.", typeName(v))
				}
			}
			if out == nil {
				out = []any{}
			}
			return out, nil
		}
	}
	var b strings.Builder
	unknown := false
	for _, v := range a {
		switch x := v.(type) {
		case []any, map[string]any:
			if containsUnknown(x) {
				unknown = true
				continue
			}
			return nil, errf("The template language function 'concat' expects String or array arguments, got %s.", typeName(v))
		case Unknown:
			unknown = true
		default:
			b.WriteString(toText(x))
		}
	}
	if unknown {
		return Unknown{}, nil
	}
	return b.String(), nil
}

func strFn(name string, f func(string) string) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		s, ok := a[0].(string)
		if !ok {
			return nil, errf("The template language function '%s' expects a String, got %s.", name, typeName(a[0]))
		}
		return f(s), nil
	}
}

func strPred(name string, f func(a, b string) bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		x, ok1 := a[0].(string)
		y, ok2 := a[1].(string)
		if !ok1 || !ok2 {
			return nil, errf("The template language function '%s' expects String arguments.", name)
		}
		return f(x, y), nil
	}
}

func indexFn(name string, last bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		switch x := a[0].(type) {
		case string:
			y, ok := a[1].(string)
			if !ok {
				return nil, errf("The template language function '%s' expects a String to look for in a String.", name)
			}
			hay, needle := strings.ToLower(x), strings.ToLower(y)
			if last {
				return int64(strings.LastIndex(hay, needle)), nil
			}
			return int64(strings.Index(hay, needle)), nil
		case []any:
			res := int64(-1)
			for i, v := range x {
				if deepEqual(v, a[1]) {
					res = int64(i)
					if !last {
						break
					}
				}
			}
			return res, nil
		}
		return nil, errf("The template language function '%s' expects a String or an array, got %s.", name, typeName(a[0]))
	}
}

func fnSplit(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'split' expects a String to split, got %s.", typeName(a[0]))
	}
	var seps []string
	switch d := a[1].(type) {
	case string:
		seps = []string{d}
	case []any:
		for _, v := range d {
			sv, ok := v.(string)
			if !ok {
				return nil, errf("The template language function 'split' expects String delimiters.")
			}
			seps = append(seps, sv)
		}
	default:
		return nil, errf("The template language function 'split' expects a String or an array of Strings as delimiter.")
	}
	parts := []string{s}
	for _, sep := range seps {
		if sep == "" {
			continue
		}
		var next []string
		for _, p := range parts {
			next = append(next, strings.Split(p, sep)...)
		}
		parts = next
	}
	out := make([]any, len(parts))
	for i, p := range parts {
		out[i] = p
	}
	return out, nil
}

func fnReplace(_ *evaluator, _ *site, a []any) (any, error) {
	strs, err := stringArgs("replace", a)
	if err != nil {
		return nil, err
	}
	if strs[1] == "" {
		return nil, errf("The template language function 'replace' cannot replace an empty String.")
	}
	return strings.ReplaceAll(strs[0], strs[1], strs[2]), nil
}

func fnJoin(_ *evaluator, _ *site, a []any) (any, error) {
	arr, ok := a[0].([]any)
	sep, ok2 := a[1].(string)
	if !ok || !ok2 {
		return nil, errf("The template language function 'join' expects an array and a String delimiter.")
	}
	parts := make([]string, len(arr))
	for i, v := range arr {
		switch v.(type) {
		case []any, map[string]any:
			return nil, errf("The template language function 'join' can only join Strings, Integers and Booleans.")
		}
		parts[i] = toText(v)
	}
	return strings.Join(parts, sep), nil
}

func fnSubstring(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'substring' expects a String, got %s.", typeName(a[0]))
	}
	r := []rune(s)
	start, err := asInt(a[1])
	if err != nil {
		return nil, errf("The template language function 'substring' expects an Integer start index.")
	}
	length := int64(len(r)) - start
	if len(a) == 3 {
		if length, err = asInt(a[2]); err != nil {
			return nil, errf("The template language function 'substring' expects an Integer length.")
		}
	}
	if start < 0 || start > int64(len(r)) {
		return nil, errf("The index parameter cannot be less than zero or greater than the length of the string: start index %d, length %d.", start, len(r))
	}
	if length < 0 || length > int64(len(r))-start {
		return nil, errf("The length parameter cannot be less than zero or run past the end of the string: start index %d, length %d, string length %d.", start, length, len(r))
	}
	return string(r[start : start+length]), nil
}

func fnPadLeft(_ *evaluator, _ *site, a []any) (any, error) {
	var s string
	switch x := a[0].(type) {
	case string:
		s = x
	case int64:
		s = strconv.FormatInt(x, 10)
	default:
		return nil, errf("The template language function 'padLeft' expects a String or an Integer, got %s.", typeName(a[0]))
	}
	total, err := asInt(a[1])
	if err != nil || total < 0 || total > 16000 {
		return nil, errf("The template language function 'padLeft' expects a total length between 0 and 16000.")
	}
	pad := " "
	if len(a) == 3 {
		p, ok := a[2].(string)
		if !ok || utf8.RuneCountInString(p) != 1 {
			return nil, errf("The template language function 'padLeft' expects a single padding character.")
		}
		pad = p
	}
	n := int(total) - utf8.RuneCountInString(s)
	if n <= 0 {
		return s, nil
	}
	return strings.Repeat(pad, n) + s, nil
}

func fnBase64ToString(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'base64ToString' expects a String.")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, errf("The template language function 'base64ToString' got invalid base64: %v.", err)
	}
	return string(b), nil
}

func fnBase64ToJSON(e *evaluator, s *site, a []any) (any, error) {
	str, err := fnBase64ToString(e, s, a)
	if err != nil {
		return nil, err
	}
	return fnJSON(e, s, []any{str})
}

func fnDataURI(_ *evaluator, _ *site, a []any) (any, error) {
	s := toText(a[0])
	return "data:text/plain;charset=utf8;base64," + base64.StdEncoding.EncodeToString([]byte(s)), nil
}

func fnDataURIToString(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok || !strings.HasPrefix(s, "data:") {
		return nil, errf("The template language function 'dataUriToString' expects a data URI.")
	}
	meta, data, found := strings.Cut(s[len("data:"):], ",")
	if !found {
		return nil, errf("The template language function 'dataUriToString' expects a data URI with a ','.")
	}
	if strings.HasSuffix(meta, ";base64") {
		b, err := base64.StdEncoding.DecodeString(data)
		if err != nil {
			return nil, errf("The template language function 'dataUriToString' got invalid base64: %v.", err)
		}
		return string(b), nil
	}
	d, err := url.PathUnescape(data)
	if err != nil {
		return nil, errf("The template language function 'dataUriToString' got an invalid URI: %v.", err)
	}
	return d, nil
}

func fnURI(_ *evaluator, _ *site, a []any) (any, error) {
	strs, err := stringArgs("uri", a)
	if err != nil {
		return nil, err
	}
	base, err := url.Parse(strs[0])
	if err != nil {
		return nil, errf("The template language function 'uri' got an invalid base URI: %v.", err)
	}
	rel, err := url.Parse(strs[1])
	if err != nil {
		return nil, errf("The template language function 'uri' got an invalid relative URI: %v.", err)
	}
	return base.ResolveReference(rel).String(), nil
}

func fnURIComponentToString(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'uriComponentToString' expects a String.")
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return nil, errf("The template language function 'uriComponentToString' got an invalid encoding: %v.", err)
	}
	return d, nil
}

func fnJSON(_ *evaluator, _ *site, a []any) (any, error) {
	s, ok := a[0].(string)
	if !ok {
		return nil, errf("The template language function 'json' expects a String, got %s.", typeName(a[0]))
	}
	v, err := decodeJSON([]byte(s))
	if err != nil {
		return nil, errf("The template language function 'json' got invalid JSON: %v.", err)
	}
	return v, nil
}

func fnCreateObject(_ *evaluator, _ *site, a []any) (any, error) {
	if len(a)%2 != 0 {
		return nil, errf("The template language function 'createObject' needs an even number of arguments (key, value pairs).")
	}
	out := map[string]any{}
	for i := 0; i < len(a); i += 2 {
		k, ok := a[i].(string)
		if !ok {
			return nil, errf("The template language function 'createObject' needs String keys, argument %d is %s.", i+1, typeName(a[i]))
		}
		out[k] = a[i+1]
	}
	return out, nil
}

func fnArray(_ *evaluator, _ *site, a []any) (any, error) {
	if arr, ok := a[0].([]any); ok {
		return arr, nil
	}
	return []any{a[0]}, nil
}

func fnLength(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case string:
		return int64(utf8.RuneCountInString(x)), nil
	case []any:
		return int64(len(x)), nil
	case map[string]any:
		return int64(len(x)), nil
	}
	return nil, errf("The template language function 'length' expects a String, an array or an object, got %s.", typeName(a[0]))
}

func fnEmpty(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case nil:
		return true, nil
	case string:
		return x == "", nil
	case []any:
		return len(x) == 0, nil
	case map[string]any:
		return len(x) == 0, nil
	}
	return nil, errf("The template language function 'empty' expects a String, an array, an object or null, got %s.", typeName(a[0]))
}

func fnContains(_ *evaluator, _ *site, a []any) (any, error) {
	switch x := a[0].(type) {
	case string:
		return strings.Contains(x, toText(a[1])), nil
	case []any:
		for _, v := range x {
			if deepEqual(v, a[1]) {
				return true, nil
			}
		}
		return false, nil
	case map[string]any:
		k, ok := a[1].(string)
		if !ok {
			return nil, errf("The template language function 'contains' needs a String key to look for in an object.")
		}
		_, found := lookupKey(x, k)
		return found, nil
	}
	return nil, errf("The template language function 'contains' expects a String, an array or an object, got %s.", typeName(a[0]))
}

func edgeFn(name string, first bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		switch x := a[0].(type) {
		case string:
			r := []rune(x)
			if len(r) == 0 {
				return "", nil
			}
			if first {
				return string(r[0]), nil
			}
			return string(r[len(r)-1]), nil
		case []any:
			if len(x) == 0 {
				return nil, nil
			}
			if first {
				return x[0], nil
			}
			return x[len(x)-1], nil
		}
		return nil, errf("The template language function '%s' expects a String or an array, got %s.", name, typeName(a[0]))
	}
}

func takeSkip(name string, take bool) func(*evaluator, *site, []any) (any, error) {
	return func(_ *evaluator, _ *site, a []any) (any, error) {
		n, err := asInt(a[1])
		if err != nil {
			return nil, errf("The template language function '%s' expects an Integer count.", name)
		}
		clamp := func(l int) int {
			switch {
			case n < 0:
				return 0
			case n > int64(l):
				return l
			}
			return int(n)
		}
		switch x := a[0].(type) {
		case string:
			r := []rune(x)
			k := clamp(len(r))
			if take {
				return string(r[:k]), nil
			}
			return string(r[k:]), nil
		case []any:
			k := clamp(len(x))
			if take {
				return append([]any{}, x[:k]...), nil
			}
			return append([]any{}, x[k:]...), nil
		}
		return nil, errf("The template language function '%s' expects a String or an array, got %s.", name, typeName(a[0]))
	}
}

// mergeObjects merges b into a copy of a; nested objects merge, other
// values of b win.
func mergeObjects(a, b map[string]any) map[string]any {
	out := make(map[string]any, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		existingKey := k
		for ek := range out {
			if strings.EqualFold(ek, k) {
				existingKey = ek
				break
			}
		}
		if ov, ok := out[existingKey].(map[string]any); ok {
			if nv, ok := v.(map[string]any); ok {
				delete(out, existingKey)
				out[k] = mergeObjects(ov, nv)
				continue
			}
		}
		delete(out, existingKey)
		out[k] = v
	}
	return out
}

func fnUnion(_ *evaluator, _ *site, a []any) (any, error) {
	switch a[0].(type) {
	case []any:
		var out []any
		for _, v := range a {
			arr, ok := v.([]any)
			if !ok {
				return nil, errf("The template language function 'union' expects all arguments to be arrays or all to be objects.")
			}
			for _, el := range arr {
				dup := false
				for _, o := range out {
					if deepEqual(o, el) {
						dup = true
						break
					}
				}
				if !dup {
					out = append(out, el)
				}
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		for _, v := range a {
			obj, ok := v.(map[string]any)
			if !ok {
				return nil, errf("The template language function 'union' expects all arguments to be arrays or all to be objects.")
			}
			out = mergeObjects(out, obj)
		}
		return out, nil
	}
	return nil, errf("The template language function 'union' expects arrays or objects, got %s.", typeName(a[0]))
}

func fnIntersection(_ *evaluator, _ *site, a []any) (any, error) {
	switch first := a[0].(type) {
	case []any:
		var out []any
		for _, el := range first {
			inAll := true
			for _, other := range a[1:] {
				arr, ok := other.([]any)
				if !ok {
					return nil, errf("The template language function 'intersection' expects all arguments to be arrays or all to be objects.")
				}
				found := false
				for _, o := range arr {
					if deepEqual(o, el) {
						found = true
						break
					}
				}
				inAll = inAll && found
			}
			dup := false
			for _, o := range out {
				if deepEqual(o, el) {
					dup = true
				}
			}
			if inAll && !dup {
				out = append(out, el)
			}
		}
		if out == nil {
			out = []any{}
		}
		return out, nil
	case map[string]any:
		out := map[string]any{}
		for k, v := range first {
			inAll := true
			for _, other := range a[1:] {
				obj, ok := other.(map[string]any)
				if !ok {
					return nil, errf("The template language function 'intersection' expects all arguments to be arrays or all to be objects.")
				}
				ov, found := lookupKey(obj, k)
				inAll = inAll && found && deepEqual(ov, v)
			}
			if inAll {
				out[k] = v
			}
		}
		return out, nil
	}
	return nil, errf("The template language function 'intersection' expects arrays or objects, got %s.", typeName(a[0]))
}

func fnItems(_ *evaluator, _ *site, a []any) (any, error) {
	obj, ok := a[0].(map[string]any)
	if !ok {
		return nil, errf("The template language function 'items' expects an object, got %s.", typeName(a[0]))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = map[string]any{"key": k, "value": obj[k]}
	}
	return out, nil
}

func fnObjectKeys(_ *evaluator, _ *site, a []any) (any, error) {
	obj, ok := a[0].(map[string]any)
	if !ok {
		return nil, errf("The template language function 'objectKeys' expects an object, got %s.", typeName(a[0]))
	}
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = k
	}
	return out, nil
}

// marshalCompact is json.Marshal without HTML escaping.
func marshalCompact(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return fmt.Sprint(v)
	}
	return strings.TrimSuffix(b.String(), "\n")
}
