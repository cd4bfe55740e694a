package emulator

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cloudtrail"

	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/core"
)

// record makes a CloudTrail record of region at t.
func record(id, region string, t time.Time) core.RawEvent {
	rec, _ := json.Marshal(map[string]any{"eventVersion": "1.08", "eventID": id, "eventTime": t.UTC().Format(time.RFC3339),
		"eventSource": "ec2.amazonaws.com", "eventName": "DescribeInstances", "awsRegion": region,
		"userIdentity": map[string]any{"type": "IAMUser", "userName": "u"}})
	return core.RawEvent{EventID: id, EventTime: t.UTC(), Region: region, Record: rec}
}

func countEvents(t *testing.T, url, region string) int {
	t.Helper()
	evs, _ := readAll(t, client(url, "AKIATEST", region), &cloudtrail.LookupEventsInput{})
	return len(evs)
}

// TestRegionsAsCloudTrail: a region is served its own records; records of a region that is not
// an AWS region (anonymised test data) go to every region and are counted.
func TestRegionsAsCloudTrail(t *testing.T) {
	now := time.Now().Add(-time.Hour)
	evs := []core.RawEvent{
		record("w1", "us-west-2", now), record("w2", "us-west-2", now.Add(time.Second)),
		record("g1", "us-east-1", now), // a global-service event, as CloudTrail records it
		record("x1", "sagov-westsouth-1r", now),
	}
	em, url := startStrict(t, evs, WithRate(0))
	for region, want := range map[string]int{"eu-west-1": 1, "us-west-2": 3, "us-east-1": 2} {
		if got := countEvents(t, url, region); got != want {
			t.Errorf("%s: %d events, want %d (its own and the one of no AWS region)", region, got, want)
		}
	}
	if n := em.ServedAnyRegion(); n != 1 {
		t.Errorf("ServedAnyRegion = %d, want 1", n)
	}
	_, url = startStrict(t, evs, WithRate(0), WithAnyRegion(true))
	if got := countEvents(t, url, "eu-west-1"); got != 4 {
		t.Errorf("WithAnyRegion: %d events in eu-west-1, want all 4", got)
	}
	for region, want := range map[string]bool{"us-east-1": true, "ap-southeast-3": true, "us-gov-west-1": true, "sagov-westsouth-1r": false, "": false, "mars-1": false} {
		if IsAWSRegion(region) != want {
			t.Errorf("IsAWSRegion(%q) = %v", region, !want)
		}
	}
}

// TestHistoryAsCloudTrail: only the last 90 days on the emulator's clock are served.
func TestHistoryAsCloudTrail(t *testing.T) {
	now := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	evs := []core.RawEvent{record("old", "us-west-2", now.Add(-91*24*time.Hour)), record("recent", "us-west-2", now.Add(-89*24*time.Hour))}
	_, url := startStrict(t, evs, WithRate(0), WithClock(clock.NewVirtual(now)))
	got, _ := readAll(t, client(url, "AKIATEST", "us-west-2"), &cloudtrail.LookupEventsInput{})
	if len(got) != 1 || *got[0].EventId != "recent" {
		t.Errorf("served %d events, want only the one within 90 days", len(got))
	}
	_, url = startStrict(t, evs, WithRate(0), WithClock(clock.NewVirtual(now)), WithHistory(0))
	if n := countEvents(t, url, "us-west-2"); n != 2 {
		t.Errorf("WithHistory(0): %d events, want 2", n)
	}
}

// TestUnsignedRefused: a call without a SigV4 Authorization header is refused as AWS refuses it,
// keys or not, unless WithUnsigned.
func TestUnsignedRefused(t *testing.T) {
	evs := []core.RawEvent{record("w1", "us-west-2", time.Now().Add(-time.Hour))}
	for _, tt := range []struct {
		opts []Option
		want int
	}{{nil, http.StatusBadRequest}, {[]Option{WithUnsigned(true)}, http.StatusOK}} {
		_, url := startStrict(t, evs, append([]Option{WithRate(0)}, tt.opts...)...)
		req, _ := http.NewRequestWithContext(context.Background(), http.MethodPost, url+"/", strings.NewReader(`{}`))
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		req.Header.Set("X-Amz-Target", "CloudTrail_20131101.LookupEvents")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		code := resp.Header.Get("X-Amzn-Errortype")
		if resp.StatusCode != tt.want || (tt.want != http.StatusOK && code != CodeMissingAuthToken) {
			t.Errorf("%d options: HTTP %d %s, want %d%s", len(tt.opts), resp.StatusCode, code, tt.want,
				map[bool]string{true: " " + CodeMissingAuthToken}[tt.want != http.StatusOK])
		}
	}
}

func TestRegionFilter(t *testing.T) {
	for _, tt := range []struct {
		on   bool
		want int
	}{{false, 6}, {true, 2}} {
		_, url := start(t, small(t), WithRate(0), WithRegionFilter(tt.on))
		got, _ := readAll(t, client(url, "AKIATEST", "eu-west-1"), &cloudtrail.LookupEventsInput{})
		if len(got) != tt.want {
			t.Errorf("region filter %v: %d events for eu-west-1, want %d", tt.on, len(got), tt.want)
		}
	}
}
