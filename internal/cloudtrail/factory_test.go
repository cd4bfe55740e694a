package cloudtrail

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
)

func TestRateLimiter(t *testing.T) {
	// Each call names the integration (by index into the test's integrations) and the region.
	type call struct {
		in     int
		region string
	}
	repeat := func(n int, c ...call) []call {
		var out []call
		for range n {
			out = append(out, c...)
		}
		return out
	}
	tests := []struct {
		name string
		// keys[i] is the access key of integration i (its ID is "int-<i>").
		keys       []string
		calls      []call
		minAdvance time.Duration
		maxAdvance time.Duration
		// perBucket: calls are checked per (key, region) bucket for at most 2 a clock second.
	}{
		{name: "10 calls of one account and region take 4.5 s", keys: []string{testKeyID},
			calls: repeat(10, call{0, testRegion}), minAdvance: 4500 * time.Millisecond, maxAdvance: 4500 * time.Millisecond},
		{name: "two integrations of one key share the budget", keys: []string{testKeyID, testKeyID},
			calls: repeat(5, call{0, testRegion}, call{1, testRegion}), minAdvance: 4500 * time.Millisecond, maxAdvance: 4500 * time.Millisecond},
		{name: "regions have budgets of their own", keys: []string{testKeyID},
			calls: repeat(5, call{0, testRegion}, call{0, "us-east-1"}), minAdvance: 2 * time.Second, maxAdvance: 2 * time.Second},
		{name: "accounts have budgets of their own", keys: []string{testKeyID, "AKIAOTHERACCOUNT01"},
			calls: repeat(5, call{0, testRegion}, call{1, testRegion}), minAdvance: 2 * time.Second, maxAdvance: 2 * time.Second},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			fake := &fakeCloudTrail{t: t, clk: clk, answer: paged(makeEvents(1))}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			f := testFactory(clk)
			var srcs []core.Source
			for i, k := range tc.keys {
				in := integration(srv.URL)
				in.ID, in.AccessKeyID = fmt.Sprintf("int-%d", i), k
				srcs = append(srcs, mustSource(t, f, in))
			}
			for _, c := range tc.calls {
				if _, err := srcs[c.in].Lookup(context.Background(), core.Query{Region: c.region}); err != nil {
					t.Fatal(err)
				}
			}
			if adv := clk.Now().Sub(t0); adv < tc.minAdvance || adv > tc.maxAdvance {
				t.Errorf("clock advanced %v, want within [%v, %v]", adv, tc.minAdvance, tc.maxAdvance)
			}
			buckets := map[string][]time.Time{}
			for _, r := range fake.requests() {
				key, region, _ := credentialScope(r.Auth)
				buckets[key+"/"+region] = append(buckets[key+"/"+region], r.At)
			}
			for b, times := range buckets {
				sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
				for i := 2; i < len(times); i++ {
					if times[i].Sub(times[i-2]) < time.Second {
						t.Errorf("%s: 3 calls within %v (at %v, %v, %v): more than 2 a second",
							b, times[i].Sub(times[i-2]), times[i-2], times[i-1], times[i])
					}
				}
			}
		})
	}
}

func TestRateLimiterConcurrentRuns(t *testing.T) {
	// Many runs of one account at once on the real clock, with a fast limit so the test is
	// short: the limiter's reservations must still space the calls.
	fake := &fakeCloudTrail{t: t, answer: paged(makeEvents(1))}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	f := testFactory(clock.Real{}, WithRateLimit(50, 1))
	var wg sync.WaitGroup
	for i := range 4 {
		in := integration(srv.URL)
		in.ID = fmt.Sprintf("run-%d", i)
		src := mustSource(t, f, in)
		wg.Go(func() {
			for range 5 {
				if _, err := src.Lookup(context.Background(), core.Query{Region: testRegion}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	reqs := fake.requests()
	if len(reqs) != 20 {
		t.Fatalf("%d calls, want 20", len(reqs))
	}
	// 20 calls at 50/s with burst 1 span at least 19 intervals of 20 ms.
	first, last := reqs[0].At, reqs[0].At
	for _, r := range reqs {
		if r.At.Before(first) {
			first = r.At
		}
		if r.At.After(last) {
			last = r.At
		}
	}
	if span := last.Sub(first); span < 19*20*time.Millisecond-10*time.Millisecond {
		t.Errorf("20 calls spanned %v, want at least ~380ms at 50 calls a second", span)
	}
}

func TestVerifySSL(t *testing.T) {
	tests := []struct {
		name      string
		verify    bool
		wantErr   bool
		wantLogIn string
	}{
		{name: "verifySsl false accepts a self-signed server", verify: false, wantLogIn: "verifySsl=false"},
		{name: "verifySsl true refuses it with a clear error", verify: true, wantErr: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudTrail{t: t, answer: paged(makeEvents(2))}
			srv := httptest.NewTLSServer(fake)
			defer srv.Close()
			log, logs := captureLogger()
			in := integration(srv.URL)
			in.VerifySSL = tc.verify
			src := mustSource(t, testFactory(clock.NewVirtual(t0), WithLogger(log)), in)
			res, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
			if !tc.wantErr {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if len(res.Events) != 2 {
					t.Errorf("got %d events, want 2", len(res.Events))
				}
				if !strings.Contains(logs.String(), tc.wantLogIn) || !strings.Contains(logs.String(), `"level":"WARN"`) {
					t.Errorf("no warning mentioning %q in the log:\n%s", tc.wantLogIn, logs)
				}
				return
			}
			var re *RequestError
			if !errors.As(err, &re) || re.Code != "TLSVerificationFailed" {
				t.Fatalf("err = %T %v, want *RequestError TLSVerificationFailed", err, err)
			}
			if !strings.Contains(err.Error(), "verifySsl") || !strings.Contains(err.Error(), "certificate") {
				t.Errorf("error %q does not explain the certificate problem and the setting", err)
			}
			if res.Calls != 1 {
				t.Errorf("Calls = %d, want 1 (a certificate problem is not retried)", res.Calls)
			}
			if strings.Contains(logs.String(), "verifySsl=false") {
				t.Errorf("warning about verifySsl=false logged while it is true:\n%s", logs)
			}
		})
	}
}

func TestProxy(t *testing.T) {
	fake := &fakeCloudTrail{t: t, answer: paged(makeEvents(3))}
	var mu sync.Mutex
	var hosts, proxyAuth []string
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		hosts = append(hosts, r.URL.Host)
		proxyAuth = append(proxyAuth, r.Header.Get("Proxy-Authorization"))
		mu.Unlock()
		fake.ServeHTTP(w, r) // the proxy answers for the unreachable endpoint itself
	}))
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	in := integration("http://cloudtrail.example.invalid")
	in.Proxy = "http://trail:pr0xy-Passw0rd@" + pu.Host
	src := mustSource(t, testFactory(clock.NewVirtual(t0)), in)
	res, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
	if err != nil {
		t.Fatalf("Lookup through the proxy: %v", err)
	}
	if len(res.Events) != 3 {
		t.Errorf("got %d events, want 3", len(res.Events))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hosts) != 1 || hosts[0] != "cloudtrail.example.invalid" {
		t.Errorf("proxy saw requests for %v, want one for cloudtrail.example.invalid", hosts)
	}
	wantAuth := "Basic " + base64.StdEncoding.EncodeToString([]byte("trail:pr0xy-Passw0rd"))
	if len(proxyAuth) != 1 || proxyAuth[0] != wantAuth {
		t.Errorf("Proxy-Authorization = %v, want %q", proxyAuth, wantAuth)
	}
}

func TestSourceSettingsErrors(t *testing.T) {
	tests := []struct {
		name      string
		edit      func(*core.Integration)
		wantField string
		notInMsg  string
	}{
		{name: "no region", edit: func(in *core.Integration) { in.AWSRegion = "" }, wantField: "awsRegion"},
		{name: "endpoint not a URL", edit: func(in *core.Integration) { in.Endpoint = "ftp://x" }, wantField: "endpoint"},
		{name: "proxy not a URL, not echoed", edit: func(in *core.Integration) { in.Proxy = "user:hunter2-pass@proxy:3128" },
			wantField: "proxy", notInMsg: "hunter2-pass"},
		{name: "key without secret", edit: func(in *core.Integration) { in.SecretAccessKey = "" }, wantField: "secretAccessKey"},
		{name: "secret without key", edit: func(in *core.Integration) { in.AccessKeyID = "" }, wantField: "secretAccessKey"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := integration("http://127.0.0.1:1")
			tc.edit(in)
			_, err := testFactory(clock.NewVirtual(t0)).Source(context.Background(), in)
			if core.ErrorCode(err) != core.EINVALID || core.ErrorField(err) != tc.wantField {
				t.Fatalf("err = %v (field %q), want %s on %s", err, core.ErrorField(err), core.EINVALID, tc.wantField)
			}
			if tc.notInMsg != "" && strings.Contains(err.Error(), tc.notInMsg) {
				t.Errorf("error %q echoes the value", err)
			}
		})
	}
	if _, err := testFactory(clock.NewVirtual(t0)).Source(context.Background(), nil); core.ErrorCode(err) != core.EINVALID {
		t.Errorf("nil integration: err = %v, want %s", err, core.EINVALID)
	}
}

func TestSourceCache(t *testing.T) {
	f := testFactory(clock.NewVirtual(t0))
	base := integration("http://127.0.0.1:1")
	first := mustSource(t, f, base)

	same := *base
	if got := mustSource(t, f, &same); got != first {
		t.Errorf("same settings gave a new Source")
	}
	rotated := *base
	rotated.SecretAccessKey = "rotated-secret-value-0000"
	second := mustSource(t, f, &rotated)
	if second == first {
		t.Errorf("a rotated secret reused the Source built with the old one")
	}
	if got := mustSource(t, f, &rotated); got != second {
		t.Errorf("the rotated settings were not cached")
	}
	other := *base
	other.ID = "int-2"
	if got := mustSource(t, f, &other); got == first || got == second {
		t.Errorf("another integration shares a Source")
	}
}

func TestSecretsNeverShown(t *testing.T) {
	// A pathological server that echoes the credentials in its error messages; a proxy with a
	// password in front of it.
	echo := "secret " + testSecret + " token " + testToken + " proxy pr0xy-Passw0rd"
	fake := &fakeCloudTrail{t: t, answer: func(n int, _ lookupRequest) reply {
		if n == 0 {
			return awsErr(500, "InternalFailure", echo) // logged as a retry
		}
		return awsErr(403, "AccessDeniedException", echo)
	}}
	proxy := httptest.NewServer(fake)
	defer proxy.Close()
	pu, _ := url.Parse(proxy.URL)
	in := integration("http://cloudtrail.example.invalid")
	in.SessionToken = core.Secret(testToken)
	in.Proxy = "http://trail:pr0xy-Passw0rd@" + pu.Host
	log, logs := captureLogger()
	src := mustSource(t, testFactory(clock.NewVirtual(t0), WithLogger(log)), in)
	_, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
	var ae *AuthError
	if !errors.As(err, &ae) {
		t.Fatalf("err = %T %v, want *AuthError", err, err)
	}
	if !strings.Contains(logs.String(), "lookupEvents retry") {
		t.Fatalf("the retry was not logged, so the log check below proves nothing:\n%s", logs)
	}
	shown := map[string]string{
		"Error()": err.Error(), "%+v": fmt.Sprintf("%+v", err), "Message": ae.Message, "log": logs.String(),
	}
	for where, text := range shown {
		for _, secret := range []string{testSecret, testToken, "pr0xy-Passw0rd"} {
			if strings.Contains(text, secret) {
				t.Errorf("%s shows a secret: %s", where, text)
			}
		}
	}
	if !strings.Contains(err.Error(), core.Redacted) {
		t.Errorf("error %q: the echoed secrets should read %s", err, core.Redacted)
	}
}

// stsAndCloudTrail serves AssumeRole (query protocol) and LookupEvents on one address.
type stsAndCloudTrail struct {
	ct     *fakeCloudTrail
	deny   bool
	mu     sync.Mutex
	forms  []url.Values
	stsKey []string // access keys the AssumeRole calls were signed with
}

const (
	tempKeyID  = "ASIATEMPKEY000000001"
	tempSecret = "tempSecretValue0123456789abcdefghijklmn"
	tempToken  = "tempSessionTokenValue0123456789"
)

func (s *stsAndCloudTrail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("X-Amz-Target") != "" {
		s.ct.ServeHTTP(w, r)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key, _, _ := credentialScope(r.Header.Get("Authorization"))
	s.mu.Lock()
	s.forms = append(s.forms, r.PostForm)
	s.stsKey = append(s.stsKey, key)
	s.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if s.deny {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User is not authorized to perform: sts:AssumeRole</Message></Error><RequestId>r-1</RequestId></ErrorResponse>`)
		return
	}
	fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>%s</AccessKeyId><SecretAccessKey>%s</SecretAccessKey><SessionToken>%s</SessionToken><Expiration>2099-01-01T00:00:00Z</Expiration></Credentials>
<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/reader/trailproof</Arn><AssumedRoleId>AROAEXAMPLE:trailproof</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>`, tempKeyID, tempSecret, tempToken)
}

func TestAssumeRole(t *testing.T) {
	const role = "arn:aws:iam::123456789012:role/reader"
	tests := []struct {
		name       string
		keys       bool   // the integration gives keys as the base credentials
		wantSTSKey string // the key AssumeRole must be signed with
	}{
		{name: "keys as base credentials", keys: true, wantSTSKey: testKeyID},
		{name: "default chain as base credentials", keys: false, wantSTSKey: "AKIABASECHAIN000001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ct := &fakeCloudTrail{t: t, answer: paged(makeEvents(1))}
			srv := httptest.NewServer(&stsAndCloudTrail{ct: ct})
			defer srv.Close()
			both := srv.Config.Handler.(*stsAndCloudTrail)
			in := integration(srv.URL)
			in.RoleARN, in.ExternalID = role, core.Secret(testExtID)
			if !tc.keys {
				in.AccessKeyID, in.SecretAccessKey = "", ""
			}
			f := testFactory(clock.NewVirtual(t0), WithSTSEndpoint(srv.URL),
				WithBaseConfig(aws.Config{Credentials: credentials.NewStaticCredentialsProvider("AKIABASECHAIN000001", "baseSecret", "")}))
			src := mustSource(t, f, in)
			if _, err := src.Lookup(context.Background(), core.Query{Region: "us-east-1"}); err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if len(both.forms) != 1 {
				t.Fatalf("%d AssumeRole calls, want 1", len(both.forms))
			}
			form := both.forms[0]
			if form.Get("Action") != "AssumeRole" || form.Get("RoleArn") != role || form.Get("ExternalId") != testExtID || form.Get("RoleSessionName") != RoleSessionName {
				t.Errorf("AssumeRole form %v, want role %s, external ID and session name %s", form, role, RoleSessionName)
			}
			if both.stsKey[0] != tc.wantSTSKey {
				t.Errorf("AssumeRole signed with %q, want %q", both.stsKey[0], tc.wantSTSKey)
			}
			r := ct.requests()[0]
			if key, region, _ := credentialScope(r.Auth); key != tempKeyID || region != "us-east-1" {
				t.Errorf("LookupEvents signed with %s in %s, want the role's %s in us-east-1", key, region, tempKeyID)
			}
			if r.Token != tempToken {
				t.Errorf("X-Amz-Security-Token = %q, want the role session's token", r.Token)
			}
		})
	}
	t.Run("refused AssumeRole is an auth error naming the role settings", func(t *testing.T) {
		ct := &fakeCloudTrail{t: t, answer: paged(nil)}
		srv := httptest.NewServer(&stsAndCloudTrail{ct: ct, deny: true})
		defer srv.Close()
		in := integration(srv.URL)
		in.RoleARN, in.ExternalID = role, core.Secret(testExtID)
		src := mustSource(t, testFactory(clock.NewVirtual(t0), WithSTSEndpoint(srv.URL)), in)
		_, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
		var ae *AuthError
		if !errors.As(err, &ae) || ae.Code != "AccessDenied" {
			t.Fatalf("err = %T %v, want *AuthError AccessDenied", err, err)
		}
		if !strings.Contains(err.Error(), "roleArn") || !strings.Contains(err.Error(), "externalId") {
			t.Errorf("error %q does not point at roleArn and externalId", err)
		}
		if strings.Contains(err.Error(), testExtID) || strings.Contains(err.Error(), testSecret) {
			t.Errorf("error %q shows a secret", err)
		}
		if n := len(ct.requests()); n != 0 {
			t.Errorf("%d LookupEvents calls reached CloudTrail without credentials", n)
		}
	})
}

// TestAssumeRoleThroughTheGuard: STS calls use the guarded dialer too, so a role's AssumeRole
// (signed with the stored keys, carrying externalId) never reaches an address the policy refuses.
func TestAssumeRoleThroughTheGuard(t *testing.T) {
	ct := &fakeCloudTrail{t: t, answer: paged(nil)}
	ctSrv := httptest.NewServer(ct)
	defer ctSrv.Close()
	var stsCalls atomic.Int32
	stsSrv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { stsCalls.Add(1) }))
	defer stsSrv.Close()
	in := integration(ctSrv.URL)
	in.RoleARN, in.ExternalID = "arn:aws:iam::123456789012:role/reader", core.Secret(testExtID)
	onlyCloudTrail := netguard.MustNew([]string{ctSrv.URL}, nil)
	src := mustSource(t, testFactory(clock.NewVirtual(t0), WithSTSEndpoint(stsSrv.URL), WithPolicy(onlyCloudTrail)), in)
	_, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
	var refused *netguard.RefusedError
	if !errors.As(err, &refused) || refused.Class != "loopback" {
		t.Fatalf("err = %v; want the guard's loopback refusal", err)
	}
	if n := stsCalls.Load(); n != 0 {
		t.Errorf("%d AssumeRole calls reached an address the policy refuses", n)
	}
	if n := len(ct.requests()); n != 0 {
		t.Errorf("%d LookupEvents calls were made without the role's credentials", n)
	}
}

func TestDefaultCredentialChain(t *testing.T) {
	// No WithBaseConfig: the SDK's own default configuration, fed from the environment only.
	const envKey = "AKIAFROMENVIRONMENT1"
	t.Setenv("AWS_ACCESS_KEY_ID", envKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", "envSecretValue0123456789")
	t.Setenv("AWS_SESSION_TOKEN", "")
	t.Setenv("AWS_PROFILE", "")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/none")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	tests := []struct {
		name    string
		keys    bool
		wantKey string
	}{
		{name: "no keys: default chain", keys: false, wantKey: envKey},
		{name: "keys win over the environment", keys: true, wantKey: testKeyID},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudTrail{t: t, answer: paged(makeEvents(1))}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			in := integration(srv.URL)
			if !tc.keys {
				in.AccessKeyID, in.SecretAccessKey = "", ""
			}
			f := NewFactory(context.Background(), WithClock(clock.NewVirtual(t0)), WithPolicy(testPolicy))
			src := mustSource(t, f, in)
			if _, err := src.Lookup(context.Background(), core.Query{}); err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if key, region, _ := credentialScope(fake.requests()[0].Auth); key != tc.wantKey || region != testRegion {
				t.Errorf("signed with %s in %s, want %s in %s", key, region, tc.wantKey, testRegion)
			}
		})
	}
}
