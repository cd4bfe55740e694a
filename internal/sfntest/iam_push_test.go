package sfntest

import (
	"log/slog"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/lambdafn"
)

// runIngestScenario stores the sample push batch (events/ingest/main.json) through the ingest
// function built over cfg as its main builds it, twice (SQS delivers at least once).
func runIngestScenario(t *testing.T, cfg aws.Config) {
	t.Helper()
	var batch events.SQSEvent
	if err := SampleEvent("ingest", "main", &batch); err != nil {
		t.Fatal(err)
	}
	env, err := awsenv.New(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("build IngestFunction: %v", err)
	}
	ingest := lambdafn.Ingest(env.Store, slog.New(slog.DiscardHandler))
	for range 2 {
		res, err := ingest(t.Context(), batch)
		if err != nil || len(res.BatchItemFailures) > 0 {
			t.Fatalf("IngestFunction: %v, failures %v", err, res.BatchItemFailures)
		}
	}
}
