package sfntest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/workflow"
)

// TestFetchFitsItsLambda: a query budget far larger than one fetch can read in its Lambda's time
// (pageSize 1000 x maxPage 100 = 2,000 LookupEvents calls, 1,000 s at CloudTrail's 2 calls a
// second) against a burst of 40,000 events (800 calls, 400 s) while each step runs with a
// 120-second deadline, as a Lambda with a 120 s timeout would (it stops 20 s before). Each fetch
// must stop before its deadline with what it read stored, the next must go on from there, and the run must complete with every event.
func TestFetchFitsItsLambda(t *testing.T) {
	t.Parallel()
	const (
		burst         = 40000
		lambdaTimeout = 120 * time.Second
	)
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC) // the demo action's startTime
	records := make([]map[string]any, burst)
	for i := range records {
		records[i] = map[string]any{
			"eventVersion": "1.09", "eventID": fmt.Sprintf("burst-%05d", i),
			// Spread over the five minutes before the action, all delivered by the time it ends.
			"eventTime":   start.Add(-5*time.Minute + time.Duration(i)*5*time.Minute/burst).Format(time.RFC3339),
			"eventSource": "s3.amazonaws.com", "eventName": "GetObject", "awsRegion": "us-west-2",
			"sourceIPAddress": "10.0.0.1", "userAgent": "aws-sdk-go-v2",
			"userIdentity": map[string]any{"type": "AssumedRole", "arn": "arn:aws:sts::210987654321:assumed-role/app/i-1"},
		}
	}
	// JSON lines: the corpus loader's position bookkeeping is slow on one long line.
	var b []byte
	for _, rec := range records {
		line, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		b = append(append(b, line...), '\n')
	}
	file := filepath.Join(t.TempDir(), "burst.jsonl")
	if err := os.WriteFile(file, b, 0o600); err != nil {
		t.Fatal(err)
	}
	f := NewFixture(t, FixtureOptions{
		Store: "bolt", Corpus: []string{file}, CallsPerSecond: cloudtrail.DefaultCallsPerSecond,
		Integration: func(in *core.Integration) { in.PageSize, in.MaxPage = 1000, 100 },
	})
	if calls := f.Integration.QueryBudget() / core.MaxEventsPerCall; calls != 2000 {
		t.Fatalf("budget %d calls, want 2000", calls)
	}
	e := f.Engine()

	// step runs one step as its Lambda would: with a deadline, which it must not pass on the
	// run's clock.
	var reads []time.Duration
	step := func(name string, fn stepFunc, in workflow.State) workflow.State {
		t.Helper()
		ctx, cancel := context.WithTimeout(t.Context(), lambdaTimeout)
		defer cancel()
		before := f.Clock.Now()
		out, err := fn(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		took := f.Clock.Now().Sub(before)
		if took >= lambdaTimeout {
			t.Errorf("%s took %v on the run's clock: over its %v deadline", name, took, lambdaTimeout)
		}
		if name == workflow.StepFetch {
			reads = append(reads, took)
		}
		return out
	}
	s := step(workflow.StepBegin, e.Begin, workflow.State{RunID: f.RunID})
	for i := 0; !s.Done; i++ {
		if i > 100 {
			t.Fatalf("no end after %d loops: %+v", i, s)
		}
		f.Clock.Advance(time.Duration(s.WaitSeconds) * time.Second)
		s = step(workflow.StepFetch, e.Fetch, s)
		s = step(workflow.StepCorrelate, e.Correlate, s)
		if s.AlertsDue {
			s = step(workflow.StepAlerts, e.Alerts, s)
		}
	}
	r := f.Run(t)
	if r.Status != core.StatusCompleted {
		t.Fatalf("run %s (%s), want completed", r.Status, r.Error)
	}
	partition := workflow.SharedPartition(workflow.StreamKey(f.Integration.ID, "us-west-2", core.CategoryManagement, nil))
	raws, err := core.CollectRawEvents(f.Store.RawEvents(t.Context(), partition, start.Add(-time.Hour), start.Add(time.Hour)))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, ev := range raws {
		got[ev.EventID] = true
	}
	for i := range burst {
		if id := fmt.Sprintf("burst-%05d", i); !got[id] {
			t.Fatalf("event %s was never stored (%d of the burst's %d stored)", id, len(got), burst)
		}
	}
	long := 0
	for _, d := range reads {
		if d > lambdaTimeout/2 {
			long++
		}
	}
	if long < 3 {
		t.Errorf("fetches took %v: want several long ones, the burst read across them", reads)
	}
	// The burst is read twice at least: once as it is delivered, once more after it has settled.
	// A fetch that goes on from where the last one stopped stays near that; one that starts again
	// from the top each time spends its calls on what the last one read (1,916 calls here).
	if oneRead := burst / core.MaxEventsPerCall; r.APICalls > 2*oneRead+oneRead/8 {
		t.Errorf("%d LookupEvents calls: over two reads of the burst (%d calls each) and a margin", r.APICalls, oneRead)
	}
	if r.Truncated {
		t.Errorf("the run says truncated: the budget did not run out, the fetches were only cut short")
	}
	t.Logf("%d events, %d LookupEvents calls, fetches took %v on the run's clock", len(raws), r.APICalls, reads)
}
