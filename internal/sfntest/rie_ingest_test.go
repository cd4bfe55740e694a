package sfntest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
)

// ingestBootstrap runs the ingest function's bootstrap under the Runtime Interface Emulator with
// events/ingest/main.json (what `make invoke-ingest` does) against the table env names: it must
// answer no batch item failure, and every pushed event of the batch must then be readable in its
// push partition, where a run's correlate step looks for it. It records the size and cold start.
func ingestBootstrap(t *testing.T, rie, root string, env []string, fig *figures) {
	t.Helper()
	bin, size := buildBootstrap(t, root, "./functions/ingest")
	fig.Sizes["ingest"] = size
	event, err := os.ReadFile(filepath.Join(root, "events", "ingest", "main.json"))
	if err != nil {
		t.Fatal(err)
	}
	answer, fnErr, cold := invokeCold(t, rie, bin, env, event)
	fig.ColdMS["ingest"] = ms(medianCold(t, cold, func() time.Duration {
		_, _, d := invokeCold(t, rie, bin, env, event) // SQS delivers at least once: stores nothing twice
		return d
	}))
	var resp events.SQSEventResponse
	if fnErr != "" || json.Unmarshal(answer, &resp) != nil || len(resp.BatchItemFailures) > 0 {
		t.Fatalf("ingest answered %s (function error %q): want no batch item failure", answer, fnErr)
	}
	var batch events.SQSEvent
	if err := json.Unmarshal(event, &batch); err != nil {
		t.Fatal(err)
	}
	key, err := seal.LoadOrCreateKey(envValue(env, "SEAL_KEY_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	st, err := dynamo.New(dynamo.LocalClient(envValue(env, "DYNAMODB_ENDPOINT")), envValue(env, "TABLE_NAME"), dynamo.WithSealer(sealer))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range batch.Records {
		ev, err := push.Decode([]byte(m.Body))
		if err != nil {
			t.Fatalf("message %s: %v", m.MessageId, err)
		}
		stored, err := core.CollectRawEvents(st.RawEvents(t.Context(), ev.Partition, ev.Raw.EventTime, ev.Raw.EventTime))
		if err != nil {
			t.Fatal(err)
		}
		if n := len(slices.DeleteFunc(stored, func(r core.RawEvent) bool { return r.EventID != ev.Raw.EventID })); n != 1 {
			t.Errorf("event %s: %d copies in %s after the invocations, want 1", ev.Raw.EventID, n, ev.Partition)
		}
	}
	fig.RatioMax["ingestSize"] = float64(size) / float64(fig.Sizes["minimal"])
	fig.RatioMax["ingestCold"] = fig.ColdMS["ingest"] / fig.ColdMS["minimal"]
	t.Logf("%-9s %6.1f MB (%.1fx minimal)  cold start %6.1f ms (%.1fx minimal)", "ingest",
		float64(size)/1e6, fig.RatioMax["ingestSize"], fig.ColdMS["ingest"], fig.RatioMax["ingestCold"])
}

// envValue is the value of name in a KEY=value environment.
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok && k == name {
			return v
		}
	}
	return ""
}
