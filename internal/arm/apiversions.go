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

// versions merges family with commonVersions, sorted newest first.
func versions(family ...string) Versions {
	out := append(slices.Clone(commonVersions), family...)
	slices.SortFunc(out, func(a, b string) int { return strings.Compare(b, a) })
	return slices.Compact(out)
}

// NetworkVersions are the api-versions Azure published for Microsoft.Network.
var NetworkVersions = versions(
	"2015-05-01-preview", "2016-03-30", "2016-07-01", "2016-08-01", "2016-09-01", "2016-10-01",
	"2016-11-01", "2016-12-01", "2017-03-01", "2017-04-01", "2017-06-01", "2017-08-01", "2017-09-01",
	"2017-10-01", "2017-11-01", "2018-01-01", "2018-02-01", "2018-04-01", "2018-06-01", "2018-07-01",
	"2018-08-01", "2018-10-01", "2018-12-01", "2019-02-01", "2019-04-01", "2019-06-01", "2019-07-01",
	"2019-08-01", "2019-09-01", "2019-12-01", "2020-03-01", "2020-04-01", "2020-05-01",
	"2020-07-01", "2020-08-01", "2020-11-01", "2021-02-01", "2021-03-01", "2021-05-01", "2021-06-01",
	"2021-08-01", "2022-09-01", "2022-11-01", "2023-02-01", "2023-04-01", "2023-05-01", "2023-06-01",
	"2023-09-01", "2023-11-01", "2024-01-01", "2024-03-01", "2024-05-01", "2024-07-01", "2024-10-01",
	"2025-03-01", "2025-05-01", "2025-07-01", "2025-10-01", "2026-01-01",
)

// ComputeVersions are the api-versions Azure published for Microsoft.Compute.
var ComputeVersions = versions(
	"2015-05-01-preview", "2016-03-30", "2016-04-30-preview", "2017-03-30", "2017-12-01", "2018-04-01",
	"2018-06-01", "2018-10-01", "2019-03-01", "2019-07-01", "2019-12-01", "2020-12-01", "2021-03-01",
	"2021-07-01", "2021-11-01", "2022-03-01", "2022-08-01", "2022-11-01", "2023-03-01", "2023-07-01",
	"2023-09-01", "2024-03-01", "2024-07-01", "2024-11-01", "2025-11-01", "2026-04-01",
)

// ResourcesVersions are the api-versions Azure published for Microsoft.Resources
// (resource groups, deployments, providers, generic resources).
var ResourcesVersions = versions(
	"2014-04-01", "2014-04-01-preview", "2015-01-01", "2015-11-01", "2016-02-01", "2016-07-01",
	"2016-09-01", "2017-05-10", "2018-02-01", "2018-05-01", "2019-03-01", "2019-05-01", "2019-05-10",
	"2019-07-01", "2019-08-01", "2020-08-01", "2020-10-01", "2021-01-01", "2022-09-01", "2023-07-01",
	"2024-03-01", "2024-07-01", "2024-11-01", "2025-03-01",
)

// SubscriptionVersions are the api-versions Azure published for subscriptions and tenants.
var SubscriptionVersions = versions(
	"2014-04-01", "2014-04-01-preview", "2015-01-01", "2015-11-01", "2016-02-01", "2018-06-01",
	"2019-06-01", "2020-01-01", "2021-01-01", "2022-01-01", "2022-12-01",
)

// AnyVersions is the union of all families (operation status URLs, generic reads).
var AnyVersions = versions(slices.Concat(NetworkVersions, ComputeVersions, ResourcesVersions, SubscriptionVersions)...)
