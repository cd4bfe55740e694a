package workflow

import (
	"fmt"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// A step error carries a core code (core.ErrorCode); the code decides whether the step is retried
// (core.Temporary) and, through ErrorName, the name the state machine's Retry and Catch match. The
// Lambda runtime (lambdafn), Execute and Simulate all name errors with ErrorName, so a run fails
// with the same reason wherever it ran.

// errorNames maps a code to the error name the state machine sees. The names of the retryable
// codes are the ones statemachine/correlation.asl.json retries; every other name is caught and
// the run recorded as failed (internal/sfntest holds the definition and this table against
// each other).
var errorNames = map[string]string{
	core.ETHROTTLED:     "ThrottledError",
	core.ETRANSIENT:     "TransientError",
	core.EDENIED:        "AuthError",
	core.EREJECTED:      "RequestError",
	core.EUNREACHABLE:   "UnreachableError",
	core.EINVALID:       "InvalidInputError",
	core.ENOTFOUND:      "NotFoundError",
	core.ECONFLICT:      "ConflictError",
	core.EUNAUTHORIZED:  "UnauthorizedError",
	core.ETOOLARGE:      "TooLargeError",
	core.EUNSUPPORTED:   "UnsupportedError",
	core.EUNPROCESSABLE: "UnprocessableError",
	core.EINTERNAL:      "InternalError",
}

// ErrorName is the name a step error is reported under: to Step Functions as the Lambda's
// errorType, and in a failed run's error field. It depends only on the error's code.
func ErrorName(err error) string {
	if name, ok := errorNames[core.ErrorCode(err)]; ok {
		return name
	}
	return errorNames[core.EINTERNAL]
}

// ErrorNames returns every name ErrorName can return, each with whether its errors are retried
// (core.Temporary: Execute, Simulate and the state machine retry them), so that a test can hold the state machine's Retry and Catch against them.
func ErrorNames() map[string]bool {
	m := make(map[string]bool, len(errorNames))
	for code, name := range errorNames {
		m[name] = core.Temporary(&core.Error{Code: code})
	}
	return m
}

// classify gives a step error the code it is retried and named by. An error that already has one
// (the CloudTrail source's, bad settings) keeps it; a concurrent update is transient.
func classify(err error) error {
	switch core.ErrorCode(err) {
	case "":
		return nil
	case core.ECONFLICT:
		return &core.Error{Code: core.ETRANSIENT, Message: err.Error(), Err: err}
	case core.EINTERNAL:
		return diagnose(err)
	}
	return err
}

// diagnose names the side at fault for an error that came without a code (a failure to build
// the source: STS unreachable, a proxy refusing...), with errclass as the connectivity test does;
// a failure that may pass is retried, any other fails the run at once.
func diagnose(err error) error {
	d := errclass.Classify(err, errclass.Settings{})
	code := core.EUNREACHABLE
	switch {
	case d.Temporary:
		code = core.ETRANSIENT
	case d.Class == errclass.Credentials:
		code = core.EDENIED
	}
	switch d.Class {
	case errclass.DNS, errclass.TCP, errclass.TLS, errclass.Proxy, errclass.Timeout, errclass.Credentials:
	default:
		return err // an AWS error code from elsewhere than CloudTrail (the store): not CloudTrail's to blame
	}
	return &core.Error{Code: code, Message: fmt.Sprintf("%s: %s: %s", err.Error(), errclass.Label(d.Class), d.Remedy), Err: err}
}
