// Package insights is nimbus's Microsoft.Insights resource provider, the
// Azure Monitor API: metric definitions and metrics of scale sets, their
// instances and load balancers ({resourceId}/providers/Microsoft.Insights/
// metricDefinitions and .../metrics), autoscale settings
// (Microsoft.Insights/autoscaleSettings, stored through Resource
// Manager's pipeline and validated as Azure does) and the activity log of
// autoscale (eventtypes/management/values).
//
// Metrics and activity come from the running system: an arm.Runtime that
// also implements MetricsSource (a monitor.History) and ActivitySource
// (the autoscale engine's events). Without them (API-only nodes) the
// definitions are listed and queries answer empty series.
package insights

import (
	"net/http"

	"nimbus/internal/arm"
	"nimbus/internal/monitor"
)

// Versions are the api-versions of Microsoft.Insights nimbus serves: those
// of autoscale settings, metrics, metric definitions and the activity log
// that the SDKs and az send.
var Versions = arm.NewVersions(
	"2014-04-01", "2015-04-01", "2016-03-01", "2017-03-01-preview", "2017-05-01-preview", "2017-12-01-preview",
	"2018-01-01", "2019-07-01", "2021-05-01", "2021-05-01-preview", "2022-10-01", "2023-10-01", "2024-02-01",
)

// MetricsSource is an optional power of the arm.Runtime: the metrics
// history the API answers from.
type MetricsSource interface {
	MetricsHistory() *monitor.History
}

// ActivitySource is an optional power of the arm.Runtime: the autoscale
// activity log, oldest first.
type ActivitySource interface {
	ActivityLog() []Event
}

// server is the provider's view of Resource Manager.
type server struct {
	*arm.Server
	kind *arm.Kind
	// empty answers queries when the runtime has no history.
	empty *monitor.History
}

// Register adds Microsoft.Insights to srv. Call it once, before srv serves
// requests.
func Register(srv *arm.Server) {
	s := &server{Server: srv, empty: monitor.NewHistory(monitor.Options{})}
	srv.RegisterNamespace("Microsoft.Insights", Versions)
	s.kind = &arm.Kind{Type: AutoscaleType, Versions: Versions, Model: autoscaleModel{s}, CheckName: autoscaleName}
	// Azure deletes autoscale settings synchronously (200/204, which az
	// expects); registered before the kind, this route wins the tie with
	// the kind's DELETE.
	srv.Handle(http.MethodDelete, "/subscriptions/{sub}/resourceGroups/{rg}/providers/"+AutoscaleType+"/{name}", Versions, s.deleteAutoscale)
	srv.RegisterKind(s.kind)
	s.registerMetrics()
	s.registerActivity()
}

// history returns the runtime's metrics history, or an empty one.
func (s *server) history() *monitor.History {
	if src, ok := s.Runtime().(MetricsSource); ok {
		if h := src.MetricsHistory(); h != nil {
			return h
		}
	}
	return s.empty
}
