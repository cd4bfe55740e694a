package cloudtrail

import (
	"errors"
	"fmt"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// The four error types below are what Lookup returns when CloudTrail cannot be read. Each carries
// its core error code (classify.go), which is what the workflow retries on and names for Step
// Functions; the types keep the AWS error code and attempts the connectivity test reports. Their
// Error text never holds a secret.

// ThrottledError means CloudTrail answered ThrottlingException on every attempt: the account and
// region are over LookupEvents' 2 calls a second, usually because something else uses the budget.
type ThrottledError struct {
	Region   string // the region queried
	Code     string // the AWS error code, e.g. ThrottlingException
	Attempts int    // calls made for this page before giving up
	Message  string // what happened and what to do
	Err      error  // the last SDK error
}

// Error names the region and the AWS error code, and says what to do.
func (e *ThrottledError) Error() string { return formatError(e.Region, e.Code, e.Message) }

// Unwrap returns the last SDK error, so errors.As finds smithy.APIError.
func (e *ThrottledError) Unwrap() error { return e.Err }

// TransientError means CloudTrail or the network kept failing in a way that may pass: 5xx,
// InternalFailure, ServiceUnavailable, timeouts, refused or reset connections.
type TransientError struct {
	Region   string
	Code     string // the AWS error code, or Timeout / ConnectionError for network faults
	Attempts int
	Message  string
	Err      error
}

// Error names the region and the AWS error code, and says what to do.
func (e *TransientError) Error() string { return formatError(e.Region, e.Code, e.Message) }

// Unwrap returns the last SDK error.
func (e *TransientError) Unwrap() error { return e.Err }

// AuthError means the credentials were refused, have expired or lack permission; retrying
// cannot help until the integration's settings or IAM policy change.
type AuthError struct {
	Region  string
	Code    string // UnrecognizedClientException, ExpiredToken, AccessDenied...
	Message string
	Err     error
}

// Error names the region and the AWS error code, and says what to do.
func (e *AuthError) Error() string { return formatError(e.Region, e.Code, e.Message) }

// Unwrap returns the SDK error.
func (e *AuthError) Unwrap() error { return e.Err }

// RequestError means CloudTrail rejected the request itself (a 4xx other than auth and
// throttling, such as InvalidNextToken or InvalidTimeRange), or the endpoint cannot be trusted
// (TLS verification failed): repeating the same request would fail the same way.
type RequestError struct {
	Region  string
	Code    string
	Message string
	Err     error
	// Class is errclass's diagnosis of the failure (empty when CloudTrail itself answered).
	Class errclass.Class
}

// Error names the region and the AWS error code, and says what to do.
func (e *RequestError) Error() string { return formatError(e.Region, e.Code, e.Message) }

// Unwrap returns the SDK error.
func (e *RequestError) Unwrap() error { return e.Err }

func formatError(region, code, msg string) string {
	return fmt.Sprintf("cloudtrail lookup events in %s: %s: %s", region, code, msg)
}

// kind is how a failed call is handled.
type kind int

const (
	kindRequest kind = iota
	kindThrottled
	kindTransient
	kindAuth
)

func (k kind) retryable() bool { return k == kindThrottled || k == kindTransient }

// DiagSettings is what of in shapes an error's remedy (errclass), for the source and the connectivity test alike.
func DiagSettings(in *core.Integration) errclass.Settings {
	return errclass.Settings{Endpoint: in.Endpoint != "", Proxy: in.Proxy != "", Role: in.RoleARN != ""}
}

// classify decides how err is handled, with errclass's diagnosis: the AWS error code when there
// is one, else a name for the network fault. A failure that cannot pass without a change of
// settings (a name that does not resolve, a certificate that does not verify) is not retried.
func classify(err error, set errclass.Settings) (kind, errclass.Diagnosis) {
	d := errclass.Classify(err, set)
	var se *v4.SigningError
	if d.Class == errclass.Unknown && errors.As(err, &se) {
		// No usable credentials at all (empty default chain, unreadable profile...).
		d = errclass.FromCode("CredentialsUnavailable", 0, err.Error(), set)
	}
	switch {
	case d.Class == errclass.Throttling:
		return kindThrottled, d
	case d.Class == errclass.Credentials || d.Class == errclass.Permission:
		return kindAuth, d
	case d.Temporary:
		return kindTransient, d
	}
	return kindRequest, d
}
