package workflow

import (
	"context"
	"slices"
	"strings"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
)

// Pushed events.
//
// With push on, CloudTrail's EventBridge events are stored per account, region and category
// (push.Partition), whichever integration they concern. A run's correlate step reads, besides its
// streams, the push partitions of its integration's accounts in its query regions: events seen
// there make `logged` true as soon as they arrive. They are never recorded in a ledger (a push is
// best effort, so it settles nothing): completion and "not logged" rest on LookupEvents reads as
// before. The integration's accounts are those of its role ARN, of its sensors and of the events
// read from its streams; before the first read of an integration with access keys, push cannot
// help.

// WithPush says that CloudTrail's events are pushed to this engine's store (EventBridge deployed,
// serve's ingest endpoint, run --corpus --push-delay). A run whose integration's account is not
// known yet then reads CloudTrail at its first query instead of when the action can be visible:
// that read finds the account (any event of it in the window), and the pushed events of the
// account are read from then on, minutes before LookupEvents delivers them.
func WithPush() Option { return func(e *Engine) { e.push = true } }

// accountsKnown reports whether the push partitions of the integration can be named before any
// read: its role ARN names its account, or its sensors do.
func (e *Engine) accountsKnown(ctx context.Context, integ *core.Integration) (bool, error) {
	if roleAccount(integ.RoleARN) != "" {
		return true, nil
	}
	sensors, err := e.store.ListSensors(ctx, integ.ID)
	return len(sensors) > 0, err
}

// pushPartitions are the push partitions a run reads, given the raw events read from its streams.
func (e *Engine) pushPartitions(ctx context.Context, integ *core.Integration, r *core.Run, read []core.RawEvent) ([]string, error) {
	var accounts []string
	add := func(a string) {
		if a != "" && !slices.Contains(accounts, a) {
			accounts = append(accounts, a)
		}
	}
	add(roleAccount(integ.RoleARN))
	sensors, err := e.store.ListSensors(ctx, integ.ID)
	if err != nil {
		return nil, err
	}
	for _, s := range sensors {
		add(s.AccountID)
	}
	for _, s := range core.NewCorrelator(integ, &r.Action).Sensors(read) {
		add(s.AccountID)
	}
	var out []string
	for _, a := range accounts {
		for _, region := range integ.QueryRegions(&r.Action) {
			out = append(out, push.Partition(a, region, core.CategoryManagement))
		}
		out = append(out, push.Partition(a, integ.AWSRegion, core.CategoryInsight))
	}
	return out, nil
}

// roleAccount is the account of a role ARN (arn:aws:iam::123456789012:role/name), or "".
func roleAccount(arn string) string {
	parts := strings.Split(arn, ":")
	if len(parts) < 6 || parts[0] != "arn" {
		return ""
	}
	return parts[4]
}

// withPushed adds to the events read the pushed ones not already among them (one copy per EventID:
// the one LookupEvents returned, when both have it).
func withPushed(read, pushed []core.RawEvent) []core.RawEvent {
	seen := make(map[string]bool, len(read))
	for _, ev := range read {
		seen[ev.EventID] = true
	}
	for _, ev := range pushed {
		if !seen[ev.EventID] {
			seen[ev.EventID] = true
			read = append(read, ev)
		}
	}
	return read
}
