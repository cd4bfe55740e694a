package lambdafn_test

import (
	"context"
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/sfntest"
)

type memAdder map[string]map[string]bool

func (m memAdder) AddRawEvents(_ context.Context, p string, evs []core.RawEvent) (int, error) {
	if m[p] == nil {
		m[p] = map[string]bool{}
	}
	n := 0
	for _, ev := range evs {
		if !m[p][ev.EventID] {
			m[p][ev.EventID] = true
			n++
		}
	}
	return n, nil
}

// TestIngestBatch: the sample batch is stored whole; a message that is not a CloudTrail event is
// the one batch item failure (SQS redelivers it, then the dead-letter queue keeps it).
func TestIngestBatch(t *testing.T) {
	var batch events.SQSEvent
	if err := sfntest.SampleEvent("ingest", "main", &batch); err != nil {
		t.Fatal(err)
	}
	batch.Records = append(batch.Records, events.SQSMessage{MessageId: "bad", Body: `{"detail-type":"EC2 Instance State-change Notification"}`})
	st := memAdder{}
	res, err := lambdafn.Ingest(st, slog.New(slog.DiscardHandler))(context.Background(), batch)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.BatchItemFailures) != 1 || res.BatchItemFailures[0].ItemIdentifier != "bad" {
		t.Errorf("failures %+v, want only the bad message", res.BatchItemFailures)
	}
	stored := 0
	for _, ids := range st {
		stored += len(ids)
	}
	if stored != len(batch.Records)-1 {
		t.Errorf("stored %d events, want %d", stored, len(batch.Records)-1)
	}
}
