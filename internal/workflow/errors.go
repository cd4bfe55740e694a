package workflow

import (
	"errors"

	"github.com/trailproof/trailproof/internal/core"
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
	}
	if core.ErrorCode(err) == core.ECONFLICT {
		return &TransientError{Message: err.Error()}
	}
	return err
}

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
