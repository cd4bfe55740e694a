package core

import (
	"encoding/json"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/tidwall/gjson"
)

// loadRecords reads testdata/correlate-records.json ({"Records": [...]}) into raw events.
func loadRecords(t *testing.T) []RawEvent {
	t.Helper()
	b, err := os.ReadFile("testdata/correlate-records.json")
	if err != nil {
		t.Fatal(err)
	}
	var out []RawEvent
	for _, r := range gjson.GetBytes(b, "Records").Array() {
		tm, err := time.Parse(time.RFC3339, r.Get("eventTime").String())
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, RawEvent{EventID: r.Get("eventID").String(), EventTime: tm, Record: json.RawMessage(r.Raw)})
	}
	return out
}

func testIntegration() *Integration {
	return &Integration{Name: "t", AWSRegion: "us-west-2", QueryTime: 5, QueryInterval: 30, Limit: 100,
		PageSize: 100, MaxPage: 5, SettleTime: 10, DiscoverNetworkDevices: true}
}

var start = time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)

func ids(evs []Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

func TestCorrelate(t *testing.T) {
	raws := loadRecords(t)
	tok := "stratus-red-team_aaaa"
	tests := []struct {
		name       string
		mod        func(*Integration)
		actor      Actor
		expected   []string
		wantIDs    []string
		wantOn     [][]string
		wantSusp   []string
		wantCounts []int
		wantWeak   bool
		wantTrunc  bool
	}{
		{
			name:       "user agent token",
			actor:      Actor{UserAgentToken: tok},
			expected:   []string{"ec2.amazonaws.com:GetPasswordData", "iam:CreateUser"},
			wantIDs:    []string{"e1", "e2", "e3"},
			wantOn:     [][]string{{MatchUserAgent}, {MatchUserAgent}, {MatchUserAgent}},
			wantCounts: []int{2, 0},
		},
		{
			name:    "several keys report each one matched",
			actor:   Actor{UserAgentToken: tok, AccessKeyIDs: []string{"ASIAATTACKER0000KEY1"}},
			wantIDs: []string{"e1", "e2", "e3"},
			wantOn:  [][]string{{MatchUserAgent, MatchAccessKey}, {MatchUserAgent, MatchAccessKey}, {MatchUserAgent}},
		},
		{
			name:    "access key only",
			actor:   Actor{AccessKeyIDs: []string{"ASIAATTACKER0000KEY1"}},
			wantIDs: []string{"e1", "e2"},
			wantOn:  [][]string{{MatchAccessKey}, {MatchAccessKey}},
		},
		{
			name:    "host, case-insensitive",
			actor:   Actor{Hosts: []string{"I-0ABC"}},
			wantIDs: []string{"e3", "n1"},
			wantOn:  [][]string{{MatchHost}, {MatchHost}},
		},
		{
			name:    "source ip is a host",
			actor:   Actor{Hosts: []string{"198.51.100.8"}},
			wantIDs: []string{"n2"},
			wantOn:  [][]string{{MatchHost}},
		},
		{
			name:    "principal arn and user name",
			actor:   Actor{Principals: []string{"arn:aws:iam::111122223333:user/bob", "carol"}},
			wantIDs: []string{"n1", "n2"},
			wantOn:  [][]string{{MatchPrincipal}, {MatchPrincipal}},
		},
		{
			name:    "role session name",
			actor:   Actor{RoleSessionNames: []string{"attack-session"}},
			wantIDs: []string{"e1", "e2", "e3"},
			wantOn:  [][]string{{MatchRoleSessionName}, {MatchRoleSessionName}, {MatchRoleSessionName}},
		},
		{
			name:       "no actor key falls back to expected names",
			expected:   []string{"GetPasswordData"},
			wantIDs:    []string{"e1", "e2", "n1"},
			wantOn:     [][]string{{MatchExpectedEvent}, {MatchExpectedEvent}, {MatchExpectedEvent}},
			wantCounts: []int{3},
			wantWeak:   true,
		},
		{
			name:       "suspicious: drift and expected event without actor key",
			mod:        func(in *Integration) { in.SaveSuspiciousEvents = true },
			actor:      Actor{UserAgentToken: tok},
			expected:   []string{"ec2:GetPasswordData"},
			wantIDs:    []string{"e1", "e2", "e3"},
			wantOn:     [][]string{{MatchUserAgent}, {MatchUserAgent}, {MatchUserAgent}},
			wantSusp:   []string{"d1", "n1"},
			wantCounts: []int{2},
		},
		{
			name:       "event time adjustment moves the drifted event into the window",
			mod:        func(in *Integration) { in.EventTimeAdjustment = 180 },
			actor:      Actor{UserAgentToken: tok},
			expected:   []string{"ec2:GetPasswordData"},
			wantIDs:    []string{"d1", "e1", "e2", "e3"},
			wantOn:     [][]string{{MatchUserAgent}, {MatchUserAgent}, {MatchUserAgent}, {MatchUserAgent}},
			wantCounts: []int{3},
		},
		{
			name:      "limit keeps the earliest",
			mod:       func(in *Integration) { in.Limit = 2 },
			actor:     Actor{UserAgentToken: tok},
			wantIDs:   []string{"e1", "e2"},
			wantOn:    [][]string{{MatchUserAgent}, {MatchUserAgent}},
			wantTrunc: true,
		},
		{
			name:  "sensor filter drops other sensors",
			mod:   func(in *Integration) { in.EventSensorUUIDs = []string{SensorUUID("999999999999", "us-west-2")} },
			actor: Actor{UserAgentToken: tok},
		},
		{
			name:    "sensor filter keeps its sensor",
			mod:     func(in *Integration) { in.EventSensorUUIDs = []string{SensorUUID("111122223333", "us-west-2")} },
			actor:   Actor{UserAgentToken: tok},
			wantIDs: []string{"e1", "e2", "e3"},
			wantOn:  [][]string{{MatchUserAgent}, {MatchUserAgent}, {MatchUserAgent}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := testIntegration()
			if tt.mod != nil {
				tt.mod(in)
			}
			a := &Action{JobID: "j", ActionID: "a", StartTime: start, Actor: tt.actor, ExpectedEvents: tt.expected}
			res := NewCorrelator(in, a).Correlate(slices.Clone(raws))
			if diff := cmp.Diff(tt.wantIDs, ids(res.Events)); diff != "" {
				t.Errorf("matched events (-want +got):\n%s", diff)
			}
			var on [][]string
			for _, e := range res.Events {
				on = append(on, e.MatchedOn)
			}
			if diff := cmp.Diff(tt.wantOn, on); diff != "" {
				t.Errorf("matched_on (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantSusp, ids(res.Suspicious)); diff != "" {
				t.Errorf("suspicious (-want +got):\n%s", diff)
			}
			var counts []int
			for _, c := range res.Expected {
				counts = append(counts, c.Count)
			}
			if diff := cmp.Diff(tt.wantCounts, counts); diff != "" {
				t.Errorf("expected counts (-want +got):\n%s", diff)
			}
			if res.WeakMatch != tt.wantWeak || res.Truncated != tt.wantTrunc || res.Logged != (len(tt.wantIDs) > 0) {
				t.Errorf("weak=%v truncated=%v logged=%v, want %v %v %v", res.WeakMatch, res.Truncated, res.Logged, tt.wantWeak, tt.wantTrunc, len(tt.wantIDs) > 0)
			}
		})
	}
}

func TestNormalize(t *testing.T) {
	raws := loadRecords(t)
	in := testIntegration()
	in.FieldMap = map[string][]string{"description": {"nothing.here", "eventName"}}
	n := NewNormalizer(in)
	e := n.Normalize(&raws[slices.IndexFunc(raws, func(r RawEvent) bool { return r.EventID == "e3" })])
	e.Raw = nil
	want := Event{
		EventID: "e3", EventTime: start.Add(20 * time.Second), Computer: "i-0abc",
		Hosts: []string{"203.0.113.9", "ec2.us-west-2.amazonaws.com", "i-0abc"}, SrcIP: "203.0.113.9",
		DestIP: "ec2.us-west-2.amazonaws.com", User: "arn:aws:sts::111122223333:assumed-role/attacker/attack-session",
		Description: "StopInstances", EventName: "StopInstances", EventSource: "ec2.amazonaws.com", Region: "us-west-2",
		AccountID: "111122223333", UserAgent: "stratus-red-team_aaaa-bbbb", ErrorCode: "", AccessKeyID: "ASIAOTHERKEY00000001",
		SensorUUID: SensorUUID("111122223333", "us-west-2"), Vendor: SensorVendor, Product: SensorProduct,
	}
	if diff := cmp.Diff(want, e); diff != "" {
		t.Errorf("normalized (-want +got):\n%s", diff)
	}
	in.DiscoverNetworkDevices = false
	if e := NewNormalizer(in).Normalize(&raws[0]); e.Vendor != "" || e.Product != "" || e.SensorUUID != "" {
		t.Errorf("without discovery the event carries product information: %+v", e)
	}
}

func TestSensorUUIDStable(t *testing.T) {
	a, b := SensorUUID("111122223333", "us-east-1"), SensorUUID("111122223333", "us-east-1")
	if a != b || a == SensorUUID("111122223333", "us-east-2") || a == SensorUUID("111122223334", "us-east-1") {
		t.Fatalf("sensor UUIDs not stable and distinct: %s %s", a, b)
	}
	// Pin the value: a change would orphan every sensor filter users have configured.
	if want := "ca809b9a-46ef-56f1-af6f-a2817b9a6847"; a != want {
		t.Fatalf("SensorUUID(111122223333, us-east-1) = %s, want %s", a, want)
	}
}

func TestParseExpectedEvent(t *testing.T) {
	for in, want := range map[string]ExpectedEvent{
		"ec2.amazonaws.com:GetPasswordData": {Source: "ec2.amazonaws.com", Name: "GetPasswordData"},
		"ec2:GetPasswordData":               {Source: "ec2.amazonaws.com", Name: "GetPasswordData"},
		"GetPasswordData":                   {Name: "GetPasswordData"},
	} {
		if got := ParseExpectedEvent(in); got != want {
			t.Errorf("ParseExpectedEvent(%q) = %+v, want %+v", in, got, want)
		}
	}
}
