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
// before. A correlate step examines the pushes of a short look-back only (correlate.go). The integration's accounts are those of its role ARN, of its sensors (the account its
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

// pushPartitions are the push partitions of one category a run reads: those of its integration's
// accounts (its role's, its sensors' and seen, those of the events read from its streams so far)
// in its query regions (the integration's region for Insights).
func (e *Engine) pushPartitions(ctx context.Context, integ *core.Integration, r *core.Run, seen []string, category string) ([]string, error) {
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
	for _, a := range seen {
		add(a)
	}
	regions := integ.QueryRegions(&r.Action)
	if category == core.CategoryInsight {
		regions = []string{integ.AWSRegion}
	}
	var out []string
	for _, a := range accounts {
		for _, region := range regions {
			out = append(out, push.Partition(a, region, category))
		}
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
