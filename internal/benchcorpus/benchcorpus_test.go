package benchcorpus_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/benchcorpus"
	"github.com/trailproof/trailproof/internal/core"
)

func record(t *testing.T, fields map[string]any) core.RawEvent {
	t.Helper()
	b, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	at, _ := time.Parse(time.RFC3339, fields["eventTime"].(string))
	return core.RawEvent{EventID: fields["eventID"].(string), EventTime: at, Record: b}
}

// TestBackground: the generated account has exactly the asked rate in every minute of the span,
// each record's eventTime, eventID and awsRegion say what the event says, and no ID repeats.
func TestBackground(t *testing.T) {
	pool := []core.RawEvent{
		record(t, map[string]any{"eventID": "a", "eventTime": "2020-01-01T00:00:00Z", "awsRegion": "eu-west-1", "eventName": "GetObject", "userAgent": "aws-cli"}),
		record(t, map[string]any{"eventID": "b", "eventTime": "2020-01-02T00:00:00Z", "awsRegion": "us-west-2", "eventName": "ListBuckets"}),
	}
	from := time.Date(2026, 3, 3, 13, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		perMinute, minutes int
	}{{10, 7}, {100, 3}, {1000, 2}, {7, 5}} {
		t.Run(fmt.Sprintf("%d/min", tc.perMinute), func(t *testing.T) {
			to := from.Add(time.Duration(tc.minutes) * time.Minute)
			evs := benchcorpus.Background(pool, from, to, tc.perMinute, "us-east-1", "busy")
			if len(evs) != tc.perMinute*tc.minutes {
				t.Fatalf("%d events over %d minutes at %d a minute, want %d", len(evs), tc.minutes, tc.perMinute, tc.perMinute*tc.minutes)
			}
			perMinute := map[time.Time]int{}
			ids := map[string]bool{}
			for _, e := range evs {
				if e.EventTime.Before(from) || !e.EventTime.Before(to) || e.EventTime.Nanosecond() != 0 {
					t.Fatalf("event %s at %s: outside [%s, %s) or not on a second", e.EventID, e.EventTime, from, to)
				}
				perMinute[e.EventTime.Truncate(time.Minute)]++
				if ids[e.EventID] {
					t.Fatalf("event ID %s twice", e.EventID)
				}
				ids[e.EventID] = true
				var rec struct{ EventID, EventTime, AwsRegion string }
				if err := json.Unmarshal(e.Record, &rec); err != nil {
					t.Fatal(err)
				}
				if rec.EventID != e.EventID || rec.EventTime != e.EventTime.Format(time.RFC3339) || rec.AwsRegion != "us-east-1" || e.Region != "us-east-1" {
					t.Fatalf("record says %+v, event says %s %s %s", rec, e.EventID, e.EventTime, e.Region)
				}
			}
			for m := from; m.Before(to); m = m.Add(time.Minute) {
				if perMinute[m] != tc.perMinute {
					t.Errorf("minute %s has %d events, want %d", m.Format("15:04"), perMinute[m], tc.perMinute)
				}
			}
		})
	}
	if evs := benchcorpus.Background(pool, from, from.Add(time.Hour), 0, "us-east-1", "busy"); len(evs) != 0 {
		t.Errorf("rate 0 made %d events", len(evs))
	}
}

// TestReplay: a replayed action starts 10 s after its start, keeps its events' spacing, and
// carries its own IDs and user-agent token everywhere the recording had the old ones.
func TestReplay(t *testing.T) {
	const token = "stratus-red-team_3f2a9c1e-5b7d-4e8a-9c0f-1d2e3f4a5b6c"
	evs := []core.RawEvent{
		record(t, map[string]any{"eventID": "e2", "eventTime": "2024-07-30T21:31:20Z", "eventSource": "ec2.amazonaws.com", "eventName": "GetPasswordData", "userAgent": token + " aws-sdk-go"}),
		record(t, map[string]any{"eventID": "e1", "eventTime": "2024-07-30T21:31:05Z", "eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "userAgent": token}),
	}
	tpl := benchcorpus.TemplateOf("t", evs, "")
	if tpl.Token != token || len(tpl.Names) != 2 || !tpl.First.Equal(evs[1].EventTime) {
		t.Fatalf("template: token %q names %v first %s", tpl.Token, tpl.Names, tpl.First)
	}
	start := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	out, newToken := tpl.Replay(start, "-x1")
	if newToken != token+"-x1" {
		t.Fatalf("token %q", newToken)
	}
	wantAt := map[string]time.Time{"e1-x1": start.Add(10 * time.Second), "e2-x1": start.Add(25 * time.Second)}
	for _, e := range out {
		if !e.EventTime.Equal(wantAt[e.EventID]) {
			t.Errorf("%s at %s, want %s", e.EventID, e.EventTime, wantAt[e.EventID])
		}
		rec := string(e.Record)
		if !strings.Contains(rec, `"eventID":"`+e.EventID+`"`) || !strings.Contains(rec, newToken) || !strings.Contains(rec, e.EventTime.Format(time.RFC3339)) {
			t.Errorf("record %s does not carry the new ID, token and time", rec)
		}
	}
}
