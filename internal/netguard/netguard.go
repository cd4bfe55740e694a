// Package netguard decides where trailproof may send an integration's credentials, and enforces
// it where connections are made.
//
// By default credentials go only to AWS: an integration's endpoint must be https on a CloudTrail
// host (cloudtrail.<region>.amazonaws.com, its -fips and China (.amazonaws.com.cn) forms, the
// dual-stack .api.aws names, and VPC endpoint names *.vpce.amazonaws.com), with verifySsl on and
// no proxy. An operator widens that for a deployment, never a caller per request: the hosts of
// --allow-endpoint and --allow-proxy (TRAILPROOF_ALLOW_ENDPOINTS, TRAILPROOF_ALLOW_PROXIES) may
// be used as endpoint and proxy, over plain http or with verifySsl off.
//
// The dialer (Policy.DialContext) checks the address it actually connects to, after DNS: a
// loopback, link-local (169.254.169.254), private, shared (100.64/10), multicast or unspecified
// address is refused unless the operator allowed the host being dialled. A DNS answer that
// changes between a check and the connection is therefore caught too.
package netguard

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/redact"
)

// Environment variables holding the operator's allow-lists (comma-separated HOST[:PORT]).
const (
	EnvAllowEndpoints = "TRAILPROOF_ALLOW_ENDPOINTS"
	EnvAllowProxies   = "TRAILPROOF_ALLOW_PROXIES"
)

// entry is one allowed HOST[:PORT]; an empty port allows every port of the host.
type entry struct{ host, port string }

func (e entry) matches(host, port string) bool {
	return strings.EqualFold(e.host, strings.TrimSuffix(host, ".")) && (e.port == "" || e.port == port)
}

// Policy is where credentials may be sent: AWS CloudTrail hosts, and what the operator allowed.
// The zero value (and nil) allows only AWS. A Policy is immutable and safe for concurrent use.
type Policy struct {
	endpoints []entry
	proxies   []entry
}

// New returns the policy that also allows the endpoint and proxy hosts listed. Each entry is
// HOST, HOST:PORT or a URL (its host and port are used); a bad entry is an EINVALID error naming
// the flag and the entry.
func New(endpoints, proxies []string) (*Policy, error) {
	p := &Policy{}
	for _, l := range []struct {
		flag string
		in   []string
		out  *[]entry
	}{{"--allow-endpoint", endpoints, &p.endpoints}, {"--allow-proxy", proxies, &p.proxies}} {
		for _, s := range l.in {
			e, err := parseEntry(s)
			if err != nil {
				return nil, core.FieldError(l.flag, "%q is not HOST or HOST:PORT (e.g. 127.0.0.1:4566 or proxy.corp.example:3128): %v", redact.Truncate(s, 100), err)
			}
			*l.out = append(*l.out, e)
		}
	}
	return p, nil
}

// MustNew is New for lists written in code (tests, the in-process emulator); it panics on a bad
// entry.
func MustNew(endpoints, proxies []string) *Policy {
	p, err := New(endpoints, proxies)
	if err != nil {
		panic(err)
	}
	return p
}

// FromEnv returns the policy of the environment's allow-lists plus the extra entries (from
// command-line flags). getenv is os.Getenv outside tests.
// The proxies of HTTPS_PROXY and HTTP_PROXY, set by the operator too, are allowed as well.
func FromEnv(getenv func(string) string, endpoints, proxies []string) (*Policy, error) {
	allowed := append(SplitList(getenv(EnvAllowProxies)), proxies...)
	for _, name := range []string{"HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy"} {
		if v := getenv(name); v != "" {
			if !strings.Contains(v, "://") {
				v = "http://" + v
			}
			allowed = append(allowed, v)
		}
	}
	return New(append(SplitList(getenv(EnvAllowEndpoints)), endpoints...), allowed)
}

// SplitList splits a comma-separated list, dropping blanks.
func SplitList(s string) []string {
	var out []string
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// With returns a copy of p that also allows the endpoints given (HOST[:PORT] or URLs): the
// in-process emulator of `run --corpus`, a test's own server.
func (p *Policy) With(endpoints ...string) (*Policy, error) {
	extra, err := New(endpoints, nil)
	if err != nil {
		return nil, err
	}
	out := &Policy{}
	if p != nil {
		out.endpoints, out.proxies = slices.Clone(p.endpoints), slices.Clone(p.proxies)
	}
	out.endpoints = append(out.endpoints, extra.endpoints...)
	return out, nil
}

func parseEntry(s string) (entry, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "://") {
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return entry{}, errors.New("not a URL with a host")
		}
		port := u.Port()
		if port == "" {
			port = defaultPort(u.Scheme)
		}
		return entry{host: strings.ToLower(u.Hostname()), port: port}, nil
	}
	host, port := s, ""
	if h, p, err := net.SplitHostPort(s); err == nil {
		host, port = h, p
	}
	host = strings.Trim(host, "[]")
	if host == "" || strings.ContainsAny(host, "/@ ") {
		return entry{}, errors.New("no host")
	}
	if port != "" {
		if n, err := net.LookupPort("tcp", port); err != nil || n <= 0 || n > 65535 {
			return entry{}, errors.New("bad port")
		}
	}
	return entry{host: strings.ToLower(host), port: port}, nil
}

func defaultPort(scheme string) string {
	switch scheme {
	case "http":
		return "80"
	case "https":
		return "443"
	case "socks5":
		return "1080"
	}
	return ""
}

// awsHost matches the names AWS serves CloudTrail at: regional, FIPS, China, dual-stack and VPC
// interface endpoints.
var awsHost = regexp.MustCompile(`^(?:cloudtrail(?:-fips)?\.[a-z]{2}(?:-[a-z]+)+-\d+\.(?:amazonaws\.com|amazonaws\.com\.cn|api\.aws)` +
	`|(?:[a-z0-9-]+\.)+vpce\.amazonaws\.com(?:\.cn)?)$`)

// IsAWSHost reports whether host is one of AWS's CloudTrail endpoint names.
func IsAWSHost(host string) bool {
	return awsHost.MatchString(strings.ToLower(strings.TrimSuffix(host, ".")))
}

// IsAWSEndpoint reports whether an integration's endpoint setting is AWS's own: unset (the SDK
// resolves the region's endpoint), or https on a CloudTrail host and port 443. Only from such an
// endpoint is a remote error message worth repeating to the caller.
func IsAWSEndpoint(endpoint string) bool {
	if endpoint == "" {
		return true
	}
	u, err := url.Parse(endpoint)
	return err == nil && u.Scheme == "https" && IsAWSHost(u.Hostname()) && (u.Port() == "" || u.Port() == "443")
}

func (p *Policy) allowsEndpoint(host, port string) bool {
	return p != nil && slices.ContainsFunc(p.endpoints, func(e entry) bool { return e.matches(host, port) })
}

func (p *Policy) allowsProxy(host, port string) bool {
	return p != nil && slices.ContainsFunc(p.proxies, func(e entry) bool { return e.matches(host, port) })
}

// CheckIntegration says whether in's credentials may be sent where its settings point: an
// EINVALID error naming endpoint, proxy or verifySsl, with what the operator can allow, or nil.
func (p *Policy) CheckIntegration(in *core.Integration) error {
	endpointAllowed := false
	if in.Endpoint != "" {
		u, err := url.Parse(in.Endpoint)
		if err != nil || u.Host == "" {
			return core.FieldError("endpoint", "must be an https URL of a CloudTrail endpoint, e.g. https://cloudtrail.us-east-1.amazonaws.com")
		}
		host, port := u.Hostname(), u.Port()
		if port == "" {
			port = defaultPort(u.Scheme)
		}
		endpointAllowed = p.allowsEndpoint(host, port)
		switch {
		case endpointAllowed:
		case !IsAWSHost(host) || port != "443":
			return core.FieldError("endpoint", "is not an AWS CloudTrail endpoint (https://cloudtrail.<region>.amazonaws.com, its FIPS and China forms, or *.vpce.amazonaws.com), "+
				"and credentials go nowhere else unless the operator of this trailproof allows the host (--allow-endpoint %s or %s)", hostPort(host, port), EnvAllowEndpoints)
		case u.Scheme != "https":
			return core.FieldError("endpoint", "must use https: credentials are not sent in clear (an operator may allow a plain-http endpoint with --allow-endpoint %s)", hostPort(host, port))
		}
	} else if in.AWSRegion != "" {
		// The SDK's endpoint of the region: verifySsl=false towards it needs the operator too.
		endpointAllowed = p.allowsEndpoint("cloudtrail."+in.AWSRegion+".amazonaws.com", "443")
	}
	if in.Proxy != "" {
		u, err := url.Parse(in.Proxy)
		if err != nil || u.Host == "" {
			return core.FieldError("proxy", "must be a proxy URL such as http://proxy.example.com:3128")
		}
		port := u.Port()
		if port == "" {
			port = defaultPort(u.Scheme)
		}
		if !p.allowsProxy(u.Hostname(), port) {
			return core.FieldError("proxy", "is not a proxy the operator of this trailproof allows: a proxy sees where credentials go, so only the operator may add one (--allow-proxy %s or %s)",
				hostPort(u.Hostname(), port), EnvAllowProxies)
		}
	}
	if !in.VerifySSL && !endpointAllowed {
		return core.FieldError("verifySsl", "may be false only towards an endpoint the operator of this trailproof allows (--allow-endpoint HOST[:PORT]); "+
			"without certificate checks anyone on the path could read the credentials: set verifySsl to true, or trust the proxy's CA on this host")
	}
	return nil
}

func hostPort(host, port string) string {
	if port == "" {
		return host
	}
	return net.JoinHostPort(host, port)
}

// RefusedError is a connection the guard refused: the address is internal and the operator did
// not allow the host.
type RefusedError struct {
	Host  string // the host name (or address) dialled
	Addr  string // the address it resolved to
	Class string // loopback, link-local, private...
}

// Error says what was refused and how an operator allows it.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("refused to connect to %s: it resolves to %s, a %s address, which trailproof does not connect to unless the operator allows the host (--allow-endpoint or --allow-proxy %s)",
		e.Host, e.Addr, e.Class, e.Host)
}

// Code names the refusal for reports and logs.
func (e *RefusedError) Code() string { return "AddressNotAllowed" }

// GuardRefused marks the error as the guard's refusal for errclass, which imports no package of
// this module: a refused address is its own class, never retried.
func (e *RefusedError) GuardRefused() bool { return true }

// internalClass names the kind of an address trailproof does not connect to by default, or
// returns "" for a public unicast address.
func internalClass(a netip.Addr) string {
	a = a.Unmap()
	if nat64.Contains(a) { // 64:ff9b::a.b.c.d reaches the IPv4 address a.b.c.d
		b := a.As16()
		a = netip.AddrFrom4([4]byte{b[12], b[13], b[14], b[15]})
	}
	switch {
	case a.IsLoopback():
		return "loopback"
	case a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast():
		return "link-local"
	case a.IsMulticast() || a.IsInterfaceLocalMulticast():
		return "multicast"
	case a.IsUnspecified() || thisNetwork.Contains(a):
		return "unspecified"
	case a.IsPrivate():
		return "private"
	case shared.Contains(a):
		return "shared (carrier-grade NAT)"
	}
	return ""
}

var (
	nat64       = netip.MustParsePrefix("64:ff9b::/96")
	thisNetwork = netip.MustParsePrefix("0.0.0.0/8")
	shared      = netip.MustParsePrefix("100.64.0.0/10")
)

// DialContext connects like net.Dialer.DialContext, refusing internal addresses (checked on the
// address the socket connects to, after DNS) unless the operator allowed the host dialled, as
// an endpoint or as a proxy.
func (p *Policy) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	return p.Dialer(30*time.Second).DialContext(ctx, network, address)
}

// Dialer returns a net.Dialer-like dialer with the guard and the given connect timeout.
func (p *Policy) Dialer(timeout time.Duration) *Dialer {
	return &Dialer{policy: p, timeout: timeout}
}

// Dialer dials through the guard.
type Dialer struct {
	policy  *Policy
	timeout time.Duration
	// Resolver resolves host names (default: the system's). The guard checks what it answers at
	// connect time, whatever it answered before.
	Resolver *net.Resolver
}

// DialContext dials address ("host:port"), refusing an internal address the operator did not
// allow with a *RefusedError.
func (d *Dialer) DialContext(ctx context.Context, network, address string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(address)
	if err != nil {
		return nil, err
	}
	allowed := d.policy.allowsEndpoint(host, port) || d.policy.allowsProxy(host, port)
	nd := net.Dialer{Timeout: d.timeout, KeepAlive: 30 * time.Second, Resolver: d.Resolver,
		ControlContext: func(_ context.Context, _, resolved string, _ syscall.RawConn) error {
			if allowed {
				return nil
			}
			ap, err := netip.ParseAddrPort(resolved)
			if err != nil {
				return &RefusedError{Host: host, Addr: resolved, Class: "unrecognised"}
			}
			if class := internalClass(ap.Addr()); class != "" {
				return &RefusedError{Host: host, Addr: ap.Addr().String(), Class: class}
			}
			return nil
		}}
	return nd.DialContext(ctx, network, address)
}
