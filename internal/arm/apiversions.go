package arm

import (
	"slices"
	"strings"
)

// Versions is a set of accepted api-versions, kept newest first.
type Versions []string

// Has reports whether v (case-insensitive) is in the set.
func (vs Versions) Has(v string) bool {
	return slices.ContainsFunc(vs, func(x string) bool { return strings.EqualFold(x, v) })
}

// commonVersions are the versions the clients nimbus targets send (arm-clients.md §1.1);
// every family accepts them.
var commonVersions = []string{
	"2015-06-15", "2016-06-01", "2018-11-01", "2019-10-01", "2019-11-01", "2020-06-01",
	"2021-04-01", "2022-01-01", "2022-05-01", "2022-07-01", "2025-01-01", "2025-04-01",
}

// NewVersions merges family with commonVersions, sorted newest first.
func NewVersions(family ...string) Versions {
	out := append(slices.Clone(commonVersions), family...)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(b, a) })
	return slices.Compact(out)
}

// ResourcesVersions are the api-versions Azure published for Microsoft.Resources
// (resource groups, deployments, providers, generic resources).
var ResourcesVersions = NewVersions(
	"2014-04-01", "2014-04-01-preview", "2015-01-01", "2015-11-01", "2016-02-01", "2016-07-01",
	"2016-09-01", "2017-05-10", "2018-02-01", "2018-05-01", "2019-03-01", "2019-05-01", "2019-05-10",
	"2019-07-01", "2019-08-01", "2020-08-01", "2020-10-01", "2021-01-01", "2022-09-01", "2023-07-01",
	"2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01",
)

// SubscriptionVersions are the api-versions Azure published for subscriptions and tenants.
var SubscriptionVersions = NewVersions(
	"2014-04-01", "2014-04-01-preview", "2015-01-01", "2015-11-01", "2016-02-01", "2018-06-01",
	"2019-06-01", "2020-01-01", "2021-01-01", "2022-01-01", "2022-12-01",
)
