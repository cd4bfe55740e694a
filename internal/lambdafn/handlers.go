package lambdafn

import (
	"context"
	"encoding/json"
	"errors"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/trailproof/trailproof/internal/workflow"
)

// Payload is what the state machine passes to the begin, fetch, correlate and alerts functions and gets
// back from them: the workflow State at the top level (the definition's Choice and Wait states
// read $.done and $.waitSeconds there) plus Execution, the definition's own bookkeeping (part
// number and loop counter, see statemachine/correlation.asl.json). A task's output replaces the
// whole payload, so the handlers hand Execution back untouched rather than lose it.
type Payload struct {
	workflow.State
	Execution json.RawMessage `json:"execution,omitempty"`
}

// Step is the signature of one workflow step.
type Step func(ctx context.Context, in workflow.State) (workflow.State, error)

// Handler is the shape lambda.Start accepts for begin, fetch, correlate and alerts.
type Handler func(ctx context.Context, in Payload) (Payload, error)

// FailHandler is the shape lambda.Start accepts for the fail function.
type FailHandler func(ctx context.Context, in FailInput) (workflow.State, error)

// Begin is the begin function's handler.
func Begin(e *workflow.Engine) Handler { return Wrap(e.Begin) }

// Fetch is the fetch function's handler.
func Fetch(e *workflow.Engine) Handler { return Wrap(e.Fetch) }

// Correlate is the correlate function's handler.
func Correlate(e *workflow.Engine) Handler { return Wrap(e.Correlate) }

// Alerts is the alerts function's handler.
func Alerts(e *workflow.Engine) Handler { return Wrap(e.Alerts) }

// Fail is the fail function's handler: it records the run as failed with the error the state
// machine caught.
func Fail(e *workflow.Engine) FailHandler {
	return func(ctx context.Context, in FailInput) (workflow.State, error) {
		var name, msg string
		if in.Error != nil {
			name, msg = in.Error.Error, causeMessage(in.Error.Cause)
		}
		out, err := e.Fail(ctx, in.RunID, name, msg)
		return out, lambdaError(err)
	}
}

// Wrap turns a step into a handler: Execution passes through, and an error is given the name
// Step Functions' Retry and Catch match on (see lambdaError).
func Wrap(step Step) Handler {
	return func(ctx context.Context, in Payload) (Payload, error) {
		out, err := step(ctx, in.State)
		if err != nil {
			return Payload{}, lambdaError(err)
		}
		return Payload{State: out, Execution: in.Execution}, nil
	}
}

// lambdaError names err for the Lambda runtime. The runtime reports a plain error under its Go
// type name, which for a wrapped error is fmt's "wrapError": useless to a Retry rule and to the
// person reading the failed run, so the name is workflow.ErrorName's (the one Execute and
// Simulate record) and sent as the runtime's own InvokeResponse_Error, which it passes through.
func lambdaError(err error) error {
	if err == nil {
		return nil
	}
	var ive messages.InvokeResponse_Error
	if errors.As(err, &ive) {
		return ive // already named and worded for the runtime
	}
	return messages.InvokeResponse_Error{Type: workflow.ErrorName(err), Message: err.Error()}
}

// FailInput is what the fail function receives: the state machine's Catch puts the error there.
type FailInput struct {
	RunID string     `json:"runId"`
	Error *ErrorInfo `json:"error,omitempty"`
}

// ErrorInfo is the shape Step Functions' Catch ResultPath gives: the error name and its cause.
type ErrorInfo struct {
	Error string `json:"Error"`
	Cause string `json:"Cause"`
}

// causeMessage extracts the message from a Step Functions Cause, which for a Lambda error is the
// JSON {"errorMessage": ..., "errorType": ...}; any other cause (a States.* error's) is kept whole.
func causeMessage(cause string) string {
	var v struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if err := json.Unmarshal([]byte(cause), &v); err == nil && v.ErrorMessage != "" {
		return v.ErrorMessage
	}
	return cause
}
