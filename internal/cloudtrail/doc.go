// Package cloudtrail reads AWS CloudTrail through LookupEvents (aws-sdk-go-v2) for one integration
// at a time: it builds the credentials, endpoint, proxy and TLS settings of the integration, keeps
// every account and region under LookupEvents' budget of 2 calls a second with a rate limiter
// shared by all runs, retries throttling and transient faults itself on the run's Clock (so a
// virtual clock never really sleeps), and turns the SDK's errors into a few typed errors the
// workflow and Step Functions can tell apart (ThrottledError, TransientError, AuthError,
// RequestError).
//
// The SDK's own retryer is switched off on purpose: its sleeps would use the wall clock and its
// attempts would be invisible to the run's apiCalls and throttled counters.
package cloudtrail
