package lambdafn

import (
	"context"
	"log/slog"

	"github.com/aws/aws-lambda-go/events"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
)

// IngestHandler reads a batch of the push queue: EventBridge events of CloudTrail, one per SQS
// message.
type IngestHandler func(ctx context.Context, batch events.SQSEvent) (events.SQSEventResponse, error)

// Ingest stores each pushed event in its push partition (push.Ingest) and reports the messages it
// could not store as batch item failures (ReportBatchItemFailures): SQS redelivers those alone,
// and a message that never decodes ends in the dead-letter queue, whose alarm says so. A store
// write is idempotent (one copy per EventID), so a redelivered message stores nothing twice.
func Ingest(st push.Adder, log *slog.Logger) IngestHandler {
	return func(ctx context.Context, batch events.SQSEvent) (events.SQSEventResponse, error) {
		bodies := make([][]byte, len(batch.Records))
		for i, m := range batch.Records {
			bodies[i] = []byte(m.Body)
		}
		var out events.SQSEventResponse
		for i, err := range push.Ingest(ctx, st, bodies) {
			if err == nil {
				continue
			}
			id := batch.Records[i].MessageId
			log.ErrorContext(ctx, "pushed event not stored", "messageId", id, "code", core.ErrorCode(err), "error", core.ErrorMessage(err))
			out.BatchItemFailures = append(out.BatchItemFailures, events.SQSBatchItemFailure{ItemIdentifier: id})
		}
		log.InfoContext(ctx, "pushed events", "received", len(bodies), "failed", len(out.BatchItemFailures))
		return out, nil
	}
}
