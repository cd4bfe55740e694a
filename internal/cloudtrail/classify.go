package cloudtrail

import "github.com/trailproof/trailproof/internal/core"

// The methods below give each error its core code (core.ErrorCode), from which the workflow
// decides whether to retry and names the error for the state machine (workflow.ErrorName).

// ErrorCode reports core.ETHROTTLED: CloudTrail kept throttling.
func (e *ThrottledError) ErrorCode() string { return core.ETHROTTLED }

// ErrorCode reports core.ETRANSIENT: a 5xx or a network fault may pass.
func (e *TransientError) ErrorCode() string { return core.ETRANSIENT }

// ErrorCode reports core.EDENIED: the settings or the IAM policy must change first.
func (e *AuthError) ErrorCode() string { return core.EDENIED }

// ErrorCode reports core.EUNREACHABLE when CloudTrail was never reached (a name that does not
// resolve, a certificate that does not verify, a proxy or the network guard refusing), so that a
// run's error does not read as CloudTrail rejecting the request; else core.EREJECTED: the same
// request fails the same way.
func (e *RequestError) ErrorCode() string {
	if unreachableCodes[e.Code] {
		return core.EUNREACHABLE
	}
	return core.EREJECTED
}

// unreachableCodes are errclass's codes for a failure before any answer from CloudTrail.
var unreachableCodes = map[string]bool{
	"DNSFailure": true, "ConnectionFailed": true, "TLSVerificationFailed": true, "TLSFailure": true,
	"ProxyFailure": true, "ProxyRefused": true, "AddressNotAllowed": true,
}
