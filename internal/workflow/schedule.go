package workflow

import (
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Read schedule.
//
// CloudTrail delivers most records about five minutes after their event time and some later, up
// to the integration's settleTime. Reading the run's whole unsettled span at every query interval
// reads each event about settleTime / queryInterval times; instead a run's fetch reads only when
// a read is due, and then reads (through the stream ledger, shared.go) everything of its span that
// is neither settled nor fresh:
//
//   - first just after the action's first records become visible: typicalDelay (or settleTime if
//     less) plus one query interval after its start, since its calls go on for seconds;
//   - then at widening ages of the action: each read is followed by a wait of twice the action's
//     age at that read (at least that delay), so the span is re-read at ages ~5.5, ~16.5, ~50...
//     minutes, never after the deadline. Tripling ages keep a read at an age just past
//     settleTime from settling the action's own time before the deadline's read, which comes
//     later and so also finds records delivered somewhat later than settleTime;
//   - at the deadline (window end plus settleTime, on a query-interval grid), where every part
//     of the span not yet read at an age >= settleTime is read (the strict last read the verdict
//     rests on);
//   - a fetch that makes no call still keeps the run's needs registered in the stream ledgers,
//     so that another run's read covers this run's span in the same queries (shared.go);
//   - at once while a span is unread (a read cut short, the cursor's gap);
//   - with expected events not all matched, at gaps doubling from one query interval after the
//     first read or the last read that found new matched events (5.5, 6, 6.5, 7.5, 9.5...
//     minutes), never more than typicalDelay apart, so the verdict comes soon after they arrive;
//   - with expected events, at the next query after a read that found new matched events or
//     matched them all: the rest of an action's burst arrives within seconds, and a run completes
//     early only after one more read found nothing new.
//
// Fetches in between make no calls. A span is settled only by a read at an age >= settleTime,
// as before: the schedule changes when reads happen, never what a read settles.

// typicalDelay is how late CloudTrail typically delivers a management event (about five minutes,
// AWS documents): the first read worth making of an event time is about this long after it.
const typicalDelay = 5 * time.Minute

// visibleAfter is how long after its event time a record is first worth reading: typicalDelay,
// or settleTime when the user says delivery is never that late.
func visibleAfter(integ *core.Integration) time.Duration {
	return min(typicalDelay, integ.SettleTimeD())
}

// firstRead is when a run's first read is due: just after its action's first records can be
// visible.
func firstRead(integ *core.Integration, r *core.Run) time.Time {
	return r.Action.StartTime.Add(visibleAfter(integ) + integ.QueryIntervalD())
}

// readDue says whether the run's fetch at now reads CloudTrail.
func readDue(integ *core.Integration, r *core.Run, now time.Time) bool {
	if !now.Before(Deadline(integ, r)) {
		return true
	}
	for _, c := range r.Progress.Cursors {
		if c.Category == core.CategoryManagement && !c.GapTo.IsZero() {
			return true
		}
	}
	due := r.Progress.ReadDueAt
	if due.IsZero() {
		due = firstRead(integ, r)
	}
	return !now.Before(due)
}

// nextRead is when the read after one made at now is due: after a wait of twice the action's age
// (at least visibleAfter and a query interval), or with expected events of the time since the
// first read or the last new match (between a query interval and visibleAfter); no later than the
// deadline.
func nextRead(integ *core.Integration, r *core.Run, now time.Time) time.Time {
	wait := max(2*now.Sub(r.Action.StartTime), visibleAfter(integ), integ.QueryIntervalD())
	if len(r.Action.ExpectedEvents) > 0 {
		// A run with expected events completes as soon as they match: the reads follow the burst
		// closely (gaps doubling from one query interval) while some are missing.
		// At most visibleAfter apart, so that in a long window an action's calls late in it are
		// matched within minutes of becoming visible.
		wait = min(now.Sub(maxTime(firstRead(integ, r), r.Progress.MatchedGrewAt)), visibleAfter(integ))
		wait = max(wait, integ.QueryIntervalD())
	}
	return minTime(now.Add(wait), Deadline(integ, r))
}
