package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/trailproof/trailproof/internal/api/awsapi"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/store/storetest"
	"github.com/trailproof/trailproof/internal/testenv"
)

// TestFunctionAnswersEvents builds the function's handler exactly as main does (awsapi.FromEnv)
// against DynamoDB Local and a stand-in Step Functions endpoint, and answers the API Gateway
// payloads of events/api through the Lambda adapter.
func TestFunctionAnswersEvents(t *testing.T) {
	endpoint := storetest.DynamoEndpoint(t)
	var starts atomic.Int64
	sfnSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var in map[string]string
		_ = json.Unmarshal(body, &in)
		w.Header().Set("Content-Type", "application/x-amz-json-1.0")
		switch r.Header.Get("X-Amz-Target") {
		case "AWSStepFunctions.StartExecution":
			// The execution is named after the run and its creation time (awsapi.ExecutionName).
			var input struct{ RunID string }
			if json.Unmarshal([]byte(in["input"]), &input) != nil || !strings.HasPrefix(in["name"], input.RunID+"-") {
				w.WriteHeader(400)
				_, _ = io.WriteString(w, `{"__type":"InvalidExecutionInput","message":"unexpected input"}`)
				return
			}
			starts.Add(1)
			_, _ = io.WriteString(w, `{"executionArn":"arn:aws:states:us-east-1:123456789012:execution:sm:`+in["name"]+`","startDate":1722375065}`)
		default:
			_, _ = io.WriteString(w, `{"stopDate":1722375066}`)
		}
	}))
	defer sfnSrv.Close()

	table := fmt.Sprintf("trailproof-api-test-%d", time.Now().UnixNano())
	ctx := context.Background()
	ds, err := dynamo.New(dynamo.LocalClient(endpoint), table, dynamo.WithSealer(mustAES(t)))
	if err != nil {
		t.Fatal(err)
	}
	if err := ds.CreateTable(ctx); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "seal.key")
	if _, err := seal.LoadOrCreateKey(keyFile); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"TABLE_NAME": table, "DYNAMODB_ENDPOINT": endpoint, "SEAL_KEY_FILE": keyFile, "SEAL_KEY_SECRET_ARN": "",
		"STATE_MACHINE_ARN": "arn:aws:states:us-east-1:123456789012:stateMachine:sm", "STEPFUNCTIONS_ENDPOINT": sfnSrv.URL,
		"AWS_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "AKIALOCALTEST0000001", "AWS_SECRET_ACCESS_KEY": "local",
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_PROFILE": "", "AWS_CONFIG_FILE": "/dev/null", "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
	} {
		t.Setenv(k, v)
	}
	h, err := awsapi.FromEnv(ctx, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	invoke := awsapi.Lambda(h)
	for _, s := range []struct {
		event  string
		status int
	}{
		{"unauthenticated.json", 401}, {"create-integration.json", 201}, {"main.json", 200}, {"get-integration.json", 200},
		{"start-run.json", 202}, {"get-run.json", 200}, {"cancel-run.json", 200},
	} {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "api", s.event))
		if err != nil {
			t.Fatal(err)
		}
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		if s.event == "start-run.json" {
			// The function runs on the real clock and refuses an action older than CloudTrail's
			// 90-day history: the sample's action is replayed as having started an hour ago.
			ev.Body = strings.Replace(ev.Body, "2024-07-30T21:31:05Z", time.Now().UTC().Add(-time.Hour).Format(time.RFC3339), 1)
		}
		resp, err := invoke(ctx, ev)
		if err != nil || resp.StatusCode != s.status {
			t.Fatalf("%s: %d %s %v; want %d", s.event, resp.StatusCode, resp.Body, err, s.status)
		}
		if strings.Contains(resp.Body, "example-secret-not-a-real-key") {
			t.Errorf("%s: the answer holds the secret", s.event)
		}
	}
	if starts.Load() != 1 {
		t.Errorf("%d executions started, want 1", starts.Load())
	}
}

func mustAES(t *testing.T) seal.Sealer {
	s, err := seal.NewAESGCM(make([]byte, seal.KeySize))
	if err != nil {
		t.Fatal(err)
	}
	return s
}
