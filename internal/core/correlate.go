package core

import (
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

// Correlation is the verdict over the events read so far, and what a later step needs to go on
// from it (Tally).
type Correlation struct {
	Events     []Event // the earliest Limit matched events
	Suspicious []Event
	Expected   []ExpectedCount // counted over every matched event, kept or beyond the limit
	Logged     bool
	Truncated  bool // limit reached
	WeakMatch  bool
	Warnings   []string
	// Matched counts every matched event, kept or beyond the limit.
	Matched int
	// Unkept are what the step after needs to know of the events it does not keep.
	Unkept Unkept
	// Sensors are the accounts and regions of the management events examined, by UUID.
	Sensors []Sensor
	// Added is how many matched events this step found that earlier ones had not.
	Added int
}

// Unkept is what incremental correlation remembers of events besides the kept lists: matched
// events beyond the limit (counted once, however often they are read again), and the kept events
// whose copy came from a push (the copy LookupEvents returns replaces it, as it would have
// in a correlation of everything at once).
type Unkept struct {
	Beyond []Beyond `json:"beyond,omitempty"`
	Pushed []string `json:"pushed,omitempty"`
}

// Beyond is a matched event beyond the limit: its ID, which expected event it counts for (-1:
// none), and whether it came from a push.
type Beyond struct {
	ID       string `json:"id"`
	Expected int    `json:"expected"`
	Pushed   bool   `json:"pushed,omitempty"`
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
	match    *extractor // the targets correlation decides on (matchTargets)
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
	c.match = newExtractor(in, c.matchTargets())
	if len(in.EventSensorUUIDs) > 0 {
		c.sensors = map[string]bool{}
		for _, u := range in.EventSensorUUIDs {
			c.sensors[strings.ToLower(u)] = true
		}
	}
	return c
}

// matchTargets are the field-map targets correlation extracts from every event it examines: the
// sensor's (account and region, for sensors and their filter), those of the actor's key kinds, and
// the event's name and source when the action names expected events.
func (c *Correlator) matchTargets() []string {
	ac := &c.a.Actor
	out := []string{"account_id", "region"}
	if ac.UserAgentToken != "" {
		out = append(out, "user_agent")
	}
	if len(ac.Hosts) > 0 {
		out = append(out, "hosts")
	}
	if len(ac.AccessKeyIDs) > 0 {
		out = append(out, "access_key_id")
	}
	if len(ac.Principals) > 0 || len(ac.RoleSessionNames) > 0 {
		out = append(out, "principal", "session_name")
	}
	if len(c.a.ExpectedEvents) > 0 {
		out = append(out, "event_name", "event_source")
	}
	return out
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

// matchActor returns which actor keys the event matches.
func (c *Correlator) matchActor(f *fields) []string {
	ac := &c.a.Actor
	var on []string
	if ac.UserAgentToken != "" && strings.Contains(f.first("user_agent"), ac.UserAgentToken) {
		on = append(on, MatchUserAgent)
	}
	if len(ac.Hosts) > 0 && anyEqualFold(f.all("hosts"), ac.Hosts) {
		on = append(on, MatchHost)
	}
	if len(ac.AccessKeyIDs) > 0 && slices.Contains(ac.AccessKeyIDs, f.first("access_key_id")) {
		on = append(on, MatchAccessKey)
	}
	var principals []string
	if len(ac.Principals) > 0 || len(ac.RoleSessionNames) > 0 {
		principals = f.all("principal")
	}
	if len(ac.Principals) > 0 && anyEqualFold(principals, ac.Principals) {
		on = append(on, MatchPrincipal)
	}
	if len(ac.RoleSessionNames) > 0 && anyEqualFold(sessionNames(principals, f.all("session_name")), ac.RoleSessionNames) {
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

// expectedIndex returns the index of the first expected event an event of that source and name
// is, or -1.
func (c *Correlator) expectedIndex(source, name string) int {
	for i, e := range c.expected {
		if e.Matches(source, name) {
			return i
		}
	}
	return -1
}

// Correlate computes the verdict over every raw event read for the run at once: Tally from
// nothing. It is deterministic in its input, so a step repeated after a crash computes the same
// result.
func (c *Correlator) Correlate(raws []RawEvent) Correlation {
	t := c.Resume(Correlation{})
	for i := range raws {
		t.Add(&raws[i], false)
	}
	return t.Result()
}

// SortRawEvents orders raw events oldest first, then by EventID (the stores' order).
func SortRawEvents(evs []RawEvent) {
	slices.SortStableFunc(evs, func(a, b RawEvent) int {
		if c := a.EventTime.Compare(b.EventTime); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
}

func sortEvents(evs []Event) {
	slices.SortStableFunc(evs, func(a, b Event) int {
		if c := a.EventTime.Compare(b.EventTime); c != 0 {
			return c
		}
		return strings.Compare(a.EventID, b.EventID)
	})
}
