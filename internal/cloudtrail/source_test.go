package cloudtrail

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

func TestLookupPaging(t *testing.T) {
	tests := []struct {
		name          string
		events        int
		budget        int
		wantEvents    int
		wantCalls     int
		wantMax       []int
		wantTruncated bool
	}{
		{name: "no budget reads all 120 once", events: 120, budget: 0, wantEvents: 120, wantCalls: 3, wantMax: []int{50, 50, 50}},
		{name: "budget 100 stops after two calls", events: 120, budget: 100, wantEvents: 100, wantCalls: 2, wantMax: []int{50, 50}, wantTruncated: true},
		{name: "budget 70 asks for the remainder", events: 120, budget: 70, wantEvents: 70, wantCalls: 2, wantMax: []int{50, 20}, wantTruncated: true},
		{name: "budget 500 (pageSize 100 x maxPage 5) above the events", events: 120, budget: 500, wantEvents: 120, wantCalls: 3, wantMax: []int{50, 50, 50}},
		{name: "budget met exactly at the end is not truncated", events: 100, budget: 100, wantEvents: 100, wantCalls: 2, wantMax: []int{50, 50}},
		{name: "small budget", events: 120, budget: 10, wantEvents: 10, wantCalls: 1, wantMax: []int{10}, wantTruncated: true},
		{name: "empty span", events: 0, budget: 500, wantEvents: 0, wantCalls: 1, wantMax: []int{50}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			events := makeEvents(tc.events)
			fake := &fakeCloudTrail{t: t, clk: clk, answer: paged(events)}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			log, logs := captureLogger()
			src := mustSource(t, testFactory(clk, WithLogger(log)), integration(srv.URL))

			res, err := src.Lookup(context.Background(), core.Query{
				Region: testRegion, From: t0.Add(-time.Hour), To: t0, Budget: tc.budget,
			})
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if len(res.Events) != tc.wantEvents || res.Calls != tc.wantCalls || res.Truncated != tc.wantTruncated {
				t.Errorf("got %d events, %d calls, truncated %v; want %d, %d, %v\nlog:\n%s",
					len(res.Events), res.Calls, res.Truncated, tc.wantEvents, tc.wantCalls, tc.wantTruncated, logs)
			}
			var gotMax []int
			for _, r := range fake.requests() {
				gotMax = append(gotMax, r.Req.MaxResults)
			}
			if diff := cmp.Diff(tc.wantMax, gotMax); diff != "" {
				t.Errorf("MaxResults per call (-want +got):\n%s", diff)
			}
			ids := map[string]bool{}
			for i, e := range res.Events {
				if ids[e.EventID] {
					t.Errorf("event %s returned twice", e.EventID)
				}
				ids[e.EventID] = true
				if want := events[i].EventID; e.EventID != want {
					t.Errorf("event %d is %s, want %s (newest first, as CloudTrail lists them)", i, e.EventID, want)
				}
			}
			if tc.wantTruncated {
				want := time.Unix(int64(events[tc.wantEvents-1].EventTime), 0).UTC()
				if !res.OldestRead.Equal(want) {
					t.Errorf("OldestRead = %v, want %v (the oldest event read)", res.OldestRead, want)
				}
			} else if !res.OldestRead.IsZero() {
				t.Errorf("OldestRead = %v on a complete read, want zero", res.OldestRead)
			}
		})
	}
}

func TestLookupDeduplicatesRepeatedEvents(t *testing.T) {
	clk := clock.NewVirtual(t0)
	events := makeEvents(120)
	inner := paged(events)
	// Each page after the first starts again with the last event of the page before, as a
	// faulty server (or an event arriving between calls) may do.
	fake := &fakeCloudTrail{t: t, clk: clk, answer: func(n int, req lookupRequest) reply {
		rep := inner(n, req)
		if n > 0 {
			body := rep.body.(map[string]any)
			page := body["Events"].([]wireEvent)
			prev := events[mustAtoi(req.NextToken)-1]
			body["Events"] = append([]wireEvent{prev}, page...)
		}
		return rep
	}}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	src := mustSource(t, testFactory(clk), integration(srv.URL))
	res, err := src.Lookup(context.Background(), core.Query{Region: testRegion, From: t0.Add(-time.Hour), To: t0})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != 120 {
		t.Fatalf("got %d events, want 120 distinct", len(res.Events))
	}
	ids := map[string]bool{}
	for _, e := range res.Events {
		if ids[e.EventID] {
			t.Fatalf("event %s returned twice", e.EventID)
		}
		ids[e.EventID] = true
	}
}

func mustAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		panic(err)
	}
	return n
}

func TestLookupRequest(t *testing.T) {
	from, to := t0.Add(-5*time.Minute), t0.Add(5*time.Minute)
	tests := []struct {
		name         string
		q            core.Query
		ctxTag       string
		wantRegion   string
		wantCategory string
		wantAttr     string
		wantUA       []string
	}{
		{name: "query region for global events", q: core.Query{Region: "us-east-1", From: from, To: to},
			wantRegion: "us-east-1", wantUA: []string{"trailproof/1.2.3"}},
		{name: "empty region is the integration's", q: core.Query{From: from, To: to},
			wantRegion: testRegion, wantUA: []string{"trailproof/1.2.3"}},
		{name: "insight category", q: core.Query{Region: "ap-south-1", Category: core.CategoryInsight, From: from, To: to},
			wantRegion: "ap-south-1", wantCategory: "insight"},
		{name: "one lookup attribute", q: core.Query{Region: testRegion, From: from, To: to,
			Attribute: &core.LookupAttribute{Key: core.AttrEventName, Value: "GetPasswordData"}},
			wantRegion: testRegion, wantAttr: "EventName=GetPasswordData"},
		{name: "per-run tag from the context", q: core.Query{Region: testRegion, From: from, To: to},
			ctxTag: "run/r-42", wantRegion: testRegion, wantUA: []string{"trailproof/1.2.3", "run/r-42"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			fake := &fakeCloudTrail{t: t, clk: clk, answer: paged(makeEvents(3))}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			src := mustSource(t, testFactory(clk, WithUserAgent("trailproof/1.2.3")), integration(srv.URL))
			ctx := context.Background()
			if tc.ctxTag != "" {
				ctx = ContextWithUserAgent(ctx, tc.ctxTag)
			}
			res, err := src.Lookup(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			reqs := fake.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d calls, want 1", len(reqs))
			}
			r := reqs[0]
			key, region, service := credentialScope(r.Auth)
			if key != testKeyID || region != tc.wantRegion || service != "cloudtrail" {
				t.Errorf("signed as %s/%s/%s, want %s/%s/cloudtrail (Authorization %q)", key, region, service, testKeyID, tc.wantRegion, r.Auth)
			}
			for _, e := range res.Events {
				if e.Region != tc.wantRegion || e.Category != tc.q.Category {
					t.Errorf("event %s region %q category %q, want %q %q", e.EventID, e.Region, e.Category, tc.wantRegion, tc.q.Category)
				}
			}
			if r.Req.StartTime == nil || int64(*r.Req.StartTime) != from.Unix() || r.Req.EndTime == nil || int64(*r.Req.EndTime) != to.Unix() {
				t.Errorf("StartTime/EndTime = %v/%v, want %d/%d", r.Req.StartTime, r.Req.EndTime, from.Unix(), to.Unix())
			}
			if r.Req.EventCategory != tc.wantCategory {
				t.Errorf("EventCategory = %q, want %q", r.Req.EventCategory, tc.wantCategory)
			}
			var attr string
			for _, a := range r.Req.LookupAttributes {
				attr += a.AttributeKey + "=" + a.AttributeValue
			}
			if attr != tc.wantAttr {
				t.Errorf("LookupAttributes = %q, want %q", attr, tc.wantAttr)
			}
			for _, w := range tc.wantUA {
				if !strings.Contains(r.UserAgent, w) {
					t.Errorf("User-Agent %q lacks %q", r.UserAgent, w)
				}
			}
		})
	}
}

func TestLookupRejectsBadQueries(t *testing.T) {
	tests := []struct {
		name      string
		q         core.Query
		wantField string
	}{
		{name: "unknown category", q: core.Query{Category: "data"}, wantField: "query.category"},
		{name: "from after to", q: core.Query{From: t0, To: t0.Add(-time.Minute)}, wantField: "query.from"},
		{name: "unknown attribute", q: core.Query{Attribute: &core.LookupAttribute{Key: "UserAgent", Value: "x"}}, wantField: "query.attribute.key"},
		{name: "negative budget", q: core.Query{Budget: -1}, wantField: "query.budget"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fake := &fakeCloudTrail{t: t, answer: paged(nil)}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			src := mustSource(t, testFactory(clock.NewVirtual(t0)), integration(srv.URL))
			_, err := src.Lookup(context.Background(), tc.q)
			if core.ErrorCode(err) != core.EINVALID || core.ErrorField(err) != tc.wantField {
				t.Errorf("err = %v (code %q field %q), want %s on %s", err, core.ErrorCode(err), core.ErrorField(err), core.EINVALID, tc.wantField)
			}
			if n := len(fake.requests()); n != 0 {
				t.Errorf("%d calls made for a bad query, want 0", n)
			}
		})
	}
}

func TestLookupConvertsEvents(t *testing.T) {
	page, err := os.ReadFile("testdata/lookup_page.json")
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(page, &body); err != nil {
		t.Fatal(err)
	}
	fake := &fakeCloudTrail{t: t, answer: func(int, lookupRequest) reply { return reply{status: 200, body: body} }}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	src := mustSource(t, testFactory(clock.NewVirtual(t0)), integration(srv.URL))
	res, err := src.Lookup(context.Background(), core.Query{Region: "us-east-1", Category: core.CategoryInsight})
	if err != nil {
		t.Fatal(err)
	}
	// Record and Envelope as strings, so that the golden file shows their exact bytes.
	type shown struct {
		EventID   string    `json:"eventId"`
		EventTime time.Time `json:"eventTime"`
		Region    string    `json:"region"`
		Category  string    `json:"category"`
		Record    string    `json:"record"`
		Envelope  string    `json:"envelope"`
	}
	var events []shown
	for _, e := range res.Events {
		events = append(events, shown{e.EventID, e.EventTime, e.Region, e.Category, string(e.Record), string(e.Envelope)})
	}
	got, err := json.MarshalIndent(events, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile("testdata/lookup_page.want.json", append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/lookup_page.want.json")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(strings.TrimSpace(string(want)), string(got)); diff != "" {
		t.Errorf("converted events (-want +got):\n%s", diff)
	}
}

// TestLookupRealRecords serves the LookupEvents-shaped records plaso publishes and checks that
// each comes back with its record intact, its time in UTC and its envelope fields.
func TestLookupRealRecords(t *testing.T) {
	path := sharedData(t, "plaso/test_data/jsonl/aws_cloudtrail.jsonl")
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	type plasoEvent struct {
		wireEvent
		EventTime string `json:"EventTime"`
	}
	var wire []wireEvent
	var times []time.Time
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var p plasoEvent
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		at, err := time.Parse("2006-01-02 15:04:05-07:00", p.EventTime)
		if err != nil {
			t.Fatalf("%s: EventTime %q: %v", path, p.EventTime, err)
		}
		p.wireEvent.EventTime = float64(at.Unix())
		wire = append(wire, p.wireEvent)
		times = append(times, at.UTC())
	}
	if len(wire) == 0 {
		t.Fatalf("%s holds no records", path)
	}
	fake := &fakeCloudTrail{t: t, answer: paged(wire)}
	srv := httptest.NewServer(fake)
	defer srv.Close()
	src := mustSource(t, testFactory(clock.NewVirtual(t0)), integration(srv.URL))
	res, err := src.Lookup(context.Background(), core.Query{Region: "ap-southeast-2"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Events) != len(wire) {
		t.Fatalf("got %d events, want %d", len(res.Events), len(wire))
	}
	for i, e := range res.Events {
		var compact bytes.Buffer
		if err := json.Compact(&compact, []byte(wire[i].CloudTrailEvent)); err != nil {
			t.Fatal(err)
		}
		if string(e.Record) != compact.String() {
			t.Errorf("event %s record changed:\n got %s\nwant %s", e.EventID, e.Record, compact.String())
		}
		if !e.EventTime.Equal(times[i]) || e.EventTime.Location() != time.UTC {
			t.Errorf("event %s time %v, want %v in UTC", e.EventID, e.EventTime, times[i])
		}
		var env wireEvent
		var raw map[string]any
		if err := json.Unmarshal(e.Envelope, &raw); err != nil {
			t.Fatal(err)
		}
		delete(raw, "EventTime") // RFC 3339 in the envelope, epoch seconds on the wire
		b, _ := json.Marshal(raw)
		if err := json.Unmarshal(b, &env); err != nil {
			t.Fatal(err)
		}
		want := wire[i]
		want.EventTime, want.CloudTrailEvent = 0, ""
		if len(want.Resources) == 0 {
			want.Resources = nil
		}
		if len(env.Resources) == 0 { // an event without resources has "Resources": [], as in LookupEvents
			env.Resources = nil
		}
		if diff := cmp.Diff(want, env); diff != "" {
			t.Errorf("event %s envelope (-want +got):\n%s", e.EventID, diff)
		}
	}
}

func TestRetries(t *testing.T) {
	const base = 10 * time.Second
	throttle := awsErr(400, "ThrottlingException", "Rate exceeded")
	tests := []struct {
		name          string
		replies       []reply // then success
		wantCalls     int
		wantThrottled int
		wantErr       any // nil, or a pointer to the error type wanted
		wantCode      string
		minWait       time.Duration // virtual time the backoff must have taken at least
	}{
		{name: "throttled twice then success", replies: []reply{throttle, throttle}, wantCalls: 3, wantThrottled: 2, minWait: base/2 + base},
		{name: "500 then success", replies: []reply{awsErr(500, "InternalFailure", "oops")}, wantCalls: 2, minWait: base / 2},
		{name: "503 ServiceUnavailable then success", replies: []reply{awsErr(503, "ServiceUnavailable", "busy")}, wantCalls: 2},
		{name: "502 without an AWS body then success", replies: []reply{{status: 502, body: "<html>bad gateway</html>"}}, wantCalls: 2},
		{name: "unrecognized client is an auth error, not retried",
			replies:   []reply{awsErr(400, "UnrecognizedClientException", "The security token included in the request is invalid.")},
			wantCalls: 1, wantErr: new(*AuthError), wantCode: "UnrecognizedClientException"},
		{name: "access denied is an auth error",
			replies:   []reply{awsErr(400, "AccessDeniedException", "not authorized to perform: cloudtrail:LookupEvents")},
			wantCalls: 1, wantErr: new(*AuthError), wantCode: "AccessDeniedException"},
		{name: "expired token is an auth error",
			replies:   []reply{awsErr(400, "ExpiredTokenException", "The security token included in the request is expired")},
			wantCalls: 1, wantErr: new(*AuthError), wantCode: "ExpiredTokenException"},
		{name: "invalid next token is a request error, not retried",
			replies:   []reply{awsErr(400, "InvalidNextToken", "Invalid NextToken")},
			wantCalls: 1, wantErr: new(*RequestError), wantCode: "InvalidNextToken"},
		{name: "always throttled gives up after max attempts",
			replies:   []reply{throttle, throttle, throttle, throttle, throttle, throttle},
			wantCalls: 5, wantThrottled: 5, wantErr: new(*ThrottledError), wantCode: "ThrottlingException"},
		{name: "always failing gives up with a transient error",
			replies:   []reply{awsErr(500, "InternalFailure", "x"), awsErr(500, "InternalFailure", "x"), awsErr(500, "InternalFailure", "x"), awsErr(500, "InternalFailure", "x"), awsErr(500, "InternalFailure", "x")},
			wantCalls: 5, wantErr: new(*TransientError), wantCode: "InternalFailure"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := clock.NewVirtual(t0)
			fake := &fakeCloudTrail{t: t, clk: clk, answer: func(n int, req lookupRequest) reply {
				if n < len(tc.replies) {
					return tc.replies[n]
				}
				return paged(makeEvents(2))(n, req)
			}}
			srv := httptest.NewServer(fake)
			defer srv.Close()
			src := mustSource(t, testFactory(clk, WithRetry(5, base, 4*base)), integration(srv.URL))

			realStart := time.Now()
			res, err := src.Lookup(context.Background(), core.Query{Region: testRegion, From: t0.Add(-time.Hour), To: t0})
			realTook := time.Since(realStart)

			if res.Calls != tc.wantCalls || res.Throttled != tc.wantThrottled {
				t.Errorf("Calls=%d Throttled=%d, want %d %d", res.Calls, res.Throttled, tc.wantCalls, tc.wantThrottled)
			}
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("Lookup: %v", err)
				}
				if len(res.Events) != 2 {
					t.Errorf("got %d events after the retries, want 2", len(res.Events))
				}
			} else {
				if err == nil || !errors.As(err, tc.wantErr) {
					t.Fatalf("err = %T %v, want %T", err, err, tc.wantErr)
				}
				if code := errorCode(err); code != tc.wantCode {
					t.Errorf("error code %q, want %q", code, tc.wantCode)
				}
				if !strings.Contains(err.Error(), testRegion) {
					t.Errorf("error %q does not name the region", err)
				}
			}
			waited := clk.Now().Sub(t0)
			if waited < tc.minWait {
				t.Errorf("virtual clock advanced %v, want at least %v of backoff", waited, tc.minWait)
			}
			// The backoff happened on the virtual clock: the test spent far less real time than it.
			if tc.minWait > 0 && realTook >= tc.minWait {
				t.Errorf("took %v of real time for %v of backoff: the retry slept for real", realTook, tc.minWait)
			}
		})
	}
}

func errorCode(err error) string {
	var (
		te *ThrottledError
		tr *TransientError
		ae *AuthError
		re *RequestError
	)
	switch {
	case errors.As(err, &te):
		return te.Code
	case errors.As(err, &tr):
		return tr.Code
	case errors.As(err, &ae):
		return ae.Code
	case errors.As(err, &re):
		return re.Code
	}
	return ""
}

func TestRetryTimeoutAndConnectionErrors(t *testing.T) {
	t.Run("a call that outlives the timeout is retried", func(t *testing.T) {
		clk := clock.NewVirtual(t0)
		block := make(chan struct{})
		fake := &fakeCloudTrail{t: t, clk: clk, answer: func(n int, req lookupRequest) reply {
			if n == 0 {
				select {
				case <-block:
				case <-time.After(3 * time.Second):
				}
			}
			return paged(makeEvents(1))(n, req)
		}}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		defer close(block) // before srv.Close, which waits for the blocked handler
		in := integration(srv.URL)
		in.Timeout = 1
		src := mustSource(t, testFactory(clk), in)
		res, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if res.Calls != 2 || len(res.Events) != 1 {
			t.Errorf("Calls=%d events=%d, want 2 calls (one timed out) and 1 event", res.Calls, len(res.Events))
		}
	})
	t.Run("an unreachable endpoint ends in a transient error", func(t *testing.T) {
		srv := httptest.NewServer(&fakeCloudTrail{t: t})
		url := srv.URL
		srv.Close() // nothing listens there any more
		clk := clock.NewVirtual(t0)
		src := mustSource(t, testFactory(clk, WithRetry(3, time.Second, time.Second)), integration(url))
		res, err := src.Lookup(context.Background(), core.Query{Region: testRegion})
		var te *TransientError
		if !errors.As(err, &te) || te.Code != "ConnectionFailed" || te.Attempts != 3 {
			t.Fatalf("err = %T %v, want *TransientError ConnectionFailed after 3 attempts", err, err)
		}
		if res.Calls != 3 {
			t.Errorf("Calls = %d, want 3", res.Calls)
		}
		if !strings.Contains(err.Error(), "endpoint") {
			t.Errorf("error %q does not say what to check", err)
		}
	})
	t.Run("a cancelled context stops the retries", func(t *testing.T) {
		clk := clock.NewVirtual(t0)
		ctx, cancel := context.WithCancel(context.Background())
		fake := &fakeCloudTrail{t: t, clk: clk, answer: func(int, lookupRequest) reply {
			cancel()
			return awsErr(400, "ThrottlingException", "Rate exceeded")
		}}
		srv := httptest.NewServer(fake)
		defer srv.Close()
		src := mustSource(t, testFactory(clk), integration(srv.URL))
		res, err := src.Lookup(ctx, core.Query{Region: testRegion})
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if res.Calls != 1 {
			t.Errorf("Calls = %d, want 1", res.Calls)
		}
	})
}

func TestBackoffDelay(t *testing.T) {
	p := retryPolicy{maxAttempts: 10, base: time.Second, max: 8 * time.Second}
	tests := []struct {
		attempt  int
		min, max time.Duration
	}{
		{1, 500 * time.Millisecond, time.Second},
		{2, time.Second, 2 * time.Second},
		{3, 2 * time.Second, 4 * time.Second},
		{4, 4 * time.Second, 8 * time.Second},
		{9, 4 * time.Second, 8 * time.Second}, // capped
		{60, 4 * time.Second, 8 * time.Second},
	}
	for _, tc := range tests {
		for range 50 {
			if d := p.delay(tc.attempt); d < tc.min || d > tc.max {
				t.Fatalf("delay(%d) = %v, want within [%v, %v]", tc.attempt, d, tc.min, tc.max)
			}
		}
	}
}
