package workflow

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// Progress is told, while Execute waits, what the run is doing; the CLI prints it.
type Progress func(r *core.Run, next time.Duration)

// Execute runs a stored run to its end on the engine's clock, sequencing the steps exactly as
// the state machine does: Begin, wait, then Fetch, Correlate, Alerts when due (always after a
// final verdict), wait, until done. A retryable
// step error is retried with backoff (as the state machine's Retry); any other error, or one that
// outlasts the retries, records the run as failed. Execute also resumes a run after a restart.
func (e *Engine) Execute(ctx context.Context, runID string, progress Progress) (*core.Run, error) {
	s, err := e.retry(ctx, func() (State, error) { return e.Begin(ctx, State{RunID: runID}) })
	for err == nil && !s.Done {
		if err = e.wait(ctx, runID, s, progress); err != nil {
			break
		}
		if s, err = e.retry(ctx, func() (State, error) { return e.Fetch(ctx, s) }); err != nil {
			break
		}
		if s.Done {
			break
		}
		if s, err = e.retry(ctx, func() (State, error) { return e.Correlate(ctx, s) }); err != nil {
			break
		}
		if s.AlertsDue {
			if s, err = e.retry(ctx, func() (State, error) { return e.Alerts(ctx, s) }); err != nil {
				break
			}
		}
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if _, ferr := e.Fail(ctx, runID, ErrorName(err), err.Error()); ferr != nil {
			return nil, errors.Join(err, ferr)
		}
	}
	r, gerr := e.store.GetRun(ctx, runID)
	if gerr != nil {
		return nil, fmt.Errorf("execute run %s: %w", runID, gerr)
	}
	return r, nil
}

func (e *Engine) wait(ctx context.Context, runID string, s State, progress Progress) error {
	d := time.Duration(s.WaitSeconds) * time.Second
	if progress != nil {
		if r, err := e.store.GetRun(ctx, runID); err == nil {
			progress(r, d)
		}
	}
	return e.clock.Sleep(ctx, d)
}

// retry applies a step, retrying retryable errors with exponential backoff on the clock, as the
// state machine's Retry (interval 2 s, rate 2) does.
func (e *Engine) retry(ctx context.Context, step func() (State, error)) (State, error) {
	delay := 2 * time.Second
	for attempt := 0; ; attempt++ {
		s, err := step()
		if err == nil || !core.Temporary(err) || attempt >= e.retries {
			return s, err
		}
		e.log.WarnContext(ctx, "step failed, retrying", "error", err.Error(), "attempt", attempt+1, "delay", delay.String())
		if serr := e.clock.Sleep(ctx, delay); serr != nil {
			return s, serr
		}
		delay *= 2
	}
}
