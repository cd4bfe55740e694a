package core

import (
	"encoding/json"
	"time"
)

// Run statuses.
const (
	StatusWaiting   = "waiting"   // before the first query (delayTime)
	StatusQuerying  = "querying"  // in the query loop
	StatusCompleted = "completed" // verdict reached
	StatusFailed    = "failed"    // ended by an error; Error says which
	StatusCancelled = "cancelled" // cancelled by the Director
)

// Ended reports whether a status is final.
func Ended(status string) bool {
	return status == StatusCompleted || status == StatusFailed || status == StatusCancelled
}

// Window is a span of event time, both ends included.
type Window struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Contains reports whether t lies in the window.
func (w Window) Contains(t time.Time) bool { return !t.Before(w.From) && !t.After(w.To) }

// ExpectedCount says how many matched events carry one expected event name.
type ExpectedCount struct {
	Event string `json:"event"`
	Count int    `json:"count"`
}

// Run is one correlation of one action: its progress while it runs and its result when it ends.
// The API, the CLI and the stores share this shape.
type Run struct {
	RunID         string          `json:"runId"`
	JobID         string          `json:"jobId"`
	ActionID      string          `json:"actionId"`
	IntegrationID string          `json:"integrationId,omitempty"`
	Integration   string          `json:"integration"` // the integration's name
	Action        Action          `json:"action"`
	StartedAt     time.Time       `json:"startedAt"`
	CompletedAt   *time.Time      `json:"completedAt,omitempty"`
	Status        string          `json:"status"`
	Verdict       string          `json:"verdict"`            // logged, not_logged or unknown (verdict.go)
	Logged        *bool           `json:"logged"`             // nil while unknown; set through MarkLogged and SettleVerdict
	Alerted       *bool           `json:"alerted"`            // nil while unknown; set through MarkAlerted and SettleVerdict
	LoggedAt      *time.Time      `json:"loggedAt,omitempty"` // when Logged first turned true, on the run's clock
	Window        Window          `json:"window"`
	Queries       int             `json:"queries"`
	APICalls      int             `json:"apiCalls"`
	Throttled     int             `json:"throttled"`
	Truncated     bool            `json:"truncated"`
	WeakMatch     bool            `json:"weakMatch,omitempty"` // matched on expected event names only
	Events        []Event         `json:"events"`
	Alerts        []Event         `json:"alerts"`
	Suspicious    []Event         `json:"suspicious"`
	Expected      []ExpectedCount `json:"expected"`
	Warnings      []string        `json:"warnings"`
	// Sensors are the accounts and regions whose events the run read (discoverNetworkDevices).
	Sensors []Sensor `json:"sensors,omitempty"`
	Error   string   `json:"error,omitempty"`
	// Unkept is what the correlate steps remember of matched events they do not keep (beyond the
	// limit, or kept from a push). Not part of the result: stores keep it with the result lists.
	Unkept Unkept `json:"-"`

	// Progress is the workflow's bookkeeping: what has been read and settled.
	Progress Progress `json:"progress"`
	// Version increases with every stored update; stores use it for optimistic concurrency.
	Version int64 `json:"version"`
}

// Progress records, per queried region and category, up to which event time everything has been
// read and settled, so that each query fetches only what earlier ones have not.
type Progress struct {
	Cursors     []Cursor  `json:"cursors,omitempty"`
	NextQueryAt time.Time `json:"nextQueryAt,omitzero"`
	// RawEvents counts the raw events the run's correlate steps examined: each step examines the
	// events of the reads recorded since the one before (whoever made them) and the latest
	// pushes, so an event read again by a later query is counted again. It measures the
	// correlation's work, not the number of distinct events in the read range.
	RawEvents   int       `json:"rawEvents"`
	LastQueryAt time.Time `json:"lastQueryAt,omitzero"`
	// LastStepKey names the last step applied ("fetch#3"), so a step that Step Functions repeats
	// after a timeout is recognised and not applied twice.
	LastStepKey string `json:"lastStepKey,omitempty"`
	// FetchWarnings are the fetch steps' warnings (truncated reads), kept apart so each
	// correlate step can rebuild Warnings from them and its own.
	FetchWarnings []string `json:"fetchWarnings,omitempty"`
	// AllExpectedMatched is whether the last correlation had matched every expected event: the
	// run completes early once that holds twice in a row with no new matched event in between,
	// so the rest of an action's burst of calls, delivered seconds later, is not cut off.
	AllExpectedMatched bool `json:"allExpectedMatched,omitempty"`
	// AlertWarnings are the alerts step's warnings, kept apart like FetchWarnings.
	AlertWarnings []string `json:"alertWarnings,omitempty"`
	// Notes are warnings about the run's inputs, known when it is created (a corpus with no
	// record near the window, records served regardless of region); every step keeps them.
	Notes []string `json:"notes,omitempty"`
	// NextAlertsAt is when the alerts step (Correlation Query and Insights) is due next.
	NextAlertsAt time.Time `json:"nextAlertsAt,omitzero"`
	// Final is set by the correlate step that found the verdict final: the alerts step takes the
	// last alerts pass and completes the run, so "alerted" never changes after completion and the
	// correlate step itself reads nothing from CloudTrail.
	Final bool `json:"final,omitempty"`
	// ReadDueAt is when the run's fetch reads CloudTrail next (workflow's read schedule): fetches
	// before it read nothing, so a span is re-read at a few widening ages, not every interval.
	ReadDueAt time.Time `json:"readDueAt,omitzero"`
	// MatchedGrewAt is when a correlation last found new matched events: with expected events the
	// reads follow an action's burst closely while it is arriving.
	MatchedGrewAt time.Time `json:"matchedGrewAt,omitzero"`
	// PolledAt is when the run's fetch last read CloudTrail (a fetch whose read was due): with
	// push, a run completes early only once a read at least that late confirms its matched
	// events (workflow's polled).
	PolledAt time.Time `json:"polledAt,omitzero"`
	// Account is the account of the integration's credentials, as sts:GetCallerIdentity named it
	// for a run with push (workflow's learnAccount), whose pushed events the run reads. It is the
	// run's own: the integration's sensors are the accounts and regions its events showed, and
	// only with discoverNetworkDevices.
	Account string `json:"account,omitempty"`
	// Correlated is how far the correlate steps have got (workflow's correlate.go).
	Correlated Correlated `json:"correlated,omitzero"`
}

// Correlated is how far a run's correlate steps have got, so that each examines only what is new.
type Correlated struct {
	// Streams are, per stream read, the ledger version the last correlate step read: the reads
	// the ledger logged after it are new.
	Streams []StreamMark `json:"streams,omitempty"`
	// PushedAt is when the last correlate step read the push partitions.
	PushedAt time.Time `json:"pushedAt,omitzero"`
	// Matched counts the matched events, kept or beyond the limit.
	Matched int `json:"matched,omitempty"`
	// Accounts are those of the events examined (the push partitions to read).
	Accounts []string `json:"accounts,omitempty"`
}

// StreamMark is the ledger version of a stream a correlate step read.
type StreamMark struct {
	Stream  string `json:"stream"`
	Version int64  `json:"version"`
}

// Cursor is the read state of one region (and category) of a run.
type Cursor struct {
	Region   string `json:"region"`
	Category string `json:"category,omitempty"` // "" for management events, "insight"
	// SettledUntil: every event with an event time before it has been read for good.
	SettledUntil time.Time `json:"settledUntil"`
	// GapTo, when set, is the newest end of a span after SettledUntil that the run needs and no
	// read has covered yet (a query cut short by its pageSize x maxPage budget or by the step's
	// deadline); the next query reads it first.
	GapTo time.Time `json:"gapTo,omitzero"`
}

// Event is a normalized event, in the Director's normalized event format (snake_case).
type Event struct {
	EventID     string          `json:"event_id"`
	EventTime   time.Time       `json:"event_time"`
	Computer    string          `json:"computer,omitempty"`
	Hosts       []string        `json:"hosts,omitempty"`
	SrcIP       string          `json:"src_ip,omitempty"`
	DestIP      string          `json:"dest_ip,omitempty"`
	User        string          `json:"user,omitempty"`
	Description string          `json:"description,omitempty"`
	EventName   string          `json:"event_name"`
	EventSource string          `json:"event_source"`
	Region      string          `json:"region,omitempty"`
	AccountID   string          `json:"account_id,omitempty"`
	UserAgent   string          `json:"user_agent,omitempty"`
	ErrorCode   string          `json:"error_code,omitempty"`
	AccessKeyID string          `json:"access_key_id,omitempty"`
	SensorUUID  string          `json:"sensor_uuid,omitempty"`
	Vendor      string          `json:"vendor,omitempty"`
	Product     string          `json:"product,omitempty"`
	MatchedOn   []string        `json:"matched_on,omitempty"`
	Reason      string          `json:"reason,omitempty"`    // for suspicious events and alerts: why
	RaisedBy    string          `json:"raised_by,omitempty"` // for alerts: "correlationQuery" or "insight:<type>"
	Raw         json.RawMessage `json:"raw,omitempty"`
}

// RawEvent is one CloudTrail event as read from LookupEvents (or the corpus), before normalization.
type RawEvent struct {
	EventID   string    `json:"eventId"`
	EventTime time.Time `json:"eventTime"`          // as CloudTrail reports it, before eventTimeAdjustment
	Region    string    `json:"region,omitempty"`   // the region it was read from
	Category  string    `json:"category,omitempty"` // "" (management) or "insight"
	// Record is the CloudTrail record (LookupEvents' CloudTrailEvent, decoded from its string).
	Record json.RawMessage `json:"record"`
	// Envelope is the LookupEvents event without CloudTrailEvent (EventName, Username, Resources...).
	Envelope json.RawMessage `json:"envelope,omitempty"`
}
