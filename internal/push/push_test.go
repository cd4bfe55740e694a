package push_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
)

const record = `{"eventVersion":"1.08","eventID":"e1","eventTime":"2024-01-02T03:04:05Z","eventName":"ListBuckets","eventSource":"s3.amazonaws.com","awsRegion":"us-east-1","recipientAccountId":"123456789012","userIdentity":{"type":"IAMUser","userName":"alice","accountId":"123456789012"}}`

func envelope(detailType, account, region, detail string) string {
	return `{"version":"0","id":"x","detail-type":"` + detailType + `","source":"aws.s3","account":"` + account + `","time":"2024-01-02T03:04:06Z","region":"` + region + `","resources":[],"detail":` + detail + `}`
}

// TestDecode: an EventBridge envelope becomes the raw event of its account, region and category;
// anything else is an EINVALID error naming the field.
func TestDecode(t *testing.T) {
	tests := []struct {
		name, in, partition, field string
	}{
		{"api call", envelope("AWS API Call via CloudTrail", "123456789012", "us-east-1", record), "push#123456789012#us-east-1#management", ""},
		{"insight", envelope("AWS Insight via CloudTrail", "123456789012", "eu-west-1", record), "push#123456789012#eu-west-1#insight", ""},
		{"other detail-type", envelope("EC2 Instance State-change Notification", "123456789012", "us-east-1", record), "", "detail-type"},
		{"bad account", envelope("AWS API Call via CloudTrail", "12345", "us-east-1", record), "", "account"},
		{"no region", envelope("AWS API Call via CloudTrail", "123456789012", "", record), "", "region"},
		{"detail not an object", envelope("AWS API Call via CloudTrail", "123456789012", "us-east-1", `"x"`), "", "detail"},
		{"no eventID", envelope("AWS API Call via CloudTrail", "123456789012", "us-east-1", `{"eventTime":"2024-01-02T03:04:05Z"}`), "", "detail.eventID"},
		{"bad eventTime", envelope("AWS API Call via CloudTrail", "123456789012", "us-east-1", `{"eventID":"e","eventTime":"yesterday"}`), "", "detail.eventTime"},
		{"not JSON", `{`, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := push.Decode([]byte(tt.in))
			if tt.partition == "" {
				if core.ErrorCode(err) != core.EINVALID || core.ErrorField(err) != tt.field {
					t.Fatalf("error %v (code %s field %q), want EINVALID naming %q", err, core.ErrorCode(err), core.ErrorField(err), tt.field)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ev.Partition != tt.partition || ev.Raw.EventID != "e1" || !ev.Raw.EventTime.Equal(time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)) {
				t.Errorf("got %s %s %s", ev.Partition, ev.Raw.EventID, ev.Raw.EventTime)
			}
			if !strings.Contains(string(ev.Raw.Envelope), `"Username":"alice"`) {
				t.Errorf("envelope %s lacks the LookupEvents Username", ev.Raw.Envelope)
			}
		})
	}
}

// TestEnvelopeRoundTrip: what the simulated feed pushes decodes to the record it came from.
func TestEnvelopeRoundTrip(t *testing.T) {
	raw := core.RawEvent{EventID: "e1", EventTime: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Region: "us-east-1", Record: []byte(record)}
	b, err := push.EnvelopeOf(raw, "123456789012")
	if err != nil {
		t.Fatal(err)
	}
	ev, err := push.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Partition != "push#123456789012#us-east-1#management" || string(ev.Raw.Record) != record {
		t.Errorf("round trip: %s %s", ev.Partition, ev.Raw.Record)
	}
}

type memStore map[string][]core.RawEvent

func (m memStore) AddRawEvents(_ context.Context, p string, evs []core.RawEvent) (int, error) {
	m[p] = append(m[p], evs...)
	return len(evs), nil
}

// TestIngestReportsBadEnvelopes: a bad envelope is reported by its index; the others are stored.
func TestIngestReportsBadEnvelopes(t *testing.T) {
	m := memStore{}
	errs := push.Ingest(context.Background(), m, [][]byte{
		[]byte(envelope("AWS API Call via CloudTrail", "123456789012", "us-east-1", record)),
		[]byte(`{"detail-type":"nope"}`),
	})
	if errs[0] != nil || errs[1] == nil || len(m["push#123456789012#us-east-1#management"]) != 1 {
		t.Errorf("errors %v, stored %v", errs, m)
	}
}

// TestLost: the lost fraction is close to the one asked for, and the same ids every time.
func TestLost(t *testing.T) {
	n := 0
	for i := range 10000 {
		if push.Lost(strings.Repeat("x", i%7)+string(rune('a'+i%26))+time.Duration(i).String(), 0.05) {
			n++
		}
	}
	if n < 400 || n > 600 {
		t.Errorf("%d of 10000 lost at 0.05", n)
	}
	if push.Lost("e1", 0) || !push.Lost("e1", 1) {
		t.Error("loss 0 must lose nothing, loss 1 everything")
	}
}
