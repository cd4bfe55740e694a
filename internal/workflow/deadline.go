package workflow

import (
	"context"
	"fmt"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// A step runs in a Lambda with a deadline (its context's). A step that reads CloudTrail stores
// each page as it arrives and stops reading StepMargin before that deadline; what it did not read
// is missing from the stream's ledger and a gap on the run's cursor, which the next fetch reads
// first.

// lookup makes one query for run r, storing each page under partition as it arrives (a step
// cut off keeps what it read), and stopping at the step's stop time (stopAt).
func (e *Engine) lookup(ctx context.Context, src core.Source, r *core.Run, partition string, q core.Query) (core.QueryResult, error) {
	store := func(ctx context.Context, evs []core.RawEvent) error {
		if _, err := e.store.AddRawEvents(ctx, partition, evs); err != nil {
			return fmt.Errorf("run %s: store events: %w", r.RunID, err)
		}
		return nil
	}
	q.StopAt, q.Page = stopAt(ctx), store
	res, err := src.Lookup(ctx, q)
	r.APICalls += res.Calls
	r.Throttled += res.Throttled
	if len(res.Events) > 0 && err == nil {
		err = store(ctx, res.Events) // a source that does not page
	}
	return res, err
}

// StepMargin is the least time a step keeps, before its context's deadline (the Lambda's), to
// store what it read and answer: reads stop then, and the next step goes on from there.
const StepMargin = 20 * time.Second

type stopKey struct{}

// withStop notes in ctx when the step's reads must stop: the context's deadline less the margin
// (StepMargin, or a tenth of the time left if more), on the engine's clock. It is taken once at the
// step's start, so that on a virtual clock, where the step's calls take virtual time, it stays put.
func (e *Engine) withStop(ctx context.Context) context.Context {
	dl, ok := ctx.Deadline()
	if !ok {
		return ctx
	}
	left := time.Until(dl)
	return context.WithValue(ctx, stopKey{}, e.clock.Now().Add(left-max(StepMargin, left/10)))
}

// stopAt returns the step's stop time noted by withStop (zero: none).
func stopAt(ctx context.Context) time.Time {
	t, _ := ctx.Value(stopKey{}).(time.Time)
	return t
}
