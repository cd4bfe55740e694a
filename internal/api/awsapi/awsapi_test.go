package awsapi_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/api/apitest"
	"github.com/trailproof/trailproof/internal/api/awsapi"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/store/bolt"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

const stateMachine = "arn:aws:states:us-east-1:123456789012:stateMachine:trailproof-correlation"

// fakeSFN answers the Step Functions JSON 1.0 protocol for StartExecution and StopExecution as
// the service does: a second start of a name answers ExecutionAlreadyExists.
type fakeSFN struct {
	mu      sync.Mutex
	names   map[string]string // name -> input
	stopped []string
}

func (f *fakeSFN) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var in map[string]string
	_ = json.Unmarshal(body, &in)
	w.Header().Set("Content-Type", "application/x-amz-json-1.0")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch r.Header.Get("X-Amz-Target") {
	case "AWSStepFunctions.StartExecution":
		if _, ok := f.names[in["name"]]; ok {
			w.WriteHeader(400)
			_, _ = io.WriteString(w, `{"__type":"ExecutionAlreadyExists","message":"Execution Already Exists: '`+in["name"]+`'"}`)
			return
		}
		f.names[in["name"]] = in["input"]
		_, _ = io.WriteString(w, `{"executionArn":"`+strings.Replace(in["stateMachineArn"], ":stateMachine:", ":execution:", 1)+":"+in["name"]+`","startDate":1722375065}`)
	case "AWSStepFunctions.StopExecution":
		f.stopped = append(f.stopped, in["executionArn"])
		_, _ = io.WriteString(w, `{"stopDate":1722375066}`)
	default:
		w.WriteHeader(400)
		_, _ = io.WriteString(w, `{"__type":"UnknownOperationException","message":"no"}`)
	}
}

func sfnClient(url string) *sfn.Client {
	return sfn.New(sfn.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIATEST", "secret", "")})
}

func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "events", "api", name))
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(data, &ev); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// TestEvents feeds the API Gateway payloads in events/api to the handler as the api function
// wires it (GatewayIAM, the Step Functions starter with the real SDK client, the Lambda adapter),
// and validates each answer against the OpenAPI spec.
func TestEvents(t *testing.T) {
	fake := &fakeSFN{names: map[string]string{}}
	sfnSrv := httptest.NewServer(fake)
	defer sfnSrv.Close()
	st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	starter, err := awsapi.NewStepFunctions(sfnClient(sfnSrv.URL), stateMachine, st)
	if err != nil {
		t.Fatal(err)
	}
	// The sample action started on 2024-07-30: the API answers it on that day, when CloudTrail
	// still held its events (a run of it today would be refused: outside the 90-day history).
	day := clock.NewVirtual(time.Date(2024, 7, 30, 21, 40, 0, 0, time.UTC))
	h, err := api.New(api.Config{Store: st, Engine: workflow.New(st, nil, workflow.WithClock(day)), Runs: starter, Tester: connectivity.New(),
		Auth: awsapi.GatewayIAM(), Challenge: awsapi.Challenge})
	if err != nil {
		t.Fatal(err)
	}
	invoke := awsapi.Lambda(h)
	v := apitest.MustLoad(t)
	steps := []struct {
		event  string
		status int
		holds  string
	}{
		{"unauthenticated.json", 401, "AWS Signature Version 4"},
		{"create-integration.json", 201, `"secretAccessKey":"********"`},
		{"main.json", 200, `"integrations":[{`},
		{"get-integration.json", 200, `"id":"prod"`},
		{"bad-json.json", 400, "malformed JSON"},
		{"start-run.json", 202, `"status":"waiting"`},
		{"start-run.json", 202, `"runId":"run-job-42-A104-123"`}, // the execution exists: not an error
		{"get-run.json", 200, `"limit":50`},
		{"cancel-run.json", 200, `"status":"cancelled"`},
	}
	for _, s := range steps {
		ev := loadEvent(t, s.event)
		resp, err := invoke(context.Background(), ev)
		if err != nil {
			t.Fatalf("%s: %v", s.event, err)
		}
		if resp.StatusCode != s.status || !strings.Contains(resp.Body, s.holds) {
			t.Errorf("%s: %d %s; want %d holding %q", s.event, resp.StatusCode, resp.Body, s.status, s.holds)
		}
		if strings.Contains(resp.Body, "example-secret-not-a-real-key") {
			t.Errorf("%s: the answer holds the secret", s.event)
		}
		req, _ := http.NewRequest(ev.RequestContext.HTTP.Method, "https://"+ev.RequestContext.DomainName+ev.RawPath+"?"+ev.RawQueryString, nil)
		header := http.Header{}
		for k, val := range resp.Headers {
			header.Set(k, val)
		}
		if err := v.Validate(req, resp.StatusCode, header, []byte(resp.Body)); err != nil {
			t.Errorf("%s: %v", s.event, err)
		}
	}
	run, err := st.GetRun(context.Background(), "run-job-42-A104-123")
	if err != nil {
		t.Fatal(err)
	}
	name := awsapi.ExecutionName(run)
	if got := fake.names[name]; got != `{"runId":"run-job-42-A104-123"}` {
		t.Errorf("execution %s input %q (executions %v)", name, got, fake.names)
	}
	if len(fake.names) != 1 {
		t.Errorf("%d executions started, want 1", len(fake.names))
	}
	if want := "arn:aws:states:us-east-1:123456789012:execution:trailproof-correlation:" + name; len(fake.stopped) != 1 || fake.stopped[0] != want {
		t.Errorf("stopped %v, want %s", fake.stopped, want)
	}
}

func TestNewStepFunctionsChecksTheARN(t *testing.T) {
	for _, bad := range []string{"", "trailproof", "arn:aws:lambda:us-east-1:123456789012:function:x"} {
		if _, err := awsapi.NewStepFunctions(nil, bad, &bolt.Store{}); err == nil {
			t.Errorf("ARN %q accepted", bad)
		}
	}
}

// TestExecutionNames: a run started twice is one execution; a run ID that comes back after its
// run expired (the table's TTL) while Step Functions still holds the old execution's name (90
// days) starts a new execution, which it would not if executions were named after the run ID.
func TestExecutionNames(t *testing.T) {
	fake := &fakeSFN{names: map[string]string{}}
	sfnSrv := httptest.NewServer(fake)
	defer sfnSrv.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 3, 3, 14, 0, 0, 0, time.UTC)
	// newRun stores run "run-1" at t in a fresh store: what the table holds after the old run
	// expired and a new one was created under the same ID.
	newRun := func(t *testing.T, at time.Time) (*bolt.Store, *core.Run) {
		st, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = st.Close() })
		in, err := core.ParseIntegration([]byte(`{"name":"prod","awsRegion":"us-east-1"}`))
		if err != nil {
			t.Fatal(err)
		}
		in.ID = "prod"
		if err := st.CreateIntegration(ctx, in); err != nil {
			t.Fatal(err)
		}
		a := &core.Action{JobID: "job-1", ActionID: "A1", StartTime: at, Actor: core.Actor{UserAgentToken: "tok"}}
		r, err := workflow.New(st, nil, workflow.WithClock(clock.NewVirtual(at))).CreateRun(ctx, "prod", a, "run-1")
		if err != nil {
			t.Fatal(err)
		}
		return st, r
	}
	start := func(t *testing.T, st *bolt.Store) {
		starter, err := awsapi.NewStepFunctions(sfnClient(sfnSrv.URL), stateMachine, st)
		if err != nil {
			t.Fatal(err)
		}
		if err := starter.Start(ctx, "run-1"); err != nil {
			t.Fatal(err)
		}
	}

	old, oldRun := newRun(t, t0)
	start(t, old)
	start(t, old) // a repeated request: the same execution
	if len(fake.names) != 1 {
		t.Fatalf("executions %v after starting one run twice, want 1", fake.names)
	}
	again, newer := newRun(t, t0.Add(31*24*time.Hour))
	start(t, again)
	if len(fake.names) != 2 {
		t.Fatalf("executions %v after the run ID came back, want a second one", fake.names)
	}
	for _, r := range []*core.Run{oldRun, newer} {
		if got := fake.names[awsapi.ExecutionName(r)]; got != `{"runId":"run-1"}` {
			t.Errorf("execution %s has input %q", awsapi.ExecutionName(r), got)
		}
	}
	long := &core.Run{RunID: strings.Repeat("a", 80), StartedAt: t0}
	longer := &core.Run{RunID: strings.Repeat("a", 79) + "b", StartedAt: t0}
	if n := awsapi.ExecutionName(long); len(n) > 80-len("-part-9999") || n == awsapi.ExecutionName(longer) {
		t.Errorf("names of long run IDs %q and %q: want distinct, short enough for the continuations' suffix", n, awsapi.ExecutionName(longer))
	}
}
