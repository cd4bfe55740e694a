// Package connectivity is the connectivity test of an integration: a few ordered checks, each
// reported on its own with a plain message and a remedy, so that the person setting up an
// integration learns which of region, network, credentials or permissions is wrong rather than
// reading one SDK error. The API's POST /v1/integrations/{id}/test and `trailproof test` print the
// same Report.
//
// The checks, in order; once one fails the rest are "skipped", because their outcome would say
// nothing new (a refused connection tells nothing about the credentials):
//
//	region       the integration's region is one trailproof supports
//	endpoint     the CloudTrail endpoint is reachable: DNS, TCP, TLS (verified unless verifySsl is
//	             false), through the proxy when one is set (HTTP CONNECT)
//	credentials  CloudTrail accepts the credentials: an unknown key, a wrong secret (bad signature)
//	             and an expired session token are told apart
//	permission   the credentials may call cloudtrail:LookupEvents
//	read         one event can be read: LookupEvents with MaxResults 1 over the last 90 days
//	             (an empty account passes, with a note)
//
// The credentials, permission and read checks share one LookupEvents call: AWS authenticates a
// call before it authorizes it, so the answer tells which of the three stopped it.
package connectivity

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/smithy-go"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/redact"
)

// Check names, in the order they run.
const (
	CheckRegion      = "region"
	CheckEndpoint    = "endpoint"
	CheckCredentials = "credentials"
	CheckPermission  = "permission"
	CheckRead        = "read"
)

// Check statuses.
const (
	StatusOK      = "ok"
	StatusFailed  = "failed"
	StatusSkipped = "skipped"
)

// LookbackPeriod is how far back the read check looks: all that LookupEvents keeps.
const LookbackPeriod = 90 * 24 * time.Hour

// Check is the outcome of one check.
type Check struct {
	Name    string `json:"name"`
	OK      bool   `json:"ok"`
	Status  string `json:"status"` // ok, failed or skipped
	Message string `json:"message"`
	// Remedy says what to change when the check failed; empty otherwise.
	Remedy string `json:"remedy,omitempty"`
	// Code is the AWS error code or network failure behind a failed check, for machines.
	Code       string `json:"code,omitempty"`
	DurationMS int64  `json:"durationMs"`
}

// Report is the outcome of every check, in order. OK is true when every check passed.
type Report struct {
	OK     bool    `json:"ok"`
	Checks []Check `json:"checks"`
}

// Failed returns the first failed check, or nil.
func (r *Report) Failed() *Check {
	for i := range r.Checks {
		if r.Checks[i].Status == StatusFailed {
			return &r.Checks[i]
		}
	}
	return nil
}

// Tester runs the checks. It is safe for concurrent use.
type Tester struct {
	sources    core.SourceFactory
	policy     *netguard.Policy
	resolver   *net.Resolver
	clk        clock.Clock
	maxTimeout time.Duration
	log        *slog.Logger
}

// Option configures a Tester.
type Option func(*Tester)

// WithSources sets the factory whose Source makes the LookupEvents call. Share the one the runs
// use, so that the test's call counts against the same rate limiter. Default: a cloudtrail
// Factory that tries a throttled or failed call twice.
func WithSources(f core.SourceFactory) Option { return func(t *Tester) { t.sources = f } }

// WithPolicy sets where credentials may be sent (default: AWS CloudTrail hosts only): the
// endpoint check refuses what the policy refuses, and dials through its guard. Give the factory
// of WithSources the same policy.
func WithPolicy(p *netguard.Policy) Option { return func(t *Tester) { t.policy = p } }

// WithResolver sets the DNS resolver of the endpoint check (default net.DefaultResolver).
func WithResolver(r *net.Resolver) Option { return func(t *Tester) { t.resolver = r } }

// WithClock sets the clock that dates the read check's time range (default real time).
func WithClock(c clock.Clock) Option { return func(t *Tester) { t.clk = c } }

// WithMaxTimeout bounds each network step (default 15 s) whatever the integration's timeout, so
// that a test answers while the person is still waiting for it.
func WithMaxTimeout(d time.Duration) Option { return func(t *Tester) { t.maxTimeout = d } }

// WithLogger sets where the Tester logs each check (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(t *Tester) { t.log = l } }

// New returns a Tester.
func New(opts ...Option) *Tester {
	t := &Tester{resolver: net.DefaultResolver, clk: clock.Real{}, maxTimeout: 15 * time.Second,
		log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(t)
	}
	if t.sources == nil {
		t.sources = cloudtrail.NewFactory(context.Background(), cloudtrail.WithPolicy(t.policy),
			cloudtrail.WithRetry(2, 500*time.Millisecond, 2*time.Second), cloudtrail.WithLogger(t.log))
	}
	return t
}

// Test runs the checks against in (with its secrets revealed) and reports each. It never returns
// a secret in a message.
func (t *Tester) Test(ctx context.Context, in *core.Integration) Report {
	steps := []struct {
		name string
		run  func(context.Context, *core.Integration, *state) Check
	}{
		{CheckRegion, t.checkRegion},
		{CheckEndpoint, t.checkEndpoint},
		{CheckCredentials, t.checkCredentials},
		{CheckPermission, t.checkPermission},
		{CheckRead, t.checkRead},
	}
	rep := Report{OK: true, Checks: make([]Check, 0, len(steps))}
	st := &state{scrub: in.Scrubber()}
	failed := ""
	for _, s := range steps {
		if failed != "" {
			rep.Checks = append(rep.Checks, Check{Name: s.name, Status: StatusSkipped,
				Message: fmt.Sprintf("not run: the %s check failed", failed)})
			continue
		}
		start := time.Now()
		c := s.run(ctx, in, st)
		c.Name, c.DurationMS = s.name, time.Since(start).Milliseconds()
		c.Message, c.Remedy, c.Code = st.scrub.Replace(c.Message), st.scrub.Replace(c.Remedy), safeCode(in, c.Code)
		if c.Status == "" {
			c.Status = StatusOK
		}
		c.OK = c.Status == StatusOK
		if !c.OK {
			failed, rep.OK = s.name, false
		}
		t.log.InfoContext(ctx, "connectivity check", "integration", in.ID, "check", c.Name,
			"status", c.Status, "code", c.Code, "durationMs", c.DurationMS)
		rep.Checks = append(rep.Checks, c)
	}
	return rep
}

// state carries what one check learns for the next: the LookupEvents outcome is read once and
// judged by three checks.
type state struct {
	scrub    *strings.Replacer
	endpoint *url.URL
	called   bool
	result   core.QueryResult
	err      error
	from, to time.Time
}

func failed(code, msg, remedy string) Check {
	return Check{Status: StatusFailed, Code: code, Message: msg, Remedy: remedy}
}

func (t *Tester) checkRegion(_ context.Context, in *core.Integration, _ *state) Check {
	r := in.AWSRegion
	if r == "ap-south1" {
		r = "ap-south-1"
	}
	if !slices.Contains(core.Regions, r) {
		return failed("UnsupportedRegion", fmt.Sprintf("the region %q is not supported", redact.Truncate(r, 40)),
			"set awsRegion (amazonRegion in the legacy form) to one of "+strings.Join(core.Regions, ", "))
	}
	return Check{Message: fmt.Sprintf("%s is a supported region", r)}
}

// Endpoint returns the URL CloudTrail is reached at for in: its endpoint override, or AWS's own
// endpoint of the region (from the SDK's endpoint rules, so partitions such as us-gov resolve
// as the SDK will).
func Endpoint(ctx context.Context, in *core.Integration) (*url.URL, error) {
	if in.Endpoint != "" {
		u, err := url.Parse(in.Endpoint)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, core.FieldError("endpoint", "must be an absolute http:// or https:// URL")
		}
		return u, nil
	}
	ep, err := awsct.NewDefaultEndpointResolverV2().ResolveEndpoint(ctx, awsct.EndpointParameters{Region: aws.String(in.AWSRegion)})
	if err != nil {
		return nil, fmt.Errorf("resolve the CloudTrail endpoint of %s: %w", in.AWSRegion, err)
	}
	u := ep.URI
	return &u, nil
}

func (t *Tester) timeout(in *core.Integration) time.Duration {
	d := in.TimeoutD()
	if d <= 0 || d > t.maxTimeout {
		d = t.maxTimeout
	}
	return d
}

func (t *Tester) checkEndpoint(ctx context.Context, in *core.Integration, st *state) Check {
	target, err := Endpoint(ctx, in)
	if err != nil {
		return failed("BadEndpoint", core.ErrorMessage(err), "fix the endpoint setting, or leave it out to use AWS's CloudTrail endpoint of the region")
	}
	st.endpoint = target
	if err := t.policy.CheckIntegration(in); err != nil {
		field := core.ErrorField(err)
		return failed("NotAllowed", fmt.Sprintf("policy: the %s setting is not allowed: %s", field, core.ErrorMessage(err)),
			"send the credentials only to AWS's CloudTrail endpoint (leave endpoint and proxy out, verifySsl true), or ask the operator to allow the host")
	}
	host, port := target.Hostname(), target.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[target.Scheme]
	}
	proxy, err := proxyFor(in, target)
	if err != nil {
		return failed("BadProxy", "the proxy setting is not a usable URL", "set proxy to a URL such as http://proxy.example.com:3128")
	}
	ctx, cancel := context.WithTimeout(ctx, t.timeout(in))
	defer cancel()

	set := errclass.Settings{Endpoint: in.Endpoint != "", Proxy: proxy != nil, Role: in.RoleARN != ""}
	dialHost, dialPort, via := host, port, ""
	if proxy != nil {
		dialHost, dialPort = proxy.Hostname(), proxy.Port()
		if dialPort == "" {
			dialPort = map[string]string{"http": "80", "https": "443"}[proxy.Scheme]
		}
		via = fmt.Sprintf(" through the proxy %s", net.JoinHostPort(dialHost, dialPort))
	}
	what := "the CloudTrail endpoint"
	if proxy != nil {
		what = "the proxy"
	}
	// DNS
	if net.ParseIP(dialHost) == nil {
		if _, err := t.resolver.LookupHost(ctx, dialHost); err != nil {
			d := errclass.Classify(err, set)
			return failed(d.Code, fmt.Sprintf("DNS: the name %s of %s cannot be resolved (%s)", dialHost, what, errclass.DNSReason(err)), d.Remedy)
		}
	}
	// TCP, through the guard: an internal address is refused unless the operator allowed the host.
	dialer := t.policy.Dialer(t.timeout(in))
	dialer.Resolver = t.resolver
	conn, err := dialer.DialContext(ctx, "tcp", net.JoinHostPort(dialHost, dialPort))
	var refused *netguard.RefusedError
	if errors.As(err, &refused) {
		return failed(refused.Code(), fmt.Sprintf("address: %s of %s resolves to a %s address, which trailproof does not connect to", dialHost, what, refused.Class),
			fmt.Sprintf("if %s is meant to be reached, the operator allows it with --allow-endpoint or --allow-proxy %s (%s, %s)",
				dialHost, net.JoinHostPort(dialHost, dialPort), netguard.EnvAllowEndpoints, netguard.EnvAllowProxies))
	}
	if err != nil {
		return failed("ConnectionFailed", fmt.Sprintf("TCP: cannot connect to %s at %s (%s)", what, net.JoinHostPort(dialHost, dialPort), errclass.NetReason(err)),
			errclass.Remedy(errclass.TCP, "ConnectionFailed", set))
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	if proxy != nil {
		if proxy.Scheme == "https" {
			tc := tls.Client(conn, &tls.Config{ServerName: proxy.Hostname(), InsecureSkipVerify: !in.VerifySSL, MinVersion: tls.VersionTLS12}) //nolint:gosec // verifySsl=false asks for it
			if err := tc.HandshakeContext(ctx); err != nil {
				return tlsFailure(err, "the proxy "+proxy.Host, set)
			}
			conn = tc
		}
		if target.Scheme == "https" {
			if c := connectTunnel(conn, net.JoinHostPort(host, port), set); c != nil {
				return *c
			}
		}
	}
	if target.Scheme != "https" {
		return Check{Message: fmt.Sprintf("reached %s%s over plain HTTP (DNS and TCP ok; no TLS: the endpoint is http://)", net.JoinHostPort(host, port), via)}
	}
	tc := tls.Client(conn, &tls.Config{ServerName: host, InsecureSkipVerify: !in.VerifySSL, MinVersion: tls.VersionTLS12}) //nolint:gosec // verifySsl=false asks for it
	if err := tc.HandshakeContext(ctx); err != nil {
		return tlsFailure(err, host, set)
	}
	cs := tc.ConnectionState()
	verified := "certificate verified"
	if !in.VerifySSL {
		verified = "certificate NOT verified: verifySsl is false"
	}
	return Check{Message: fmt.Sprintf("reached %s%s (DNS, TCP and %s ok; %s)", net.JoinHostPort(host, port), via, tls.VersionName(cs.Version), verified)}
}

// proxyFor returns the proxy the CloudTrail client will use for target: the integration's
// proxy, else the environment's (HTTPS_PROXY and friends, as the SDK's client reads them).
func proxyFor(in *core.Integration, target *url.URL) (*url.URL, error) {
	if in.Proxy != "" {
		u, err := url.Parse(in.Proxy)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, errors.New("bad proxy")
		}
		return u, nil
	}
	return http.ProxyFromEnvironment(&http.Request{URL: target})
}

// connectTunnel asks the proxy for a tunnel to hostport; it returns a failed check, or nil when
// the proxy agreed.
func connectTunnel(conn net.Conn, hostport string, set errclass.Settings) *Check {
	req := &http.Request{Method: http.MethodConnect, URL: &url.URL{Opaque: hostport}, Host: hostport, Header: http.Header{}}
	if err := req.Write(conn); err != nil {
		c := failed("ProxyFailure", fmt.Sprintf("proxy: cannot send CONNECT %s (%s)", hostport, errclass.NetReason(err)), errclass.Remedy(errclass.Proxy, "ProxyFailure", set))
		return &c
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		c := failed("ProxyFailure", fmt.Sprintf("proxy: no answer to CONNECT %s (%s)", hostport, errclass.NetReason(err)), errclass.Remedy(errclass.Proxy, "ProxyFailure", set))
		return &c
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		remedy := errclass.Remedy(errclass.Proxy, "ProxyRefused", set)
		if resp.StatusCode == http.StatusProxyAuthRequired {
			remedy = "the proxy requires authentication, which trailproof does not send; allow this host without it"
		}
		c := failed("ProxyRefused", fmt.Sprintf("proxy: CONNECT %s was refused: HTTP %d %s", hostport, resp.StatusCode, http.StatusText(resp.StatusCode)), remedy)
		return &c
	}
	return nil
}

func tlsFailure(err error, host string, set errclass.Settings) Check {
	d := errclass.Classify(err, set)
	if d.Class != errclass.TLS {
		d = errclass.Diagnosis{Class: errclass.TLS, Code: "TLSFailure", Remedy: errclass.Remedy(errclass.TLS, "TLSFailure", set)}
	}
	if d.Code == "TLSVerificationFailed" {
		return failed(d.Code, fmt.Sprintf("TLS: the certificate of %s could not be verified (%s)", host, errclass.TLSReason(err)), d.Remedy)
	}
	return failed(d.Code, fmt.Sprintf("TLS: the handshake with %s failed (%s)", host, errclass.TLSReason(err)), d.Remedy)
}

// lookup makes the one LookupEvents call the last three checks judge.
func (t *Tester) lookup(ctx context.Context, in *core.Integration, st *state) {
	if st.called {
		return
	}
	st.called = true
	st.to = t.clk.Now().UTC().Truncate(time.Second)
	st.from = st.to.Add(-LookbackPeriod).Add(time.Minute) // a little inside, so CloudTrail never calls it too old
	src, err := t.sources.Source(ctx, in)
	if err != nil {
		st.err = err
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 4*t.timeout(in))
	defer cancel()
	// The call waits its turn in the account's rate budget, which every run and test of the
	// region shares, for at most three call timeouts: past that the test says busy at once
	// instead of queueing into its deadline, and time queued is never taken for a slow endpoint.
	queue := 3 * t.timeout(in)
	st.result, st.err = src.Lookup(ctx, core.Query{Region: in.AWSRegion, From: st.from, To: st.to, Budget: 1,
		WaitUntil: t.clk.Now().Add(queue)})
	if st.err == nil && st.result.Stopped {
		st.err = &BusyError{Queue: queue}
	}
}

// credential codes AWS answers before it has authenticated the caller.
var (
	unknownKeyCodes = []string{"UnrecognizedClientException", "InvalidClientTokenId", "InvalidAccessKeyId",
		"MissingAuthenticationToken", "MissingAuthenticationTokenException", "AuthFailure"}
	badSignatureCodes = []string{"SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature"}
	expiredCodes      = []string{"ExpiredToken", "ExpiredTokenException", "RequestExpired", "TokenRefreshRequired"}
)

func (t *Tester) checkCredentials(ctx context.Context, in *core.Integration, st *state) Check {
	t.lookup(ctx, in, st)
	who := describeCredentials(in)
	err := st.err
	if err == nil {
		return Check{Message: fmt.Sprintf("CloudTrail accepted %s", who)}
	}
	if op, ok := stsFailure(err); ok {
		code, msg := apiError(op)
		return failed(code, fmt.Sprintf("could not assume the role %s: %s", in.RoleARN, joinCode(code, msg)),
			"check that the base credentials may call sts:AssumeRole on roleArn and that the role's trust policy accepts them (and externalId when set)")
	}
	var ae *cloudtrail.AuthError
	if errors.As(err, &ae) {
		code, msg := ae.Code, apiMessage(in, err)
		remedy := errclass.Remedy(errclass.Credentials, code, cloudtrail.DiagSettings(in))
		switch {
		case slices.Contains(unknownKeyCodes, code):
			return failed(code, fmt.Sprintf("AWS does not recognise %s: %s", who, joinCode(code, msg)), remedy)
		case slices.Contains(badSignatureCodes, code):
			return failed(code, fmt.Sprintf("the request signature does not match for %s: %s", who, joinCode(code, msg)), remedy)
		case slices.Contains(expiredCodes, code):
			return failed(code, fmt.Sprintf("the session token of %s has expired: %s", who, joinCode(code, msg)), remedy)
		case code == "CredentialsUnavailable":
			return failed(code, "no AWS credentials were found for this integration", remedy)
		case strings.HasPrefix(code, "AccessDenied") || code == "OptInRequired" || code == "RegionDisabledException":
			return Check{Message: fmt.Sprintf("CloudTrail accepted %s (authenticated; permission is checked next)", who)}
		}
		return failed(code, fmt.Sprintf("AWS refused %s: %s", who, joinCode(code, msg)), remedy)
	}
	return callFailure(err, in)
}

// callFailure reports a LookupEvents call that failed for a reason other than the credentials:
// it stops at the credentials check, since they could not be judged.
func callFailure(err error, in *core.Integration) Check {
	var te *cloudtrail.ThrottledError
	var tr *cloudtrail.TransientError
	var re *cloudtrail.RequestError
	var be *BusyError
	d := errclass.Classify(err, cloudtrail.DiagSettings(in))
	switch {
	case errors.As(err, &be):
		return be.check()
	case errors.As(err, &te):
		return failed(te.Code, "CloudTrail throttled the test call, so the credentials could not be checked", d.Remedy)
	case errors.As(err, &tr):
		return failed(tr.Code, fmt.Sprintf("the test call to CloudTrail failed (%s) before the credentials could be checked: %s", errclass.Label(d.Class), apiMessage(in, err)), d.Remedy)
	case errors.As(err, &re):
		return failed(re.Code, fmt.Sprintf("the test call to CloudTrail failed (%s): %s", errclass.Label(d.Class), apiMessage(in, err)), d.Remedy)
	}
	if code := core.ErrorCode(err); code != core.EINTERNAL {
		return failed("InvalidSettings", core.ErrorMessage(err), "fix the setting named in the message")
	}
	return failed("Unexpected", "the test call failed: "+apiMessage(in, err), "check the endpoint, proxy and credentials; try again")
}

func (t *Tester) checkPermission(ctx context.Context, in *core.Integration, st *state) Check {
	var ae *cloudtrail.AuthError
	if errors.As(st.err, &ae) {
		switch {
		case strings.HasPrefix(ae.Code, "AccessDenied"):
			return failed(ae.Code, "the credentials may not call cloudtrail:LookupEvents: "+joinCode(ae.Code, apiMessage(in, st.err)),
				errclass.Remedy(errclass.Permission, ae.Code, errclass.Settings{}))
		case ae.Code == "OptInRequired" || ae.Code == "RegionDisabledException":
			return failed(ae.Code, fmt.Sprintf("the region %s is not enabled for this account", in.AWSRegion),
				errclass.Remedy(errclass.Permission, ae.Code, cloudtrail.DiagSettings(in)))
		}
	}
	if st.err != nil {
		return callFailure(st.err, in)
	}
	return Check{Message: "the credentials may call cloudtrail:LookupEvents"}
}

func (t *Tester) checkRead(_ context.Context, in *core.Integration, st *state) Check {
	if st.err != nil {
		return callFailure(st.err, in)
	}
	if len(st.result.Events) == 0 {
		return Check{Message: fmt.Sprintf("read no event in %s between %s and %s: that is fine for a quiet account, but a run will find nothing until CloudTrail records activity there (management events are recorded in every region; IAM, STS and sign-in events in us-east-1)",
			in.AWSRegion, st.from.Format(time.RFC3339), st.to.Format(time.RFC3339))}
	}
	ev := st.result.Events[0]
	name := eventName(in, ev)
	return Check{Message: fmt.Sprintf("read the latest event in %s: %s at %s (%d LookupEvents call)",
		in.AWSRegion, name, ev.EventTime.UTC().Format(time.RFC3339), st.result.Calls)}
}

// eventName reads eventSource:eventName from the record for the message.
func eventName(in *core.Integration, ev core.RawEvent) string {
	n := core.NewNormalizer(in)
	e := n.Normalize(&ev)
	if e.EventSource != "" {
		return strings.TrimSuffix(e.EventSource, ".amazonaws.com") + ":" + e.EventName
	}
	if e.EventName != "" {
		return e.EventName
	}
	return "event " + ev.EventID
}

// stsFailure finds, in err's chain, a failed STS operation: AssumeRole failing inside the
// credentials provider is reported as such rather than as a CloudTrail refusal.
func stsFailure(err error) (error, bool) {
	for e := err; e != nil; {
		var op *smithy.OperationError
		if !errors.As(e, &op) {
			return nil, false
		}
		if op.ServiceID == "STS" {
			return op, true
		}
		e = op.Err
	}
	return nil, false
}

func apiError(err error) (code, msg string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "AssumeRoleFailed", errclass.NetReason(err)
}

func joinCode(code, msg string) string {
	if msg == "" || msg == "no message" {
		return code
	}
	return code + " (" + redact.Truncate(msg, 300) + ")"
}

// describeCredentials names the credentials without revealing them: the access key masked.
func describeCredentials(in *core.Integration) string {
	switch {
	case in.RoleARN != "" && in.AccessKeyID != "":
		return fmt.Sprintf("the role %s assumed with the access key %s", in.RoleARN, MaskKey(in.AccessKeyID))
	case in.RoleARN != "":
		return fmt.Sprintf("the role %s", in.RoleARN)
	case in.AccessKeyID != "" && in.SessionToken.IsSet():
		return fmt.Sprintf("the temporary access key %s", MaskKey(in.AccessKeyID))
	case in.AccessKeyID != "":
		return fmt.Sprintf("the access key %s", MaskKey(in.AccessKeyID))
	}
	return "the default credentials of the host"
}

// MaskKey keeps the first four and last four characters of an access key ID: enough to tell keys
// apart, not enough to use one.
func MaskKey(id string) string {
	if len(id) <= 8 {
		return strings.Repeat("*", len(id))
	}
	return id[:4] + "..." + id[len(id)-4:]
}
