package cloudtrail

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/trailproof/trailproof/internal/netguard"
)

// The four error types below are what Lookup returns when CloudTrail cannot be read. They are
// distinct types (not one type with a kind field) because the Lambda runtime reports an error by
// its type name, and Step Functions Retry/Catch rules match on that name: "ThrottledError",
// "TransientError", "AuthError", "RequestError". Their Error text never holds a secret.

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

var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "ThrottledException": true,
	"TooManyRequestsException": true, "RequestLimitExceeded": true, "RequestThrottled": true,
	"RequestThrottledException": true, "SlowDown": true, "PriorRequestNotComplete": true,
}

var authCodes = map[string]bool{
	"UnrecognizedClientException": true, "InvalidClientTokenId": true,
	"ExpiredToken": true, "ExpiredTokenException": true, "RequestExpired": true,
	"SignatureDoesNotMatch": true, "InvalidSignatureException": true,
	"IncompleteSignature": true, "MissingAuthenticationToken": true,
	"MissingAuthenticationTokenException": true, "InvalidAccessKeyId": true,
	"AuthFailure": true, "NotAuthorized": true, "OptInRequired": true,
	"RegionDisabledException": true,
}

var transientCodes = map[string]bool{
	"InternalFailure": true, "InternalError": true, "InternalServerError": true,
	"InternalServiceError": true, "ServiceUnavailable": true, "ServiceUnavailableException": true,
	"RequestTimeout": true, "RequestTimeoutException": true, "BadGateway": true,
	"GatewayTimeout": true, "EC2ThrottledException": true,
}

// classify decides how err is handled and names it: the AWS error code when there is one, else a
// name for the network fault. detail is the cause in words (not yet scrubbed of secrets).
func classify(err error) (k kind, code, detail string) {
	var refused *netguard.RefusedError
	if errors.As(err, &refused) {
		// The guard refused the address: the same call would be refused again.
		return kindRequest, refused.Code(), refused.Error()
	}
	status := 0
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, detail = ae.ErrorCode(), ae.ErrorMessage()
		switch {
		case throttleCodes[code] || status == http.StatusTooManyRequests:
			return kindThrottled, code, detail
		case authCodes[code] || strings.HasPrefix(code, "AccessDenied"):
			return kindAuth, code, detail
		case transientCodes[code] || status >= 500:
			return kindTransient, code, detail
		case status == http.StatusUnauthorized || status == http.StatusForbidden:
			return kindAuth, code, detail
		default:
			return kindRequest, code, detail
		}
	}
	// A response without a recognisable AWS error body (a proxy's HTML page, say).
	if status == http.StatusTooManyRequests {
		return kindThrottled, "TooManyRequests", err.Error()
	}
	if status >= 500 {
		return kindTransient, fmt.Sprintf("HTTP%d", status), err.Error()
	}
	if status == http.StatusUnauthorized || status == http.StatusForbidden {
		return kindAuth, fmt.Sprintf("HTTP%d", status), err.Error()
	}
	if status >= 400 {
		return kindRequest, fmt.Sprintf("HTTP%d", status), err.Error()
	}
	if isTLSVerifyError(err) {
		return kindRequest, "TLSVerificationFailed", err.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return kindTransient, "Timeout", err.Error()
	}
	if (retry.RetryableConnectionError{}).IsErrorRetryable(err) == aws.TrueTernary {
		return kindTransient, "ConnectionError", err.Error()
	}
	var se *v4.SigningError
	if errors.As(err, &se) {
		// No usable credentials at all (empty default chain, unreadable profile...).
		return kindAuth, "CredentialsUnavailable", err.Error()
	}
	// Anything else (an undecodable answer, most likely) may well pass on the next attempt.
	return kindTransient, "UnexpectedResponse", err.Error()
}

func isTLSVerifyError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

// advice tells the person reading the error what to do about it.
func advice(k kind, code string, role bool) string {
	switch k {
	case kindThrottled:
		return "CloudTrail allows 2 LookupEvents calls a second per account and region and other " +
			"clients are using that budget; lower the query frequency (queryInterval) or the event budget (pageSize x maxPage), or retry later"
	case kindTransient:
		if code == "Timeout" {
			return "the call did not finish within the integration's timeout; check the network, proxy and endpoint, or raise timeout"
		}
		if code == "ConnectionError" {
			return "CloudTrail could not be reached; check the endpoint, the proxy and the network"
		}
		return "CloudTrail failed on its side; this usually passes, retry later"
	case kindAuth:
		switch {
		case code == "UnrecognizedClientException" || code == "InvalidClientTokenId" || code == "InvalidAccessKeyId":
			return "AWS does not recognise the access key; check accessKeyId (and sessionToken for temporary keys) and that the key is active"
		case code == "SignatureDoesNotMatch" || code == "InvalidSignatureException" || code == "IncompleteSignature":
			return "the request signature does not match; check secretAccessKey"
		case strings.HasPrefix(code, "Expired") || code == "RequestExpired":
			return "the credentials have expired; supply a fresh sessionToken, or use long-term keys or roleArn"
		case strings.HasPrefix(code, "AccessDenied") && role:
			return "access denied; check that the base credentials may call sts:AssumeRole on roleArn, that its trust policy accepts externalId, and that the role allows cloudtrail:LookupEvents"
		case strings.HasPrefix(code, "AccessDenied"):
			return "the credentials are valid but may not call cloudtrail:LookupEvents; grant that permission"
		case code == "CredentialsUnavailable":
			return "no AWS credentials were found; set accessKeyId and secretAccessKey or roleArn, or give the host an IAM role"
		case code == "OptInRequired" || code == "RegionDisabledException":
			return "the region is not enabled for this account; enable it or choose another awsRegion"
		}
		return "the credentials were refused; check accessKeyId, secretAccessKey, sessionToken and roleArn"
	default:
		if code == "TLSVerificationFailed" {
			return "the server's TLS certificate could not be verified; check the endpoint and proxy, " +
				"or set verifySsl to false only for an endpoint you trust"
		}
		if code == (&netguard.RefusedError{}).Code() {
			return "the endpoint or proxy resolves to an internal address; if that is intended, the operator allows the host with --allow-endpoint or --allow-proxy (" +
				netguard.EnvAllowEndpoints + ", " + netguard.EnvAllowProxies + ")"
		}
		if code == "InvalidNextToken" {
			return "CloudTrail rejected the pagination token; run the query again"
		}
		return "CloudTrail rejected the request; check the query (time range, lookup attribute, category) and the endpoint"
	}
}
