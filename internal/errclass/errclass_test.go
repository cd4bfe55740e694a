package errclass

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"testing"
)

// codeErr and statusErr stand for the AWS SDK's errors, which errclass knows by their methods.
type codeErr struct{ code, msg string }

func (e codeErr) Error() string        { return e.code + ": " + e.msg }
func (e codeErr) ErrorCode() string    { return e.code }
func (e codeErr) ErrorMessage() string { return e.msg }

type statusErr struct {
	status int
	err    error
}

func (e statusErr) Error() string       { return fmt.Sprintf("status %d: %v", e.status, e.err) }
func (e statusErr) Unwrap() error       { return e.err }
func (e statusErr) HTTPStatusCode() int { return e.status }

func sent(err error) error { return &url.Error{Op: "Post", URL: "https://cloudtrail", Err: err} }

func TestClassify(t *testing.T) {
	tests := []struct {
		name      string
		err       error
		set       Settings
		class     Class
		code      string
		temporary bool
		remedy    string // a piece of the remedy
	}{
		{"no such host", sent(&net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "cloudtrail.us-west-2.amazonaws.com", IsNotFound: true}}),
			Settings{}, DNS, "DNSFailure", false, "DNS"},
		{"no such endpoint host", sent(&net.DNSError{Err: "no such host", Name: "ct.example", IsNotFound: true}), Settings{Endpoint: true}, DNS, "DNSFailure", false, "endpoint setting's host name"},
		{"DNS server silent", sent(&net.DNSError{Err: "i/o timeout", IsTimeout: true}), Settings{}, DNS, "DNSFailure", true, "DNS"},
		{"refused", sent(&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}), Settings{}, TCP, "ConnectionFailed", true, "firewall"},
		{"proxy down", sent(&net.OpError{Op: "proxyconnect", Net: "tcp", Err: errors.New("connect: connection refused")}), Settings{Proxy: true}, Proxy, "ProxyFailure", true, "proxy"},
		{"proxy refuses CONNECT", sent(errors.New("Forbidden")), Settings{Proxy: true}, Proxy, "ProxyRefused", false, "CONNECT"},
		{"certificate", sent(x509.UnknownAuthorityError{}), Settings{}, TLS, "TLSVerificationFailed", false, "verifySsl"},
		{"timeout", sent(context.DeadlineExceeded), Settings{}, Timeout, "Timeout", true, "timeout"},
		{"unknown key", codeErr{"UnrecognizedClientException", "The security token included in the request is invalid."}, Settings{}, Credentials, "UnrecognizedClientException", false, "accessKeyId"},
		{"bad signature", codeErr{"InvalidSignatureException", "m"}, Settings{}, Credentials, "InvalidSignatureException", false, "secretAccessKey"},
		{"access denied", codeErr{"AccessDeniedException", "m"}, Settings{}, Permission, "AccessDeniedException", false, "cloudtrail:LookupEvents"},
		{"throttled", codeErr{"ThrottlingException", "Rate exceeded"}, Settings{}, Throttling, "ThrottlingException", true, "2 LookupEvents calls"},
		{"5xx", statusErr{503, codeErr{"ServiceUnavailable", "m"}}, Settings{}, Service, "ServiceUnavailable", true, "CloudTrail failed on its side"},
		{"5xx without a code", statusErr{502, errors.New("<html>")}, Settings{}, Service, "HTTP502", true, "CloudTrail failed on its side"},
		{"bad request", statusErr{400, codeErr{"InvalidTimeRangeException", "m"}}, Settings{}, Request, "InvalidTimeRangeException", false, "time range"},
		{"anything else", errors.New("failed to decode response body"), Settings{}, Unknown, "UnexpectedResponse", true, "try again"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := Classify(tt.err, tt.set)
			if d.Class != tt.class || d.Code != tt.code || d.Temporary != tt.temporary || !strings.Contains(d.Remedy, tt.remedy) {
				t.Errorf("Classify = %s %s temporary=%v remedy %q, want %s %s %v with %q", d.Class, d.Code, d.Temporary, d.Remedy,
					tt.class, tt.code, tt.temporary, tt.remedy)
			}
			// Only CloudTrail's own failures may say CloudTrail failed on its side.
			if tt.class != Service && strings.Contains(d.Describe(), "failed on its side") {
				t.Errorf("a %s failure blames CloudTrail: %s", tt.class, d.Describe())
			}
		})
	}
}
