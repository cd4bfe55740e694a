package core

import (
	"fmt"
	"strings"

	"github.com/tidwall/gjson"
)

// AlertResult is the "alerted" half of the verdict.
type AlertResult struct {
	Alerts    []Event
	Alerted   bool
	Truncated bool
	Warnings  []string
}

// Alerts computes the run's alerts from its matched events and the Insights events read over the
// window: a Correlation Query hit on a matched event, and an Insights event about the same event
// source or name as a matched event. alarmSensorUuids filters them, and limit caps them apart from
// the events. rule may be nil (no Correlation Query).
func (c *Correlator) Alerts(matched []Event, insights []RawEvent, rule AlertRule) AlertResult {
	var res AlertResult
	var alerts []Event
	if rule != nil {
		errs := 0
		for i := range matched {
			e := matched[i]
			ok, err := rule.Match(e.Raw, &e)
			if err != nil {
				errs++
				continue
			}
			if ok {
				e.RaisedBy = AlertSourceQuery
				e.Reason = "the Correlation Query matched this event"
				alerts = append(alerts, e)
			}
		}
		if errs > 0 {
			res.Warnings = append(res.Warnings, fmt.Sprintf("the Correlation Query could not be evaluated on %d events", errs))
		}
	}
	names, sources := map[string]bool{}, map[string]bool{}
	for _, e := range matched {
		names[e.EventName], sources[e.EventSource] = true, true
	}
	seen := map[string]bool{}
	for i := range insights {
		ev := &insights[i]
		if seen[ev.EventID] || !c.window.Contains(c.n.EventTime(ev)) {
			continue
		}
		seen[ev.EventID] = true
		d := gjson.GetBytes(ev.Record, "insightDetails")
		name, source := d.Get("eventName").String(), d.Get("eventSource").String()
		if !names[name] && !sources[source] {
			continue
		}
		e := c.n.Normalize(ev)
		if e.EventName == "" {
			e.EventName = name
		}
		if e.EventSource == "" {
			e.EventSource = source
		}
		typ := d.Get("insightType").String()
		e.RaisedBy = AlertSourceInsight + ":" + typ
		e.Reason = fmt.Sprintf("CloudTrail Insights %s (%s) on %s:%s", typ, strings.ToLower(d.Get("state").String()), source, name)
		alerts = append(alerts, e)
	}
	if len(c.in.AlarmSensorUUIDs) > 0 {
		keep := map[string]bool{}
		for _, u := range c.in.AlarmSensorUUIDs {
			keep[strings.ToLower(u)] = true
		}
		kept := alerts[:0]
		for _, a := range alerts {
			if keep[SensorUUID(a.AccountID, a.Region)] {
				kept = append(kept, a)
			}
		}
		alerts = kept
	}
	sortEvents(alerts)
	if len(alerts) > c.in.Limit {
		res.Warnings = append(res.Warnings, fmt.Sprintf("limit %d reached: %d alerts, the earliest %d kept", c.in.Limit, len(alerts), c.in.Limit))
		alerts, res.Truncated = alerts[:c.in.Limit], true
	}
	if alerts == nil {
		alerts = []Event{}
	}
	res.Alerts, res.Alerted = alerts, len(alerts) > 0
	return res
}
