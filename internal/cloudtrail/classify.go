package cloudtrail

import (
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// The methods below give each error its core code (core.ErrorCode), from which the workflow
// decides whether to retry and names the error for the state machine (workflow.ErrorName).

// ErrorCode reports core.ETHROTTLED: CloudTrail kept throttling.
func (e *ThrottledError) ErrorCode() string { return core.ETHROTTLED }

// ErrorCode reports core.ETRANSIENT: a 5xx or a network fault may pass.
func (e *TransientError) ErrorCode() string { return core.ETRANSIENT }

// ErrorCode reports core.EDENIED: the settings or the IAM policy must change first.
func (e *AuthError) ErrorCode() string { return core.EDENIED }

// ErrorCode reports core.EUNREACHABLE when CloudTrail was never reached (errclass's DNS, TCP,
// TLS, proxy or guard classes), so that a run's error does not read as CloudTrail rejecting the
// request; else core.EREJECTED: the same request fails the same way.
func (e *RequestError) ErrorCode() string {
	if unreachable(e.Class) {
		return core.EUNREACHABLE
	}
	return core.EREJECTED
}

// unreachable reports whether a failure of class c happened before AWS was reached.
func unreachable(c errclass.Class) bool {
	switch c {
	case errclass.DNS, errclass.TCP, errclass.TLS, errclass.Proxy, errclass.Refused:
		return true
	}
	return false
}
