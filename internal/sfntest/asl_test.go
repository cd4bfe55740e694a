package sfntest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/workflow"
)

// substitutions are the DefinitionSubstitutions of the test executions.
func substitutions() map[string]string {
	return map[string]string{
		"BeginFunctionArn":     FunctionARN("BeginFunction"),
		"FetchFunctionArn":     FunctionARN("FetchFunction"),
		"CorrelateFunctionArn": FunctionARN("CorrelateFunction"),
		"AlertsFunctionArn":    FunctionARN("AlertsFunction"),
		"FailFunctionArn":      FunctionARN("FailFunction"),
	}
}

// stub is a run that needs `rounds` correlate steps to be done; it records what it was given.
type stub struct {
	rounds     int
	fetches    int // calls, failed ones included
	iterations int // fetches applied
	alerts     int // alerts steps
	failed     *lambdafn.FailInput
	fetchErrs  []error // returned by the first fetches, in order
}

func (s *stub) serve(srv *LambdaServer) {
	step := func(f func(in workflow.State) (workflow.State, error)) RawHandler {
		return Typed(lambdafn.Wrap(func(_ context.Context, in workflow.State) (workflow.State, error) { return f(in) }))
	}
	srv.Handle(FunctionARN("BeginFunction"), step(func(in workflow.State) (workflow.State, error) {
		in.Iteration, in.WaitSeconds = s.iterations, 60 // the stored progress, as the engine's Begin
		return in, nil
	}))
	srv.Handle(FunctionARN("FetchFunction"), step(func(in workflow.State) (workflow.State, error) {
		s.fetches++
		if len(s.fetchErrs) > 0 {
			err := s.fetchErrs[0]
			s.fetchErrs = s.fetchErrs[1:]
			return in, err
		}
		s.iterations++
		in.Iteration, in.WaitSeconds = s.iterations, 0
		return in, nil
	}))
	srv.Handle(FunctionARN("CorrelateFunction"), step(func(in workflow.State) (workflow.State, error) {
		in.Done = in.Iteration >= s.rounds
		in.WaitSeconds = 30
		in.AlertsDue = in.Done || in.Iteration%2 == 1 // every other round, and after the final verdict
		return in, nil
	}))
	srv.Handle(FunctionARN("AlertsFunction"), step(func(in workflow.State) (workflow.State, error) {
		s.alerts++
		in.AlertsDue = false
		return in, nil
	}))
	srv.Handle(FunctionARN("FailFunction"), Typed(func(_ context.Context, in lambdafn.FailInput) (workflow.State, error) {
		s.failed = &in
		return workflow.State{RunID: in.RunID, Status: "failed", Done: true}, nil
	}))
}

// lambdaTimeout is how Lambda reports a function that ran out of time.
func lambdaTimeout() error {
	return messages.InvokeResponse_Error{Type: "Sandbox.Timedout", Message: "Task timed out after 300.00 seconds"}
}

func TestDefinitionPaths(t *testing.T) {
	t.Parallel()
	loop := []string{"Fetch", "FetchEnded", "Correlate", "Finished"}
	alertsThenAgain := []string{"Alerts", "AlertsEnded", "WaitInterval", "CountLoop", "LoopLimit"}
	again := []string{"WaitInterval", "CountLoop", "LoopLimit"}
	final := []string{"Alerts", "AlertsEnded", "Done"} // the last alerts pass, after the verdict is final
	path := func(parts ...[]string) []string {
		var out []string
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	start := []string{"Init", "SetDefaults", "Begin", "BeginEnded", "WaitDelay"}
	tests := []struct {
		name       string
		stub       *stub
		input      any
		wantStatus string
		wantError  string
		wantStates []string
		wantFailed *lambdafn.FailInput
	}{
		{
			name: "done after two rounds", stub: &stub{rounds: 2}, input: map[string]string{"runId": "r1"},
			wantStatus: "SUCCEEDED",
			wantStates: path(start, loop, alertsThenAgain, loop, final),
		},
		{
			name: "throttled twice then retried", input: map[string]string{"runId": "r2"},
			stub: &stub{rounds: 1, fetchErrs: []error{
				core.Errorf(core.ETHROTTLED, "slow down"), core.Errorf(core.ETRANSIENT, "try again")}},
			wantStatus: "SUCCEEDED",
			wantStates: path(start, loop, final),
		},
		{
			name: "a permanent error is recorded", input: map[string]string{"runId": "r3"},
			stub: &stub{rounds: 1, fetchErrs: []error{core.Errorf(core.ETHROTTLED, "slow down"),
				&os.PathError{Op: "open", Path: "x", Err: os.ErrPermission}}},
			wantStatus: "FAILED", wantError: "InternalError",
			wantStates: path(start, []string{"Fetch", "RecordFailure", "Failed"}),
			wantFailed: &lambdafn.FailInput{RunID: "r3", Error: &lambdafn.ErrorInfo{Error: "InternalError", Cause: `{"errorMessage":"open x: permission denied","errorType":"InternalError"}`}},
		},
		{
			name: "retries run out", input: map[string]string{"runId": "r4"},
			stub: &stub{rounds: 1, fetchErrs: []error{
				core.Errorf(core.ETHROTTLED, "1"), core.Errorf(core.ETHROTTLED, "2"), core.Errorf(core.ETHROTTLED, "3"),
				core.Errorf(core.ETHROTTLED, "4"), core.Errorf(core.ETHROTTLED, "5"), core.Errorf(core.ETHROTTLED, "6"),
				core.Errorf(core.ETHROTTLED, "7")}},
			wantStatus: "FAILED", wantError: "ThrottledError",
			wantStates: path(start, []string{"Fetch", "RecordFailure", "Failed"}),
			wantFailed: &lambdafn.FailInput{RunID: "r4", Error: &lambdafn.ErrorInfo{Error: "ThrottledError", Cause: `{"errorMessage":"7","errorType":"ThrottledError"}`}},
		},
		{
			// A fetch cut off by its Lambda's timeout stored what it read: one more attempt goes on.
			name: "a function timeout is retried once", input: map[string]string{"runId": "r7"},
			stub:       &stub{rounds: 1, fetchErrs: []error{lambdaTimeout()}},
			wantStatus: "SUCCEEDED",
			wantStates: path(start, loop, final),
		},
		{
			name: "a second timeout fails the run", input: map[string]string{"runId": "r8"},
			stub:       &stub{rounds: 1, fetchErrs: []error{lambdaTimeout(), lambdaTimeout()}},
			wantStatus: "FAILED", wantError: "Sandbox.Timedout",
			wantStates: path(start, []string{"Fetch", "RecordFailure", "Failed"}),
			wantFailed: &lambdafn.FailInput{RunID: "r8", Error: &lambdafn.ErrorInfo{Error: "Sandbox.Timedout",
				Cause: `{"errorMessage":"Task timed out after 300.00 seconds","errorType":"Sandbox.Timedout"}`}},
		},
		{
			name: "loop limit starts the next part", stub: &stub{rounds: 5},
			input:      map[string]any{"runId": "r5", "execution": map[string]any{"part": 0, "loops": 0, "maxLoops": 2, "name": "r5-x"}},
			wantStatus: "SUCCEEDED",
			wantStates: path([]string{"Init", "Begin", "BeginEnded", "WaitDelay"}, loop, alertsThenAgain, loop, again,
				[]string{"NextPart", "StartNextPart", "Continued"}),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := NewLambdaServer()
			defer srv.Close()
			tt.stub.serve(srv)
			r := NewRunner(t, srv, substitutions())
			o, err := r.Run(t.Context(), "exec-"+tt.name, tt.input)
			if err != nil {
				t.Fatal(err)
			}
			if o.Status != tt.wantStatus || o.Error != tt.wantError {
				t.Errorf("status %s error %q (cause %q), want %s %q", o.Status, o.Error, o.Cause, tt.wantStatus, tt.wantError)
			}
			if diff := cmp.Diff(tt.wantStates, o.States); diff != "" {
				t.Errorf("states entered (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantFailed, tt.stub.failed); diff != "" {
				t.Errorf("fail function input (-want +got):\n%s", diff)
			}
		})
	}
}

// TestNextPart follows a run across executions: the loop limit starts a fresh execution of the
// same state machine, named after the run and part, which carries the run on to its end.
func TestNextPart(t *testing.T) {
	t.Parallel()
	srv := NewLambdaServer()
	defer srv.Close()
	s := &stub{rounds: 5}
	s.serve(srv)
	r := NewRunner(t, srv, substitutions())
	// The first execution is named as awsapi.ExecutionName names it (the run, and when it was
	// created); its continuations after it, not after the run ID alone.
	input := map[string]any{"runId": "r6", "execution": map[string]any{"part": 0, "loops": 0, "maxLoops": 2, "name": "r6-m7x2k1"}}
	outs, err := r.RunChain(t.Context(), "r6-m7x2k1", input, 5)
	if err != nil {
		t.Fatal(err)
	}
	var lasts []string
	for _, o := range outs {
		lasts = append(lasts, o.Name+" "+o.Status+" "+o.Last())
	}
	if diff := cmp.Diff([]string{"r6-m7x2k1 SUCCEEDED Continued", "r6-m7x2k1-part-1 SUCCEEDED Continued", "r6-m7x2k1-part-2 SUCCEEDED Done"}, lasts); diff != "" {
		t.Errorf("executions (-want +got):\n%s", diff)
	}
	if s.fetches != 5 {
		t.Errorf("%d fetches, want 5 (one per round, none lost or repeated across parts)", s.fetches)
	}
	var final workflow.State
	if err := json.Unmarshal(outs[len(outs)-1].Output, &final); err != nil || !final.Done || final.Iteration != 5 {
		t.Errorf("final output %s (%v), want done after iteration 5", outs[len(outs)-1].Output, err)
	}
	type bookkeeping struct {
		Part, Loops, MaxLoops int
		Name                  string
	}
	var began []bookkeeping
	for _, inv := range srv.Invocations() {
		if inv.Function == FunctionARN("BeginFunction") {
			var p lambdafn.Payload
			var b bookkeeping
			if err := json.Unmarshal(inv.Payload, &p); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(p.Execution, &b); err != nil {
				t.Fatal(err)
			}
			began = append(began, b)
		}
	}
	if diff := cmp.Diff([]bookkeeping{{0, 0, 2, "r6-m7x2k1"}, {1, 0, 2, "r6-m7x2k1"}, {2, 0, 2, "r6-m7x2k1"}}, began); diff != "" {
		t.Errorf("bookkeeping each part began with (-want +got):\n%s", diff)
	}
}

// TestPlaceholdersHaveSubstitutions keeps the test substitutions in step with the definition.
func TestPlaceholdersHaveSubstitutions(t *testing.T) {
	def := readDefinition(t)
	var keys []string
	for k := range substitutions() {
		keys = append(keys, k)
	}
	if diff := cmp.Diff(Placeholders(def), keys, cmpSorted); diff != "" {
		t.Errorf("placeholders vs substitutions (-definition +test):\n%s", diff)
	}
}

// readDefinition returns the state machine definition under test.
func readDefinition(t *testing.T) []byte {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	def, err := os.ReadFile(filepath.Join(root, DefinitionPath))
	if err != nil {
		t.Fatal(err)
	}
	return def
}
