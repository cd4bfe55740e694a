package lambdafn

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"

	"github.com/aws/aws-lambda-go/lambda/messages"

	"github.com/trailproof/trailproof/internal/core"
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
type FailHandler func(ctx context.Context, in workflow.FailInput) (workflow.State, error)

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
	return func(ctx context.Context, in workflow.FailInput) (workflow.State, error) {
		out, err := e.Fail(ctx, in)
		return out, lambdaError(err)
	}
}

// Wrap turns a step into a handler: Execution passes through, and an error is given the name
// Step Functions' Retry and Catch match on (see ErrorName).
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
// person reading the failed run, so the name is chosen here and sent as the runtime's own
// InvokeResponse_Error (which it passes through as it is).
func lambdaError(err error) error {
	if err == nil {
		return nil
	}
	var ive messages.InvokeResponse_Error
	if errors.As(err, &ive) {
		return ive // already named and worded for the runtime
	}
	return messages.InvokeResponse_Error{Type: ErrorName(err), Message: err.Error()}
}

// ErrorName is the errorType a step error is reported under, and so the Error name Step
// Functions matches: "ThrottledError" and "TransientError" for the workflow's retryable errors
// (the definition retries them), else the first named error type in the chain (the CloudTrail
// source's "AuthError" or "RequestError", say), else one derived from the core error code.
func ErrorName(err error) string {
	var ive messages.InvokeResponse_Error
	if errors.As(err, &ive) {
		return ive.Type
	}
	var t *workflow.ThrottledError
	if errors.As(err, &t) {
		return "ThrottledError"
	}
	var tr *workflow.TransientError
	if errors.As(err, &tr) {
		return "TransientError"
	}
	for e := err; e != nil; e = errors.Unwrap(e) {
		if _, ok := e.(*core.Error); ok {
			break // named by its code below
		}
		if name := typeName(e); name != "" {
			return name
		}
	}
	switch core.ErrorCode(err) {
	case core.EINVALID:
		return "InvalidInputError"
	case core.ENOTFOUND:
		return "NotFoundError"
	case core.ECONFLICT:
		return "ConflictError"
	case core.EUNAUTHORIZED:
		return "UnauthorizedError"
	case core.EUNPROCESSABLE:
		return "UnprocessableError"
	}
	return "InternalError"
}

// typeName returns the exported name of err's type, or "" for an anonymous wrapper (fmt's,
// errors.Join's) or an unexported type.
func typeName(err error) string {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	name := t.Name()
	if name == "" || t.PkgPath() == "errors" || t.PkgPath() == "fmt" {
		return ""
	}
	if r := name[0]; r < 'A' || r > 'Z' {
		return ""
	}
	return name
}
