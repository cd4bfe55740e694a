package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"
	"github.com/aws/aws-sdk-go-v2/service/cloudtrail/types"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
)

// sharedData finds ../shared/data/cloudtrail beside the repository, walking up from the package.
func sharedData(t testing.TB, sub string) string {
	t.Helper()
	return testenv.SharedData(t, sub)
}

func load(t testing.TB, paths ...string) []core.RawEvent {
	t.Helper()
	evs, err := corpus.Load(paths...)
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// start serves an emulator over loopback HTTP and returns it with its URL. The records here are
// years old and from many regions while the tests query on today's clock in one region: start
// relaxes the 90-day history and the region rule, which strict_test.go checks with startStrict.
func start(t testing.TB, evs []core.RawEvent, opts ...Option) (*Emulator, string) {
	t.Helper()
	return startStrict(t, evs, append([]Option{WithHistory(0), WithAnyRegion(true)}, opts...)...)
}

// startStrict serves an emulator with the defaults: as strict as CloudTrail.
func startStrict(t testing.TB, evs []core.RawEvent, opts ...Option) (*Emulator, string) {
	t.Helper()
	em, err := New(evs, opts...)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := Serve(em, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return em, srv.URL()
}

// client is the real SDK client, without retries so that every error reaches the test. Its
// transport is wrapped with Transport: without it, loopback calls fail now and then with the
// SDK's closed-connection race (see Transport), which retries would otherwise hide.
func client(url, accessKeyID, region string) *cloudtrail.Client {
	return cloudtrail.New(cloudtrail.Options{
		Region:           region,
		BaseEndpoint:     aws.String(url),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, "secret-"+accessKeyID, ""),
		RetryMaxAttempts: 1,
		HTTPClient:       &http.Client{Transport: Transport(nil)},
	})
}

// readAll pages through a query with the SDK's paginator.
func readAll(t *testing.T, c *cloudtrail.Client, in *cloudtrail.LookupEventsInput) ([]types.Event, int) {
	t.Helper()
	var out []types.Event
	pages := 0
	p := cloudtrail.NewLookupEventsPaginator(c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(context.Background())
		if err != nil {
			t.Fatalf("page %d: %v", pages+1, err)
		}
		pages++
		out = append(out, page.Events...)
	}
	return out, pages
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestPagingRealRecords(t *testing.T) {
	evs := load(t, sharedData(t, "stratus-red-team/docs/detonation-logs"))
	if len(evs) != 310 {
		t.Fatalf("loaded %d stratus records, want 310", len(evs))
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].EventTime.Before(evs[j].EventTime) })
	clk := clock.NewVirtual(evs[len(evs)-1].EventTime.Add(time.Hour))
	_, url := start(t, evs, WithClock(clk), WithDeliveryDelay(5*time.Minute), WithRate(0))
	c := client(url, "AKIATEST", "us-east-1")

	// Windows: everything; one technique's span with both ends on event times (inclusive).
	mid := evs[len(evs)/2].EventTime
	windows := []struct {
		name     string
		from, to time.Time
		max      int32
	}{
		{"all, default page size", evs[0].EventTime.Add(-time.Second), evs[len(evs)-1].EventTime, 0},
		{"all, pages of 7", evs[0].EventTime, evs[len(evs)-1].EventTime, 7},
		{"ends on event times", evs[40].EventTime, mid, 50},
	}
	for _, w := range windows {
		t.Run(w.name, func(t *testing.T) {
			var want []string
			for _, ev := range evs {
				if !ev.EventTime.Before(w.from) && !ev.EventTime.After(w.to) {
					want = append(want, ev.EventID)
				}
			}
			in := &cloudtrail.LookupEventsInput{StartTime: aws.Time(w.from), EndTime: aws.Time(w.to)}
			if w.max > 0 {
				in.MaxResults = aws.Int32(w.max)
			}
			got, pages := readAll(t, c, in)
			var ids []string
			for i, ev := range got {
				ids = append(ids, aws.ToString(ev.EventId))
				if i > 0 && ev.EventTime.After(*got[i-1].EventTime) {
					t.Errorf("event %d (%s) is newer than the one before it", i, ev.EventTime)
				}
			}
			size := 50
			if w.max > 0 {
				size = int(w.max)
			}
			if wantPages := (len(want) + size - 1) / size; pages != wantPages {
				t.Errorf("%d pages, want %d", pages, wantPages)
			}
			sort.Strings(want)
			sorted := slices.Clone(ids)
			sort.Strings(sorted)
			if diff := cmp.Diff(want, sorted); diff != "" {
				t.Errorf("events of the window, each once (-want +got):\n%s", diff)
			}
		})
	}
}

func TestEventWireShape(t *testing.T) {
	evs := load(t, sharedData(t, "plaso"))
	_, url := start(t, evs, WithRate(0))
	out, err := client(url, "AKIATEST", "us-east-1").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
		LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("RunInstances")}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Events) != 1 {
		t.Fatalf("%d events, want 1", len(out.Events))
	}
	ev := out.Events[0]
	var rec struct {
		EventID   string `json:"eventID"`
		EventTime string `json:"eventTime"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(ev.CloudTrailEvent)), &rec); err != nil {
		t.Fatalf("CloudTrailEvent is not a JSON record: %v", err)
	}
	got := map[string]any{
		"EventId": aws.ToString(ev.EventId), "EventName": aws.ToString(ev.EventName), "EventSource": aws.ToString(ev.EventSource),
		"EventTime": ev.EventTime.UTC(), "Username": aws.ToString(ev.Username), "AccessKeyId": aws.ToString(ev.AccessKeyId),
		"ReadOnly": aws.ToString(ev.ReadOnly), "Resources": len(ev.Resources), "resource0": aws.ToString(ev.Resources[0].ResourceName),
		"record.eventID": rec.EventID, "record.eventTime": rec.EventTime,
	}
	want := map[string]any{
		"EventId": "fdd7443c-ba1f-47eb-b0bc-42395266d12c", "EventName": "RunInstances", "EventSource": "ec2.amazonaws.com",
		"EventTime": ts("2022-02-07T22:19:05Z"), "Username": "fakeusername", "AccessKeyId": "0123456789ABCDEFGHIJ",
		"ReadOnly": "false", "Resources": 8, "resource0": "vpc-01234567890123456",
		"record.eventID": "fdd7443c-ba1f-47eb-b0bc-42395266d12c", "record.eventTime": "2022-02-07T22:19:05Z",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("event as the SDK reads it (-want +got):\n%s", diff)
	}
}

// Clients paging at the same time each get every event once: pages of one query do not
// interfere with another's.
func TestConcurrentClients(t *testing.T) {
	evs := load(t, sharedData(t, "stratus-red-team/docs/detonation-logs"))
	em, url := start(t, evs, WithRate(0))
	var wg sync.WaitGroup
	counts := make([]int, 4)
	for i := range counts {
		wg.Go(func() {
			c := client(url, fmt.Sprintf("AKIA%d", i), "us-east-1")
			p := cloudtrail.NewLookupEventsPaginator(c, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(int32(10 + i))})
			seen := map[string]bool{}
			for p.HasMorePages() {
				page, err := p.NextPage(context.Background())
				if err != nil {
					t.Error(err)
					return
				}
				for _, ev := range page.Events {
					seen[aws.ToString(ev.EventId)] = true
				}
			}
			counts[i] = len(seen)
		})
	}
	wg.Wait()
	if diff := cmp.Diff([]int{310, 310, 310, 310}, counts); diff != "" {
		t.Errorf("distinct events per client (-want +got):\n%s", diff)
	}
	if s := em.Stats(); len(s.PerKey) != 4 || s.Served != s.Calls {
		t.Errorf("stats %+v: want 4 keys, every call served", s)
	}
}

func TestOTRFTimestamp(t *testing.T) {
	evs := load(t, sharedData(t, "otrf-security-datasets"))
	_, url := start(t, evs, WithRate(0))
	got, _ := readAll(t, client(url, "AKIATEST", "us-east-1"), &cloudtrail.LookupEventsInput{
		StartTime: aws.Time(ts("2020-09-14T00:44:00Z")), EndTime: aws.Time(ts("2020-09-14T01:14:00Z")),
	})
	if len(got) != 103 {
		t.Errorf("%d events in the breach window, want all 103", len(got))
	}
}

func small(t testing.TB) []core.RawEvent { return load(t, "testdata/small.json") }

func TestFilters(t *testing.T) {
	_, url := start(t, small(t), WithRate(0))
	c := client(url, "AKIATEST", "us-east-1")
	id := func(n string) string { return "00000000-0000-4000-8000-00000000000" + n }
	attr := func(k types.LookupAttributeKey, v string) []types.LookupAttribute {
		return []types.LookupAttribute{{AttributeKey: k, AttributeValue: aws.String(v)}}
	}
	tests := []struct {
		name string
		in   cloudtrail.LookupEventsInput
		want []string // newest first
	}{
		{"no filter: management events, newest first, equal times by id", cloudtrail.LookupEventsInput{}, []string{id("6"), id("5"), id("3"), id("4"), id("2"), id("1")}},
		{"insight only", cloudtrail.LookupEventsInput{EventCategory: types.EventCategoryInsight}, []string{id("7")}},
		{"EventId", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventId, id("2"))}, []string{id("2")}},
		{"EventName", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "CreateUser")}, []string{id("5")}},
		{"EventSource", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventSource, "s3.amazonaws.com")}, []string{id("6"), id("4")}},
		{"ReadOnly false", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyReadOnly, "false")}, []string{id("6"), id("5"), id("3")}},
		{"Username of an assumed role is its session", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyUsername, "bob-session")}, []string{id("6"), id("3")}},
		{"AccessKeyId", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyAccessKeyId, "AKIAALICE00000000001")}, []string{id("5"), id("4"), id("2"), id("1")}},
		{"ResourceType", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyResourceType, "AWS::EC2::Instance")}, []string{id("3"), id("2")}},
		{"ResourceName", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyResourceName, "arn:aws:s3:::loot")}, []string{id("6")}},
		{"no match", cloudtrail.LookupEventsInput{LookupAttributes: attr(types.LookupAttributeKeyEventName, "DeleteTrail")}, nil},
		{"inclusive time bounds", cloudtrail.LookupEventsInput{StartTime: aws.Time(ts("2024-07-30T21:31:00Z")), EndTime: aws.Time(ts("2024-07-30T21:33:00Z"))}, []string{id("5"), id("3"), id("4"), id("2")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			got, _ := readAll(t, c, &in)
			var ids []string
			for _, ev := range got {
				ids = append(ids, aws.ToString(ev.EventId))
			}
			if diff := cmp.Diff(tt.want, ids); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestErrors(t *testing.T) {
	_, url := start(t, small(t), WithRate(0),
		WithKeys(Key{AccessKeyID: "AKIAGOOD", SecretAccessKey: "secret-AKIAGOOD"}, Key{AccessKeyID: "AKIAOTHER", SecretAccessKey: "not-the-client's"},
			Key{AccessKeyID: "AKIADENIED", SecretAccessKey: "secret-AKIADENIED", AccountID: "123456789012", Denied: true}))
	good := client(url, "AKIAGOOD", "us-east-1")
	two := []types.LookupAttribute{
		{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("A")},
		{AttributeKey: types.LookupAttributeKeyUsername, AttributeValue: aws.String("b")},
	}
	tests := []struct {
		name   string
		c      *cloudtrail.Client
		in     cloudtrail.LookupEventsInput
		target any // a pointer to the modeled error type, or nil for a generic API error
		code   string
	}{
		{"MaxResults 51", good, cloudtrail.LookupEventsInput{MaxResults: aws.Int32(51)}, new(*types.InvalidMaxResultsException), CodeInvalidMaxResults},
		{"MaxResults 0", good, cloudtrail.LookupEventsInput{MaxResults: aws.Int32(0)}, new(*types.InvalidMaxResultsException), CodeInvalidMaxResults},
		{"two lookup attributes", good, cloudtrail.LookupEventsInput{LookupAttributes: two}, new(*types.InvalidLookupAttributesException), CodeInvalidLookupAttrs},
		{"unknown attribute key", good, cloudtrail.LookupEventsInput{LookupAttributes: []types.LookupAttribute{{AttributeKey: "Region", AttributeValue: aws.String("x")}}}, new(*types.InvalidLookupAttributesException), CodeInvalidLookupAttrs},
		{"start after end", good, cloudtrail.LookupEventsInput{StartTime: aws.Time(ts("2024-07-30T22:00:00Z")), EndTime: aws.Time(ts("2024-07-30T21:00:00Z"))}, new(*types.InvalidTimeRangeException), CodeInvalidTimeRange},
		{"bad category", good, cloudtrail.LookupEventsInput{EventCategory: "management"}, new(*types.InvalidEventCategoryException), CodeInvalidEventCategory},
		{"garbage NextToken", good, cloudtrail.LookupEventsInput{NextToken: aws.String("not-a-token")}, new(*types.InvalidNextTokenException), CodeInvalidNextToken},
		{"unknown access key", client(url, "AKIASTRANGER", "us-east-1"), cloudtrail.LookupEventsInput{}, nil, CodeUnrecognizedClient},
		{"key without permission", client(url, "AKIADENIED", "us-east-1"), cloudtrail.LookupEventsInput{}, nil, CodeAccessDenied},
		{"wrong secret", client(url, "AKIAOTHER", "us-east-1"), cloudtrail.LookupEventsInput{}, nil, CodeInvalidSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			_, err := tt.c.LookupEvents(context.Background(), &in)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.target != nil && !errors.As(err, tt.target) {
				t.Errorf("error %v is not a %T", err, tt.target)
			}
			if got := apiCode(err); got != tt.code {
				t.Errorf("error code %q, want %q (%v)", got, tt.code, err)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusBadRequest {
				t.Errorf("want HTTP 400, got %v", err)
			}
		})
	}
}

func TestNextTokenBoundToQuery(t *testing.T) {
	_, url := start(t, small(t), WithRate(0), WithSeed(7))
	c := client(url, "AKIATEST", "us-east-1")
	ctx := context.Background()
	q := func() *cloudtrail.LookupEventsInput {
		return &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(2), StartTime: aws.Time(ts("2024-07-30T21:00:00Z"))}
	}
	first, err := c.LookupEvents(ctx, q())
	if err != nil || first.NextToken == nil {
		t.Fatalf("first page: %v, token %v", err, first)
	}
	again, _ := c.LookupEvents(ctx, q())
	if aws.ToString(again.NextToken) != aws.ToString(first.NextToken) {
		t.Error("the same query and position gave different tokens")
	}
	// The token works for its own query, even with another page size...
	in := q()
	in.NextToken, in.MaxResults = first.NextToken, aws.Int32(50)
	if _, err := c.LookupEvents(ctx, in); err != nil {
		t.Errorf("token on its own query: %v", err)
	}
	// ...and not for another one, nor from another region.
	other := q()
	other.NextToken = first.NextToken
	other.LookupAttributes = []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventSource, AttributeValue: aws.String("s3.amazonaws.com")}}
	var bad *types.InvalidNextTokenException
	if _, err := c.LookupEvents(ctx, other); !errors.As(err, &bad) {
		t.Errorf("token on another query: %v, want InvalidNextTokenException", err)
	}
	in = q()
	in.NextToken = first.NextToken
	if _, err := client(url, "AKIATEST", "eu-west-1").LookupEvents(ctx, in); !errors.As(err, &bad) {
		t.Errorf("token in another region: %v, want InvalidNextTokenException", err)
	}
	// A token from another emulator (another signing key) is refused too.
	_, url2 := start(t, small(t), WithRate(0), WithSeed(8))
	in = q()
	in.NextToken = first.NextToken
	if _, err := client(url2, "AKIATEST", "us-east-1").LookupEvents(ctx, in); !errors.As(err, &bad) {
		t.Errorf("token from another emulator: %v, want InvalidNextTokenException", err)
	}
}

// Events that become visible while a client pages (delivery) are not lost from older pages and
// not repeated.
func TestPagingWhileDelivering(t *testing.T) {
	evs := small(t)
	clk := clock.NewVirtual(ts("2024-07-30T21:34:30Z"))
	_, url := start(t, evs, WithClock(clk), WithRate(0), WithDeliveryDelay(time.Minute))
	c := client(url, "AKIATEST", "us-east-1")
	in := &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(2)}
	p1, err := c.LookupEvents(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(10 * time.Minute) // events 6 (21:34) becomes visible; it is newer than page 1
	in.NextToken = p1.NextToken
	rest, _ := readAll(t, c, in)
	var ids []string
	for _, ev := range append(p1.Events, rest...) {
		ids = append(ids, aws.ToString(ev.EventId)[len(aws.ToString(ev.EventId))-1:])
	}
	if diff := cmp.Diff([]string{"5", "3", "4", "2", "1"}, ids); diff != "" {
		t.Errorf("events across pages (-want +got):\n%s", diff)
	}
}

func TestDeliveryDelay(t *testing.T) {
	evs := small(t)
	newest := ts("2024-07-30T21:34:00Z") // event 6
	clk := clock.NewVirtual(newest.Add(5*time.Minute - time.Second))
	_, url := start(t, evs, WithClock(clk), WithDeliveryDelay(5*time.Minute), WithRate(0))
	c := client(url, "AKIATEST", "us-east-1")
	find := func() bool {
		out, err := c.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{
			LookupAttributes: []types.LookupAttribute{{AttributeKey: types.LookupAttributeKeyEventName, AttributeValue: aws.String("PutBucketPolicy")}},
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(out.Events) == 1
	}
	if find() {
		t.Error("event visible 1s before eventTime + delay")
	}
	clk.Advance(time.Second)
	if !find() {
		t.Error("event not visible at eventTime + delay")
	}
}

func TestThrottling(t *testing.T) {
	clk := clock.NewVirtual(ts("2024-07-31T00:00:00Z"))
	em, url := start(t, small(t), WithClock(clk)) // default: 2 calls/s, bucket of 2
	ctx := context.Background()
	call := func(c *cloudtrail.Client) string {
		_, err := c.LookupEvents(ctx, &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(1)})
		if err == nil {
			return "ok"
		}
		var re *awshttp.ResponseError
		if errors.As(err, &re) && re.HTTPStatusCode() != http.StatusBadRequest {
			t.Errorf("throttling answered HTTP %d, want 400", re.HTTPStatusCode())
		}
		return apiCode(err)
	}
	burst := client(url, "AKIABURST", "us-east-1")
	var got []string
	for range 5 { // five calls in the same instant
		got = append(got, call(burst))
	}
	clk.Advance(500 * time.Millisecond)
	got = append(got, call(burst), call(burst))
	want := []string{"ok", "ok", CodeThrottling, CodeThrottling, CodeThrottling, "ok", CodeThrottling}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("burst of calls (-want +got):\n%s", diff)
	}
	// The budget is per key and region.
	if r := call(client(url, "AKIABURST", "eu-west-1")); r != "ok" {
		t.Errorf("same key, other region: %s, want ok", r)
	}
	if r := call(client(url, "AKIAOTHER", "us-east-1")); r != "ok" {
		t.Errorf("other key, same region: %s, want ok", r)
	}
	// A client pacing itself at 2 calls per second is never throttled.
	paced := client(url, "AKIAPACED", "us-east-1")
	for i := range 20 {
		if r := call(paced); r != "ok" {
			t.Fatalf("paced call %d: %s", i, r)
		}
		clk.Advance(500 * time.Millisecond)
	}
	s := em.Stats()
	want2 := map[KeyRegion]KeyStats{
		{"AKIABURST", "us-east-1"}: {Calls: 7, Throttled: 4, MaxPerSecond: 7},
		{"AKIABURST", "eu-west-1"}: {Calls: 1, MaxPerSecond: 1},
		{"AKIAOTHER", "us-east-1"}: {Calls: 1, MaxPerSecond: 1},
		{"AKIAPACED", "us-east-1"}: {Calls: 20, MaxPerSecond: 2},
	}
	if diff := cmp.Diff(want2, s.PerKey); diff != "" {
		t.Errorf("per key stats (-want +got):\n%s", diff)
	}
	if s.Calls != 29 || s.ThrottledRate != 4 || s.ThrottledFault != 0 || s.Served != 25 {
		t.Errorf("stats %+v, want 29 calls, 4 throttled by rate, 25 served", s)
	}
}

func TestFaultsAtFixedSeed(t *testing.T) {
	outcomes := func(seed uint64) ([]string, Stats) {
		clk := clock.NewVirtual(ts("2024-07-31T00:00:00Z"))
		f, err := ParseFaults("throttle=0.3,error=0.2,slow=2s")
		if err != nil {
			t.Fatal(err)
		}
		em, url := start(t, small(t), WithClock(clk), WithRate(0), WithFaults(f), WithSeed(seed))
		c := client(url, "AKIATEST", "us-east-1")
		var got []string
		for range 40 {
			_, err := c.LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{})
			switch code := apiCode(err); {
			case err == nil:
				got = append(got, "ok")
			case code == CodeInternalFailure:
				var re *awshttp.ResponseError
				if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusInternalServerError {
					t.Errorf("InternalFailure not HTTP 500: %v", err)
				}
				got = append(got, "500")
			default:
				got = append(got, code)
			}
		}
		if elapsed := clk.Now().Sub(ts("2024-07-31T00:00:00Z")); elapsed != 80*time.Second {
			t.Errorf("slow=2s over 40 calls advanced the clock %s, want 80s", elapsed)
		}
		return got, em.Stats()
	}
	a, sa := outcomes(42)
	b, _ := outcomes(42)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults (-first +second):\n%s", diff)
	}
	count := func(s string) int {
		n := 0
		for _, x := range a {
			if x == s {
				n++
			}
		}
		return n
	}
	if count(CodeThrottling) != sa.ThrottledFault || count("500") != sa.Errors || sa.ThrottledRate != 0 {
		t.Errorf("stats %+v disagree with outcomes %v", sa, a)
	}
	// 40 calls at 30% and 20% (of the rest): a fixed seed gives fixed counts; these bounds only
	// check that the fractions are applied at all.
	if sa.ThrottledFault < 5 || sa.ThrottledFault > 20 || sa.Errors < 2 || sa.Errors > 15 || count("ok") < 10 {
		t.Errorf("at seed 42: %d throttled, %d errors, %d ok; fractions not applied", sa.ThrottledFault, sa.Errors, count("ok"))
	}
}

func TestDupFault(t *testing.T) {
	evs := load(t, sharedData(t, "stratus-red-team/docs/detonation-logs"))
	_, url := start(t, evs, WithRate(0), WithFaults(Faults{Dup: 0.5}), WithSeed(3))
	got, pages := readAll(t, client(url, "AKIATEST", "us-east-1"), &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(20)})
	seen := map[string]bool{}
	dups := 0
	for _, ev := range got {
		id := aws.ToString(ev.EventId)
		if seen[id] {
			dups++
		}
		seen[id] = true
	}
	if len(seen) != 310 {
		t.Errorf("%d distinct events after de-duplication, want 310", len(seen))
	}
	if dups == 0 || dups >= pages {
		t.Errorf("%d repeated events over %d pages; want some, at most one per follow-up page", dups, pages)
	}
}

func TestWireErrorShape(t *testing.T) {
	// The handmade Authorization headers below carry no valid signature: check the wire shape only.
	_, url := start(t, small(t), WithRate(0), WithKeys(Key{AccessKeyID: "AKIAGOOD"}), WithVerifier(nil))
	post := func(target, auth, body string) (*http.Response, map[string]string) {
		req, _ := http.NewRequest(http.MethodPost, url+"/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", target)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp, m
	}
	auth := "AWS4-HMAC-SHA256 Credential=AKIAGOOD/20240731/us-east-1/cloudtrail/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"
	tests := []struct {
		name, target, auth, body string
		status                   int
		code                     string
	}{
		{"MaxResults", "CloudTrail_20131101.LookupEvents", auth, `{"MaxResults":51}`, 400, CodeInvalidMaxResults},
		{"full target name", "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents", auth, `{"MaxResults":0}`, 400, CodeInvalidMaxResults},
		{"no credentials", "CloudTrail_20131101.LookupEvents", "", `{}`, 400, CodeMissingAuthToken},
		{"other operation", "CloudTrail_20131101.DescribeTrails", auth, `{}`, 400, CodeUnknownOperation},
		{"not JSON", "CloudTrail_20131101.LookupEvents", auth, `{"MaxResults":`, 400, CodeSerialization},
		{"StartTime as a string", "CloudTrail_20131101.LookupEvents", auth, `{"StartTime":"yesterday"}`, 400, CodeSerialization},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := post(tt.target, tt.auth, tt.body)
			if resp.StatusCode != tt.status || resp.Header.Get("X-Amzn-Errortype") != tt.code || body["__type"] != tt.code || body["message"] == "" {
				t.Errorf("HTTP %d, x-amzn-ErrorType %q, body %v; want %d and %s with a message", resp.StatusCode, resp.Header.Get("X-Amzn-Errortype"), body, tt.status, tt.code)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/x-amz-json-1.1" {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func TestVerifierHook(t *testing.T) {
	called := 0
	_, url := start(t, small(t), WithRate(0), WithKeys(Key{AccessKeyID: "AKIAGOOD", SecretAccessKey: "s"}),
		WithVerifier(func(r *http.Request, body []byte, k Key) error {
			called++
			if k.SecretAccessKey.Reveal() != "s" || len(body) == 0 || r.Header.Get("X-Amz-Date") == "" {
				t.Errorf("verifier got key %v, body %q", k, body)
			}
			return errors.New("signature mismatch")
		}))
	_, err := client(url, "AKIAGOOD", "us-east-1").LookupEvents(context.Background(), &cloudtrail.LookupEventsInput{})
	if apiCode(err) != CodeInvalidSignature || called != 1 {
		t.Errorf("got %v after %d verifier calls, want %s after 1", err, called, CodeInvalidSignature)
	}
}

func TestParseFaults(t *testing.T) {
	tests := []struct {
		spec    string
		want    Faults
		wantErr string
	}{
		{"", Faults{}, ""},
		{"throttle=0.3,error=0.1,slow=2s,dup=0.1", Faults{Throttle: 0.3, Error: 0.1, Slow: 2 * time.Second, Dup: 0.1}, ""},
		{" dup = 1 , slow=500ms ", Faults{Dup: 1, Slow: 500 * time.Millisecond}, ""},
		{"throttle=1.5", Faults{}, "throttle=1.5: want a fraction between 0 and 1"},
		{"error=lots", Faults{}, "error=lots: want a fraction"},
		{"slow=fast", Faults{}, "slow=fast: want a duration"},
		{"jitter=0.1", Faults{}, `unknown fault "jitter"`},
		{"throttle", Faults{}, `"throttle": want key=value`},
		{"dup=0.1,dup=0.2", Faults{}, `"dup" given twice`},
	}
	for _, tt := range tests {
		got, err := ParseFaults(tt.spec)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || core.ErrorField(err) != "faults" {
				t.Errorf("ParseFaults(%q) error = %v, want one on field faults containing %q", tt.spec, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseFaults(%q) = %+v, %v; want %+v", tt.spec, got, err, tt.want)
		}
		if back, err := ParseFaults(got.String()); err != nil || back != got {
			t.Errorf("ParseFaults(%q.String()) = %+v, %v", tt.spec, back, err)
		}
	}
}

func TestParseCredential(t *testing.T) {
	tests := []struct {
		header string
		want   credential
		ok     bool
	}{
		{"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240731/us-east-1/cloudtrail/aws4_request, SignedHeaders=host, Signature=f0",
			credential{"AKIDEXAMPLE", "us-east-1", "cloudtrail"}, true},
		{"AWS4-HMAC-SHA256 Credential=AKID/20240731/eu-west-1/cloudtrail/aws4_request,SignedHeaders=host,Signature=f0",
			credential{"AKID", "eu-west-1", "cloudtrail"}, true},
		{"", credential{}, false},
		{"Bearer abc", credential{}, false},
		{"AWS4-HMAC-SHA256 Credential=AKID/20240731/us-east-1, Signature=f0", credential{}, false},
	}
	for _, tt := range tests {
		got, ok := parseCredential(tt.header)
		if got != tt.want || ok != tt.ok {
			t.Errorf("parseCredential(%q) = %+v, %v; want %+v, %v", tt.header, got, ok, tt.want, tt.ok)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	for name, opt := range map[string]Option{
		"negative delay": WithDeliveryDelay(-time.Second),
		"negative rate":  WithRate(-1),
		"zero burst":     WithBurst(0),
		"bad fault":      WithFaults(Faults{Dup: 2}),
		"empty key":      WithKeys(Key{}),
		"nil clock":      WithClock(nil),
	} {
		if _, err := New(nil, opt); core.ErrorCode(err) != core.EINVALID {
			t.Errorf("%s: New = %v, want an EINVALID error", name, err)
		}
	}
}

func BenchmarkLookupPage(b *testing.B) {
	evs := load(b, sharedData(b, "stratus-red-team/docs/detonation-logs"))
	_, url := start(b, evs, WithRate(0))
	c := client(url, "AKIATEST", "us-east-1")
	in := &cloudtrail.LookupEventsInput{MaxResults: aws.Int32(50)}
	for b.Loop() {
		if _, err := c.LookupEvents(context.Background(), in); err != nil {
			b.Fatal(err)
		}
	}
}
