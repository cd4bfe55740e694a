package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// testRawEventVisits runs on the partition testRawEventRanges filled ("run-r": 1,200 bulk events
// from t0 + 1 min, a millisecond apart).
func testRawEventVisits(t *testing.T, s core.Store) {
	ctx := context.Background()
	// A visit is one event at a time: a caller that stops early stops the read, and one that
	// stores while it reads (a correlate step recording sensors) neither blocks nor sees a
	// half-written page.
	var first []string
	for ev, err := range s.RawEvents(ctx, "run-r", t0.Add(time.Minute), time.Time{}) {
		must(t, "RawEvents visit", err)
		first = append(first, ev.EventID)
		if len(first) == 3 {
			break
		}
	}
	if diff := cmp.Diff([]string{"p0000", "p0001", "p0002"}, first); diff != "" {
		t.Errorf("RawEvents stopped after 3 (-want +got):\n%s", diff)
	}
	visited := 0
	for ev, err := range s.RawEvents(ctx, "run-r", t0.Add(time.Minute), t0.Add(2*time.Minute)) {
		must(t, "RawEvents visit while writing", err)
		if visited%300 == 0 {
			late := Raw("late-"+ev.EventID, t0.Add(time.Hour))
			_, err := s.AddRawEvents(ctx, "run-r", []core.RawEvent{late})
			must(t, "AddRawEvents during a visit", err)
		}
		visited++
	}
	if visited != 1200 {
		t.Errorf("a visit over 1,200 events with writes between them saw %d", visited)
	}
}
