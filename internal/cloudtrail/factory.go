package cloudtrail

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awsct "github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/time/rate"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/ratelimit"
)

// Defaults of a Factory.
const (
	// DefaultCallsPerSecond and DefaultBurst are LookupEvents' documented budget per account and
	// region; the limiter keeps every run of the process under it together.
	DefaultCallsPerSecond = 2.0
	DefaultBurst          = 1
	// DefaultMaxAttempts counts the first call: a page is tried at most this many times.
	DefaultMaxAttempts = 5
	DefaultBaseDelay   = time.Second
	DefaultMaxDelay    = 20 * time.Second
	// RoleSessionName names the AssumeRole sessions, so the customer's own CloudTrail shows who
	// is reading it.
	RoleSessionName = "trailproof"
)

// Factory makes the Source of each integration and owns what the Sources share: the rate limiters
// (one per credentials identity and region) and the cache of Sources. It is safe for concurrent
// use; make one per process and reuse it across runs.
type Factory struct {
	clk         clock.Clock
	policy      *netguard.Policy
	log         *slog.Logger
	userAgent   string
	retry       retryPolicy
	limit       rate.Limit
	burst       int
	baseCfg     *aws.Config
	stsEndpoint string
	shared      ratelimit.Limiter

	mu       sync.Mutex
	limiters map[limiterKey]*rate.Limiter
	sources  map[string]cachedSource
}

var _ core.SourceFactory = (*Factory)(nil)

type limiterKey struct{ identity, region string }

type cachedSource struct {
	fingerprint string
	src         *Source
}

// Option configures a Factory.
type Option func(*Factory)

// WithClock sets the clock that rate limiting and retry backoff wait on (default clock.Real).
// With a clock.Virtual nothing really sleeps.
func WithClock(c clock.Clock) Option { return func(f *Factory) { f.clk = c } }

// WithPolicy sets where credentials may be sent (default: AWS CloudTrail hosts only). The
// Factory refuses an integration whose endpoint, proxy or verifySsl the policy does not allow,
// and every connection it makes (CloudTrail, STS) goes through the policy's guarded dialer.
func WithPolicy(p *netguard.Policy) Option { return func(f *Factory) { f.policy = p } }

// WithLogger sets where retries, warnings and lookups are logged (default slog.Default()).
func WithLogger(l *slog.Logger) Option { return func(f *Factory) { f.log = l } }

// WithUserAgent appends tag to the User-Agent of every call, e.g. "trailproof/1.2.0 run/r-42",
// so the calls can be told apart in the customer's CloudTrail. Space-separated "name/value"
// parts become user-agent key/value pairs. For a tag per run with one shared Factory, see
// ContextWithUserAgent.
func WithUserAgent(tag string) Option { return func(f *Factory) { f.userAgent = tag } }

// WithRetry sets how often a failed call is tried (maxAttempts counts the first call) and the
// exponential backoff between attempts: baseDelay doubling up to maxDelay, with jitter.
func WithRetry(maxAttempts int, baseDelay, maxDelay time.Duration) Option {
	return func(f *Factory) {
		if maxAttempts < 1 {
			maxAttempts = 1
		}
		f.retry = retryPolicy{maxAttempts: maxAttempts, base: baseDelay, max: maxDelay}
	}
}

// WithBaseConfig makes every Source start from cfg instead of the SDK's default configuration
// (environment, shared files, instance role): for tests, and for hosts that load it themselves.
// Its Credentials stand in for the default chain.
func WithBaseConfig(cfg aws.Config) Option {
	return func(f *Factory) { c := cfg.Copy(); f.baseCfg = &c }
}

// WithRateLimit sets the LookupEvents budget per credentials identity and region. A rate of zero
// or less turns limiting off (only for emulators that do not throttle).
func WithRateLimit(callsPerSecond float64, burst int) Option {
	return func(f *Factory) {
		if callsPerSecond <= 0 {
			f.limit = rate.Inf
		} else {
			f.limit = rate.Limit(callsPerSecond)
		}
		if burst < 1 {
			burst = 1
		}
		f.burst = burst
	}
}

// WithSTSEndpoint sends AssumeRole calls to endpoint instead of AWS STS (tests, private
// endpoints).
func WithSTSEndpoint(endpoint string) Option { return func(f *Factory) { f.stsEndpoint = endpoint } }

// WithSharedLimiter adds a rate budget shared across processes (internal/ratelimit's DynamoDB
// token bucket): concurrent Lambda invocations of one account and region then stay under
// LookupEvents' 2 calls a second together, not each on its own.
func WithSharedLimiter(l ratelimit.Limiter) Option { return func(f *Factory) { f.shared = l } }

// NewFactory returns a Factory with the defaults above changed by opts.
func NewFactory(_ context.Context, opts ...Option) *Factory {
	f := &Factory{
		clk:      clock.Real{},
		log:      slog.Default(),
		retry:    retryPolicy{maxAttempts: DefaultMaxAttempts, base: DefaultBaseDelay, max: DefaultMaxDelay},
		limit:    rate.Limit(DefaultCallsPerSecond),
		burst:    DefaultBurst,
		limiters: map[limiterKey]*rate.Limiter{},
		sources:  map[string]cachedSource{},
	}
	for _, o := range opts {
		o(f)
	}
	if f.clk == nil {
		f.clk = clock.Real{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f
}

// Source returns the Source of in, building it on first use and again whenever the settings it
// depends on (credentials, region, endpoint, proxy, timeout, verifySsl) change.
func (f *Factory) Source(ctx context.Context, in *core.Integration) (core.Source, error) {
	s, err := f.source(ctx, in)
	if err != nil {
		return nil, err
	}
	return s, nil
}

func (f *Factory) source(ctx context.Context, in *core.Integration) (*Source, error) {
	if in == nil {
		return nil, core.Errorf(core.EINVALID, "no integration given")
	}
	if in.AWSRegion == "" {
		return nil, core.FieldError("awsRegion", "a region is required")
	}
	fp := fingerprint(in)
	key := in.ID
	if key == "" {
		key = fp
	}
	f.mu.Lock()
	if c, ok := f.sources[key]; ok && c.fingerprint == fp {
		f.mu.Unlock()
		return c.src, nil
	}
	f.mu.Unlock()

	s, err := f.build(ctx, in)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if c, ok := f.sources[key]; ok && c.fingerprint == fp {
		return c.src, nil // another goroutine built it meanwhile
	}
	f.sources[key] = cachedSource{fingerprint: fp, src: s}
	return s, nil
}

// fingerprint identifies the connection settings of in; it is a hash so that the cache keys do
// not hold secrets in plain text.
func fingerprint(in *core.Integration) string {
	h := sha256.New()
	for _, v := range []string{
		in.ID, in.AWSRegion, in.AccessKeyID, in.SecretAccessKey.Reveal(), in.SessionToken.Reveal(),
		in.RoleARN, in.ExternalID.Reveal(), in.Endpoint, in.Proxy,
		strconv.Itoa(in.Timeout), strconv.FormatBool(in.VerifySSL),
	} {
		h.Write([]byte(strconv.Itoa(len(v))))
		h.Write([]byte{':'})
		h.Write([]byte(v))
	}
	return hex.EncodeToString(h.Sum(nil))
}

func (f *Factory) build(ctx context.Context, in *core.Integration) (*Source, error) {
	scrub := in.Scrubber()
	timeout := in.TimeoutD()
	if timeout <= 0 {
		timeout = core.DefaultTimeout * time.Second
	}
	if in.Endpoint != "" {
		u, err := url.Parse(in.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, core.FieldError("endpoint", "must be an http or https URL such as https://cloudtrail.us-east-1.amazonaws.com")
		}
	}
	if (in.AccessKeyID == "") != !in.SecretAccessKey.IsSet() {
		return nil, core.FieldError("secretAccessKey", "accessKeyId and secretAccessKey go together: give both or neither")
	}
	if err := f.policy.CheckIntegration(in); err != nil {
		return nil, err
	}
	httpClient, err := f.buildHTTPClient(in, timeout)
	if err != nil {
		return nil, err
	}

	var cfg aws.Config
	if f.baseCfg != nil {
		cfg = f.baseCfg.Copy()
	} else {
		cfg, err = config.LoadDefaultConfig(ctx, config.WithRegion(in.AWSRegion))
		if err != nil {
			return nil, fmt.Errorf("load AWS configuration for integration %s: %s", nameOf(in), scrub.Replace(err.Error()))
		}
	}
	cfg.Region = in.AWSRegion
	cfg.HTTPClient = plainBodyClient{httpClient}
	// Retries happen in Source.call, on the run's clock and counted; the SDK must not add its own.
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	cfg.RetryMaxAttempts = 0
	if f.userAgent != "" {
		cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), userAgentOptions(f.userAgent)...)
	}

	identity := "default"
	if in.AccessKeyID != "" {
		identity = in.AccessKeyID
		cfg.Credentials = credentials.NewStaticCredentialsProvider(in.AccessKeyID, in.SecretAccessKey.Reveal(), in.SessionToken.Reveal())
	}
	if in.RoleARN != "" {
		identity = in.RoleARN
		stsClient := sts.NewFromConfig(cfg, func(o *sts.Options) {
			if f.stsEndpoint != "" {
				o.BaseEndpoint = aws.String(f.stsEndpoint)
			}
		})
		provider := stscreds.NewAssumeRoleProvider(stsClient, in.RoleARN, func(o *stscreds.AssumeRoleOptions) {
			o.RoleSessionName = RoleSessionName
			if in.ExternalID.IsSet() {
				o.ExternalID = aws.String(in.ExternalID.Reveal())
			}
		})
		cfg.Credentials = aws.NewCredentialsCache(provider)
	}
	if in.Endpoint != "" {
		// Another endpoint is another service (an emulator, a test server): its budget is its own.
		identity = in.Endpoint + "|" + identity
	}

	client := awsct.NewFromConfig(cfg, func(o *awsct.Options) {
		if in.Endpoint != "" {
			o.BaseEndpoint = aws.String(in.Endpoint)
		}
	})
	// GetCallerIdentity is signed with the integration's own credentials (the assumed role's,
	// with a role): an integration with its own endpoint is asked there, since its credentials go
	// only to the destination they were given with; else STS as AssumeRole is.
	caller := sts.NewFromConfig(cfg, func(o *sts.Options) {
		switch {
		case f.stsEndpoint != "":
			o.BaseEndpoint = aws.String(f.stsEndpoint)
		case in.Endpoint != "":
			o.BaseEndpoint = aws.String(in.Endpoint)
		}
	})

	log := f.log.With(slog.String("integration", nameOf(in)))
	if !in.VerifySSL {
		log.Warn("TLS certificate verification is off for this integration (verifySsl=false); use it only with an endpoint and proxy you trust",
			slog.String("endpoint", in.Endpoint))
	}
	return &Source{
		api:       client,
		caller:    caller,
		region:    in.AWSRegion,
		timeout:   timeout,
		clk:       f.clk,
		log:       log,
		retry:     f.retry,
		limiter:   func(region string) *rate.Limiter { return f.limiter(identity, region) },
		shared:    f.shared,
		budgetKey: func(region string) string { return identity + "|" + region },
		scrub:     scrub,
		diag:      DiagSettings(in),
	}, nil
}

// buildHTTPClient makes the client of one integration's CloudTrail and STS calls: its proxy (or
// the environment's), its TLS verification, and the policy's guarded dialer. It follows no
// redirect: a signed request and its session token go to the endpoint they were made for only.
func (f *Factory) buildHTTPClient(in *core.Integration, timeout time.Duration) (aws.HTTPClient, error) {
	var proxy *url.URL
	if in.Proxy != "" {
		u, err := url.Parse(in.Proxy)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "socks5") {
			// The value is not echoed: a proxy URL may carry a password.
			return nil, core.FieldError("proxy", "must be a URL such as http://proxy.example.com:3128 (http, https or socks5)")
		}
		proxy = u
	}
	transport := awshttp.NewBuildableClient().
		WithTransportOptions(func(t *http.Transport) {
			t.DialContext = f.policy.Dialer(timeout).DialContext
			if proxy != nil {
				t.Proxy = http.ProxyURL(proxy)
			}
			if !in.VerifySSL {
				if t.TLSClientConfig == nil {
					t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
				}
				t.TLSClientConfig.InsecureSkipVerify = true //nolint:gosec // the integration asked for it (verifySsl=false), and the policy allowed it
			}
		}).GetTransport()
	return &http.Client{Transport: transport, Timeout: timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// limiter returns the one limiter of (identity, region), creating it on first use.
func (f *Factory) limiter(identity, region string) *rate.Limiter {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := limiterKey{identity, region}
	l, ok := f.limiters[k]
	if !ok {
		l = rate.NewLimiter(f.limit, f.burst)
		f.limiters[k] = l
	}
	return l
}

func nameOf(in *core.Integration) string {
	if in.ID != "" {
		return in.ID
	}
	return in.Name
}

// userAgentOptions turns "a/1 b/2 c" into user-agent entries a/1, b/2 and c.
func userAgentOptions(tag string) []func(*middleware.Stack) error {
	var fns []func(*middleware.Stack) error
	for _, part := range strings.Fields(tag) {
		if k, v, ok := strings.Cut(part, "/"); ok {
			fns = append(fns, awsmiddleware.AddUserAgentKeyValue(k, v))
		} else {
			fns = append(fns, awsmiddleware.AddUserAgentKey(part))
		}
	}
	return fns
}

type userAgentKey struct{}

// ContextWithUserAgent returns ctx carrying a user-agent tag that Lookup appends to its calls,
// on top of the Factory's own: a per-run tag ("run/<runId>") with one Factory shared by runs.
func ContextWithUserAgent(ctx context.Context, tag string) context.Context {
	return context.WithValue(ctx, userAgentKey{}, tag)
}

func userAgentFrom(ctx context.Context) string {
	s, _ := ctx.Value(userAgentKey{}).(string)
	return s
}

// plainBodyClient hides the io.WriterTo of the request body from net/http. smithy-go wraps the
// body in a reader whose WriteTo returns io.EOF as an error once smithy has closed it, which it
// does as soon as the response headers arrive; when a fast server (the emulator, a local test
// server) answers before net/http's final probe of the body, that probe goes through WriteTo,
// fails, and net/http closes the connection under the response still being read ("use of closed
// network connection"), costing a retry. Through Read alone a closed body is a clean io.EOF.
type plainBodyClient struct{ next aws.HTTPClient }

func (c plainBodyClient) Do(req *http.Request) (*http.Response, error) {
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = readCloser{req.Body}
	}
	return c.next.Do(req)
}

type readCloser struct{ io.ReadCloser }
