package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/testenv/teststack"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/api/apitest"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/bolt"
)

const (
	token     = "test-token-0123456789abcdef"
	accessKey = "AKIATESTKEY000000001"
	secret    = "Very-Secret-Value-4f1e9c2b7a-do-not-leak"
)

// validator checks every answer of every test against infra/openapi.yaml; TestMain fails the
// package when a documented operation was never exercised.
var validator *apitest.Validator

func TestMain(m *testing.M) {
	v, err := apitest.Load()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	validator = v
	code := m.Run()
	if code == 0 && !testing.Short() {
		checked := validator.Checked()
		ops := map[string]bool{}
		for k := range checked {
			ops[strings.Fields(k)[0]] = true
		}
		for _, op := range []string{"createIntegration", "listIntegrations", "getIntegration", "updateIntegration",
			"deleteIntegration", "testIntegration", "listSensors", "startRun", "getRun", "getRunEvents", "cancelRun"} {
			if !ops[op] {
				fmt.Fprintf(os.Stderr, "no response of %s was validated against the spec\n", op)
				code = 1
			}
		}
	}
	os.Exit(code)
}

// starter records what the handler asked of it.
type starter struct {
	mu       sync.Mutex
	started  []string
	canceled []string
	fail     bool
}

func (s *starter) Start(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		return fmt.Errorf("state machine unavailable")
	}
	s.started = append(s.started, id)
	return nil
}

func (s *starter) Cancel(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.canceled = append(s.canceled, id)
	return nil
}

type env struct {
	t       *testing.T
	url     string
	client  *http.Client
	store   *bolt.Store
	dbPath  string
	starter *starter
	logs    *testenv.Buffer
	emu     *httptest.Server
}

func newEnv(t *testing.T) *env {
	t.Helper()
	logs := &testenv.Buffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	em, err := emulator.New(nil, emulator.WithKeys(emulator.Key{AccessKeyID: accessKey, SecretAccessKey: secret}),
		emulator.WithLogger(log))
	if err != nil {
		t.Fatal(err)
	}
	emu := httptest.NewServer(em)
	t.Cleanup(emu.Close)
	// The test's emulator is the one endpoint it allows, as an operator would with --allow-endpoint.
	policy := netguard.MustNew([]string{emu.URL}, nil)
	stk := teststack.New(t, log, policy)
	st, eng, sources := stk.Store, stk.Engine, stk.Sources
	s := &starter{}
	h, err := api.New(api.Config{
		Store: st, Engine: eng, Runs: s, Logger: log, Auth: api.BearerToken(token), Policy: policy, Ingest: true,
		Tester: connectivity.New(connectivity.WithSources(sources), connectivity.WithLogger(log), connectivity.WithPolicy(policy)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, url: srv.URL, client: &http.Client{Transport: validator.Transport(t, nil)},
		store: st, dbPath: stk.DBPath, starter: s, logs: logs, emu: emu}
}

// response is what a test reads from an answer.
type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.body, v); err != nil {
		t.Fatalf("decode %s: %v", r.body, err)
	}
}

func (r response) errorBody(t *testing.T) api.ErrorDetail {
	t.Helper()
	var e api.ErrorBody
	r.json(t, &e)
	return e.Error
}

// do sends a request with the token and a JSON body (a string, []byte or a value to marshal).
func (e *env) do(method, path string, body any, headers ...string) response {
	e.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequest(method, e.url+path, rd)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			req.Header.Del(headers[i])
		} else {
			req.Header.Set(headers[i], headers[i+1])
		}
	}
	resp, err := e.client.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return response{status: resp.StatusCode, header: resp.Header, body: b}
}

func (e *env) must(status int, r response) response {
	e.t.Helper()
	if r.status != status {
		e.t.Fatalf("status %d, want %d: %s", r.status, status, r.body)
	}
	return r
}

func msiSettings(id, endpoint string) map[string]any {
	return map[string]any{"id": id, "name": "prod account", "awsRegion": "us-east-1", "accessKeyId": accessKey,
		"secretAccessKey": secret, "endpoint": endpoint, "queryTime": 1, "queryInterval": 5, "settleTime": 0}
}

func action(jobID string) map[string]any {
	return map[string]any{"jobId": jobID, "actionId": "A104-123", "startTime": "2024-07-30T21:31:05Z",
		"actor": map[string]any{"userAgentToken": "stratus-red-team_5c59eb79"}, "expectedEvents": []string{"ec2:GetPasswordData"}}
}

func TestIntegrations(t *testing.T) {
	e := newEnv(t)
	r := e.must(201, e.do("POST", "/v1/integrations", msiSettings("prod", e.emu.URL)))
	if got := r.header.Get("Location"); got != "/v1/integrations/prod" {
		t.Errorf("Location = %q", got)
	}
	var in core.Integration
	r.json(t, &in)
	if in.ID != "prod" || in.Type != "msi" || in.PageSize != 100 || in.SettleTime != 0 || !in.VerifySSL || in.CreatedAt.IsZero() {
		t.Errorf("created integration not resolved as expected: %+v", in)
	}
	if !strings.Contains(string(r.body), `"secretAccessKey":"********"`) {
		t.Errorf("the secret is not shown redacted: %s", r.body)
	}

	legacy := `{"type": "legacy", "name": "old dialog", "accessKeyId": "AKIALEGACY0000000001", "secretAccessKey": "legacy-secret-value",
		"amazonRegion": "ap-south1", "queryTime": 5, "delayTime": 0, "discoverNetworkDevices": true, "queryInterval": 30,
		"eventTimeAdjustment": 0, "saveSuspiciousEvents": false}`
	r = e.must(201, e.do("POST", "/v1/integrations", legacy))
	var leg core.Integration
	r.json(t, &leg)
	if leg.Type != "legacy" || leg.AWSRegion != "ap-south-1" || leg.ID == "" || leg.Limit != core.DefaultLimit {
		t.Errorf("legacy integration: %+v", leg)
	}

	var list api.IntegrationList
	e.must(200, e.do("GET", "/v1/integrations", nil)).json(t, &list)
	var ids []string
	for _, x := range list.Integrations {
		ids = append(ids, x.ID)
	}
	if want := []string{leg.ID, "prod"}; !slices.Equal(sortStrings(ids), sortStrings(want)) {
		t.Errorf("listed %v, want %v", ids, want)
	}
	e.must(200, e.do("GET", "/v1/integrations/prod", nil))
	e.must(409, e.do("POST", "/v1/integrations", msiSettings("prod", e.emu.URL)))

	stored := func() *core.Integration {
		in, err := e.store.GetIntegration(context.Background(), "prod")
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	// PUT: omitted secret with the same key is kept, the marker is kept, a new one replaces it.
	upd := msiSettings("prod", e.emu.URL)
	delete(upd, "secretAccessKey")
	upd["name"] = "renamed"
	e.must(200, e.do("PUT", "/v1/integrations/prod", upd))
	if got := stored(); got.SecretAccessKey.Reveal() != secret || got.Name != "renamed" {
		t.Errorf("after PUT without the secret: name %q, secret kept %v", got.Name, got.SecretAccessKey.Reveal() == secret)
	}
	upd["secretAccessKey"] = core.Redacted
	upd["sessionToken"] = "a-session-token-value"
	e.must(200, e.do("PUT", "/v1/integrations/prod", upd))
	if got := stored(); got.SecretAccessKey.Reveal() != secret || got.SessionToken.Reveal() != "a-session-token-value" {
		t.Errorf("after PUT with the marker: secret kept %v, session token %v", got.SecretAccessKey.Reveal() == secret, got.SessionToken.IsSet())
	}
	delete(upd, "sessionToken")
	e.must(200, e.do("PUT", "/v1/integrations/prod", upd))
	if got := stored(); got.SessionToken.Reveal() != "a-session-token-value" {
		t.Errorf("an omitted session token of the same key was not kept")
	}
	upd["secretAccessKey"] = "a-brand-new-secret"
	e.must(200, e.do("PUT", "/v1/integrations/prod", upd))
	if got := stored(); got.SecretAccessKey.Reveal() != "a-brand-new-secret" {
		t.Errorf("a new secret did not replace the stored one")
	}

	bad := []struct {
		name  string
		body  map[string]any
		field string
	}{
		{"new key without its secret", map[string]any{"name": "x", "awsRegion": "us-east-1", "accessKeyId": "AKIAOTHERKEY00000001"}, "secretAccessKey"},
		{"new key with the marker", map[string]any{"name": "x", "awsRegion": "us-east-1", "accessKeyId": "AKIAOTHERKEY00000001", "secretAccessKey": core.Redacted}, "secretAccessKey"},
		{"marker with nothing stored", map[string]any{"name": "x", "awsRegion": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/r", "externalId": core.Redacted}, "externalId"},
		{"id differs from the URL", map[string]any{"id": "other", "name": "x", "awsRegion": "us-east-1"}, "id"},
	}
	for _, tc := range bad {
		r := e.must(400, e.do("PUT", "/v1/integrations/prod", tc.body))
		if f := r.errorBody(t).Field; f != tc.field {
			t.Errorf("%s: field %q, want %q (%s)", tc.name, f, tc.field, r.body)
		}
	}
	// Switching to a role drops the keys: omitted secrets go with their key.
	e.must(200, e.do("PUT", "/v1/integrations/prod", map[string]any{"name": "role", "awsRegion": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/r"}))
	if got := stored(); got.SecretAccessKey.IsSet() || got.AccessKeyID != "" {
		t.Errorf("keys left after switching to a role")
	}
	e.must(404, e.do("PUT", "/v1/integrations/nope", msiSettings("", e.emu.URL)))

	// Sensors: what runs recorded for the integration.
	t0 := time.Date(2024, 7, 30, 21, 31, 5, 0, time.UTC)
	if err := e.store.PutSensors(context.Background(), "prod", []core.Sensor{core.NewSensor("123456789012", "us-east-1", t0)}); err != nil {
		t.Fatal(err)
	}
	var sensors api.SensorList
	e.must(200, e.do("GET", "/v1/integrations/prod/sensors", nil)).json(t, &sensors)
	if len(sensors.Sensors) != 1 || sensors.Sensors[0].UUID != core.SensorUUID("123456789012", "us-east-1") {
		t.Errorf("sensors: %+v", sensors)
	}
	e.must(404, e.do("GET", "/v1/integrations/nope/sensors", nil))
	e.must(204, e.do("DELETE", "/v1/integrations/prod", nil))
	e.must(404, e.do("GET", "/v1/integrations/prod", nil))
	e.must(404, e.do("DELETE", "/v1/integrations/prod", nil))
}

func sortStrings(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestMalformedRequests(t *testing.T) {
	e := newEnv(t)
	e.must(201, e.do("POST", "/v1/integrations", msiSettings("prod", e.emu.URL)))
	huge := `{"name": "` + strings.Repeat("x", 2<<20) + `", "awsRegion": "us-east-1"}`
	tests := []struct {
		name         string
		method, path string
		body         any
		headers      []string
		status       int
		code, field  string
		messageHolds string
	}{
		{"no token", "GET", "/v1/integrations", nil, []string{"Authorization", ""}, 401, "unauthorized", "", "Bearer"},
		{"wrong token", "GET", "/v1/integrations", nil, []string{"Authorization", "Bearer nope"}, 401, "unauthorized", "", "not valid"},
		{"basic auth", "GET", "/v1/integrations", nil, []string{"Authorization", "Basic dXNlcjpwYXNz"}, 401, "unauthorized", "", "Bearer"},
		{"unauthenticated unknown path", "GET", "/v1/nothing", nil, []string{"Authorization", ""}, 401, "unauthorized", "", ""},
		{"bad JSON", "POST", "/v1/integrations", `{"name": "x",`, nil, 400, "invalid", "", "malformed JSON at line 1"},
		{"not an object", "POST", "/v1/integrations", `[1, 2]`, nil, 400, "invalid", "", "expected a JSON object"},
		{"wrong type", "POST", "/v1/integrations", `{"name": "x", "awsRegion": "us-east-1", "queryTime": "5"}`, nil, 400, "invalid", "queryTime", "whole number"},
		{"unknown field", "POST", "/v1/integrations", `{"name": "x", "awsRegion": "us-east-1", "colour": "red"}`, nil, 400, "invalid", "colour", "unknown field"},
		{"bad region", "POST", "/v1/integrations", `{"name": "x", "awsRegion": "mars-1"}`, nil, 400, "invalid", "awsRegion", "not a supported region"},
		{"empty body", "POST", "/v1/integrations", "", nil, 400, "invalid", "", "empty"},
		{"huge body", "POST", "/v1/integrations", huge, nil, 413, "too_large", "", "limit"},
		{"huge body, chunked", "POST", "/v1/integrations", io.MultiReader(strings.NewReader(huge)), nil, 413, "too_large", "", "limit"},
		{"text/plain", "POST", "/v1/integrations", `{"name": "x", "awsRegion": "us-east-1"}`, []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "", "application/json"},
		{"no content type", "POST", "/v1/integrations", `{"name": "x", "awsRegion": "us-east-1"}`, []string{"Content-Type", ""}, 415, "unsupported_media_type", "", "application/json"},
		{"bad integration id", "GET", "/v1/integrations/-bad", nil, nil, 400, "invalid", "id", "letters, digits"},
		{"bad run id", "GET", "/v1/runs/" + strings.Repeat("r", 200), nil, nil, 400, "invalid", "id", "1 to 128"},
		{"unknown integration", "GET", "/v1/integrations/nope", nil, nil, 404, "not_found", "", "not found"},
		{"unknown run", "GET", "/v1/runs/nope", nil, nil, 404, "not_found", "", "not found"},
		{"unknown path", "GET", "/v2/whatever", nil, nil, 404, "not_found", "", "no such endpoint"},
		{"wrong method", "PATCH", "/v1/integrations/prod", nil, nil, 405, "method_not_allowed", "", "allowed"},
		{"action with unknown field", "POST", "/v1/integrations/prod/runs", `{"jobId": "j", "actionId": "a", "startTime": "2024-07-30T21:31:05Z", "extra": 1}`, nil, 400, "invalid", "extra", "unknown"},
		{"action with bad time", "POST", "/v1/integrations/prod/runs", `{"jobId": "j", "actionId": "a", "startTime": "yesterday"}`, nil, 400, "invalid", "startTime", "RFC 3339"},
		{"action with bad run id", "POST", "/v1/integrations/prod/runs", `{"runId": "has space", "jobId": "j", "actionId": "a", "startTime": "2024-07-30T21:31:05Z"}`, nil, 400, "invalid", "runId", "80 characters"},
		{"action with numeric run id", "POST", "/v1/integrations/prod/runs", `{"runId": 7, "jobId": "j", "actionId": "a", "startTime": "2024-07-30T21:31:05Z"}`, nil, 400, "invalid", "runId", "string"},
		{"action nothing can be matched on", "POST", "/v1/integrations/prod/runs", `{"jobId": "j", "actionId": "a", "startTime": "2024-07-30T21:31:05Z", "actor": {"hosts": []}, "expectedEvents": []}`, nil, 400, "invalid", "actor", "expectedEvents"},
		{"run of unknown integration", "POST", "/v1/integrations/nope/runs", action("j"), nil, 404, "not_found", "", "not found"},
		{"bad limit", "GET", "/v1/runs/x?limit=0", nil, nil, 400, "invalid", "limit", "1 to 1000"},
		{"bad cursor", "GET", "/v1/runs/x?cursor=garbage", nil, nil, 400, "invalid", "cursor", "nextCursor"},
		{"cursor and offset", "GET", "/v1/runs/x?cursor=abc&offset=1", nil, nil, 400, "invalid", "cursor", "not both"},
		{"bad list", "GET", "/v1/runs/x/events?list=everything", nil, nil, 400, "invalid", "list", "events, alerts or suspicious"},
		{"body on test", "POST", "/v1/integrations/prod/test", "not json", []string{"Content-Type", "text/plain"}, 415, "unsupported_media_type", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var r response
			if rd, ok := tc.body.(io.Reader); ok {
				req, _ := http.NewRequest(tc.method, e.url+tc.path, rd)
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				resp, err := e.client.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				r = response{status: resp.StatusCode, header: resp.Header, body: b}
			} else {
				r = e.do(tc.method, tc.path, tc.body, tc.headers...)
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			got := r.errorBody(t)
			if got.Code != tc.code || got.Field != tc.field || !strings.Contains(got.Message, tc.messageHolds) {
				t.Errorf("error %+v, want code %q field %q message holding %q", got, tc.code, tc.field, tc.messageHolds)
			}
			if ct := r.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
			if tc.status == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Errorf("401 without WWW-Authenticate")
			}
			// The server keeps serving.
			e.must(200, e.do("GET", "/v1/integrations/prod", nil))
		})
	}
}

func TestRuns(t *testing.T) {
	e := newEnv(t)
	e.must(201, e.do("POST", "/v1/integrations", msiSettings("prod", e.emu.URL)))

	body := action("job-1")
	body["runId"] = "run-1"
	r := e.must(202, e.do("POST", "/v1/integrations/prod/runs", body))
	var run api.RunView
	r.json(t, &run)
	if run.RunID != "run-1" || run.Status != core.StatusWaiting || run.JobID != "job-1" || r.header.Get("Location") != "/v1/runs/run-1" {
		t.Errorf("started run: %+v (Location %q)", run.Run, r.header.Get("Location"))
	}
	if r.header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first start marked as a replay")
	}
	r = e.must(202, e.do("POST", "/v1/integrations/prod/runs", body))
	if r.header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("repeated start not marked as a replay")
	}
	other := action("job-2")
	other["runId"] = "run-1"
	if got := e.must(409, e.do("POST", "/v1/integrations/prod/runs", other)).errorBody(t); got.Field != "runId" {
		t.Errorf("reuse of a run id for another action: %+v", got)
	}
	runs, _ := e.store.ListRuns(context.Background())
	if len(runs) != 1 {
		t.Errorf("%d runs stored after a repeated start, want 1", len(runs))
	}

	// Idempotency-Key: the same key names the same run.
	var k1, k2 api.RunView
	e.must(202, e.do("POST", "/v1/integrations/prod/runs", action("job-3"), "Idempotency-Key", "director-job-3")).json(t, &k1)
	e.must(202, e.do("POST", "/v1/integrations/prod/runs", action("job-3"), "Idempotency-Key", "director-job-3")).json(t, &k2)
	if k1.RunID != k2.RunID || k1.RunID == "" {
		t.Errorf("the same Idempotency-Key named runs %q and %q", k1.RunID, k2.RunID)
	}
	withBoth := action("job-3")
	withBoth["runId"] = "run-x"
	e.must(400, e.do("POST", "/v1/integrations/prod/runs", withBoth, "Idempotency-Key", "director-job-3"))
	e.starter.mu.Lock()
	started := slices.Clone(e.starter.started)
	e.starter.mu.Unlock()
	if want := []string{"run-1", "run-1", k1.RunID, k1.RunID}; !cmp.Equal(started, want) {
		t.Errorf("Start calls %v, want %v (each request makes sure its run executes)", started, want)
	}

	// A run in progress keeps its integration.
	if got := e.must(409, e.do("DELETE", "/v1/integrations/prod", nil)).errorBody(t); !strings.Contains(got.Message, "in progress") {
		t.Errorf("delete with a run in progress: %+v", got)
	}

	// Paging over a run with results.
	stored, err := e.store.GetRun(context.Background(), "run-1")
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		stored.Events = append(stored.Events, core.Event{EventID: fmt.Sprintf("ev-%d", i), EventTime: time.Date(2024, 7, 30, 21, 31, i, 0, time.UTC),
			EventName: "GetPasswordData", EventSource: "ec2.amazonaws.com", Raw: json.RawMessage(`{"eventName":"GetPasswordData"}`)})
	}
	stored.Alerts = []core.Event{{EventID: "alert-1", EventName: "StopLogging", EventSource: "cloudtrail.amazonaws.com", Reason: "correlation query"}}
	if err := e.store.UpdateRun(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	var p1, p2, p3 api.RunView
	e.must(200, e.do("GET", "/v1/runs/run-1?limit=2", nil)).json(t, &p1)
	e.must(200, e.do("GET", "/v1/runs/run-1?limit=2&cursor="+p1.Page.NextCursor, nil)).json(t, &p2)
	e.must(200, e.do("GET", "/v1/runs/run-1?limit=2&offset=4", nil)).json(t, &p3)
	got := [][]string{eventIDs(p1.Events), eventIDs(p2.Events), eventIDs(p3.Events)}
	if want := [][]string{{"ev-0", "ev-1"}, {"ev-2", "ev-3"}, {"ev-4"}}; !cmp.Equal(got, want) {
		t.Errorf("pages %v, want %v", got, want)
	}
	if p1.Page.Total != 5 || p1.Page.NextCursor == "" || p3.Page.NextCursor != "" {
		t.Errorf("page info: %+v / %+v", p1.Page, p3.Page)
	}
	if strings.Contains(string(e.do("GET", "/v1/runs/run-1", nil).body), `"progress"`) {
		t.Errorf("the run shows the workflow's bookkeeping")
	}
	var alerts api.EventPage
	e.must(200, e.do("GET", "/v1/runs/run-1/events?list=alerts", nil)).json(t, &alerts)
	if alerts.List != "alerts" || len(alerts.Events) != 1 || alerts.Page.Total != 1 {
		t.Errorf("alerts page: %+v", alerts)
	}
	var evs api.EventPage
	e.must(200, e.do("GET", "/v1/runs/run-1/events?limit=3&offset=3", nil)).json(t, &evs)
	if !cmp.Equal(eventIDs(evs.Events), []string{"ev-3", "ev-4"}) {
		t.Errorf("events page: %v", eventIDs(evs.Events))
	}

	// Cancel, then cancel again.
	var c api.RunView
	e.must(200, e.do("DELETE", "/v1/runs/run-1", nil)).json(t, &c)
	if c.Status != core.StatusCancelled || c.CompletedAt == nil {
		t.Errorf("cancelled run: status %s", c.Status)
	}
	if got := e.must(422, e.do("DELETE", "/v1/runs/run-1", nil)).errorBody(t); got.Code != "unprocessable" || !strings.Contains(got.Message, "already ended") {
		t.Errorf("second cancel: %+v", got)
	}
	e.must(404, e.do("DELETE", "/v1/runs/nope", nil))
	e.starter.mu.Lock()
	if !cmp.Equal(e.starter.canceled, []string{"run-1"}) {
		t.Errorf("Cancel calls %v", e.starter.canceled)
	}
	e.starter.mu.Unlock()

	// A start that cannot reach the workflow says so, and a repeat starts it.
	e.starter.mu.Lock()
	e.starter.fail = true
	e.starter.mu.Unlock()
	retry := action("job-9")
	retry["runId"] = "run-9"
	if got := e.must(500, e.do("POST", "/v1/integrations/prod/runs", retry)).errorBody(t); !strings.Contains(got.Message, "repeat the request") {
		t.Errorf("failed start: %+v", got)
	}
	e.starter.mu.Lock()
	e.starter.fail = false
	e.starter.mu.Unlock()
	e.must(202, e.do("POST", "/v1/integrations/prod/runs", retry))
}

func eventIDs(evs []core.Event) []string {
	out := []string{}
	for _, e := range evs {
		out = append(out, e.EventID)
	}
	return out
}

// TestSecretsNeverLeak sends a secret through every endpoint and looks for it in every answer's
// body and headers, in every log line, and in the store's file.
func TestSecretsNeverLeak(t *testing.T) {
	e := newEnv(t)
	var seen []response
	do := func(method, path string, body any, headers ...string) response {
		r := e.do(method, path, body, headers...)
		seen = append(seen, r)
		return r
	}
	settings := msiSettings("leaky", e.emu.URL)
	settings["sessionToken"] = secret + "-token"
	do("POST", "/v1/integrations", settings)
	do("POST", "/v1/integrations", settings)                                                                                                    // 409
	do("POST", "/v1/integrations", `{"name": "x", "awsRegion": "us-east-1", "accessKeyId": "`+accessKey+`", "secretAccessKey": " `+secret+`"}`) // 400
	do("POST", "/v1/integrations", `{"name": "x", "awsRegion": "`+secret+`"}`)                                                                  // a secret pasted in the wrong field
	do("GET", "/v1/integrations", nil)
	do("GET", "/v1/integrations/leaky", nil)
	do("PUT", "/v1/integrations/leaky", settings)
	do("POST", "/v1/integrations/leaky/test", nil)
	bad := msiSettings("bad", e.emu.URL)
	bad["secretAccessKey"] = secret + "-wrong"
	do("POST", "/v1/integrations", bad)
	do("POST", "/v1/integrations/bad/test", nil) // signature check is off, but the key's secret travels
	do("POST", "/v1/integrations/leaky/runs", action("job-1"), "Idempotency-Key", secret)
	do("GET", "/v1/integrations/leaky", nil, "Authorization", "Bearer "+secret)
	r := do("GET", "/v1/runs/does-not-exist", nil)
	_ = r
	runs, _ := e.store.ListRuns(context.Background())
	for _, run := range runs {
		do("GET", "/v1/runs/"+run.RunID, nil)
		do("GET", "/v1/runs/"+run.RunID+"/events", nil)
		do("DELETE", "/v1/runs/"+run.RunID, nil)
	}
	do("DELETE", "/v1/integrations/leaky", nil)

	if len(seen) < 15 {
		t.Fatalf("only %d requests made", len(seen))
	}
	for i, r := range seen {
		if strings.Contains(string(r.body), secret) {
			t.Errorf("answer %d holds the secret: %s", i, r.body)
		}
		for k, vs := range r.header {
			for _, v := range vs {
				if strings.Contains(v, secret) {
					t.Errorf("answer %d header %s holds the secret", i, k)
				}
			}
		}
	}
	logs := e.logs.String()
	if !strings.Contains(logs, `"msg":"request"`) || !strings.Contains(logs, `"msg":"connectivity check"`) {
		t.Fatalf("the logs were not captured: %.500s", logs)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, secret) {
			t.Errorf("log line holds the secret: %s", line)
		}
	}
	e.store.Close()
	db, err := os.ReadFile(e.dbPath)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(db, []byte(secret)) {
		t.Errorf("the store's file holds the secret in plain text")
	}
	if st, err := os.Stat(e.dbPath + ".key"); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("seal key file: %v, mode %v", err, st.Mode().Perm())
	}
}

func TestConfigRequiresAuth(t *testing.T) {
	_, err := api.New(api.Config{})
	if err == nil {
		t.Fatal("a handler without a store, engine, starter, tester and authenticator was built")
	}
}
