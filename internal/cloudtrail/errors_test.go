package cloudtrail

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
)

// responseErr wraps err the way the SDK reports an HTTP answer with the given status.
func responseErr(status int, err error) error {
	return &smithy.OperationError{ServiceID: "CloudTrail", OperationName: "LookupEvents",
		Err: &awshttp.ResponseError{ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: &http.Response{StatusCode: status}}, Err: err}}}
}

func apiErr(status int, code string) error {
	return responseErr(status, &smithy.GenericAPIError{Code: code, Message: "m"})
}

func sendErr(err error) error {
	return &smithy.OperationError{ServiceID: "CloudTrail", OperationName: "LookupEvents",
		Err: &smithyhttp.RequestSendError{Err: &url.Error{Op: "Post", URL: "https://cloudtrail", Err: err}}}
}

func TestClassify(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantKind kind
		wantCode string
	}{
		{"throttling", apiErr(400, "ThrottlingException"), kindThrottled, "ThrottlingException"},
		{"429 with a code", apiErr(429, "SomethingNew"), kindThrottled, "SomethingNew"},
		{"429 without a body", responseErr(429, errors.New("no body")), kindThrottled, "HTTP429"},
		{"internal failure", apiErr(500, "InternalFailure"), kindTransient, "InternalFailure"},
		{"service unavailable", apiErr(503, "ServiceUnavailable"), kindTransient, "ServiceUnavailable"},
		{"any 5xx code", apiErr(502, "Whatever"), kindTransient, "Whatever"},
		{"5xx without a body", responseErr(504, errors.New("html")), kindTransient, "HTTP504"},
		{"unrecognized client", apiErr(400, "UnrecognizedClientException"), kindAuth, "UnrecognizedClientException"},
		{"invalid client token", apiErr(403, "InvalidClientTokenId"), kindAuth, "InvalidClientTokenId"},
		{"expired token", apiErr(400, "ExpiredToken"), kindAuth, "ExpiredToken"},
		{"signature", apiErr(403, "SignatureDoesNotMatch"), kindAuth, "SignatureDoesNotMatch"},
		{"access denied", apiErr(400, "AccessDeniedException"), kindAuth, "AccessDeniedException"},
		{"403 with another code", apiErr(403, "Forbidden"), kindAuth, "Forbidden"},
		{"invalid next token", apiErr(400, "InvalidNextToken"), kindRequest, "InvalidNextToken"},
		{"invalid time range", apiErr(400, "InvalidTimeRangeException"), kindRequest, "InvalidTimeRangeException"},
		{"404 without a body", responseErr(404, errors.New("nope")), kindRequest, "HTTP404"},
		{"timeout", sendErr(context.DeadlineExceeded), kindTransient, "Timeout"},
		{"connection refused", sendErr(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}), kindTransient, "ConnectionFailed"},
		{"connection reset", sendErr(errors.New("read: connection reset by peer")), kindTransient, "ConnectionFailed"},
		// A name that does not resolve will not resolve on retry: fail at once, naming DNS.
		{"no such host", sendErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "cloudtrail.nowhere.invalid", IsNotFound: true}}), kindRequest, "DNSFailure"},
		{"DNS server timeout", sendErr(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "i/o timeout", Name: "x", IsTimeout: true}}), kindTransient, "DNSFailure"},
		{"unknown certificate authority", sendErr(x509.UnknownAuthorityError{}), kindRequest, "TLSVerificationFailed"},
		{"no credentials", &smithy.OperationError{Err: &v4.SigningError{Err: errors.New("failed to retrieve credentials")}}, kindAuth, "CredentialsUnavailable"},
		{"credentials refused by STS", &smithy.OperationError{Err: &v4.SigningError{Err: fmt.Errorf("assume role: %w", apiErr(403, "AccessDenied"))}}, kindAuth, "AccessDenied"},
		{"STS down", &smithy.OperationError{Err: &v4.SigningError{Err: fmt.Errorf("assume role: %w", apiErr(503, "ServiceUnavailable"))}}, kindTransient, "ServiceUnavailable"},
		{"undecodable answer", errors.New("failed to decode response body"), kindTransient, "UnexpectedResponse"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, d := classify(tc.err, errclass.Settings{})
			if k != tc.wantKind || d.Code != tc.wantCode {
				t.Errorf("classify = %v %q, want %v %q", k, d.Code, tc.wantKind, tc.wantCode)
			}
		})
	}
}

// TestErrorTypeNames pins the names Step Functions matches in Retry and Catch rules: the Lambda
// runtime reports an error by its type name.
func TestErrorTypeNames(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&ThrottledError{}, "ThrottledError"},
		{&TransientError{}, "TransientError"},
		{&AuthError{}, "AuthError"},
		{&RequestError{}, "RequestError"},
	} {
		if got := reflect.TypeOf(tc.err).Elem().Name(); got != tc.want {
			t.Errorf("type name %q, want %q", got, tc.want)
		}
	}
}

// TestRequestErrorCode: a request that never reached CloudTrail is unreachable, not rejected, so a
// run's error does not blame CloudTrail for a DNS, TLS, proxy or guard failure.
func TestRequestErrorCode(t *testing.T) {
	for _, tc := range []struct {
		class errclass.Class
		want  string
	}{
		{errclass.DNS, core.EUNREACHABLE},
		{errclass.TCP, core.EUNREACHABLE},
		{errclass.TLS, core.EUNREACHABLE},
		{errclass.Proxy, core.EUNREACHABLE},
		{errclass.Refused, core.EUNREACHABLE},
		{errclass.Request, core.EREJECTED},
		{"", core.EREJECTED}, // CloudTrail answered (RepeatedNextToken)
	} {
		if got := core.ErrorCode(&RequestError{Region: "us-west-2", Code: "X", Class: tc.class}); got != tc.want {
			t.Errorf("%q: code %q, want %q", tc.class, got, tc.want)
		}
	}
}
