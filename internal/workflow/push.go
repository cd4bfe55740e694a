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
// before. A correlate step examines the pushes of a short look-back only (correlate.go). The
// integration's accounts are those of its role ARN, the one its source names (learnAccount, kept
// in the run's progress), those of its sensors and of the events read from its streams.

// WithPush says that CloudTrail's events are pushed to this engine's store (EventBridge deployed,
// serve's ingest endpoint, run --corpus --push-delay). A run whose integration's account is not
// known then asks it of its source at its first query (accountAsker, again at the next ones while
// that fails), so the pushed events of the account are read from then on, minutes before
// LookupEvents delivers them.
func WithPush() Option { return func(e *Engine) { e.push = true } }

// accountAsker is a source that can name the account of its credentials (the cloudtrail Source:
// sts:GetCallerIdentity, which needs no permission). Its errors carry a core code: core.Temporary
// says whether asking again may help.
type accountAsker interface {
	Account(ctx context.Context) (string, error)
}

// pushWarningPrefix starts the run warning that says push could not be used (learnAccount).
const pushWarningPrefix = "push not used yet: "

// learnAccount, at each fetch of a run with push while neither the integration's role ARN nor an
// earlier fetch named its account, asks the source and keeps the answer in the run's progress,
// where the correlate and alerts steps find it (pushPartitions). The account is the run's to
// know, not a sensor: the integration's sensors stay what its events showed, and only with
// discoverNetworkDevices. Push is only a latency aid, so a failure never fails the run: it is
// logged, the run says in a warning that its pushed events wait for LookupEvents to name the
// account, and the next fetch asks again (the source keeps only a failure that a change of
// settings alone can cure).
func (e *Engine) learnAccount(ctx context.Context, src core.Source, integ *core.Integration, r *core.Run) {
	asker, ok := src.(accountAsker)
	if !ok || r.Progress.Account != "" || roleAccount(integ.RoleARN) != "" {
		return
	}
	account, err := asker.Account(ctx)
	r.Progress.FetchWarnings = slices.DeleteFunc(r.Progress.FetchWarnings, func(w string) bool { return strings.HasPrefix(w, pushWarningPrefix) })
	if err == nil {
		r.Progress.Account = account
		return
	}
	e.log.WarnContext(ctx, "cannot learn the integration's account: its pushed events are read once LookupEvents names it",
		"runId", r.RunID, "integration", integ.ID, "errorCode", core.ErrorCode(err), "temporary", core.Temporary(err), "error", err)
	w := pushWarningPrefix + "the integration's account is unknown, so its pushed events are read only once LookupEvents names it (" + err.Error() + ")"
	if core.Temporary(err) {
		w += "; asked again at the next query"
	}
	r.Progress.FetchWarnings = append(r.Progress.FetchWarnings, w)
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
	add(r.Progress.Account)
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
