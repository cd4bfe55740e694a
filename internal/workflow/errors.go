package workflow

import (
	"errors"
	"fmt"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// The step errors below are returned unwrapped to Step Functions, whose Retry and Catch match the
// error's type name ("ThrottledError", "TransientError"); every other error is permanent and the
// run is recorded as failed.

// ThrottledError: CloudTrail still throttled after the source's own backoff. Retry later.
type ThrottledError struct{ Message string }

func (e *ThrottledError) Error() string { return e.Message }

// TransientError: a failure that a retry may fix (a 5xx, a network error, a concurrent update).
type TransientError struct{ Message string }

func (e *TransientError) Error() string { return e.Message }

// Classifier tells a source error's kind without the workflow importing the source. The
// CloudTrail source's errors implement it.
type Classifier interface {
	Throttled() bool
	Temporary() bool
}

// classify maps an error to the named types Step Functions matches on.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var t *ThrottledError
	var tr *TransientError
	if errors.As(err, &t) || errors.As(err, &tr) {
		return err
	}
	var c Classifier
	if errors.As(err, &c) {
		switch {
		case c.Throttled():
			return &ThrottledError{Message: err.Error()}
		case c.Temporary():
			return &TransientError{Message: err.Error()}
		}
		return err // the source has said what failed and what to do
	}
	if core.ErrorCode(err) == core.ECONFLICT {
		return &TransientError{Message: err.Error()}
	}
	return diagnose(err)
}

// diagnose names the side at fault for an error that did not come classified from the source (a
// failure to build the source: STS unreachable, a proxy refusing...), with errclass as the
// connectivity test does; a failure that may pass is retried, any other fails the run at once.
func diagnose(err error) error {
	var ce *core.Error
	if errors.As(err, &ce) {
		return err // bad settings or input: the message already names the field
	}
	d := errclass.Classify(err, errclass.Settings{})
	switch d.Class {
	case errclass.DNS, errclass.TCP, errclass.TLS, errclass.Proxy, errclass.Timeout, errclass.Credentials:
	default:
		return err // an AWS error code from elsewhere than CloudTrail (the store): not CloudTrail's to blame
	}
	msg := fmt.Sprintf("%s: %s: %s", err.Error(), errclass.Label(d.Class), d.Remedy)
	if d.Temporary {
		return &TransientError{Message: msg}
	}
	return &PermanentError{Message: msg}
}

// PermanentError: a failure that no retry can fix until a setting changes (a host name that does
// not resolve, refused credentials). The run fails at once.
type PermanentError struct{ Message string }

func (e *PermanentError) Error() string { return e.Message }

// Retryable reports whether a step error is worth retrying.
func Retryable(err error) bool {
	var t *ThrottledError
	var tr *TransientError
	return errors.As(err, &t) || errors.As(err, &tr)
}

// causeMessage extracts the message from a Step Functions Cause, which for a Lambda error is the
// JSON {"errorMessage": ..., "errorType": ...}.
func causeMessage(cause string) string {
	var v struct {
		ErrorMessage string `json:"errorMessage"`
	}
	if err := jsonUnmarshal([]byte(cause), &v); err == nil && v.ErrorMessage != "" {
		return v.ErrorMessage
	}
	return cause
}
