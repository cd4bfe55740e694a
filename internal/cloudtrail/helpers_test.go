package cloudtrail

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/netguard"
)

// Test credentials: long enough to be scrubbed, distinctive enough to grep for.
const (
	testKeyID   = "AKIATESTKEY0000001"
	testSecret  = "tEsTsEcReT/0123456789abcdefghijklmnopqrs"
	testToken   = "tEsTtOkEn0123456789SESSIONTOKENVALUE"
	testExtID   = "ext-id-very-secret-42"
	testRegion  = "eu-west-1"
	jsonContent = "application/x-amz-json-1.1"
)

var t0 = time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)

// wireEvent is an event as LookupEvents puts it on the wire (JSON 1.1, EventTime in epoch seconds).
type wireEvent struct {
	EventID         string         `json:"EventId,omitempty"`
	EventName       string         `json:"EventName,omitempty"`
	EventSource     string         `json:"EventSource,omitempty"`
	EventTime       float64        `json:"EventTime,omitempty"`
	Username        string         `json:"Username,omitempty"`
	AccessKeyID     string         `json:"AccessKeyId,omitempty"`
	ReadOnly        string         `json:"ReadOnly,omitempty"`
	Resources       []wireResource `json:"Resources,omitempty"`
	CloudTrailEvent string         `json:"CloudTrailEvent,omitempty"`
}

type wireResource struct {
	ResourceType string `json:"ResourceType,omitempty"`
	ResourceName string `json:"ResourceName,omitempty"`
}

// lookupRequest is the body the SDK sends.
type lookupRequest struct {
	StartTime        *float64 `json:"StartTime"`
	EndTime          *float64 `json:"EndTime"`
	MaxResults       int      `json:"MaxResults"`
	NextToken        string   `json:"NextToken"`
	EventCategory    string   `json:"EventCategory"`
	LookupAttributes []struct {
		AttributeKey   string
		AttributeValue string
	} `json:"LookupAttributes"`
}

// seen is one request as the fake server received it.
type seen struct {
	Req       lookupRequest
	Auth      string
	UserAgent string
	Token     string    // X-Amz-Security-Token
	At        time.Time // on the test's clock
}

// reply is what the fake answers to one call.
type reply struct {
	status int
	body   any
}

func ok(events []wireEvent, next string) reply {
	out := map[string]any{"Events": events}
	if next != "" {
		out["NextToken"] = next
	}
	return reply{status: 200, body: out}
}

func awsErr(status int, code, msg string) reply {
	return reply{status: status, body: map[string]string{"__type": code, "message": msg}}
}

// fakeCloudTrail speaks LookupEvents over JSON 1.1; answer decides each reply (n counts from 0).
type fakeCloudTrail struct {
	t      *testing.T
	clk    clock.Clock
	answer func(n int, req lookupRequest) reply

	mu   sync.Mutex
	reqs []seen
}

func (f *fakeCloudTrail) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !strings.HasSuffix(r.Header.Get("X-Amz-Target"), ".LookupEvents") {
		http.Error(w, "unexpected target "+r.Header.Get("X-Amz-Target"), http.StatusBadRequest)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var req lookupRequest
	if err := json.Unmarshal(body, &req); err != nil {
		f.t.Errorf("bad request body %s: %v", body, err)
	}
	at := time.Now()
	if f.clk != nil {
		at = f.clk.Now()
	}
	f.mu.Lock()
	n := len(f.reqs)
	f.reqs = append(f.reqs, seen{Req: req, Auth: r.Header.Get("Authorization"), UserAgent: r.Header.Get("User-Agent"),
		Token: r.Header.Get("X-Amz-Security-Token"), At: at})
	f.mu.Unlock()
	rep := f.answer(n, req)
	w.Header().Set("Content-Type", jsonContent)
	w.WriteHeader(rep.status)
	_ = json.NewEncoder(w).Encode(rep.body)
}

func (f *fakeCloudTrail) requests() []seen {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]seen(nil), f.reqs...)
}

// paged answers from events (newest first) the way CloudTrail pages: MaxResults a page,
// NextToken = the offset of the next page.
func paged(events []wireEvent) func(int, lookupRequest) reply {
	return func(_ int, req lookupRequest) reply {
		off := 0
		if req.NextToken != "" {
			off, _ = strconv.Atoi(req.NextToken)
		}
		end := min(off+req.MaxResults, len(events))
		next := ""
		if end < len(events) {
			next = strconv.Itoa(end)
		}
		return ok(events[off:end], next)
	}
}

// makeEvents returns n events, newest first, one second apart ending at t0.
func makeEvents(n int) []wireEvent {
	evs := make([]wireEvent, n)
	for i := range evs {
		at := t0.Add(-time.Duration(i) * time.Second)
		id := fmt.Sprintf("evt-%04d", i)
		evs[i] = wireEvent{
			EventID: id, EventName: "GetPasswordData", EventSource: "ec2.amazonaws.com",
			EventTime: float64(at.Unix()), Username: "alice", ReadOnly: "true",
			CloudTrailEvent: fmt.Sprintf(`{ "eventID": %q, "eventTime": %q, "eventName": "GetPasswordData" }`, id, at.Format(time.RFC3339)),
		}
	}
	return evs
}

func captureLogger() (*slog.Logger, *testenv.Buffer) {
	b := &testenv.Buffer{}
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug})), b
}

// integration returns MSI settings with static keys pointing at endpoint.
func integration(endpoint string) *core.Integration {
	return &core.Integration{
		ID: "int-1", Type: core.TypeMSI, Name: "test", AWSRegion: testRegion,
		AccessKeyID: testKeyID, SecretAccessKey: core.Secret(testSecret),
		Endpoint: endpoint, Timeout: core.DefaultTimeout, VerifySSL: true,
		PageSize: core.DefaultPageSize, MaxPage: core.DefaultMaxPage,
	}
}

// testPolicy allows the tests' own servers, which listen on loopback, as endpoints and proxies,
// and the made-up endpoint the proxy tests reach only through their proxy.
var testPolicy = netguard.MustNew([]string{"127.0.0.1", "cloudtrail.example.invalid"}, []string{"127.0.0.1"})

// testFactory is a Factory on a virtual clock with hermetic AWS configuration and a fast retry
// policy; opts come last and win.
func testFactory(clk clock.Clock, opts ...Option) *Factory {
	base := []Option{
		WithClock(clk),
		WithBaseConfig(aws.Config{}),
		WithRetry(5, 10*time.Second, 40*time.Second),
		WithLogger(slog.New(slog.DiscardHandler)),
		WithPolicy(testPolicy),
	}
	return NewFactory(context.Background(), append(base, opts...)...)
}

func mustSource(t *testing.T, f *Factory, in *core.Integration) core.Source {
	t.Helper()
	s, err := f.Source(context.Background(), in)
	if err != nil {
		t.Fatalf("Source: %v", err)
	}
	return s
}

var scopeRE = regexp.MustCompile(`Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request`)

// credentialScope returns the access key, region and service of a SigV4 Authorization header.
func credentialScope(auth string) (key, region, service string) {
	m := scopeRE.FindStringSubmatch(auth)
	if m == nil {
		return "", "", ""
	}
	return m[1], m[2], m[3]
}

// sharedData returns the path of shared/data/cloudtrail/rel beside the repository, or skips.
func sharedData(t *testing.T, rel string) string {
	t.Helper()
	return testenv.SharedData(t, rel)
}
