package sfntest

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Step is one workflow step as an observer saw it.
type Step struct {
	Name    string
	In, Out workflow.State
}

// recorder collects the steps an engine applies.
type recorder struct {
	mu    sync.Mutex
	steps []Step
}

func (r *recorder) observe(name string, in, out workflow.State) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.steps = append(r.steps, Step{name, in, out})
}

func (r *recorder) Steps() []Step {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Step(nil), r.steps...)
}

// wrappers change what a function does, to inject failures into the ASL path.
type wrappers struct {
	fetch, correlate func(lambdafn.Handler) lambdafn.Handler
}

// serveEngine registers the four functions over engine, on the fixture's virtual time.
func serveEngine(srv *LambdaServer, f *Fixture, engine *workflow.Engine, w wrappers) {
	id := func(h lambdafn.Handler) lambdafn.Handler { return h }
	if w.fetch == nil {
		w.fetch = id
	}
	if w.correlate == nil {
		w.correlate = id
	}
	srv.Handle(FunctionARN("BeginFunction"), Typed(lambdafn.Begin(engine)))
	srv.Handle(FunctionARN("FetchFunction"), Typed(w.fetch(lambdafn.Fetch(engine))))
	srv.Handle(FunctionARN("CorrelateFunction"), Typed(w.correlate(lambdafn.Correlate(engine))))
	srv.Handle(FunctionARN("AlertsFunction"), Typed(lambdafn.Alerts(engine)))
	srv.Handle(FunctionARN("FailFunction"), Typed(lambdafn.Fail(engine)))
	srv.OnInvoke(VirtualTime(f.Clock, FunctionARN("BeginFunction"), FunctionARN("CorrelateFunction"), FunctionARN("AlertsFunction")))
}

// failFirst makes a handler return errs, one per call, before it works.
func failFirst(errs ...error) func(lambdafn.Handler) lambdafn.Handler {
	var mu sync.Mutex
	return func(h lambdafn.Handler) lambdafn.Handler {
		return func(ctx context.Context, in lambdafn.Payload) (lambdafn.Payload, error) {
			mu.Lock()
			var err error
			if len(errs) > 0 {
				err, errs = errs[0], errs[1:]
			}
			mu.Unlock()
			if err != nil {
				// As the engine's own error would: named by lambdafn.
				return lambdafn.Wrap(func(context.Context, workflow.State) (workflow.State, error) { return workflow.State{}, err })(ctx, in)
			}
			return h(ctx, in)
		}
	}
}

func TestScenarios(t *testing.T) {
	t.Parallel()
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC) // the demo action's startTime
	tests := []struct {
		name     string
		expected []string
		wrap     wrappers
		// what the run must look like at the end
		wantStatus    string
		wantExecution string // SUCCEEDED or FAILED
		wantVerdict   string
		wantEnd       time.Time // completedAt on the virtual clock; zero: at the deadline
		wantEarly     bool      // completedAt before the deadline
		wantError     string    // prefix of the run's error
		wantFunction  []string  // errorTypes the functions answered with, in order
	}{
		{
			name:       "found early",
			wantStatus: core.StatusCompleted, wantExecution: "SUCCEEDED", wantVerdict: core.VerdictLogged, wantEarly: true,
		},
		{
			name:       "nothing found until the settle time",
			expected:   []string{"ec2.amazonaws.com:TerminateInstances"},
			wantStatus: core.StatusCompleted, wantExecution: "SUCCEEDED", wantVerdict: core.VerdictLogged,
		},
		{
			name:       "throttling retried then success",
			wrap:       wrappers{fetch: failFirst(core.Errorf(core.ETHROTTLED, "rate exceeded"), core.Errorf(core.ETHROTTLED, "rate exceeded"))},
			wantStatus: core.StatusCompleted, wantExecution: "SUCCEEDED", wantVerdict: core.VerdictLogged, wantEarly: true,
			wantFunction: []string{"ThrottledError", "ThrottledError"},
		},
		{
			name:       "a handler failure is caught and the run marked failed",
			wrap:       wrappers{correlate: failFirst(nil, core.FieldError("fieldMap.user", "no such path"))},
			wantStatus: core.StatusFailed, wantExecution: "FAILED", wantVerdict: core.VerdictUnknown,
			// The first correlate step (at the start) works, the second (one query interval on) fails.
			wantEnd:      start.Add(30 * time.Second),
			wantError:    "InvalidInputError: fieldMap.user: no such path",
			wantFunction: []string{"InvalidInputError"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := NewLambdaServer()
			defer srv.Close()
			f := NewFixture(t, FixtureOptions{ExpectedEvents: tt.expected})
			serveEngine(srv, f, f.Engine(), tt.wrap)
			runner := NewRunner(t, srv, substitutions())
			outs, err := runner.RunChain(t.Context(), f.RunID, map[string]string{"runId": f.RunID}, 3)
			if err != nil {
				t.Fatal(err)
			}
			last := outs[len(outs)-1]
			if last.Status != tt.wantExecution {
				t.Errorf("execution %s (%s: %s), want %s; states %v", last.Status, last.Error, last.Cause, tt.wantExecution, last.States)
			}
			r := f.Run(t)
			if r.Status != tt.wantStatus || r.Verdict != tt.wantVerdict {
				t.Errorf("run status %s verdict %s, want %s verdict %s (error %q)", r.Status, r.Verdict, tt.wantStatus, tt.wantVerdict, r.Error)
			}
			if r.Status == core.StatusFailed && r.Logged != nil && !*r.Logged {
				t.Errorf("a failed run says logged false; it must be null (unknown)")
			}
			deadline := workflow.Deadline(f.Integration, r)
			switch {
			case r.CompletedAt == nil:
				t.Errorf("no completedAt")
			case tt.wantEarly:
				if !r.CompletedAt.Before(deadline) {
					t.Errorf("completed at %v, want before the deadline %v", r.CompletedAt, deadline)
				}
			case tt.wantEnd.IsZero():
				if !r.CompletedAt.Equal(deadline) {
					t.Errorf("completed at %v, want at the deadline %v", r.CompletedAt, deadline)
				}
			case !r.CompletedAt.Equal(tt.wantEnd):
				t.Errorf("completed at %v, want %v", r.CompletedAt, tt.wantEnd)
			}
			if !strings.HasPrefix(r.Error, tt.wantError) || (tt.wantError == "") != (r.Error == "") {
				t.Errorf("run error %q, want %q", r.Error, tt.wantError)
			}
			if tt.wantExecution == "FAILED" && last.Error != strings.SplitN(tt.wantError, ":", 2)[0] {
				t.Errorf("execution failed with %q, want the step's error name", last.Error)
			}
			var fnErrs []string
			for _, inv := range srv.Invocations() {
				if inv.Error != "" {
					fnErrs = append(fnErrs, inv.Error)
				}
			}
			if diff := cmp.Diff(tt.wantFunction, fnErrs); diff != "" {
				t.Errorf("function errors (-want +got):\n%s", diff)
			}
			// The demo integration's Correlation Query alerts on the failed GetPasswordData calls:
			// through the real ASL, as in the local workflow, the completed run is alerted.
			if r.Status == core.StatusCompleted {
				if !r.IsAlerted() || len(r.Alerts) == 0 || r.Alerts[0].RaisedBy != core.AlertSourceQuery {
					t.Errorf("completed run alerted %v with %d alerts (warnings %v), want Correlation Query alerts", r.Alerted, len(r.Alerts), r.Warnings)
				}
			}
			if tt.wantEarly {
				for _, e := range r.Expected {
					if e.Count == 0 {
						t.Errorf("completed early with %s unmatched: %+v", e.Event, r.Expected)
					}
				}
			}
		})
	}
}

// flakySources makes the first n lookups fail as CloudTrail's throttling would, after the
// source's own retries: an error whose code (core.ErrorCode) is throttled.
type flakySources struct {
	core.SourceFactory
	mu sync.Mutex
	n  int
}

type throttled struct{}

func (throttled) Error() string {
	return "cloudtrail lookup events: ThrottlingException: Rate exceeded"
}
func (throttled) ErrorCode() string { return core.ETHROTTLED }

func (f *flakySources) Source(ctx context.Context, in *core.Integration) (core.Source, error) {
	s, err := f.SourceFactory.Source(ctx, in)
	if err != nil {
		return nil, err
	}
	return flakySource{s, f}, nil
}

type flakySource struct {
	core.Source
	f *flakySources
}

func (s flakySource) Lookup(ctx context.Context, q core.Query) (core.QueryResult, error) {
	s.f.mu.Lock()
	fail := s.f.n > 0
	s.f.n--
	s.f.mu.Unlock()
	if fail {
		return core.QueryResult{Calls: 1, Throttled: 1}, throttled{}
	}
	return s.Source.Lookup(ctx, q)
}

// TestConformance runs the same run through `trailproof run`'s sequencer (Engine.Execute on a
// virtual clock) and through the state machine definition, and compares every step each took,
// with its input and output.
func TestConformance(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		expected []string
		throttle int
	}{
		{name: "found early"},
		{name: "nothing found until the settle time", expected: []string{"ec2.amazonaws.com:TerminateInstances"}},
		{name: "throttled twice", throttle: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			opts := func() FixtureOptions {
				return FixtureOptions{ExpectedEvents: tt.expected, RunID: "run-conformance",
					Sources: func(s core.SourceFactory) core.SourceFactory { return &flakySources{SourceFactory: s, n: tt.throttle} }}
			}

			local := NewFixture(t, opts())
			var localSteps recorder
			if _, err := local.Engine(workflow.WithObserver(localSteps.observe)).Execute(t.Context(), local.RunID, nil); err != nil {
				t.Fatal(err)
			}

			cloud := NewFixture(t, opts())
			var cloudSteps recorder
			srv := NewLambdaServer()
			defer srv.Close()
			serveEngine(srv, cloud, cloud.Engine(workflow.WithObserver(cloudSteps.observe)), wrappers{})
			outs, err := NewRunner(t, srv, substitutions()).RunChain(t.Context(), cloud.RunID, map[string]string{"runId": cloud.RunID}, 3)
			if err != nil {
				t.Fatal(err)
			}
			if o := outs[len(outs)-1]; o.Status != "SUCCEEDED" {
				t.Fatalf("execution %s: %s %s", o.Status, o.Error, o.Cause)
			}

			if len(localSteps.Steps()) < 4 {
				t.Fatalf("Execute took %d steps; the scenario should loop", len(localSteps.Steps()))
			}
			// The verdict is final in a correlate step that says so (done and alertsDue); the
			// alerts step after it takes the last alerts pass and completes the run.
			steps := localSteps.Steps()
			if n := len(steps); steps[n-2].Name != workflow.StepCorrelate || !steps[n-2].Out.Done || !steps[n-2].Out.AlertsDue ||
				steps[n-1].Name != workflow.StepAlerts || !steps[n-1].Out.Done || steps[n-1].Out.Status != core.StatusCompleted {
				t.Errorf("last steps %+v, %+v; want correlate (done, alertsDue) then alerts (done, completed)", steps[n-2], steps[n-1])
			}
			if diff := cmp.Diff(localSteps.Steps(), cloudSteps.Steps()); diff != "" {
				t.Errorf("steps (-Execute +state machine):\n%s", diff)
			}
			lr, cr := local.Run(t), cloud.Run(t)
			if diff := cmp.Diff(summary(lr), summary(cr)); diff != "" {
				t.Errorf("run (-Execute +state machine):\n%s", diff)
			}
		})
	}
}

// summary is what a user compares between two runs of the same action.
func summary(r *core.Run) map[string]any {
	b, _ := json.Marshal(struct {
		Status      string
		CompletedAt *time.Time
		Verdict     string
		Queries     int
		APICalls    int
		Throttled   int
		Events      int
		Expected    []core.ExpectedCount
	}{r.Status, r.CompletedAt, r.Verdict, r.Queries, r.APICalls, r.Throttled, len(r.Events), r.Expected})
	var m map[string]any
	_ = json.Unmarshal(b, &m)
	return m
}
