package core

import (
	"context"
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
	// DeleteIntegration removes an integration; ENOTFOUND when absent.
	DeleteIntegration(ctx context.Context, id string) error
}

// RunStore keeps runs and the raw events read for them.
type RunStore interface {
	// CreateRun stores a new run with Version 1; ECONFLICT when the run ID exists.
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
	// RawEvents returns the partition's events whose EventTime is in [from, to], oldest first.
	// Zero times leave that end open.
	RawEvents(ctx context.Context, partition string, from, to time.Time) ([]RawEvent, error)
}

// Store is everything the workflow and the API keep.
type Store interface {
	IntegrationStore
	RunStore
	Close() error
}
