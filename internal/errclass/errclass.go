// Package errclass tells why a call to CloudTrail failed, in the terms a person can act on: DNS,
// TCP, TLS, proxy, timeout, credentials, permission, throttling, a CloudTrail-side (5xx) failure, or
// a rejected request, each with the remedy to apply. The connectivity test and a run's failure
// cause both use it, so that the two never disagree about whose fault a failure is.
//
// It imports no AWS package: AWS SDK errors are recognised by the methods they carry (ErrorCode,
// HTTPStatusCode), so core-free packages such as the workflow may use it too.
package errclass

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// Class is whose side a failure is on and what kind it is.
type Class string

// Classes, from the network outwards.
const (
	DNS         Class = "dns"         // a host name did not resolve
	TCP         Class = "tcp"         // no connection: refused, reset, unreachable
	TLS         Class = "tls"         // the handshake or certificate verification failed
	Proxy       Class = "proxy"       // the proxy could not be reached or refused the tunnel
	Timeout     Class = "timeout"     // no answer within the timeout
	Credentials Class = "credentials" // AWS did not authenticate the caller
	Permission  Class = "permission"  // authenticated but not allowed (or the region is not enabled)
	Throttling  Class = "throttling"  // over LookupEvents' rate
	Service     Class = "service"     // CloudTrail failed on its side (5xx)
	Request     Class = "request"     // CloudTrail rejected the request itself (4xx)
	Refused     Class = "refused"     // trailproof's network guard refused the address (internal, not allowed)
	Unknown     Class = "unknown"     // none of the above (an undecodable answer, say)
)

// Settings are what of the integration's settings shapes the remedy.
type Settings struct {
	Endpoint bool // an endpoint override is set
	Proxy    bool // a proxy is in use
	Role     bool // credentials come from AssumeRole
}

// Diagnosis is a classified failure.
type Diagnosis struct {
	Class Class
	// Code is the AWS error code, or a name for a network fault: DNSFailure, ConnectionFailed,
	// TLSVerificationFailed, TLSFailure, ProxyFailure, Timeout, UnexpectedResponse.
	Code string
	// Detail is the cause in words, as the failing layer gave it (not scrubbed of secrets).
	Detail string
	// Remedy says what to change or do.
	Remedy string
	// Temporary reports whether the same call may pass later without a change of settings: a
	// name that does not resolve or a certificate that does not verify will not.
	Temporary bool
}

// Describe is the diagnosis in one line: what failed, why, and what to do.
func (d Diagnosis) Describe() string {
	return fmt.Sprintf("%s: %s: %s; %s", Label(d.Class), d.Code, d.Detail, d.Remedy)
}

// Label names a class for people ("DNS", "CloudTrail 5xx").
func Label(c Class) string {
	switch c {
	case DNS, TCP, TLS:
		return strings.ToUpper(string(c))
	case Service:
		return "CloudTrail 5xx"
	case Request:
		return "CloudTrail rejected the request"
	case Unknown:
		return "unexpected failure"
	case Refused:
		return "Address refused"
	}
	return strings.ToUpper(string(c[:1])) + string(c[1:])
}

// apiError is what AWS SDK errors with an AWS error code implement (smithy.APIError).
type apiError interface {
	ErrorCode() string
	ErrorMessage() string
}

// statusError is what AWS SDK errors for an HTTP answer implement (awshttp.ResponseError).
type statusError interface{ HTTPStatusCode() int }

var throttleCodes = map[string]bool{
	"ThrottlingException": true, "Throttling": true, "ThrottledException": true,
	"TooManyRequestsException": true, "RequestLimitExceeded": true, "RequestThrottled": true,
	"RequestThrottledException": true, "SlowDown": true, "PriorRequestNotComplete": true,
}

var credentialCodes = map[string]bool{
	"UnrecognizedClientException": true, "InvalidClientTokenId": true, "InvalidAccessKeyId": true,
	"ExpiredToken": true, "ExpiredTokenException": true, "RequestExpired": true, "TokenRefreshRequired": true,
	"SignatureDoesNotMatch": true, "InvalidSignatureException": true, "IncompleteSignature": true,
	"MissingAuthenticationToken": true, "MissingAuthenticationTokenException": true,
	"AuthFailure": true, "NotAuthorized": true, "CredentialsUnavailable": true,
}

var serviceCodes = map[string]bool{
	"InternalFailure": true, "InternalError": true, "InternalServerError": true,
	"InternalServiceError": true, "ServiceUnavailable": true, "ServiceUnavailableException": true,
	"RequestTimeout": true, "RequestTimeoutException": true, "BadGateway": true,
	"GatewayTimeout": true, "EC2ThrottledException": true,
}

// guardRefusal is what the network guard's refusal (netguard.RefusedError) implements: the
// connection was never made, so no other class applies and a retry would be refused again.
type guardRefusal interface{ GuardRefused() bool }

// Classify diagnoses err, the failure of a call to CloudTrail (or of any step on the way to it).
func Classify(err error, s Settings) Diagnosis {
	var g guardRefusal
	if errors.As(err, &g) && g.GuardRefused() {
		return diag(Refused, "AddressNotAllowed", err.Error(), false, s)
	}
	status := 0
	var se statusError
	if errors.As(err, &se) {
		status = se.HTTPStatusCode()
	}
	var ae apiError
	if errors.As(err, &ae) && ae.ErrorCode() != "" {
		return FromCode(ae.ErrorCode(), status, ae.ErrorMessage(), s)
	}
	if status != 0 {
		return FromCode(fmt.Sprintf("HTTP%d", status), status, err.Error(), s)
	}
	return network(err, s)
}

// FromCode diagnoses an AWS error code (or HTTPnnn for an answer without one) and its HTTP status.
func FromCode(code string, status int, detail string, s Settings) Diagnosis {
	d := Diagnosis{Code: code, Detail: detail}
	switch {
	case throttleCodes[code] || status == http.StatusTooManyRequests:
		d.Class, d.Temporary = Throttling, true
	case code == "OptInRequired" || code == "RegionDisabledException" || strings.HasPrefix(code, "AccessDenied"):
		d.Class = Permission
	case credentialCodes[code]:
		d.Class = Credentials
	case serviceCodes[code] || status >= 500:
		d.Class, d.Temporary = Service, true
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		d.Class = Credentials
	default:
		d.Class = Request
	}
	d.Remedy = Remedy(d.Class, code, s)
	return d
}

// network diagnoses a failure without an answer from CloudTrail.
func network(err error, s Settings) Diagnosis {
	var dns *net.DNSError
	var op *net.OpError
	switch {
	case errors.As(err, &dns):
		// A name that does not exist will not exist on the next attempt; a DNS server that did
		// not answer may answer then. Through a proxy, the name is the proxy's.
		return diag(DNS, "DNSFailure", DNSReason(err), dns.IsTimeout || dns.IsTemporary, s)
	case isTLSVerifyError(err):
		return diag(TLS, "TLSVerificationFailed", TLSReason(err), false, s)
	case errors.As(err, &op) && op.Op == "proxyconnect":
		return diag(Proxy, "ProxyFailure", NetReason(err), true, s)
	case isTLSError(err):
		return diag(TLS, "TLSFailure", TLSReason(err), false, s)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return diag(Timeout, "Timeout", "no answer in time", true, s)
	case errors.As(err, &op) || isConnectionError(err):
		detail := NetReason(err)
		if op != nil && op.Addr != nil {
			detail = "cannot connect to " + op.Addr.String() + " (" + detail + ")"
		}
		return diag(TCP, "ConnectionFailed", detail, true, s)
	case s.Proxy:
		// net/http reports a proxy's refusal of CONNECT as the bare status text ("Forbidden").
		return diag(Proxy, "ProxyRefused", err.Error(), false, s)
	}
	return diag(Unknown, "UnexpectedResponse", err.Error(), true, s)
}

func diag(c Class, code, detail string, temporary bool, s Settings) Diagnosis {
	return Diagnosis{Class: c, Code: code, Detail: detail, Temporary: temporary, Remedy: Remedy(c, code, s)}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isConnectionError(err error) bool {
	msg := err.Error()
	for _, s := range []string{"connection refused", "connection reset", "broken pipe", "network is unreachable",
		"no route to host", "use of closed network connection", "unexpected EOF"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func isTLSVerifyError(err error) bool {
	var cv *tls.CertificateVerificationError
	var ua x509.UnknownAuthorityError
	var hn x509.HostnameError
	var ci x509.CertificateInvalidError
	return errors.As(err, &cv) || errors.As(err, &ua) || errors.As(err, &hn) || errors.As(err, &ci)
}

func isTLSError(err error) bool {
	var rh tls.RecordHeaderError
	var ae tls.AlertError
	return errors.As(err, &rh) || errors.As(err, &ae) || strings.Contains(err.Error(), "tls: ")
}

// TLSReason is the TLS failure without its wrapping.
func TLSReason(err error) string {
	var cv *tls.CertificateVerificationError
	if errors.As(err, &cv) {
		err = cv.Err
	}
	return err.Error()
}

// DNSReason is the DNS failure in a few words.
func DNSReason(err error) string {
	var de *net.DNSError
	if errors.As(err, &de) {
		switch {
		case de.IsNotFound:
			return "no such host " + de.Name
		case de.IsTimeout:
			return "the DNS server did not answer in time"
		}
		return de.Err
	}
	return err.Error()
}

// NetReason is a network failure in a few words: the innermost cause, "timed out" for a deadline.
func NetReason(err error) string {
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Err != nil {
		err = oe.Err
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	s := err.Error()
	if i := strings.LastIndex(s, ": "); i >= 0 {
		s = s[i+2:]
	}
	return s
}
