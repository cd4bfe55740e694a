package connectivity_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/connectivity/conntest"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
)

const (
	goodKey    = "AKIAGOODKEY000000001"
	deniedKey  = "AKIADENIEDKEY0000001"
	unknownKey = "AKIAUNKNOWNKEY000001"
	secret     = "s3cr3t-Value-That-Must-Never-Leak-0123456789"
)

// record loads the one CloudTrail record the emulator serves, dated a minute ago.
func record(t *testing.T) core.RawEvent {
	t.Helper()
	data, err := os.ReadFile("testdata/event.json")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC().Add(-time.Minute).Truncate(time.Second)
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m["eventTime"] = at.Format(time.RFC3339)
	rec, _ := json.Marshal(m)
	return core.RawEvent{EventID: m["eventID"].(string), EventTime: at, Record: rec}
}

// emulatorHandler is the emulator with the keys of these tests and a real SigV4 verifier, behind
// the expired-token front.
func emulatorHandler(t *testing.T, events []core.RawEvent) http.Handler {
	t.Helper()
	em, err := emulator.New(events,
		emulator.WithKeys(
			emulator.Key{AccessKeyID: goodKey, SecretAccessKey: secret},
			emulator.Key{AccessKeyID: deniedKey, SecretAccessKey: secret, AccountID: "123456789012", Denied: true},
		),
		emulator.WithVerifier(conntest.VerifySigV4))
	if err != nil {
		t.Fatal(err)
	}
	return conntest.ExpireTokens(em)
}

func integration(endpoint string) *core.Integration {
	return &core.Integration{ID: "it-1", Type: core.TypeMSI, Name: "test", AWSRegion: "us-east-1",
		AccessKeyID: goodKey, SecretAccessKey: secret, Endpoint: endpoint, Timeout: 5, VerifySSL: true,
		PageSize: 100, MaxPage: 5}
}

type want struct {
	statuses []string // per check, in order
	code     string   // code of the failed check
	contains string   // text the failed (or last) check's message holds
}

func TestChecks(t *testing.T) {
	ev := record(t)
	plain := httptest.NewServer(emulatorHandler(t, []core.RawEvent{ev}))
	defer plain.Close()
	empty := httptest.NewServer(emulatorHandler(t, nil))
	defer empty.Close()
	tlsSrv := httptest.NewTLSServer(emulatorHandler(t, []core.RawEvent{ev}))
	defer tlsSrv.Close()
	proxy := conntest.NewProxy()
	defer proxy.Close()
	refusing := conntest.NewProxy()
	refusing.Refuse.Store(true)
	defer refusing.Close()
	closed, err := conntest.ClosedPort()
	if err != nil {
		t.Fatal(err)
	}

	// An internal page that answers like an AWS error: its text must never reach the report.
	page := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"__type":"ValidationException","message":"`+internalPageText+`"}`)
	}))
	defer page.Close()

	allOK := []string{"ok", "ok", "ok", "ok", "ok"}
	endpointFailed := []string{"ok", "failed", "skipped", "skipped", "skipped"}
	tests := []struct {
		name   string
		change func(in *core.Integration)
		want   want
		strict bool // test with the default policy (AWS only) instead of the test's allow-list
	}{
		{"all pass", nil, want{allOK, "", "ec2:GetPasswordData"}, false},
		{"no event yet is ok", func(in *core.Integration) { in.Endpoint = empty.URL }, want{allOK, "", "read no event"}, false},
		{"unsupported region", func(in *core.Integration) { in.AWSRegion = "mars-north-1" },
			want{[]string{"failed", "skipped", "skipped", "skipped", "skipped"}, "UnsupportedRegion", "not supported"}, false},
		{"DNS name does not resolve", func(in *core.Integration) { in.Endpoint = "https://cloudtrail.trailproof.invalid" },
			want{[]string{"ok", "failed", "skipped", "skipped", "skipped"}, "DNSFailure", "cannot be resolved"}, false},
		{"port closed", func(in *core.Integration) { in.Endpoint = "http://" + closed },
			want{[]string{"ok", "failed", "skipped", "skipped", "skipped"}, "ConnectionFailed", "TCP: cannot connect"}, false},
		{"self-signed certificate under verifySsl", func(in *core.Integration) { in.Endpoint = tlsSrv.URL },
			want{[]string{"ok", "failed", "skipped", "skipped", "skipped"}, "TLSVerificationFailed", "could not be verified"}, false},
		{"self-signed certificate, verifySsl false", func(in *core.Integration) { in.Endpoint = tlsSrv.URL; in.VerifySSL = false },
			want{allOK, "", "ec2:GetPasswordData"}, false},
		{"through a CONNECT proxy", func(in *core.Integration) { in.Endpoint = tlsSrv.URL; in.VerifySSL = false; in.Proxy = proxy.URL },
			want{allOK, "", "ec2:GetPasswordData"}, false},
		{"proxy refuses the tunnel", func(in *core.Integration) { in.Endpoint = tlsSrv.URL; in.Proxy = refusing.URL },
			want{[]string{"ok", "failed", "skipped", "skipped", "skipped"}, "ProxyRefused", "403"}, false},
		{"unknown access key", func(in *core.Integration) { in.AccessKeyID = unknownKey },
			want{[]string{"ok", "ok", "failed", "skipped", "skipped"}, "UnrecognizedClientException", "does not recognise the access key AKIA...0001"}, false},
		{"wrong secret: bad signature", func(in *core.Integration) { in.SecretAccessKey = "wrong-secret-0000000000000000000000000000" },
			want{[]string{"ok", "ok", "failed", "skipped", "skipped"}, "InvalidSignatureException", "signature does not match"}, false},
		{"expired session token", func(in *core.Integration) { in.SessionToken = conntest.ExpiredToken },
			want{[]string{"ok", "ok", "failed", "skipped", "skipped"}, "ExpiredTokenException", "has expired"}, false},
		{"no permission for LookupEvents", func(in *core.Integration) { in.AccessKeyID = deniedKey },
			want{[]string{"ok", "ok", "ok", "failed", "skipped"}, "AccessDeniedException", "cloudtrail:LookupEvents"}, false},
		{"an endpoint the operator did not allow", nil, want{endpointFailed, "NotAllowed", "--allow-endpoint"}, true},
		{"instance metadata as endpoint", func(in *core.Integration) { in.Endpoint = "http://169.254.169.254" },
			want{endpointFailed, "NotAllowed", "not an AWS CloudTrail endpoint"}, true},
		{"a proxy the operator did not allow", func(in *core.Integration) { in.Endpoint = ""; in.Proxy = proxy.URL },
			want{endpointFailed, "NotAllowed", "--allow-proxy"}, true},
		{"verifySsl false towards AWS", func(in *core.Integration) { in.Endpoint = ""; in.VerifySSL = false },
			want{endpointFailed, "NotAllowed", "verifySsl"}, true},
		{"another server's text is not repeated", func(in *core.Integration) { in.Endpoint = page.URL },
			want{[]string{"ok", "ok", "failed", "skipped", "skipped"}, "ValidationException", "not shown"}, false},
	}
	// The test's own servers listen on loopback; the DNS case names a host that does not exist.
	allow := netguard.MustNew([]string{"127.0.0.1", "cloudtrail.trailproof.invalid"}, []string{"127.0.0.1"})
	tester := connectivity.New(connectivity.WithMaxTimeout(5*time.Second), connectivity.WithPolicy(allow),
		connectivity.WithSources(cloudtrail.NewFactory(context.Background(), cloudtrail.WithPolicy(allow), cloudtrail.WithRetry(1, time.Millisecond, time.Millisecond))))
	strict := connectivity.New(connectivity.WithMaxTimeout(5 * time.Second))
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := integration(plain.URL)
			if tc.change != nil {
				tc.change(in)
			}
			before := proxy.Connects.Load()
			tr := tester
			if tc.strict {
				tr = strict
			}
			rep := tr.Test(context.Background(), in)
			for _, c := range rep.Checks {
				t.Logf("%-11s %-7s %s | %s", c.Name, c.Status, c.Message, c.Remedy)
			}
			var got []string
			for _, c := range rep.Checks {
				got = append(got, c.Status)
			}
			if diff := cmp.Diff(tc.want.statuses, got); diff != "" {
				t.Fatalf("statuses (-want +got):\n%s\nreport: %+v", diff, rep)
			}
			if rep.OK != (tc.want.code == "") {
				t.Errorf("OK = %v", rep.OK)
			}
			names := []string{"region", "endpoint", "credentials", "permission", "read"}
			for i, c := range rep.Checks {
				if c.Name != names[i] {
					t.Errorf("check %d is %q, want %q", i, c.Name, names[i])
				}
				if c.Message == "" {
					t.Errorf("check %s has no message", c.Name)
				}
			}
			shown := rep.Checks[len(rep.Checks)-1]
			if f := rep.Failed(); f != nil {
				shown = *f
				if f.Code != tc.want.code {
					t.Errorf("code = %q, want %q (%s)", f.Code, tc.want.code, f.Message)
				}
				if f.Remedy == "" {
					t.Errorf("failed check %s has no remedy", f.Name)
				}
			}
			if !strings.Contains(shown.Message, tc.want.contains) {
				t.Errorf("message %q does not contain %q", shown.Message, tc.want.contains)
			}
			out, _ := json.Marshal(rep)
			if strings.Contains(string(out), secret) || strings.Contains(string(out), internalPageText) {
				t.Errorf("the report holds the secret or another server's text: %s", out)
			}
			if tc.strict && proxy.Connects.Load() != before {
				t.Errorf("the proxy saw a tunnel the policy refused")
			}
			if !tc.strict && in.Proxy == proxy.URL && proxy.Connects.Load()-before < 2 {
				t.Errorf("the proxy saw %d tunnels, want the endpoint check's and the call's", proxy.Connects.Load()-before)
			}
		})
	}
}

// TestDNSRebindingIsCaught: the name resolves to a public address for the DNS check and to
// loopback when the connection is made; the guard checks the address it connects to, so the
// endpoint check stops there.
func TestDNSRebindingIsCaught(t *testing.T) {
	dns, err := conntest.NewRebindingDNS(netip.MustParseAddr("52.94.133.131"), netip.MustParseAddr("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	defer dns.Close()
	in := integration("https://cloudtrail.us-east-1.amazonaws.com")
	rep := connectivity.New(connectivity.WithResolver(dns.Resolver()), connectivity.WithMaxTimeout(5*time.Second)).Test(context.Background(), in)
	f := rep.Failed()
	if f == nil || f.Name != connectivity.CheckEndpoint || f.Code != "AddressNotAllowed" || !strings.Contains(f.Message, "loopback") {
		t.Fatalf("report %+v; want the endpoint check refusing a loopback address", rep)
	}
	if n := dns.Queries.Load(); n < 2 {
		t.Errorf("%d A queries: the check and the connection did not both resolve the name", n)
	}
}

// internalPageText stands for what an internal page says; a test report must not repeat it.
const internalPageText = "internal-page-text-7f3a: admin console of db-01"

func TestVerifierAcceptsOnlyTheRightSecret(t *testing.T) {
	// The verifier must pass a call the SDK signed with the key's secret, or every "ok" above
	// would be luck; the bad-signature case shows it refuses another secret.
	srv := httptest.NewServer(emulatorHandler(t, nil))
	defer srv.Close()
	rep := connectivity.New(connectivity.WithPolicy(netguard.MustNew([]string{srv.URL}, nil))).Test(context.Background(), integration(srv.URL))
	if !rep.OK {
		t.Fatalf("a correctly signed call failed: %+v", rep.Failed())
	}
}

// TestBusy: many connectivity tests at once share the account's LookupEvents budget (2 calls a
// second). Those that get a turn within their queue bound pass; the others say busy, at once and
// distinctly, instead of running into their deadline and reporting the endpoint as slow.
func TestBusy(t *testing.T) {
	em, err := emulator.New([]core.RawEvent{record(t)}, emulator.WithRate(0),
		emulator.WithKeys(emulator.Key{AccessKeyID: goodKey, SecretAccessKey: secret}))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(em)
	defer srv.Close()
	const tests, timeout = 200, time.Second
	allow := netguard.MustNew([]string{srv.URL}, nil) // the test's own emulator
	tester := connectivity.New(connectivity.WithMaxTimeout(timeout), connectivity.WithPolicy(allow),
		connectivity.WithSources(cloudtrail.NewFactory(t.Context(), cloudtrail.WithPolicy(allow),
			cloudtrail.WithRateLimit(cloudtrail.DefaultCallsPerSecond, cloudtrail.DefaultBurst))))
	reports := make([]connectivity.Report, tests)
	var wg sync.WaitGroup
	for i := range tests {
		wg.Go(func() { reports[i] = tester.Test(t.Context(), integration(srv.URL)) })
	}
	wg.Wait()
	passed, busy := 0, 0
	for i, rep := range reports {
		f := rep.Failed()
		switch {
		case f == nil:
			passed++
		case f.Code == "Busy" && f.Name == connectivity.CheckCredentials && strings.Contains(f.Message, "busy") && f.Remedy != "":
			busy++
		default:
			t.Errorf("test %d: %s %s: %s (%s)", i, f.Name, f.Code, f.Message, f.Remedy)
		}
	}
	// In three call timeouts (3 s) the budget gives at most 1 + 2 x 3 = 7 turns.
	if passed < 1 || passed > 7 || passed+busy != tests {
		t.Errorf("%d passed and %d said busy of %d, want 1 to 7 passed and the rest busy", passed, busy, tests)
	}
	t.Logf("%d passed, %d busy", passed, busy)
}
