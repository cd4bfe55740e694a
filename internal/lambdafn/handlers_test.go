package lambdafn_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"testing"

	"github.com/aws/aws-lambda-go/lambda/messages"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/sfntest"
	"github.com/trailproof/trailproof/internal/workflow"
)

// TestErrorNamed: the Lambda runtime names a step error as Execute and Simulate record it
// (workflow.ErrorName, by the error's code), however deeply it is wrapped.
func TestErrorNamed(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{core.Errorf(core.ETHROTTLED, "x"), "ThrottledError"},
		{fmt.Errorf("fetch: %w", core.Errorf(core.ETRANSIENT, "x")), "TransientError"},
		{fmt.Errorf("fetch: %w", &cloudtrail.AuthError{Code: "ExpiredToken"}), "AuthError"},
		{fmt.Errorf("fetch: %w", &cloudtrail.ThrottledError{Code: "ThrottlingException"}), "ThrottledError"},
		{fmt.Errorf("load run: %w", core.Errorf(core.ENOTFOUND, "run %q not found", "r")), "NotFoundError"},
		{core.FieldError("fieldMap", "bad"), "InvalidInputError"},
		{fmt.Errorf("open: %w", &os.PathError{Op: "open", Path: "x", Err: os.ErrNotExist}), "InternalError"},
		{errors.New("plain"), "InternalError"},
		{messages.InvokeResponse_Error{Type: "Custom", Message: "m"}, "Custom"},
	}
	for _, tt := range tests {
		h := lambdafn.Wrap(func(context.Context, workflow.State) (workflow.State, error) { return workflow.State{}, tt.err })
		_, err := h(t.Context(), lambdafn.Payload{})
		var ive messages.InvokeResponse_Error
		msg := tt.err.Error()
		if errors.As(tt.err, &ive) {
			msg = ive.Message // already worded for the runtime
		}
		if !errors.As(err, &ive) || ive.Type != tt.want || ive.Message != msg {
			t.Errorf("%v: the handler returned %#v, want errorType %q with the message", tt.err, err, tt.want)
		}
	}
}

// TestHandlerErrorsAreNamed: the Lambda runtime reports an InvokeResponse_Error as it is, so the
// errorType Step Functions sees is lambdafn's name, with the message intact.
func TestHandlerErrorsAreNamed(t *testing.T) {
	h := lambdafn.Wrap(func(context.Context, workflow.State) (workflow.State, error) {
		return workflow.State{}, fmt.Errorf("fetch run r: %w", core.Errorf(core.ETHROTTLED, "rate exceeded"))
	})
	_, err := h(t.Context(), lambdafn.Payload{State: workflow.State{RunID: "r"}})
	var ive messages.InvokeResponse_Error
	if !errors.As(err, &ive) || ive.Type != "ThrottledError" || ive.Message != "fetch run r: rate exceeded" {
		t.Errorf("error %#v, want InvokeResponse_Error ThrottledError with the message", err)
	}
}

// TestFetchRepeated: Step Functions repeats a task after a timeout; the same fetch given the same
// input again must neither read CloudTrail again nor store events twice.
func TestFetchRepeated(t *testing.T) {
	f := sfntest.NewFixture(t, sfntest.FixtureOptions{})
	e := f.Engine()
	begin, fetch := lambdafn.Begin(e), lambdafn.Fetch(e)
	exec := json.RawMessage(`{"part":0,"loops":0,"maxLoops":500}`)
	p, err := begin(t.Context(), lambdafn.Payload{State: workflow.State{RunID: f.RunID}, Execution: exec})
	if err != nil {
		t.Fatal(err)
	}
	if string(p.Execution) != string(exec) {
		t.Errorf("begin returned execution %s, want %s passed through", p.Execution, exec)
	}
	f.Clock.Advance(6 * 60e9) // past the delivery delay of the action's first events
	first, err := fetch(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	afterFirst := f.Run(t)
	stored := func(r *core.Run) int {
		n := 0
		for _, part := range workflow.Partitions(f.Integration, r) {
			raws, err := core.CollectRawEvents(f.Store.RawEvents(t.Context(), part, r.Window.From.Add(-3600e9), r.Window.To.Add(3600e9)))
			if err != nil {
				t.Fatal(err)
			}
			n += len(raws)
		}
		return n
	}
	storedFirst := stored(afterFirst)
	if storedFirst == 0 || first.APICalls == 0 {
		t.Fatalf("the first fetch read nothing (%+v): the test would prove nothing", first.State)
	}
	again, err := fetch(t.Context(), p)
	if err != nil {
		t.Fatal(err)
	}
	afterAgain := f.Run(t)
	if diff := cmp.Diff(first, again); diff != "" {
		t.Errorf("repeated fetch answered differently (-first +again):\n%s", diff)
	}
	type counts struct{ Queries, APICalls, RawEvents int }
	c1 := counts{afterFirst.Queries, afterFirst.APICalls, afterFirst.Progress.RawEvents}
	c2 := counts{afterAgain.Queries, afterAgain.APICalls, afterAgain.Progress.RawEvents}
	if c1 != c2 {
		t.Errorf("run after the first fetch %+v, after the repeat %+v: want unchanged", c1, c2)
	}
	if n := stored(afterAgain); n != storedFirst {
		t.Errorf("%d raw events stored after the repeated fetch, %d after the first", n, storedFirst)
	}
}
