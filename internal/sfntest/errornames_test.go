package sfntest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/trailproof/trailproof/internal/workflow"
)

// rule is one Retry or Catch entry of a state.
type rule struct {
	ErrorEquals []string `json:"ErrorEquals"`
}

// aslState is what of a state the error contract concerns.
type aslState struct {
	Type     string `json:"Type"`
	Resource string `json:"Resource"`
	Retry    []rule `json:"Retry"`
	Catch    []rule `json:"Catch"`
}

// serviceError reports whether an error name is produced by the service rather than by a
// function's code: Step Functions' own (States.*), the Lambda service's and runtime's (Lambda.*,
// Sandbox.Timedout), and the Step Functions SDK integration's (StepFunctions.*).
func serviceError(name string) bool {
	for _, p := range []string{"States.", "Lambda.", "Sandbox.", "StepFunctions."} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// TestErrorNamesMatchTheDefinition holds the state machine's Retry and Catch against the error
// names the functions report (workflow.ErrorName, which Execute and Simulate record too): every
// name the definition matches is one a function can report, every name a function can report is
// matched in each state that invokes a function, and a step's error is retried by the definition
// exactly when Execute retries it.
func TestErrorNamesMatchTheDefinition(t *testing.T) {
	var def struct {
		States map[string]aslState `json:"States"`
	}
	if err := json.Unmarshal(readDefinition(t), &def); err != nil {
		t.Fatalf("%s: %v", DefinitionPath, err)
	}
	names := workflow.ErrorNames()
	if !names["ThrottledError"] || !names["TransientError"] {
		t.Errorf("the mapping %v does not retry ThrottledError and TransientError, which the definition retries", names)
	}
	steps := 0
	for sn, st := range def.States {
		for _, r := range append(slices.Clone(st.Retry), st.Catch...) {
			for _, n := range r.ErrorEquals {
				if _, ok := names[n]; !ok && !serviceError(n) {
					t.Errorf("%s: state %s matches %q, which no function reports (the mapping has %v)", DefinitionPath, sn, n, names)
				}
			}
		}
		if st.Type != "Task" || st.Resource != "arn:aws:states:::lambda:invoke" {
			continue // not a function of ours: its errors are the service's
		}
		retried := func(n string) bool {
			return slices.ContainsFunc(st.Retry, func(r rule) bool { return slices.Contains(r.ErrorEquals, n) })
		}
		caught := slices.ContainsFunc(st.Catch, func(r rule) bool { return slices.Contains(r.ErrorEquals, "States.ALL") })
		isFail := sn == "RecordFailure" // records the failure: retries only what a store write may need
		if !isFail {
			steps++
		}
		for n, retryable := range names {
			switch {
			case !retried(n) && !caught && !slices.ContainsFunc(st.Catch, func(r rule) bool { return slices.Contains(r.ErrorEquals, n) }):
				t.Errorf("state %s neither retries nor catches %s: the execution would fail without recording the run", sn, n)
			case !isFail && retryable != retried(n):
				t.Errorf("state %s retries %s: %v; Execute and Simulate retry it: %v", sn, n, retried(n), retryable)
			}
		}
	}
	if steps < 4 {
		t.Errorf("%s: found %d states invoking a step function, want begin, fetch, correlate and alerts", DefinitionPath, steps)
	}
}
