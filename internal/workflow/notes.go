package workflow

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/trailproof/trailproof/internal/core"
)

// checkHistory refuses a run against real CloudTrail (no endpoint override) whose window lies
// wholly before LookupEvents' 90 days: it could only ever say "not logged" about events CloudTrail
// no longer returns. A window that starts before them gets a note instead.
func (e *Engine) checkHistory(in *core.Integration, w core.Window) ([]string, error) {
	if in.Endpoint != "" {
		return nil, nil // the emulator or a test server keeps its own history
	}
	oldest := e.clock.Now().Add(-core.History).UTC()
	switch {
	case w.To.Before(oldest):
		return nil, core.FieldError("startTime", "the window %s .. %s lies outside CloudTrail's 90-day LookupEvents history, which starts at %s: CloudTrail no longer returns those events",
			w.From.Format(time.RFC3339), w.To.Format(time.RFC3339), oldest.Format(time.RFC3339))
	case w.From.Before(oldest):
		return []string{fmt.Sprintf("the window starts at %s, before CloudTrail's 90-day LookupEvents history (from %s): events before then cannot be read",
			w.From.Format(time.RFC3339), oldest.Format(time.RFC3339))}, nil
	}
	return nil, nil
}

// AddNotes adds warnings about a run's inputs (a corpus with no record near the window, say) to
// its result, where every step keeps them.
func (e *Engine) AddNotes(ctx context.Context, runID string, notes ...string) (*core.Run, error) {
	r, err := e.store.GetRun(ctx, runID)
	if err != nil {
		return nil, fmt.Errorf("add notes to run %s: %w", runID, err)
	}
	for _, n := range notes {
		if !slices.Contains(r.Progress.Notes, n) {
			r.Progress.Notes = append(r.Progress.Notes, n)
		}
	}
	r.Warnings = composeWarnings(r, nil)
	if err := e.store.UpdateRun(ctx, r); err != nil {
		return nil, fmt.Errorf("add notes to run %s: %w", runID, err)
	}
	return r, nil
}
