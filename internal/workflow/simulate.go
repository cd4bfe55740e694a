package workflow

import (
	"container/heap"
	"context"
	"fmt"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

// Simulate runs stored runs to their end together on a virtual clock, as concurrent Step
// Functions executions (or serve's goroutines) would, but deterministically and without sleeping:
// a discrete-event scheduler keeps each run's next step time in a priority queue, sets the clock to
// the earliest, applies that run's steps exactly as Execute does (Begin; then Fetch, Correlate and,
// when due or after a final verdict, Alerts; retrying retryable errors with the same backoff; Fail on any other) and queues
// the run again after its WaitSeconds. Goroutines sleeping on one clock.Virtual cannot do this:
// each Sleep advances the shared clock by its own duration.
//
// The clock only moves forward: when a step takes time (the CloudTrail source waits for its rate
// limiter on the same clock), runs due meanwhile go next, late, as they would behind a busy rate
// budget. The engine must use clk as its clock. Simulate returns when every run has ended, or with
// the first error that is not a step's (a run that cannot be loaded or failed).
func (e *Engine) Simulate(ctx context.Context, clk *clock.Virtual, runIDs ...string) error {
	if e.clock != clock.Clock(clk) {
		return fmt.Errorf("simulate: the engine does not use the given virtual clock")
	}
	q := &simQueue{}
	for i, id := range runIDs {
		heap.Push(q, &simRun{id: id, at: clk.Now(), seq: i})
	}
	seq := len(runIDs)
	for q.Len() > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		sr := heap.Pop(q).(*simRun)
		clk.Set(sr.at)
		done, wait, err := e.simStep(ctx, sr)
		if err != nil {
			return err
		}
		if done {
			continue
		}
		sr.at, sr.seq = clk.Now().Add(wait), seq
		seq++
		heap.Push(q, sr)
	}
	return nil
}

// simRun is one run in the scheduler.
type simRun struct {
	id      string
	at      time.Time
	seq     int
	begun   bool
	s       State
	attempt int           // failed attempts of the pending step
	delay   time.Duration // backoff before its next attempt
}

// simStep applies the run's next group of steps and says whether it ended and how long to wait.
func (e *Engine) simStep(ctx context.Context, sr *simRun) (done bool, wait time.Duration, err error) {
	var s State
	if !sr.begun {
		s, err = e.Begin(ctx, State{RunID: sr.id})
	} else {
		s, err = e.Fetch(ctx, sr.s)
		if err == nil && !s.Done {
			s, err = e.Correlate(ctx, s)
			if err == nil && s.AlertsDue {
				s, err = e.Alerts(ctx, s)
			}
		}
	}
	if err != nil {
		if core.Temporary(err) && sr.attempt < e.retries {
			if sr.attempt == 0 {
				sr.delay = 2 * time.Second
			} else {
				sr.delay *= 2
			}
			sr.attempt++
			e.log.WarnContext(ctx, "step failed, retrying", "runId", sr.id, "error", err.Error(), "attempt", sr.attempt, "delay", sr.delay.String())
			return false, sr.delay, nil
		}
		if _, ferr := e.Fail(ctx, sr.id, ErrorName(err), err.Error()); ferr != nil {
			return true, 0, fmt.Errorf("simulate run %s: %w", sr.id, ferr)
		}
		return true, 0, nil
	}
	sr.begun, sr.s, sr.attempt = true, s, 0
	return s.Done, time.Duration(s.WaitSeconds) * time.Second, nil
}

// simQueue orders runs by next step time, then by when they were queued.
type simQueue []*simRun

func (q simQueue) Len() int { return len(q) }
func (q simQueue) Less(i, j int) bool {
	if !q[i].at.Equal(q[j].at) {
		return q[i].at.Before(q[j].at)
	}
	return q[i].seq < q[j].seq
}
func (q simQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *simQueue) Push(x any)   { *q = append(*q, x.(*simRun)) }
func (q *simQueue) Pop() any {
	old := *q
	x := old[len(old)-1]
	*q = old[:len(old)-1]
	return x
}
