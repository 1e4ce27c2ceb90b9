package insights

import (
	"context"
	"net/http"
	"strconv"
	"strings"
	"time"

	"nimbus/internal/arm"
	"nimbus/internal/resource"
)

// Autoscale operation names in the activity log, as Azure writes them.
const (
	OpScaleUp   = "Microsoft.Insights/AutoscaleSettings/Scaleup/Action"
	OpScaleDown = "Microsoft.Insights/AutoscaleSettings/Scaledown/Action"
	// OpFlapping records a scale-in skipped because it would trigger a
	// scale-out at once (nimbus's own name; Azure reports flapping in
	// its autoscale resource logs).
	OpFlapping = "Microsoft.Insights/AutoscaleSettings/Flapping/Action"
)

// Event is one autoscale activity-log entry: a scale action (succeeded or
// failed) or a skipped, flapping scale-in. The engine produces them.
type Event struct {
	Time time.Time
	// SettingID is the autoscale setting's resource ID (the event's
	// resourceId, as in Azure); TargetID the scale set.
	SettingID, TargetID string
	// Operation is one of OpScaleUp, OpScaleDown, OpFlapping.
	Operation string
	// Status is Succeeded or Failed; Level Informational, Warning or Error.
	Status, Level string
	Description   string
	Profile       string
	OldCount      int
	NewCount      int
	// ID is unique per event (the eventDataId and correlationId).
	ID string
}

// eventData is Azure's EventData, the activity log's entry.
type eventData struct {
	Authorization        map[string]string `json:"authorization"`
	Caller               string            `json:"caller"`
	Channels             string            `json:"channels"`
	CorrelationID        string            `json:"correlationId"`
	Description          string            `json:"description"`
	EventDataID          string            `json:"eventDataId"`
	EventName            localized         `json:"eventName"`
	Category             localized         `json:"category"`
	EventTimestamp       string            `json:"eventTimestamp"`
	ID                   string            `json:"id"`
	Level                string            `json:"level"`
	OperationID          string            `json:"operationId"`
	OperationName        localized         `json:"operationName"`
	ResourceGroupName    string            `json:"resourceGroupName"`
	ResourceProviderName localized         `json:"resourceProviderName"`
	ResourceID           string            `json:"resourceId"`
	ResourceType         localized         `json:"resourceType"`
	Status               localized         `json:"status"`
	SubStatus            localized         `json:"subStatus"`
	SubmissionTimestamp  string            `json:"submissionTimestamp"`
	SubscriptionID       string            `json:"subscriptionId"`
	Properties           map[string]string `json:"properties"`
}

func (s *server) registerActivity() {
	s.Handle(http.MethodGet, "/subscriptions/{sub}/providers/Microsoft.Insights/eventtypes/management/values", Versions, s.listActivity)
}

// activityFilter is the part of the activity log's $filter nimbus applies.
type activityFilter struct {
	from, to               time.Time
	group, resourceID, cid string
}

// parseActivityFilter reads eventTimestamp ge/le, resourceGroupName,
// resourceUri/resourceId and correlationId clauses joined by "and"; other
// clauses (resourceProvider, status, caller, levels) are accepted and not
// applied.
func parseActivityFilter(s string) (activityFilter, error) {
	var f activityFilter
	if strings.TrimSpace(s) == "" {
		return f, nil
	}
	for _, clause := range splitWord(s, "and") {
		fs := strings.Fields(strings.TrimSpace(clause))
		if len(fs) < 3 {
			return f, resource.BadRequest("BadRequest", "Invalid $filter '%s'.", s)
		}
		name, op, val := strings.ToLower(fs[0]), strings.ToLower(fs[1]), strings.Trim(strings.Join(fs[2:], " "), "'")
		switch name {
		case "eventtimestamp":
			t, err := parseLocalTime(val, time.UTC)
			if err != nil {
				return f, resource.BadRequest("BadRequest", "Invalid eventTimestamp '%s' in $filter.", val)
			}
			if op == "ge" || op == "gt" {
				f.from = t
			} else {
				f.to = t
			}
		case "resourcegroupname":
			f.group = val
		case "resourceuri", "resourceid":
			f.resourceID = val
		case "correlationid":
			f.cid = val
		}
	}
	return f, nil
}

func (s *server) listActivity(_ context.Context, r *arm.Request) (*arm.Response, error) {
	f, err := parseActivityFilter(queryParam(r, "$filter"))
	if err != nil {
		return nil, err
	}
	var events []Event
	if src, ok := s.Runtime().(ActivitySource); ok {
		events = src.ActivityLog()
	}
	sub := r.Param("sub")
	items := []any{}
	// Newest first, as Azure lists them.
	for i := len(events) - 1; i >= 0; i-- {
		e := events[i]
		id, err := resource.ParseID(e.SettingID)
		if err != nil || !strings.EqualFold(id.Subscription, sub) {
			continue
		}
		switch {
		case !f.from.IsZero() && e.Time.Before(f.from), !f.to.IsZero() && e.Time.After(f.to),
			f.group != "" && !strings.EqualFold(f.group, id.ResourceGroup),
			f.resourceID != "" && !strings.EqualFold(f.resourceID, e.SettingID) && !strings.EqualFold(f.resourceID, e.TargetID),
			f.cid != "" && f.cid != e.ID:
			continue
		}
		items = append(items, render(e, id))
	}
	return r.Page(items)
}

func render(e Event, id resource.ID) eventData {
	ts := e.Time.UTC().Format(time.RFC3339Nano)
	return eventData{
		Authorization: map[string]string{"action": e.Operation, "scope": e.SettingID},
		Caller:        "Microsoft.Insights/autoscaleSettings", Channels: "Admin, Operation",
		CorrelationID: e.ID, Description: e.Description, EventDataID: e.ID,
		EventName: loc("AutoscaleAction"), Category: loc("Autoscale"), EventTimestamp: ts,
		ID: e.SettingID + "/events/" + e.ID, Level: e.Level, OperationID: e.ID,
		OperationName: loc(e.Operation), ResourceGroupName: id.ResourceGroup,
		ResourceProviderName: loc("Microsoft.Insights"), ResourceID: e.SettingID,
		ResourceType: loc(AutoscaleType), Status: loc(e.Status), SubStatus: loc(""),
		SubmissionTimestamp: ts, SubscriptionID: id.Subscription,
		Properties: map[string]string{
			"Description": e.Description, "ResourceName": e.TargetID,
			"OldInstancesCount": itoa(e.OldCount), "NewInstancesCount": itoa(e.NewCount),
			"ActiveAutoscaleProfile": e.Profile, "LastScaleActionTime": e.Time.UTC().Format(time.RFC1123),
		},
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
