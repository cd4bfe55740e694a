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
// before. The integration's accounts are those of its role ARN, of its sensors (the account its
// source names is recorded as one, learnAccount) and of the events read from its streams.

// WithPush says that CloudTrail's events are pushed to this engine's store (EventBridge deployed,
// serve's ingest endpoint, run --corpus --push-delay). A run whose integration's account is not
// known yet then asks it of its source at its first query (accountAsker), so the pushed events of
// the account are read from then on, minutes before LookupEvents delivers them.
func WithPush() Option { return func(e *Engine) { e.push = true } }

// accountAsker is a source that can name the account of its credentials (the cloudtrail Source:
// sts:GetCallerIdentity, which needs no permission).
type accountAsker interface {
	Account(ctx context.Context) (string, error)
}

// learnAccount, when neither the integration's role ARN nor its sensors name its account, asks
// the source and records the account as the sensor of the integration's region, so it is asked
// once per integration. A source that cannot answer is logged and the run goes on: the events it
// reads name the account later.
func (e *Engine) learnAccount(ctx context.Context, src core.Source, integ *core.Integration, runID string) error {
	asker, ok := src.(accountAsker)
	if !ok || roleAccount(integ.RoleARN) != "" {
		return nil
	}
	sensors, err := e.store.ListSensors(ctx, integ.ID)
	if err != nil || len(sensors) > 0 {
		return err
	}
	account, err := asker.Account(ctx)
	if err != nil {
		e.log.WarnContext(ctx, "cannot learn the integration's account: its pushed events are read once LookupEvents names it",
			"runId", runID, "integration", integ.ID, "error", err)
		return nil
	}
	return e.store.PutSensors(ctx, integ.ID, []core.Sensor{core.NewSensor(account, integ.AWSRegion, e.clock.Now())})
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
