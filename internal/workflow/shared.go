package workflow

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Reads.
//
// Every run (`trailproof run`, `serve` and the Lambdas alike) reads CloudTrail through its
// integration's stream ledger: the runs of one integration share what they read, so that the cost
// grows with the events read and not with the number of runs:
//
//   - A stream is what one LookupEvents query reads: an integration, a region, a category and the
//     optional lookup filter (StreamKey). Its raw events live in one partition (SharedPartition),
//     whichever run read them.
//   - The stream's ledger (core.Ledger) records which spans of event time were read and when
//     (ReadAt, on the engine's clock). A point t of event time is settled once a read at ReadAt >=
//     t + settleTime covers it, and fresh while a read at ReadAt >= now - queryInterval covers it;
//     a read that went up to the present (To >= ReadAt) covers, while fresh, everything after it
//     too, since nothing later existed when it was made.
//   - A fetch reads only what is neither settled nor fresh in its span (at the run's last fetch,
//     after its deadline, only what is not settled: the verdict must rest on settled reads). So
//     with many runs the stream is read about once per query interval, whoever reads it.
//   - Reading takes the stream's lease (core.Store's AcquireLease, expiring after one
//     query interval): two runs needing the same span at the same moment make one set of calls.
//     A run that finds the lease taken polls the ledger on the engine's clock for at most one
//     query interval, then reads whatever is still missing itself, lease or not.
//   - Fair progress: each run registers its span as a need in the stream's ledger (renewed while
//     it runs, lapsing a few reads after it stops). The lease holder reads, besides its own span,
//     what every other active run would need now, oldest span first, joining spans less than a
//     query interval apart into one query. A waiting run's span is thus read by the next reader,
//     whoever it is; a query cut short by its budget leaves the oldest part missing, which becomes
//     the first span of the next read; and no run waits longer than one query interval before
//     reading for itself.
//   - Crash safety: events are stored before the ledger says they were read, and a read is
//     recorded with a versioned, conditional write. A crash after storing events and before the
//     ledger write costs a second read, never an event; a holder that dies leaves a lease that
//     expires.
//   - Counters: a run's apiCalls and throttled count only the calls it made itself;
//     Progress.RawEvents counts the raw events its correlate steps examined (correlate.go).
//   - The ledger also logs each read (core.Ledger.Reads), so that a correlate step examines only
//     the events of reads recorded since its run's last one (correlate.go).

// DefaultLeasePoll is how often a fetch waiting for another run's read re-checks the ledger.
const DefaultLeasePoll = time.Second

// ledgerKeep is how far back the ledger keeps spans: older ones are dropped (a run that needs them
// again reads them again).
const ledgerKeep = 48 * time.Hour

// WithLeasePoll sets how often, on the engine's clock, a fetch waiting for another run's read of
// the same stream re-checks the ledger (default DefaultLeasePoll).
func WithLeasePoll(d time.Duration) Option { return func(e *Engine) { e.leasePoll = d } }

// StreamKey names what one query reads: an integration's region and category, with its lookup
// filter when there is one (a filtered read holds only part of the stream).
func StreamKey(integrationID, region, category string, attr *core.LookupAttribute) string {
	k := integrationID + "#" + region + "#" + category
	if attr != nil {
		k += "#" + attr.Key + "=" + attr.Value
	}
	return k
}

// SharedPartition is where a stream's raw events are stored, whichever run read them.
func SharedPartition(stream string) string { return "stream#" + stream }

// span is a closed interval of event time.
type span struct{ from, to time.Time }

var forever = time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC)

// goodSpans are the parts of the ledger that need no reading: settled ones, and fresh ones (read
// at or after since) unless strict.
func goodSpans(spans []core.SpanRead, since time.Time, settle time.Duration, strict bool) []span {
	var good []span
	for _, s := range spans {
		if e := minTime(s.To, s.ReadAt.Add(-settle)); !e.Before(s.From) {
			good = append(good, span{s.From, e})
		}
		if !strict && !s.ReadAt.Before(since) {
			to := s.To
			if !s.To.Before(s.ReadAt) {
				to = forever
			}
			good = append(good, span{s.From, to})
		}
	}
	return good
}

// subtract returns the parts of [from, to] that no span of good covers, oldest first.
func subtract(from, to time.Time, good []span) []span {
	slices.SortFunc(good, func(a, b span) int { return a.from.Compare(b.from) })
	var out []span
	cur := from
	for _, g := range good {
		if !cur.Before(to) {
			break
		}
		if g.to.Before(cur) {
			continue
		}
		if g.from.After(cur) {
			out = append(out, span{cur, minTime(g.from, to)})
		}
		cur = maxTime(cur, g.to)
	}
	if cur.Before(to) {
		out = append(out, span{cur, to})
	}
	return out
}

// missing returns the parts of [from, to] that the ledger says must be read by a run that accepts
// reads made at or after since.
func missing(l *core.Ledger, from, to, since time.Time, settle time.Duration, strict bool) []span {
	if from.After(to) {
		return nil
	}
	return subtract(from, to, goodSpans(l.Spans, since, settle, strict))
}

// freshSince is the oldest read a run accepts at now instead of reading itself: one made within
// the query interval, or since the run's own previous query (not older than two intervals). The
// second rule absorbs the jitter of step times (waits are whole seconds, calls take time), which
// would otherwise make two runs polling half a second apart each find the other's read 30.5 s old
// and both read every time.
func freshSince(r *core.Run, now time.Time, interval time.Duration) time.Time {
	since := now.Add(-interval)
	if last := r.Progress.LastQueryAt; !last.IsZero() && last.Before(since) {
		since = maxTime(last.Add(time.Nanosecond), now.Add(-2*interval))
	}
	return since
}

// settledFrom returns how far from pos the ledger shows everything settled.
func settledFrom(spans []core.SpanRead, pos time.Time, settle time.Duration) time.Time {
	for {
		next := pos
		for _, s := range spans {
			if s.From.After(pos) || s.To.Before(pos) {
				continue
			}
			if e := minTime(s.To, s.ReadAt.Add(-settle)); e.After(next) {
				next = e
			}
		}
		if !next.After(pos) {
			return pos
		}
		pos = next
	}
}

// mergeRead records read n in spans: where n is newer it replaces what was there; settled
// neighbours and neighbours read at the same time coalesce; spans older than keep are dropped.
func mergeRead(spans []core.SpanRead, n core.SpanRead, settle time.Duration, keep time.Time) []core.SpanRead {
	var out []core.SpanRead
	parts := []span{{n.From, n.To}}
	for _, s := range spans {
		switch {
		case s.To.Before(keep):
			continue
		case s.To.Before(n.From) || s.From.After(n.To):
			out = append(out, s)
		case s.ReadAt.After(n.ReadAt):
			out = append(out, s)
			var rest []span
			for _, p := range parts {
				rest = append(rest, subtract(p.from, p.to, []span{{s.From, s.To}})...)
			}
			parts = rest
		default:
			if s.From.Before(n.From) {
				out = append(out, core.SpanRead{From: s.From, To: n.From, ReadAt: s.ReadAt})
			}
			if s.To.After(n.To) {
				out = append(out, core.SpanRead{From: n.To, To: s.To, ReadAt: s.ReadAt})
			}
		}
	}
	for _, p := range parts {
		out = append(out, core.SpanRead{From: p.from, To: p.to, ReadAt: n.ReadAt})
	}
	slices.SortFunc(out, func(a, b core.SpanRead) int {
		if c := a.From.Compare(b.From); c != 0 {
			return c
		}
		return a.To.Compare(b.To)
	})
	settled := func(s core.SpanRead) bool { return !s.ReadAt.Add(-settle).Before(s.To) }
	var merged []core.SpanRead
	for _, s := range out {
		if k := len(merged) - 1; k >= 0 && !s.From.After(merged[k].To) &&
			(s.ReadAt.Equal(merged[k].ReadAt) || (settled(s) && settled(merged[k]))) {
			merged[k].To = maxTime(merged[k].To, s.To)
			merged[k].ReadAt = maxTime(merged[k].ReadAt, s.ReadAt)
			continue
		}
		merged = append(merged, s)
	}
	return merged
}

// needTTL is how long a run's registered need lasts, in query intervals, unless renewed.
const needTTL = 4

// readRun reads one region and category of a run: it registers the run's unsettled span as a
// need of the stream, reads, through the stream's lease, only what the ledger says no run has
// read recently enough, then moves the run's cursor as far as the ledger shows its span settled.
// What is still missing (a read cut short by its budget or the step's deadline) is the cursor's
// gap, which the next fetch reads first.
func (e *Engine) readRun(ctx context.Context, src core.Source, r *core.Run, integ *core.Integration,
	region, category string, attr *core.LookupAttribute, read core.Window, now time.Time) error {
	cur := cursorFor(&r.Progress, region, category)
	if cur.SettledUntil.IsZero() {
		cur.SettledUntil = read.From
	}
	from, to := maxTime(cur.SettledUntil, read.From), minTime(read.To, now)
	if from.After(to) {
		return nil
	}
	stream := StreamKey(integ.ID, region, category, attr)
	settle := integ.SettleTimeD()
	since := freshSince(r, now, readInterval(integ, category))
	// The run's last fetch rests on settled reads only.
	strict := !now.Before(Deadline(integ, r))
	l, err := e.registerNeed(ctx, r, integ, stream, category, read, now)
	if err != nil {
		return err
	}
	// A read cut short goes on below where it stopped (the gap) before anything newer, as one
	// pass: re-reading from the top would spend each step's calls on what the last step read.
	// Once the gap is closed, the next query reads whatever has gone stale since.
	readTo := to
	if !cur.GapTo.IsZero() && cur.GapTo.After(from) {
		readTo = minTime(cur.GapTo, to)
	}
	if len(missing(l, from, readTo, since, settle, strict)) > 0 {
		if l, err = e.readMissing(ctx, src, r, integ, stream, region, category, attr, from, readTo, now, strict); err != nil {
			return err
		}
	}
	if s := minTime(settledFrom(l.Spans, cur.SettledUntil, settle), to); s.After(cur.SettledUntil) {
		cur.SettledUntil = s
	}
	if strict {
		readTo = to // the verdict rests on settled reads of the whole span
	}
	cur.GapTo = time.Time{}
	if rest := missing(l, maxTime(cur.SettledUntil, read.From), readTo, since, settle, strict); len(rest) > 0 {
		cur.GapTo = rest[len(rest)-1].to
	}
	return nil
}

// readInterval is how often a run reads a category: management events every query interval,
// Insights every correlation query interval (CloudTrail delivers them many minutes after the
// calls they are about). A read of the stream within that interval is as fresh as the run's own.
func readInterval(integ *core.Integration, category string) time.Duration {
	if category == core.CategoryInsight {
		return max(integ.QueryIntervalD(), integ.CorrelationQueryIntervalD())
	}
	return integ.QueryIntervalD()
}

// keepNeeds keeps the run's needs registered in the ledgers of the streams it reads, at every
// fetch, also the ones that make no call (the read schedule, schedule.go): the streams'
// Insights, which only the final alerts pass reads, and with due false its management events.
// Whichever run reads a stream next then covers this run's span in the same queries
// (toRead), instead of each run paying calls for the few seconds its window differs from the
// others'.
func (e *Engine) keepNeeds(ctx context.Context, r *core.Run, integ *core.Integration, cor *core.Correlator, read core.Window, now time.Time, due bool) error {
	if !due {
		for _, region := range integ.QueryRegions(&r.Action) {
			stream := StreamKey(integ.ID, region, core.CategoryManagement, cor.LookupAttribute())
			if _, err := e.registerNeed(ctx, r, integ, stream, core.CategoryManagement, read, now); err != nil {
				return err
			}
		}
	}
	stream := StreamKey(integ.ID, integ.AWSRegion, core.CategoryInsight, nil)
	_, err := e.registerNeed(ctx, r, integ, stream, core.CategoryInsight, read, now)
	return err
}

// registerNeed records (or renews, when it would lapse within two query intervals) the run's
// need of the stream, and drops lapsed ones. It returns the ledger.
func (e *Engine) registerNeed(ctx context.Context, r *core.Run, integ *core.Integration, stream, category string, read core.Window, now time.Time) (*core.Ledger, error) {
	// The need lasts a few of the run's own reads.
	interval := readInterval(integ, category)
	for attempt := 0; ; attempt++ {
		l, err := e.store.GetLedger(ctx, stream)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.RunID, err)
		}
		i := slices.IndexFunc(l.Needs, func(n core.SpanNeed) bool { return n.Run == r.RunID })
		if i >= 0 && !l.Needs[i].Until.Before(now.Add(2*interval)) {
			return l, nil
		}
		l.Needs = slices.DeleteFunc(l.Needs, func(n core.SpanNeed) bool { return n.Run == r.RunID || n.Until.Before(now) })
		l.Needs = append(l.Needs, core.SpanNeed{Run: r.RunID, From: read.From, To: read.To, Until: now.Add(needTTL * interval)})
		err = e.store.PutLedger(ctx, l)
		if err == nil {
			return l, nil
		}
		if core.ErrorCode(err) != core.ECONFLICT || attempt >= ledgerAttempts {
			return nil, fmt.Errorf("run %s: register its read: %w", r.RunID, err)
		}
		if err := e.ledgerBackoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// readMissing reads what the run still needs, under the stream's lease or after waiting one
// query interval for its holder, and returns the ledger after the read.
func (e *Engine) readMissing(ctx context.Context, src core.Source, r *core.Run, integ *core.Integration,
	stream, region, category string, attr *core.LookupAttribute, from, to, now time.Time, strict bool) (*core.Ledger, error) {
	fresh, settle := integ.QueryIntervalD(), integ.SettleTimeD()
	since := freshSince(r, now, readInterval(integ, category))
	holder := r.RunID
	giveUp := e.clock.Now().Add(fresh)
	for {
		_, held, err := e.store.AcquireLease(ctx, stream, holder, e.clock.Now(), fresh)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.RunID, err)
		}
		if held || !e.clock.Now().Before(giveUp) {
			l, rerr := e.readStream(ctx, src, r, integ, stream, region, category, attr, from, to, now, strict)
			if held {
				if err := e.store.ReleaseLease(context.WithoutCancel(ctx), stream, holder); err != nil {
					e.log.WarnContext(ctx, "cannot release a stream lease; it expires on its own", "runId", r.RunID, "stream", stream, "error", err.Error())
				}
			}
			return l, rerr
		}
		wait := min(e.leasePoll, giveUp.Sub(e.clock.Now()))
		if err := e.clock.Sleep(ctx, wait); err != nil {
			return nil, err
		}
		l, err := e.store.GetLedger(ctx, stream)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.RunID, err)
		}
		if len(missing(l, from, to, since, settle, strict)) == 0 {
			return l, nil // the holder read it
		}
	}
}

// ledgerAttempts bounds the versioned writes of one ledger update.
const ledgerAttempts = 50

// ledgerBackoff spreads writers that lost a versioned ledger write: with dozens of runs of one
// integration starting together, retrying at once only makes them collide again (and a step
// that gives up is retried seconds later by the state machine).
func (e *Engine) ledgerBackoff(ctx context.Context, attempt int) error {
	ceiling := time.Duration(min(attempt+1, 10)) * 5 * time.Millisecond
	return e.clock.Sleep(ctx, time.Duration(rand.Int64N(int64(ceiling))+1))
}

// toRead is what a reader reads: what its own run needs and what every other active run of the
// stream would need now, oldest first, with segments less than a query interval apart joined
// (one query over a short fresh stretch costs less than a second query).
func toRead(l *core.Ledger, self string, own []span, now time.Time, interval, settle time.Duration) []span {
	segs := slices.Clone(own)
	near := func(x span) bool {
		for _, o := range own {
			if x.from.Sub(o.to) < interval && o.from.Sub(x.to) < interval {
				return true
			}
		}
		return false
	}
	for _, n := range l.Needs {
		if n.Run == self || n.Until.Before(now) {
			continue
		}
		// Only what joins the reader's own read: a span elsewhere in time costs calls of its own,
		// and a reader that took every run's far spans would hold the lease for all of them.
		for _, x := range missing(l, n.From, minTime(n.To, now), now.Add(-interval), settle, false) {
			if near(x) {
				segs = append(segs, x)
			}
		}
	}
	slices.SortFunc(segs, func(a, b span) int { return a.from.Compare(b.from) })
	var out []span
	for _, s := range segs {
		if k := len(out) - 1; k >= 0 && s.from.Sub(out[k].to) < interval {
			out[k].to = maxTime(out[k].to, s.to)
			continue
		}
		out = append(out, s)
	}
	return out
}

// readStream makes the queries of a read: the spans this run and the stream's other active runs
// need, oldest first. Each query's events are stored in the stream's partition before the ledger
// records the read.
func (e *Engine) readStream(ctx context.Context, src core.Source, r *core.Run, integ *core.Integration,
	stream, region, category string, attr *core.LookupAttribute, from, to, now time.Time, strict bool) (*core.Ledger, error) {
	interval, settle := readInterval(integ, category), integ.SettleTimeD()
	l, err := e.store.GetLedger(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("run %s: %w", r.RunID, err)
	}
	own := missing(l, from, to, freshSince(r, now, interval), settle, strict)
	if len(own) == 0 {
		return l, nil // read by another run while this one took the lease
	}
	for _, seg := range toRead(l, r.RunID, own, now, interval, settle) {
		if l, err = e.readSpan(ctx, src, r, integ, stream, region, category, attr, seg, now); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// readSpan makes one query and records it.
func (e *Engine) readSpan(ctx context.Context, src core.Source, r *core.Run, integ *core.Integration,
	stream, region, category string, attr *core.LookupAttribute, seg span, now time.Time) (*core.Ledger, error) {
	res, lerr := e.lookup(ctx, src, r, SharedPartition(stream),
		core.Query{Region: region, Category: category, From: seg.from, To: seg.to, Attribute: attr, Budget: integ.QueryBudget()})
	if lerr != nil {
		return nil, lerr
	}
	// The read counts as made at the fetch's start: earlier than the calls, so what it settles is
	// safe, and a read up to the present (To == now) is recognisably one.
	done := core.SpanRead{From: seg.from, To: seg.to, ReadAt: now}
	settles := true
	if res.Stopped {
		// The step's time is up: what was read is recorded; the rest stays missing for the next.
		if !res.OldestRead.Before(seg.to) {
			if res.Read == 0 {
				l, err := e.store.GetLedger(ctx, stream)
				if err != nil {
					return nil, fmt.Errorf("run %s: %w", r.RunID, err)
				}
				return l, nil
			}
			settles = false // events at seg.to only: logged for the correlate steps, nothing settled
		}
		done.From = res.OldestRead
	}
	if res.Truncated {
		done.From = res.OldestRead
		w := fmt.Sprintf("region %s: the query budget (pageSize %d x maxPage %d = %d events) ran out before the start of %s..%s; the rest is read by the next queries",
			region, integ.PageSize, integ.MaxPage, integ.QueryBudget(), seg.from.Format(time.RFC3339), seg.to.Format(time.RFC3339))
		if !slices.Contains(r.Progress.FetchWarnings, w) {
			r.Progress.FetchWarnings = append(r.Progress.FetchWarnings, w)
		}
	}
	for attempt := 0; ; attempt++ {
		l, err := e.store.GetLedger(ctx, stream)
		if err != nil {
			return nil, fmt.Errorf("run %s: %w", r.RunID, err)
		}
		if settles {
			l.Spans = mergeRead(l.Spans, done, integ.SettleTimeD(), now.Add(-ledgerKeep))
		}
		logRead(l, seg.from, seg.to) // its events are stored: the correlate steps examine them
		err = e.store.PutLedger(ctx, l)
		if err == nil {
			e.log.DebugContext(ctx, "stream read", "runId", r.RunID, "stream", stream, "from", seg.from, "to", seg.to, "readAt", now,
				"calls", res.Calls, "events", len(res.Events), "truncated", res.Truncated)
			return l, nil
		}
		if core.ErrorCode(err) != core.ECONFLICT || attempt >= ledgerAttempts {
			return nil, fmt.Errorf("run %s: record read: %w", r.RunID, err)
		}
		if err := e.ledgerBackoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// Partitions are where the raw events a run reads are stored: one partition per stream it reads
// (management events of each query region, and the integration region's Insights events),
// shared with the integration's other runs.
func Partitions(integ *core.Integration, r *core.Run) []string {
	attr := core.NewCorrelator(integ, &r.Action).LookupAttribute()
	var out []string
	for _, region := range integ.QueryRegions(&r.Action) {
		out = append(out, SharedPartition(StreamKey(integ.ID, region, core.CategoryManagement, attr)))
	}
	return append(out, SharedPartition(StreamKey(integ.ID, integ.AWSRegion, core.CategoryInsight, nil)))
}
