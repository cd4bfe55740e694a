package alerts

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/core"
)

// stopLogging is a trimmed real-shaped record: a successful StopLogging with a null
// responseElements and no errorCode.
const stopLogging = `{
 "eventVersion": "1.09", "eventTime": "2024-07-30T21:07:44Z", "eventSource": "cloudtrail.amazonaws.com",
 "eventName": "StopLogging", "awsRegion": "us-east-1", "sourceIPAddress": "203.0.113.7",
 "userAgent": "stratus-red-team_0123", "readOnly": false, "responseElements": null,
 "userIdentity": {"type": "IAMUser", "arn": "arn:aws:iam::123456789012:user/christophe", "accountId": "123456789012"},
 "requestParameters": {"name": "trail-1"},
 "resources": [{"ARN": "arn:aws:cloudtrail:us-east-1:123456789012:trail/trail-1", "type": "AWS::CloudTrail::Trail"}]
}`

func TestMatch(t *testing.T) {
	ev := &core.Event{
		EventID: "e1", EventTime: time.Date(2024, 7, 30, 21, 7, 44, 0, time.UTC),
		EventName: "StopLogging", EventSource: "cloudtrail.amazonaws.com", Region: "us-east-1",
		Hosts: []string{"203.0.113.7", "cloudtrail.us-east-1.amazonaws.com"}, UserAgent: "stratus-red-team_0123",
		User: "arn:aws:iam::123456789012:user/christophe",
	}
	tests := []struct {
		name    string
		expr    string
		record  string
		want    bool
		wantErr string // start of the error, "" for none
	}{
		{name: "hit", expr: `record.eventName in ["StopLogging", "DeleteTrail"] && !has(record.errorCode)`, want: true},
		{name: "miss", expr: `record.eventName == "DeleteTrail"`},
		{name: "missing key is no match", expr: `record.errorCode == "AccessDenied"`},
		{name: "missing nested key is no match", expr: `record.additionalEventData.MFAUsed == "No"`},
		{name: "field of null is no match", expr: `record.responseElements.ConsoleLogin == "Success"`},
		{name: "missing index is no match", expr: `record.resources[3].type == "AWS::S3::Bucket"`},
		{name: "missing key negated is still no match", expr: `!(record.errorCode == "AccessDenied")`},
		{name: "has on null parent", expr: `!has(record.responseElements.ConsoleLogin)`, want: true},
		{name: "or absorbs a missing key", expr: `record.errorCode == "x" || record.readOnly == false`, want: true},
		{name: "optional read", expr: `record.?additionalEventData.?MFAUsed.orValue("none") == "none"`, want: true},
		{name: "comprehension", expr: `record.resources.exists(r, r.type == "AWS::CloudTrail::Trail")`, want: true},
		{name: "numbers compare across int and double", expr: `size(record.resources) == 1 && record.eventVersion == "1.09"`, want: true},
		{name: "normalized name and source", expr: `event.event_name == "StopLogging" && event.event_source.endsWith(".amazonaws.com")`, want: true},
		{name: "normalized empty fields are empty strings", expr: `event.error_code == "" && event.sensor_uuid == "" && event.computer == ""`, want: true},
		{name: "event time is a timestamp", expr: `event.event_time > timestamp("2024-07-30T21:00:00Z") && event.event_time.getHours() == 21`, want: true},
		{name: "hosts is a list", expr: `"203.0.113.7" in event.hosts && size(event.hosts) == 2`, want: true},
		{name: "strings extension", expr: `event.user_agent.lowerAscii().startsWith("stratus-red-team_") && record.userIdentity.arn.split("/")[1] == "christophe"`, want: true},
		{name: "sets extension", expr: `sets.intersects(event.hosts, ["198.51.100.1", "203.0.113.7"])`, want: true},
		{name: "regex", expr: `record.userIdentity.arn.matches("^arn:aws:iam::[0-9]{12}:user/")`, want: true},
		{name: "type mismatch is an error", expr: `record.readOnly.startsWith("f")`, wantErr: "evaluate the correlation query: no such overload"},
		{name: "record not an object", expr: `record.eventName == "StopLogging"`, record: `["StopLogging"]`, wantErr: "the CloudTrail record is not a JSON object"},
		{name: "record not JSON", expr: `record.eventName == "StopLogging"`, record: `{"eventName":`, wantErr: "decode the CloudTrail record: unexpected end of JSON input"},
		{name: "bad record unread by an event-only query", expr: `event.event_name == "StopLogging"`, record: `{"eventName":`, want: true},
		{name: "empty record", expr: `!has(record.eventName) && event.event_name == "StopLogging"`, record: `null`, want: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := mustCompile(t, tt.expr)
			rec := tt.record
			if rec == "" {
				rec = stopLogging
			}
			got, err := q.Match(json.RawMessage(rec), ev)
			if tt.wantErr != "" {
				if err == nil || !strings.HasPrefix(err.Error(), tt.wantErr) {
					t.Fatalf("Match = %v, %v; want error %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Match: %v", err)
			}
			if got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMatchNilEvent(t *testing.T) {
	q := mustCompile(t, `event.event_name == "" && record.eventName == "StopLogging"`)
	got, err := q.Match(json.RawMessage(stopLogging), nil)
	if err != nil || !got {
		t.Errorf("Match with a nil event = %v, %v; want true, nil", got, err)
	}
}

// TestRuntimeCostLimit: a record far larger than the estimate assumes is stopped by the runtime
// limit, and reported, rather than evaluated for as long as it takes.
func TestRuntimeCostLimit(t *testing.T) {
	q := mustCompile(t, `record.resources.all(r, r.type.startsWith("AWS::"))`, WithCostLimit(20_000))
	var b strings.Builder
	b.WriteString(`{"resources":[`)
	for i := range 50_000 {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`{"type":"AWS::S3::Object"}`)
	}
	b.WriteString(`]}`)
	_, err := q.Match(json.RawMessage(b.String()), nil)
	if err == nil || !strings.Contains(err.Error(), "cost limit exceeded") {
		t.Fatalf("Match over 50000 resources: err = %v; want the runtime cost limit", err)
	}
	// The same query over a normal record is fine.
	if ok, err := q.Match(json.RawMessage(stopLogging), nil); err != nil || !ok {
		t.Errorf("Match over one trail resource = %v, %v; want true, nil", ok, err)
	}
}

// TestConcurrentMatch runs one compiled query from many goroutines (go test -race checks the
// sharing); every goroutine must see the same answers as a sequential run.
func TestConcurrentMatch(t *testing.T) {
	q := mustCompile(t, loadRule(t, "sigma_cloudtrail_important_change.cel").expr)
	records := []string{
		stopLogging,
		strings.Replace(stopLogging, `"StopLogging"`, `"DeleteTrail"`, 1),
		strings.Replace(stopLogging, `"StopLogging"`, `"StartLogging"`, 1),
		strings.Replace(stopLogging, `"eventSource": "cloudtrail.amazonaws.com",`, ``, 1),
	}
	want := []bool{true, true, false, false}
	n := normalizer(t)
	events := make([]core.Event, len(records))
	for i, r := range records {
		events[i] = normalize(t, n, json.RawMessage(r))
	}
	const workers, rounds = 8, 200
	got := make([][]bool, workers)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res := make([]bool, len(records))
			for range rounds {
				for i, r := range records {
					ok, err := q.Match(json.RawMessage(r), &events[i])
					if err != nil {
						t.Errorf("worker %d record %d: %v", w, i, err)
						return
					}
					res[i] = ok
				}
			}
			got[w] = res
		}()
	}
	wg.Wait()
	for w := range workers {
		if diff := cmp.Diff(want, got[w]); diff != "" {
			t.Errorf("worker %d (-want +got):\n%s", w, diff)
		}
	}
}
