package core

import (
	"context"
	"iter"
	"time"
)

// IntegrationStore keeps integrations. Secrets are stored sealed (encrypted) by the implementation
// and returned revealed only by GetIntegration, for the code that must call AWS.
type IntegrationStore interface {
	// CreateIntegration stores a new integration; ECONFLICT when the ID exists.
	CreateIntegration(ctx context.Context, in *Integration) error
	// GetIntegration returns the integration with its secrets; ENOTFOUND when absent.
	GetIntegration(ctx context.Context, id string) (*Integration, error)
	// ListIntegrations returns every integration, secrets redacted, ordered by ID.
	ListIntegrations(ctx context.Context) ([]*Integration, error)
	// UpdateIntegration replaces an integration; ENOTFOUND when absent.
	UpdateIntegration(ctx context.Context, in *Integration) error
	// DeleteIntegration removes an integration; ENOTFOUND when absent, and ECONFLICT
	// (ActiveRunConflict) while a run of it is waiting or querying. The check and the delete are
	// one atomic step against CreateRun: a run started concurrently either is refused or blocks
	// the delete, never outlives its integration.
	DeleteIntegration(ctx context.Context, id string) error
}

// RunStore keeps runs and the raw events read for them.
type RunStore interface {
	// CreateRun stores a new run with Version 1; ECONFLICT when the run ID exists, ENOTFOUND
	// when its integration does not (checked in the same atomic step as the write).
	CreateRun(ctx context.Context, r *Run) error
	// GetRun returns the run, result lists included; ENOTFOUND when absent.
	GetRun(ctx context.Context, id string) (*Run, error)
	// UpdateRun replaces the run if its stored Version equals r.Version, then increments
	// r.Version; ECONFLICT (and nothing written) when another writer got there first.
	UpdateRun(ctx context.Context, r *Run) error
	// ListRuns returns the runs whose status is one of statuses (all runs when none is given).
	ListRuns(ctx context.Context, statuses ...string) ([]*Run, error)

	// AddRawEvents stores events under a partition (a run, or an integration's shared span),
	// keyed by EventID: an event already stored is left as it is, so a repeated step neither
	// duplicates nor loses events. It returns how many were new.
	AddRawEvents(ctx context.Context, partition string, evs []RawEvent) (added int, err error)
	// RawEvents visits the partition's events whose EventTime is in [from, to], oldest first
	// (then by EventID), one at a time: the store reads them page by page, so a caller that keeps
	// only what it needs holds one page at a time, whatever the partition's size. Zero times
	// leave that end open. A read error is the last thing yielded; a caller may stop early.
	RawEvents(ctx context.Context, partition string, from, to time.Time) iter.Seq2[RawEvent, error]
}

// Store is everything the workflow and the API keep. Every part is required (none is found by
// type assertion), so that a wrapper of a Store cannot silently drop one.
type Store interface {
	IntegrationStore
	RunStore
	SharedReadStore
	SensorStore
	Close() error
}

// SpanRead says that the events of one stream with an event time in [From, To] were read from
// CloudTrail at ReadAt (when the read began, on the engine's clock). An event is delivered to
// CloudTrail up to settleTime after its event time, so a span read at ReadAt holds for good every
// event up to ReadAt minus settleTime; past that it is only as fresh as ReadAt.
type SpanRead struct {
	From   time.Time `json:"from"`
	To     time.Time `json:"to"`
	ReadAt time.Time `json:"readAt"`
}

// Ledger records which spans of event time of one stream (an integration's region, category and
// lookup filter) have been read, and when: the runs of the integration consult it to read only
// what no run has read recently enough. Spans are sorted by From and do not overlap but for their
// ends.
type Ledger struct {
	Stream string     `json:"stream"`
	Spans  []SpanRead `json:"spans"`
	// Needs are the spans the stream's active runs read, so that whoever reads next covers them
	// all in one query.
	Needs []SpanNeed `json:"needs,omitempty"`
	// Reads log the reads recorded, newest last, each with the version that recorded it: a run's
	// correlate step examines only the events of reads recorded since it last looked (events are
	// stored before their read is recorded). The log keeps the latest reads only; every read
	// recorded at a version >= ReadsFrom is in it.
	Reads     []ReadLog `json:"reads,omitempty"`
	ReadsFrom int64     `json:"readsFrom,omitempty"`
	// Version increases with every stored update; PutLedger uses it for optimistic concurrency.
	Version int64 `json:"version"`
}

// ReadLog is one read in a ledger's log: the span of event time it queried (its events are
// stored) and the ledger version that recorded it.
type ReadLog struct {
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	Version int64     `json:"version"`
}

// SpanNeed says that a run reads [From, To] of a stream until Until, when the need lapses unless
// the run renews it (a run that ended stops renewing).
type SpanNeed struct {
	Run   string    `json:"run"`
	From  time.Time `json:"from"`
	To    time.Time `json:"to"`
	Until time.Time `json:"until"`
}

// Lease is a named, expiring lock in the store: the holder of a stream's lease is the one run
// reading that stream from CloudTrail; the others wait for it. A holder that dies leaves a lease
// that expires on its own.
type Lease struct {
	Name    string    `json:"name"`
	Holder  string    `json:"holder"`
	Expires time.Time `json:"expires"`
}

// SharedReadStore is what runs of one integration need to share their CloudTrail reads: the
// read ledger of each stream and a lease per stream. Every run reads through it.
type SharedReadStore interface {
	// GetLedger returns the stream's ledger, or an empty one with Version 0 when none is stored.
	GetLedger(ctx context.Context, stream string) (*Ledger, error)
	// PutLedger stores l if the stored Version equals l.Version (0: none stored yet), then
	// increments l.Version; ECONFLICT (and nothing written) when another writer got there first.
	PutLedger(ctx context.Context, l *Ledger) error
	// AcquireLease takes the lease name for holder until now+ttl when it is free, expired (its
	// Expires not after now) or already held by holder (which renews it). It returns the lease as
	// stored after the call and whether holder has it. now comes from the caller's clock, so that
	// runs replayed on a virtual clock agree on expiry.
	AcquireLease(ctx context.Context, name, holder string, now time.Time, ttl time.Duration) (Lease, bool, error)
	// ReleaseLease frees the lease if holder has it; releasing a lease held by another, expired
	// or absent is not an error and changes nothing.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// SensorStore keeps the sensors (network devices) each integration has seen: with
// discoverNetworkDevices, every account and region whose events a run read. The API lists them.
type SensorStore interface {
	// PutSensors records sensors of an integration: a new one is added, a known one keeps its
	// FirstSeen and takes the later LastSeen.
	PutSensors(ctx context.Context, integrationID string, sensors []Sensor) error
	// ListSensors returns an integration's sensors ordered by UUID (none: an empty list).
	ListSensors(ctx context.Context, integrationID string) ([]Sensor, error)
}

// ActiveRunConflict is the ECONFLICT error of DeleteIntegration when run, a run of the
// integration, is still waiting or querying. Every store returns this one, so that the message
// the API shows is the same whichever store holds the runs.
func ActiveRunConflict(integrationID string, run *Run) error {
	return Errorf(ECONFLICT, "integration %q has a run in progress (%s, %s): cancel it (DELETE /v1/runs/%s) or wait for it to end",
		integrationID, run.RunID, run.Status, run.RunID)
}

// CollectRawEvents gathers what a RawEvents visit yields into a slice: for callers that need the
// events all at once (tests, small partitions), never for a run's whole read range.
func CollectRawEvents(seq iter.Seq2[RawEvent, error]) ([]RawEvent, error) {
	var out []RawEvent
	for ev, err := range seq {
		if err != nil {
			return nil, err
		}
		out = append(out, ev)
	}
	return out, nil
}
