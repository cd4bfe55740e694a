package workflow

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Correlated once.
//
// A correlate step examines only the raw events that are new since the run's last correlate step
// and keeps the verdict's state in the run (core.Tally: matched events kept, counts, suspicious
// events, sensors, what it remembers of the rest in Run.Unkept), so a run's correlation work
// grows with the events read, not with queries x events:
//
//   - Stream partitions: a stream's ledger logs every read recorded, with the ledger version that
//     recorded it (core.Ledger.Reads), and a read's events are stored before the ledger records it
//     (readSpan). The step reads the ledger first, then examines the spans of the reads logged
//     after the version it saw last time (Progress.Correlated.Streams), whoever made them; a read
//     recorded while it examines is logged at a later version, so the next step examines it. A
//     run's first step, or one whose log has been trimmed past its mark, examines the whole read
//     range.
//   - Push partitions (push.go) are not logged: the step examines their events from pushLookBack
//     before its previous step on. A push that arrives later than that after its event time is
//     not examined, but LookupEvents returns the same event (polling is the backstop), and the
//     LookupEvents copy is the one the verdict keeps anyway.
//   - An event examined again (a span read again by a later query) changes nothing: the tally
//     keeps each EventID once, so a step's result equals that of correlating every event read so
//     far at once, and a repeated step (same input) is recognised by its key and not applied.

// pushLookBack is how far before its previous step a correlate step looks for pushed events: about
// how late EventBridge delivers (seconds, rarely minutes).
const pushLookBack = 2 * time.Minute

// readsKept is how many reads a stream's ledger logs: a run whose last look is older than the
// oldest of them examines its whole read range again (still correct, only slower).
const readsKept = 200

// logRead adds a read of [from, to], recorded by the ledger write that makes l's next version, to
// l's log, dropping the oldest entries beyond readsKept.
func logRead(l *core.Ledger, from, to time.Time) {
	l.Reads = append(l.Reads, core.ReadLog{From: from, To: to, Version: l.Version + 1})
	if n := len(l.Reads) - readsKept; n > 0 {
		l.ReadsFrom = l.Reads[n-1].Version + 1
		l.Reads = slices.Delete(l.Reads, 0, n)
	}
}

// newSpans are the parts of the read range a correlate step examines in a stream's partition:
// all of it at the run's first look (mark nil) or when the log no longer reaches back to the last
// one, else the spans of the reads logged since, joined where they overlap.
func newSpans(l *core.Ledger, mark *core.StreamMark, read core.Window) []span {
	if mark == nil || l.ReadsFrom > mark.Version+1 {
		return []span{{read.From, read.To}}
	}
	var spans []span
	for _, rd := range l.Reads {
		if rd.Version <= mark.Version {
			continue
		}
		if from, to := maxTime(rd.From, read.From), minTime(rd.To, read.To); !from.After(to) {
			spans = append(spans, span{from, to})
		}
	}
	slices.SortFunc(spans, func(a, b span) int { return a.from.Compare(b.from) })
	var out []span
	for _, s := range spans {
		if k := len(out) - 1; k >= 0 && !s.from.After(out[k].to) {
			out[k].to = maxTime(out[k].to, s.to)
			continue
		}
		out = append(out, s)
	}
	return out
}

// examine folds into t the raw events new since the run's last correlate step (see above), and
// notes in the run how far it got and how many events it read from the store.
func (e *Engine) examine(ctx context.Context, r *core.Run, integ *core.Integration, cor *core.Correlator, t *core.Tally, now time.Time) error {
	read := cor.ReadRange()
	c := &r.Progress.Correlated
	visit := func(partition string, from, to time.Time, pushed bool) error {
		for ev, err := range e.store.RawEvents(ctx, partition, from, to) {
			if err != nil {
				return err
			}
			r.Progress.RawEvents++
			t.Add(&ev, pushed)
		}
		return nil
	}
	var marks []core.StreamMark
	for _, region := range integ.QueryRegions(&r.Action) {
		stream := StreamKey(integ.ID, region, core.CategoryManagement, cor.LookupAttribute())
		// The ledger first: the events of every read it logs are stored by now.
		l, err := e.store.GetLedger(ctx, stream)
		if err != nil {
			return err
		}
		var mark *core.StreamMark
		if i := slices.IndexFunc(c.Streams, func(m core.StreamMark) bool { return m.Stream == stream }); i >= 0 {
			mark = &c.Streams[i]
		}
		for _, s := range newSpans(l, mark, read) {
			if err := visit(SharedPartition(stream), s.from, s.to, false); err != nil {
				return err
			}
		}
		marks = append(marks, core.StreamMark{Stream: stream, Version: l.Version})
	}
	from := read.From
	if !c.PushedAt.IsZero() {
		from = maxTime(from, c.PushedAt.Add(-pushLookBack))
	}
	accounts := mergeAccounts(c.Accounts, t.Accounts())
	parts, err := e.pushPartitions(ctx, integ, r, accounts, core.CategoryManagement)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if err := visit(p, from, read.To, true); err != nil {
			return err
		}
	}
	c.Streams, c.PushedAt, c.Accounts = marks, now, mergeAccounts(accounts, t.Accounts())
	return nil
}

// mergeAccounts returns the sorted union of two account lists.
func mergeAccounts(a, b []string) []string {
	out := slices.Clone(a)
	for _, x := range b {
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

// insights returns the Insights events of a run's read range: its Insights stream's partition and
// the Insights push partitions of its accounts, one copy per EventID (LookupEvents' first),
// oldest first. Insights events are few (a handful a day), unlike the management events the
// alerts pass never reads.
func (e *Engine) insights(ctx context.Context, r *core.Run, integ *core.Integration, read core.Window) ([]core.RawEvent, error) {
	parts := []string{SharedPartition(StreamKey(integ.ID, integ.AWSRegion, core.CategoryInsight, nil))}
	pushed, err := e.pushPartitions(ctx, integ, r, r.Progress.Correlated.Accounts, core.CategoryInsight)
	if err != nil {
		return nil, err
	}
	var out []core.RawEvent
	seen := map[string]bool{}
	for _, p := range append(parts, pushed...) {
		for ev, err := range e.store.RawEvents(ctx, p, read.From, read.To) {
			if err != nil {
				return nil, err
			}
			if !seen[ev.EventID] && ev.Category == core.CategoryInsight {
				seen[ev.EventID] = true
				out = append(out, ev)
			}
		}
	}
	core.SortRawEvents(out)
	return out, nil
}

// Correlate computes the verdict over everything read so far (examining only what is new since
// the run's last correlate step) and decides whether the run goes on:
// the verdict is final once every expected event has matched and one more query found nothing new
// (an action's calls reach CloudTrail seconds apart: stopping at the first match would cut off the
// rest), else once a query has run at or after the deadline; otherwise it says to wait one query
// interval (or less, to land on the deadline). It reads only the store: a final verdict says
// alertsDue and done, and the alerts step takes the last alerts pass and completes the run. A
// correlate step repeated with the same input returns what the first one returned.
func (e *Engine) Correlate(ctx context.Context, in State) (out State, err error) {
	defer func() { e.observe(StepCorrelate, in, out, err) }()
	r, integ, err := e.load(ctx, in.RunID)
	if err != nil {
		return in, err
	}
	if core.Ended(r.Status) {
		return stateOf(r), nil
	}
	now := e.clock.Now()
	key := fmt.Sprintf("%s#%d", StepCorrelate, in.Iteration)
	if r.Progress.LastStepKey == key || r.Progress.Final {
		return correlateOut(r, now), nil // already applied
	}
	cor := core.NewCorrelator(integ, &r.Action)
	prev := core.Correlation{Events: r.Events, Expected: r.Expected, Matched: r.Progress.Correlated.Matched, Unkept: r.Unkept}
	if integ.SaveSuspiciousEvents {
		prev.Suspicious = r.Suspicious
	}
	if integ.DiscoverNetworkDevices {
		prev.Sensors = r.Sensors
	}
	tally := cor.Resume(prev)
	if err := e.examine(ctx, r, integ, cor, tally, now); err != nil {
		return in, classify(fmt.Errorf("correlate run %s: %w", r.RunID, err))
	}
	res := tally.Result()
	quiet := r.Progress.AllExpectedMatched && res.Added == 0
	if res.Added > 0 {
		r.Progress.MatchedGrewAt = now
	}
	if len(r.Action.ExpectedEvents) > 0 && (res.AllExpectedMatched() || res.Added > 0) {
		// The rest of the burst, or the read that finds nothing new, is due at the next query;
		// with push, once LookupEvents can show what was pushed (polled).
		r.Progress.ReadDueAt = now
		if e.push {
			r.Progress.ReadDueAt = maxTime(now, pollable(integ, res.Events))
		}
	}
	r.Progress.AllExpectedMatched = res.AllExpectedMatched()
	r.Events, r.Truncated, r.WeakMatch = res.Events, res.Truncated, res.WeakMatch
	r.Unkept, r.Progress.Correlated.Matched = res.Unkept, res.Matched
	r.MarkLogged(res.Logged, now)
	r.Expected = res.Expected
	if integ.DiscoverNetworkDevices {
		if err := e.recordSensors(ctx, r, res.Sensors); err != nil {
			return in, classify(fmt.Errorf("correlate run %s: %w", r.RunID, err))
		}
	}
	if integ.SaveSuspiciousEvents {
		r.Suspicious = res.Suspicious
	}
	r.Warnings = composeWarnings(r, append([]string{}, res.Warnings...))
	if r.Events == nil {
		r.Events = []core.Event{}
	}
	if r.Suspicious == nil {
		r.Suspicious = []core.Event{}
	}
	if r.Warnings == nil {
		r.Warnings = []string{}
	}
	deadline := Deadline(integ, r)
	gaps := false
	for _, c := range r.Progress.Cursors {
		// Only the fetch step reads management events; an Insights gap is the alerts step's to
		// close, on its own schedule, and must not make the query loop spin.
		gaps = gaps || (c.Category == core.CategoryManagement && !c.GapTo.IsZero())
	}
	switch {
	case res.AllExpectedMatched() && quiet && !gaps && polled(e.push, integ, r):
		// An unread span (a read cut short) may hold more of the action's events.
		r.Progress.Final = true
	case !r.Progress.LastQueryAt.Before(deadline) && !gaps:
		r.Progress.Final = true
	}
	if !r.Progress.Final {
		wait := integ.QueryIntervalD()
		if gaps {
			wait = 0 // an unread span is waiting: read it now
		}
		if until := deadline.Sub(now); until < wait {
			wait = max(until, 0)
		}
		r.Progress.NextQueryAt = now.Add(time.Duration(seconds(wait)) * time.Second)
	}
	r.Progress.LastStepKey = key
	r.SettleVerdict()
	if err := e.store.UpdateRun(ctx, r); err != nil {
		return in, classify(fmt.Errorf("correlate run %s: %w", r.RunID, err))
	}
	return correlateOut(r, now), nil
}

// pollable is when LookupEvents can show the matched events and the rest of their burst: typically
// about five minutes after the latest one's event time (schedule.go's visibleAfter), plus a query
// interval for the action's calls made seconds after it (whose push may have been lost).
func pollable(integ *core.Integration, matched []core.Event) time.Time {
	var last time.Time
	for _, ev := range matched {
		last = maxTime(last, ev.EventTime.Add(-integ.EventTimeAdjustmentD()))
	}
	return last.Add(visibleAfter(integ) + integ.QueryIntervalD())
}

// polled says whether the run's matched events are confirmed by LookupEvents, as a run that
// completes early on its expected events needs them to be. Without push every matched event came
// from a LookupEvents read, so the read that found nothing new after them confirms them. With
// push, events arrive minutes before LookupEvents shows them, and a push is best effort: an event
// of the action whose push was lost, of a name that already matched, would be missing for good
// if the run completed on pushed events alone. So the read that confirms must come when
// LookupEvents can show the matched events (pollable): push makes `logged` minutes sooner, and
// the run's events at completion are the same as without it.
func polled(push bool, integ *core.Integration, r *core.Run) bool {
	return !push || !r.Progress.PolledAt.Before(pollable(integ, r.Events))
}

// correlateOut is the correlate step's answer, from what it stored: a final verdict sends the run
// to its last alerts pass; otherwise the wait until the next query, and whether the alerts step
// is due before it.
func correlateOut(r *core.Run, now time.Time) State {
	out := stateOf(r)
	if r.Progress.Final {
		out.Done, out.AlertsDue = true, true
		return out
	}
	out.AlertsDue = r.Progress.NextAlertsAt.IsZero() || !now.Before(r.Progress.NextAlertsAt)
	out.WaitSeconds = seconds(r.Progress.NextQueryAt.Sub(now))
	return out
}

// recordSensors keeps the sensors the run has seen and adds those new to the run to the
// integration's sensors, so the API can list every account and region
// the integration has seen.
func (e *Engine) recordSensors(ctx context.Context, r *core.Run, seen []core.Sensor) error {
	var fresh []core.Sensor
	for _, sn := range seen {
		if !slices.ContainsFunc(r.Sensors, func(k core.Sensor) bool { return k.UUID == sn.UUID }) {
			fresh = append(fresh, sn)
		}
	}
	r.Sensors = seen
	if len(fresh) == 0 {
		return nil
	}
	if err := e.store.PutSensors(ctx, r.IntegrationID, fresh); err != nil {
		return fmt.Errorf("record sensors: %w", err)
	}
	return nil
}
