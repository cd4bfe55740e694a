package core

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Actor keys, as reported in an event's matched_on.
const (
	MatchUserAgent       = "userAgent"
	MatchHost            = "host"
	MatchAccessKey       = "accessKeyId"
	MatchPrincipal       = "principal"
	MatchRoleSessionName = "roleSessionName"
	MatchExpectedEvent   = "expectedEvent" // the weaker fallback when the action carries no actor key
)

// Correlation is the verdict over the events read so far.
type Correlation struct {
	Events     []Event
	Suspicious []Event
	Expected   []ExpectedCount
	Logged     bool
	Truncated  bool // limit reached
	WeakMatch  bool
	Warnings   []string
}

// AllExpectedMatched reports whether the action named expected events and each has matched.
func (c *Correlation) AllExpectedMatched() bool {
	if len(c.Expected) == 0 {
		return false
	}
	for _, e := range c.Expected {
		if e.Count == 0 {
			return false
		}
	}
	return true
}

// Correlator ties raw events to one action under one integration's settings.
type Correlator struct {
	in       *Integration
	a        *Action
	n        *Normalizer
	window   Window
	margin   time.Duration
	expected []ExpectedEvent
	sensors  map[string]bool
}

// NewCorrelator prepares the correlation of action a under integration in.
func NewCorrelator(in *Integration, a *Action) *Correlator {
	c := &Correlator{in: in, a: a, n: NewNormalizer(in)}
	q := in.QueryTimeD()
	c.window = Window{From: a.StartTime.Add(-q).UTC(), To: a.StartTime.Add(q).UTC()}
	if in.SaveSuspiciousEvents {
		// Events that match the actor just outside the window point at clock drift; read a margin
		// of one more queryTime on each side to find them.
		c.margin = q
	}
	for _, s := range a.ExpectedEvents {
		c.expected = append(c.expected, ParseExpectedEvent(s))
	}
	if len(in.EventSensorUUIDs) > 0 {
		c.sensors = map[string]bool{}
		for _, u := range in.EventSensorUUIDs {
			c.sensors[strings.ToLower(u)] = true
		}
	}
	return c
}

// Window is the correlation window in (adjusted) event time.
func (c *Correlator) Window() Window { return c.window }

// Normalizer returns the run's normalizer.
func (c *Correlator) Normalizer() *Normalizer { return c.n }

// ReadRange is the span of CloudTrail event time to read: the window, shifted back by
// eventTimeAdjustment, widened by the drift margin when suspicious events are saved.
func (c *Correlator) ReadRange() Window {
	adj := c.in.EventTimeAdjustmentD()
	return Window{From: c.window.From.Add(-adj - c.margin), To: c.window.To.Add(-adj + c.margin)}
}

// LookupAttribute returns the server-side filter a query can use for this action, or nil. Only an
// action whose sole actor key is one access key can be narrowed without losing events: a user
// agent cannot be filtered server-side, and suspicious events need the unfiltered stream.
func (c *Correlator) LookupAttribute() *LookupAttribute {
	ac := c.a.Actor
	if len(ac.AccessKeyIDs) == 1 && ac.UserAgentToken == "" && len(ac.Hosts) == 0 &&
		len(ac.Principals) == 0 && len(ac.RoleSessionNames) == 0 && !c.in.SaveSuspiciousEvents {
		return &LookupAttribute{Key: AttrAccessKeyID, Value: ac.AccessKeyIDs[0]}
	}
	return nil
}

// matchActor returns which actor keys the event matches. Fields are extracted only for the key
// kinds the actor carries, which keeps correlation cheap over large corpora.
func (c *Correlator) matchActor(ev *RawEvent) []string {
	ac := &c.a.Actor
	var on []string
	if ac.UserAgentToken != "" && strings.Contains(c.n.first(ev, "user_agent"), ac.UserAgentToken) {
		on = append(on, MatchUserAgent)
	}
	if len(ac.Hosts) > 0 && anyEqualFold(c.n.all(ev, "hosts"), ac.Hosts) {
		on = append(on, MatchHost)
	}
	if len(ac.AccessKeyIDs) > 0 && slices.Contains(ac.AccessKeyIDs, c.n.first(ev, "access_key_id")) {
		on = append(on, MatchAccessKey)
	}
	var principals []string
	if len(ac.Principals) > 0 || len(ac.RoleSessionNames) > 0 {
		principals = c.n.all(ev, "principal")
	}
	if len(ac.Principals) > 0 && anyEqualFold(principals, ac.Principals) {
		on = append(on, MatchPrincipal)
	}
	if len(ac.RoleSessionNames) > 0 && anyEqualFold(sessionNames(principals, c.n.all(ev, "session_name")), ac.RoleSessionNames) {
		on = append(on, MatchRoleSessionName)
	}
	return on
}

// sessionNames extracts role session names from assumed-role ARNs
// (arn:aws:sts::1:assumed-role/Role/session) and principal IDs (AROA...:session).
func sessionNames(principals, ids []string) []string {
	var out []string
	for _, p := range principals {
		if i := strings.Index(p, ":assumed-role/"); i >= 0 {
			if j := strings.LastIndexByte(p, '/'); j > i+len(":assumed-role/") {
				out = append(out, p[j+1:])
			}
		}
	}
	for _, id := range ids {
		if i := strings.IndexByte(id, ':'); i >= 0 && i < len(id)-1 {
			out = append(out, id[i+1:])
		}
	}
	return out
}

func anyEqualFold(have, want []string) bool {
	for _, h := range have {
		for _, w := range want {
			if strings.EqualFold(h, w) {
				return true
			}
		}
	}
	return false
}

// expectedIndex returns the index of the first expected event the raw event is, or -1.
func (c *Correlator) expectedIndex(ev *RawEvent) int {
	if len(c.expected) == 0 {
		return -1
	}
	name, source := c.n.first(ev, "event_name"), c.n.first(ev, "event_source")
	for i, e := range c.expected {
		if e.Matches(source, name) {
			return i
		}
	}
	return -1
}

// Correlate computes the verdict over every raw event read for the run. It is deterministic in
// its input, so a step repeated after a crash computes the same result.
func (c *Correlator) Correlate(raws []RawEvent) Correlation {
	var res Correlation
	counts := make([]int, len(c.expected))
	hasKeys := c.a.Actor.HasKeys()
	var matched, suspicious []Event
	seen := make(map[string]bool, len(raws))
	read := c.ReadRange()
	for i := range raws {
		ev := &raws[i]
		if seen[ev.EventID] || ev.Category == CategoryInsight {
			continue
		}
		seen[ev.EventID] = true
		if ev.EventTime.Before(read.From) || ev.EventTime.After(read.To) {
			continue
		}
		if c.sensors != nil && !c.sensors[c.n.Sensor(ev)] {
			continue
		}
		inWindow := c.window.Contains(c.n.EventTime(ev))
		var on []string
		if hasKeys {
			on = c.matchActor(ev)
		}
		switch {
		case len(on) > 0 && inWindow:
			e := c.n.Normalize(ev)
			e.MatchedOn = on
			matched = append(matched, e)
			if k := c.expectedIndex(ev); k >= 0 {
				counts[k]++
			}
		case len(on) > 0:
			if c.in.SaveSuspiciousEvents {
				e := c.n.Normalize(ev)
				e.MatchedOn = on
				e.Reason = "matches the actor outside the window (clock drift? check eventTimeAdjustment)"
				suspicious = append(suspicious, e)
			}
		case inWindow:
			k := c.expectedIndex(ev)
			if k < 0 {
				continue
			}
			if !hasKeys {
				e := c.n.Normalize(ev)
				e.MatchedOn = []string{MatchExpectedEvent}
				matched = append(matched, e)
				counts[k]++
			} else if c.in.SaveSuspiciousEvents {
				e := c.n.Normalize(ev)
				e.Reason = "expected event in the window without any actor key"
				suspicious = append(suspicious, e)
			}
		}
	}
	sortEvents(matched)
	sortEvents(suspicious)
	if !hasKeys && len(matched) > 0 {
		res.WeakMatch = true
		res.Warnings = append(res.Warnings, "the action carries no actor key: events matched on expected event names only (weaker match)")
	}
	if len(matched) > c.in.Limit {
		res.Warnings = append(res.Warnings, fmt.Sprintf("limit %d reached: %d matched events, the earliest %d kept", c.in.Limit, len(matched), c.in.Limit))
		matched, res.Truncated = matched[:c.in.Limit], true
	}
	if len(suspicious) > c.in.Limit {
		suspicious = suspicious[:c.in.Limit]
	}
	res.Events, res.Suspicious = matched, suspicious
	res.Logged = len(matched) > 0
	for i, s := range c.a.ExpectedEvents {
		res.Expected = append(res.Expected, ExpectedCount{Event: s, Count: counts[i]})
	}
	return res
}

func sortEvents(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := a.EventTime.Compare(b.EventTime); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
}
