package core

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Tally is a correlation built event by event, on top of what earlier steps kept (Resume): a
// correlate step folds in only the raw events read since the last one, and its result equals
// that of correlating every event read so far at once, whatever the order the events come in and
// however often an event is folded in again.
//
// The cheap checks come first: an event already kept, an Insights event, an event time outside
// the read range cost no JSON work; the rest have their fields extracted in one pass (extract.go).
type Tally struct {
	c          *Correlator
	matched    []Event // kept and newly matched, unsorted until Result
	suspicious []Event
	beyond     []Beyond
	pushed     map[string]bool
	where      map[string]byte // EventID -> kept list: 'm' matched, 's' suspicious, 'b' beyond the limit
	counts     []int
	total      int
	sensors    map[sensorKey]*Sensor
	added      int
	hasKeys    bool
	read       Window
	scratch    *fields // reused from event to event
}

// Resume starts a tally from a step's earlier result (a zero Correlation: from nothing).
func (c *Correlator) Resume(prev Correlation) *Tally {
	t := &Tally{c: c, matched: slices.Clone(prev.Events), suspicious: slices.Clone(prev.Suspicious),
		beyond: slices.Clone(prev.Unkept.Beyond), pushed: map[string]bool{}, where: map[string]byte{},
		counts: make([]int, len(c.expected)), sensors: map[sensorKey]*Sensor{},
		// A run correlated by an older version kept its events but no count of them.
		total:   max(prev.Matched, len(prev.Events)+len(prev.Unkept.Beyond)),
		hasKeys: c.a.Actor.HasKeys(), read: c.ReadRange()}
	for i := range prev.Expected {
		if i < len(t.counts) {
			t.counts[i] = prev.Expected[i].Count
		}
	}
	for _, e := range t.matched {
		t.where[e.EventID] = 'm'
	}
	for _, e := range t.suspicious {
		t.where[e.EventID] = 's'
	}
	for _, b := range t.beyond {
		t.where[b.ID] = 'b'
		if b.Pushed {
			t.pushed[b.ID] = true
		}
	}
	for _, id := range prev.Unkept.Pushed {
		t.pushed[id] = true
	}
	for _, s := range prev.Sensors {
		t.sensors[sensorKey{s.AccountID, s.Region}] = &s
	}
	return t
}

// Add folds in one raw event; pushed says it came from a push (EventBridge), not LookupEvents.
// An event whose ID is already kept is left as it is, unless the kept copy came from a push and
// this one does not: then this one replaces it.
func (t *Tally) Add(ev *RawEvent, pushed bool) {
	c := t.c
	if ev.Category == CategoryInsight || ev.EventTime.Before(t.read.From) || ev.EventTime.After(t.read.To) {
		return
	}
	if _, known := t.where[ev.EventID]; known {
		if pushed || !t.pushed[ev.EventID] {
			return
		}
		t.forget(ev.EventID)
	}
	f := c.match.extract(ev, t.scratch)
	t.scratch = f
	account, region := f.account()
	t.sight(account, region, c.n.EventTime(ev))
	if c.sensors != nil && !c.sensors[SensorUUID(account, region)] {
		return
	}
	inWindow := c.window.Contains(c.n.EventTime(ev))
	var on []string
	if t.hasKeys {
		on = c.matchActor(f)
	}
	expected := func() int {
		if len(c.expected) == 0 {
			return -1
		}
		return c.expectedIndex(f.first("event_source"), f.first("event_name"))
	}
	var e Event
	switch {
	case len(on) > 0 && inWindow:
		e = c.n.Normalize(ev)
		e.MatchedOn = on
		t.match(e, expected(), pushed)
	case len(on) > 0:
		if c.in.SaveSuspiciousEvents {
			e = c.n.Normalize(ev)
			e.MatchedOn = on
			e.Reason = "matches the actor outside the window (clock drift? check eventTimeAdjustment)"
			t.suspect(e, pushed)
		}
	case inWindow:
		k := expected()
		if k < 0 {
			return
		}
		if !t.hasKeys {
			e = c.n.Normalize(ev)
			e.MatchedOn = []string{MatchExpectedEvent}
			t.match(e, k, pushed)
		} else if c.in.SaveSuspiciousEvents {
			e = c.n.Normalize(ev)
			e.Reason = "expected event in the window without any actor key"
			t.suspect(e, pushed)
		}
	}
}

// sensorKey is a sensor's account and region.
type sensorKey struct{ account, region string }

// sight notes the sensor (account and region) of an event of a known account.
func (t *Tally) sight(account, region string, at time.Time) {
	if account == "" {
		return
	}
	if s, ok := t.sensors[sensorKey{account, region}]; ok {
		*s = MergeSensor(*s, Sensor{FirstSeen: at, LastSeen: at})
		return
	}
	// Copies: the extracted values refer to the event's bytes.
	account, region = strings.Clone(account), strings.Clone(region)
	s := NewSensor(account, region, at)
	t.sensors[sensorKey{account, region}] = &s
}

func (t *Tally) match(e Event, expected int, pushed bool) {
	t.matched = append(t.matched, e)
	t.where[e.EventID] = 'm'
	t.pushed[e.EventID] = pushed
	t.total++
	t.added++
	if expected >= 0 {
		t.counts[expected]++
	}
}

func (t *Tally) suspect(e Event, pushed bool) {
	t.suspicious = append(t.suspicious, e)
	t.where[e.EventID] = 's'
	t.pushed[e.EventID] = pushed
}

// forget takes back what a kept event counted for.
func (t *Tally) forget(id string) {
	switch t.where[id] {
	case 'm':
		i := slices.IndexFunc(t.matched, func(e Event) bool { return e.EventID == id })
		e := t.matched[i]
		t.matched = slices.Delete(t.matched, i, i+1)
		t.total--
		if k := t.c.expectedIndex(e.EventSource, e.EventName); k >= 0 && len(t.c.expected) > 0 {
			t.counts[k]--
		}
	case 's':
		t.suspicious = slices.DeleteFunc(t.suspicious, func(e Event) bool { return e.EventID == id })
	case 'b':
		i := slices.IndexFunc(t.beyond, func(b Beyond) bool { return b.ID == id })
		if k := t.beyond[i].Expected; k >= 0 {
			t.counts[k]--
		}
		t.beyond = slices.Delete(t.beyond, i, i+1)
		t.total--
	}
	delete(t.where, id)
	delete(t.pushed, id)
}

// Result is the verdict over every event folded in so far, earlier steps' included.
func (t *Tally) Result() Correlation {
	c := t.c
	res := Correlation{Matched: t.total, Added: t.added}
	matched, suspicious := slices.Clone(t.matched), slices.Clone(t.suspicious)
	sortEvents(matched)
	sortEvents(suspicious)
	if !t.hasKeys && t.total > 0 {
		res.WeakMatch = true
		res.Warnings = append(res.Warnings, "the action carries no actor key: events matched on expected event names only (weaker match)")
	}
	beyond := slices.Clone(t.beyond)
	if len(matched) > c.in.Limit {
		for _, e := range matched[c.in.Limit:] {
			k := -1
			if len(c.expected) > 0 {
				k = c.expectedIndex(e.EventSource, e.EventName)
			}
			beyond = append(beyond, Beyond{ID: e.EventID, Expected: k, Pushed: t.pushed[e.EventID]})
		}
		matched = matched[:c.in.Limit]
	}
	if t.total > c.in.Limit {
		res.Warnings = append(res.Warnings, fmt.Sprintf("limit %d reached: %d matched events, the earliest %d kept", c.in.Limit, t.total, c.in.Limit))
		res.Truncated = true
	}
	slices.SortFunc(beyond, func(a, b Beyond) int { return strings.Compare(a.ID, b.ID) })
	if len(suspicious) > c.in.Limit {
		suspicious = suspicious[:c.in.Limit]
	}
	res.Events, res.Suspicious, res.Unkept.Beyond = matched, suspicious, beyond
	res.Logged = t.total > 0
	for _, lists := range [][]Event{matched, suspicious} {
		for _, e := range lists {
			if t.pushed[e.EventID] {
				res.Unkept.Pushed = append(res.Unkept.Pushed, e.EventID)
			}
		}
	}
	slices.Sort(res.Unkept.Pushed)
	for i, s := range c.a.ExpectedEvents {
		res.Expected = append(res.Expected, ExpectedCount{Event: s, Count: t.counts[i]})
	}
	res.Sensors = make([]Sensor, 0, len(t.sensors))
	for _, s := range t.sensors {
		res.Sensors = append(res.Sensors, *s)
	}
	slices.SortFunc(res.Sensors, func(a, b Sensor) int { return strings.Compare(a.UUID, b.UUID) })
	return res
}

// Accounts are the accounts of the events folded in so far (and of the sensors resumed from),
// sorted.
func (t *Tally) Accounts() []string {
	var out []string
	for _, s := range t.sensors {
		if !slices.Contains(out, s.AccountID) {
			out = append(out, s.AccountID)
		}
	}
	slices.Sort(out)
	return out
}
