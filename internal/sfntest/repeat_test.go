package sfntest

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/workflow"
)

// TestStepRepeated: Step Functions delivers a task at least once and retries it after a timeout,
// so every step called twice with the same input must return the same output and leave the same
// stored run (the same version: the repeat writes nothing) and the same raw events, on both
// stores.
func TestStepRepeated(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// target says whether a step just applied is the one to repeat, from its output.
		target func(step string, out workflow.State) bool
	}{
		{"begin", func(step string, _ workflow.State) bool { return step == workflow.StepBegin }},
		{"fetch", func(step string, out workflow.State) bool { return step == workflow.StepFetch && out.APICalls > 0 }},
		// Every expected event matches in this correlate step: the verdict is not final until one
		// more query finds nothing new, and a repeated correlate must not take itself for it.
		{"correlate", func(step string, out workflow.State) bool { return step == workflow.StepCorrelate && out.Events > 0 }},
		{"alerts", func(step string, out workflow.State) bool { return step == workflow.StepAlerts && !out.Done }},
		{"final correlate", func(step string, out workflow.State) bool { return step == workflow.StepCorrelate && out.Done }},
		{"final alerts", func(step string, out workflow.State) bool { return step == workflow.StepAlerts && out.Done }},
		{"fail", func(step string, out workflow.State) bool { return step == workflow.StepFail }},
	}
	for _, store := range []string{"bolt", "dynamodb"} {
		for _, tt := range tests {
			t.Run(store+"/"+tt.name, func(t *testing.T) {
				t.Parallel()
				f := NewFixture(t, FixtureOptions{Store: store})
				e := f.Engine()
				step, in, out1, ok := driveTo(t, f, e, tt.target)
				if !ok {
					t.Fatalf("the run ended (%+v) without reaching the step", out1)
				}
				run1, raw1 := f.snapshot(t)
				out2, err := step(t.Context(), in)
				if err != nil {
					t.Fatalf("repeated: %v", err)
				}
				run2, raw2 := f.snapshot(t)
				if diff := cmp.Diff(out1, out2); diff != "" {
					t.Errorf("output (-first +repeated):\n%s", diff)
				}
				if diff := cmp.Diff(run1, run2); diff != "" {
					t.Errorf("stored run (-after the first +after the repeat):\n%s", diff)
				}
				if raw1 != raw2 {
					t.Errorf("raw events stored: %d after the first, %d after the repeat", raw1, raw2)
				}
			})
		}
	}
}

type stepFunc func(ctx context.Context, in workflow.State) (workflow.State, error)

// driveTo runs the fixture's run as Execute sequences it (waits on the virtual clock) until a
// step's output satisfies target, and returns that step, its input and output. Before every
// fetch it also offers the fail step (the run then fails: a fetch error caught). ok is false when
// the run ended first.
func driveTo(t *testing.T, f *Fixture, e *workflow.Engine, target func(string, workflow.State) bool) (step stepFunc, in, out workflow.State, ok bool) {
	t.Helper()
	ctx := t.Context()
	fail := func(ctx context.Context, in workflow.State) (workflow.State, error) {
		return e.Fail(ctx, in.RunID, "AuthError", "access denied")
	}
	apply := func(name string, s stepFunc, in workflow.State) (workflow.State, bool) {
		out, err := s(ctx, in)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return out, target(name, out)
	}
	s := workflow.State{RunID: f.RunID}
	if out, hit := apply(workflow.StepBegin, e.Begin, s); hit {
		return e.Begin, s, out, true
	} else {
		s = out
	}
	for !s.Done {
		f.Clock.Advance(time.Duration(s.WaitSeconds) * time.Second)
		if s.Iteration > 0 && target(workflow.StepFail, workflow.State{}) {
			out, _ := apply(workflow.StepFail, fail, s)
			return fail, s, out, true
		}
		for _, st := range []struct {
			name string
			fn   stepFunc
		}{{workflow.StepFetch, e.Fetch}, {workflow.StepCorrelate, e.Correlate}} {
			out, hit := apply(st.name, st.fn, s)
			if hit {
				return st.fn, s, out, true
			}
			s = out
		}
		if s.AlertsDue {
			out, hit := apply(workflow.StepAlerts, e.Alerts, s)
			if hit {
				return e.Alerts, s, out, true
			}
			s = out
		}
	}
	return nil, s, s, false
}

// snapshot returns the stored run as JSON fields and how many raw events the run's partitions hold.
func (f *Fixture) snapshot(t *testing.T) (map[string]any, int) {
	t.Helper()
	r := f.Run(t)
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	m["version"] = r.Version // kept out of the JSON by some stores' encoding: compare it anyway
	n := 0
	for _, p := range workflow.Partitions(f.Integration, r) {
		raws, err := core.CollectRawEvents(f.Store.RawEvents(t.Context(), p, r.Window.From.Add(-24*time.Hour), r.Window.To.Add(24*time.Hour)))
		if err != nil {
			t.Fatal(err)
		}
		n += len(raws)
	}
	return m, n
}
