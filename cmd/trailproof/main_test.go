package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/errclass"
	"github.com/trailproof/trailproof/internal/push"
	"github.com/trailproof/trailproof/internal/testenv"
)

func demo(name string) string { return filepath.Join(testenv.RepoRoot(), "examples", "demo", name) }

func runCLI(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := dispatch(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestRunDemo is `make run`: the demo corpus gives a logged verdict with the matched events.
func TestRunDemo(t *testing.T) {
	code, out, stderr := runCLI("run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"))
	if code != exitOK {
		t.Fatalf("exit %d, stderr: %s", code, stderr)
	}
	for _, want := range []string{"LOGGED, ALERTED", "Alerts: 6", "correlationQuery", "ec2:GetPasswordData", "sts:GetCallerIdentity", "Matched events: 8", "Suspicious events: 1",
		core.SensorUUID("210987654321", "us-west-2") + "  210987654321 us-west-2"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out+stderr, "demo-secret-not-a-real-key") {
		t.Error("the secret access key was printed")
	}
}

// TestRunJSONUnderFaults: the JSON result has the contract's fields, and faults do not change
// the matched events. Records delivered at different delays (half of them 7 minutes late) give
// the same verdict from a subset of them: the run completes once every expected event matched.
func TestRunJSONUnderFaults(t *testing.T) {
	var ids [][]string
	for _, extra := range [][]string{nil, {"--faults", "throttle=0.3,error=0.1,dup=0.1"}, {"--delivery-delay", "5m,7m@0.5"}} {
		args := []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"), "--format", "json"}
		args = append(args, extra...)
		code, out, stderr := runCLI(args...)
		if code != exitOK {
			t.Fatalf("%q: exit %d, stderr: %s", extra, code, stderr)
		}
		var r map[string]any
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"runId", "jobId", "actionId", "integration", "startedAt", "completedAt", "status", "verdict", "logged", "alerted", "loggedAt",
			"window", "queries", "apiCalls", "throttled", "truncated", "events", "alerts", "suspicious", "expected", "warnings"} {
			if _, ok := r[k]; !ok {
				t.Errorf("result lacks %q", k)
			}
		}
		if r["verdict"] != "logged" {
			t.Errorf("%q: verdict %v, want logged", extra, r["verdict"])
		}
		var got []string
		for _, e := range r["events"].([]any) {
			ev := e.(map[string]any)
			got = append(got, ev["event_id"].(string))
			if ev["raw"] == nil || ev["matched_on"] == nil || ev["sensor_uuid"] == nil {
				t.Errorf("event lacks raw, matched_on or sensor_uuid: %v", ev)
			}
		}
		ids = append(ids, got)
	}
	if strings.Join(ids[0], ",") != strings.Join(ids[1], ",") || len(ids[0]) != 8 {
		t.Errorf("matched events differ under faults:\n%v\n%v", ids[0], ids[1])
	}
	if len(ids[2]) == 0 || slices.ContainsFunc(ids[2], func(id string) bool { return !slices.Contains(ids[0], id) }) {
		t.Errorf("with late deliveries, matched %v, want some of %v and no other", ids[2], ids[0])
	}
}

// TestBadInput: every bad setting, action or corpus file exits 2 with a message naming the file
// and the field.
func TestBadInput(t *testing.T) {
	coreData := filepath.Join(testenv.RepoRoot(), "internal", "core", "testdata")
	emptyDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(emptyDir, "empty.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"no integration", []string{"run", "--action", demo("action.json")}, []string{"--integration"}},
		{"region", []string{"run", "--integration", filepath.Join(coreData, "bad-region.json"), "--action", demo("action.json")}, []string{"bad-region.json", "awsRegion", "us-east-1"}},
		{"page size", []string{"run", "--integration", "testdata/bad-pagesize.json", "--action", demo("action.json")}, []string{"bad-pagesize.json", "pageSize"}},
		{"syntax", []string{"run", "--integration", filepath.Join(coreData, "bad-syntax.json"), "--action", demo("action.json")}, []string{"bad-syntax.json", "line"}},
		{"action time", []string{"run", "--integration", demo("integration.json"), "--action", "testdata/bad-starttime.json"}, []string{"bad-starttime.json", "startTime"}},
		{"missing file", []string{"run", "--integration", "testdata/nope.json", "--action", demo("action.json")}, []string{"nope.json"}},
		{"corpus", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", "testdata/bad-corpus.json"}, []string{"bad-corpus.json", "eventTime", "line 2"}},
		{"faults", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"), "--faults", "throttle=2"}, []string{"faults", "throttle"}},
		{"delivery delay", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"), "--delivery-delay", "5m,12m@2"}, []string{"delivery-delay", "at most 1"}},
		{"emulate delivery delay", []string{"emulate", "--corpus", demo("cloudtrail.json"), "--delivery-delay", "soon"}, []string{"delivery-delay", "not a duration"}},
		{"push loss", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"), "--push-delay", "30s", "--push-loss", "1.5"}, []string{"--push-loss", "fraction"}},
		{"push without corpus", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--push-delay", "30s"}, []string{"--push-delay", "--corpus"}},
		{"format", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--format", "xml"}, []string{"--format"}},
		{"unknown command", []string{"frobnicate"}, []string{"unknown command"}},
		{"no actor and no expected event", []string{"run", "--integration", demo("integration.json"), "--action", "testdata/no-actor.json", "--corpus", demo("cloudtrail.json")}, []string{"no-actor.json", "actor", "expectedEvents"}},
		{"empty Records", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", "testdata/empty-records.json"}, []string{"empty-records.json", "no CloudTrail records"}},
		{"window outside CloudTrail's 90 days", []string{"run", "--integration", filepath.Join(coreData, "msi-minimal.json"), "--action", demo("action.json")}, []string{"action.json", "startTime", "90-day", "2026-03-03T13:55:00Z"}},
		{"empty corpus folder", []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", emptyDir}, []string{emptyDir, "no CloudTrail records"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(tt.args...)
			if code != exitBadInput {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitBadInput, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("message %q lacks %q", stderr, w)
				}
			}
			if strings.Contains(stderr, "goroutine") || strings.Contains(stderr, "panic") {
				t.Errorf("stack trace in %q", stderr)
			}
		})
	}
}

// TestFailedRunExitsOne: a run whose credentials CloudTrail refuses ends failed, exit 1, with
// the reason, and without retrying what cannot pass.
func TestFailedRunExitsOne(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		w.Header().Set("X-Amzn-ErrorType", "AccessDeniedException")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"__type":"AccessDeniedException","message":"User is not authorized to perform: cloudtrail:LookupEvents"}`)
	}))
	defer srv.Close()
	settings := filepath.Join(t.TempDir(), "denied.json")
	doc := `{"name":"denied","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"x-secret-x","endpoint":"` + srv.URL + `"}`
	if err := os.WriteFile(settings, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, stderr := runCLI("run", "--integration", settings, "--action", demo("action.json"), "--allow-endpoint", srv.URL)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; out %s stderr %s", code, out, stderr)
	}
	if !strings.Contains(out, "Verdict    UNKNOWN — the run failed: AuthError") || !strings.Contains(out, "AccessDenied") {
		t.Errorf("output does not give the failure and its reason:\n%s", out)
	}
	// A failed run proves nothing either way: no "NOT LOGGED", no expected event called missing.
	if strings.Contains(out, "NOT LOGGED") || strings.Contains(out, "MISSING") {
		t.Errorf("a failed run is reported as not logged:\n%s", out)
	}
}

// TestNoNetworkSaysUnknown: with CloudTrail unreachable (its name does not resolve, as with no
// network), a run fails at once with verdict UNKNOWN naming DNS, exit 1, instead of retrying for
// minutes and printing NOT LOGGED.
func TestNoNetworkSaysUnknown(t *testing.T) {
	dir := t.TempDir()
	settings := filepath.Join(dir, "integration.json")
	doc := `{"name":"offline","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"x-secret-x",` +
		`"endpoint":"https://cloudtrail.us-west-2.nowhere.invalid","delayTime":0}`
	action := filepath.Join(dir, "action.json")
	start := time.Now().UTC().Add(-10 * time.Minute).Format(time.RFC3339)
	act := `{"jobId":"job-1","actionId":"A1","startTime":"` + start + `","actor":{"userAgentToken":"stratus-red-team_x"}}`
	for p, b := range map[string]string{settings: doc, action: act} {
		if err := os.WriteFile(p, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	began := time.Now()
	// The operator allows the made-up host, so that the failure is the network's, not the guard's.
	allow := []string{"--allow-endpoint", "cloudtrail.us-west-2.nowhere.invalid"}
	code, out, stderr := runCLI(append([]string{"run", "--integration", settings, "--action", action, "--format", "table"}, allow...)...)
	took := time.Since(began)
	if code != exitFailed {
		t.Fatalf("exit %d, want 1; out %s stderr %s", code, out, stderr)
	}
	if !strings.Contains(out, "Verdict    UNKNOWN — the run failed:") || !strings.Contains(out, "DNS") {
		t.Errorf("the verdict does not say UNKNOWN naming DNS:\n%s", out)
	}
	if strings.Contains(out, "NOT LOGGED") || strings.Contains(out, "CloudTrail failed on its side") {
		t.Errorf("a DNS failure is reported as not logged or blamed on CloudTrail:\n%s", out)
	}
	// A name that does not resolve is not retried for minutes (it used to take 210 s).
	if took > 20*time.Second {
		t.Errorf("the run took %s to fail on a DNS error", took)
	}
	// The connectivity test on the same settings blames the same side with the same remedy.
	_, testOut, _ := runCLI(append([]string{"test", "--integration", settings}, allow...)...)
	remedy := errclass.Remedy(errclass.DNS, "DNSFailure", errclass.Settings{Endpoint: true})
	if !strings.Contains(testOut, "DNSFailure") || !strings.Contains(testOut, remedy) || !strings.Contains(out, remedy) {
		t.Errorf("the run and the connectivity test disagree; want the remedy %q in both:\nrun:\n%s\ntest:\n%s", remedy, out, testOut)
	}
}

// writeFiles writes name -> content under dir and returns the paths by name.
func writeFiles(t *testing.T, files map[string]string) map[string]string {
	t.Helper()
	dir := t.TempDir()
	paths := map[string]string{}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		paths[name] = p
	}
	return paths
}

// TestRegionAsCloudTrail: an integration in eu-west-1 against a corpus of us-west-2 records finds
// nothing, as CloudTrail would, and says why in the result and on stderr.
func TestRegionAsCloudTrail(t *testing.T) {
	var doc struct{ Records []map[string]any }
	b, err := os.ReadFile(demo("cloudtrail.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	var west []map[string]any
	for _, r := range doc.Records {
		if r["awsRegion"] == "us-west-2" {
			west = append(west, r)
		}
	}
	corpus, _ := json.Marshal(map[string]any{"Records": west})
	var integ map[string]any
	b, _ = os.ReadFile(demo("integration.json"))
	_ = json.Unmarshal(b, &integ)
	integ["awsRegion"] = "eu-west-1"
	ib, _ := json.Marshal(integ)
	p := writeFiles(t, map[string]string{"west.json": string(corpus), "eu.json": string(ib)})

	code, out, stderr := runCLI("run", "--integration", p["eu.json"], "--action", demo("action.json"), "--corpus", p["west.json"], "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r core.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	if r.Verdict != core.VerdictNotLogged || len(r.Events) != 0 {
		t.Errorf("verdict %s with %d events, want not_logged with none", r.Verdict, len(r.Events))
	}
	want := "all of other regions (us-west-2)"
	if !strings.Contains(strings.Join(r.Warnings, "\n"), want) || !strings.Contains(stderr, want) {
		t.Errorf("the result and stderr do not say why (want %q): warnings %v, stderr %s", want, r.Warnings, stderr)
	}
	// With the rule relaxed, the same run finds the action's events.
	code, out, _ = runCLI("run", "--integration", p["eu.json"], "--action", demo("action.json"), "--corpus", p["west.json"], "--format", "json", "--any-region")
	r = core.Run{}
	_ = json.Unmarshal([]byte(out), &r)
	if code != exitOK || r.Verdict != core.VerdictLogged {
		t.Errorf("--any-region: exit %d, verdict %s, want logged", code, r.Verdict)
	}
}

// TestCorpusFarFromWindow: a corpus with no record within a day of the window is a warning in
// the result and on stderr.
func TestCorpusFarFromWindow(t *testing.T) {
	p := writeFiles(t, map[string]string{"action.json": `{"jobId":"j","actionId":"a","startTime":"2025-01-01T00:00:00Z","actor":{"userAgentToken":"stratus-red-team_3f2a9c1e"}}`})
	code, out, stderr := runCLI("run", "--integration", demo("integration.json"), "--action", p["action.json"], "--corpus", demo("cloudtrail.json"))
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, w := range []string{out, stderr} {
		if !strings.Contains(w, "holds no record within a day of the window") {
			t.Errorf("no warning about the corpus being far from the window in:\n%s", w)
		}
	}
}

// TestStratusServedAnyRegion: the Stratus detonation logs carry anonymised regions; the run
// still finds the technique's events and says how many records were served regardless of region.
func TestStratusServedAnyRegion(t *testing.T) {
	logs := testenv.SharedData(t, "stratus-red-team", "docs", "detonation-logs", "aws.credential-access.ec2-get-password-data.json")
	p := writeFiles(t, map[string]string{"action.json": `{"jobId":"j","actionId":"a","startTime":"2024-07-30T21:31:10Z",` +
		`"actor":{"userAgentToken":"stratus-red-team_5c59eb79-6dac-405c-a4c4-e19aec03c666"},"expectedEvents":["ec2.amazonaws.com:GetPasswordData"]}`})
	code, out, stderr := runCLI("run", "--integration", demo("integration.json"), "--action", p["action.json"], "--corpus", logs, "--format", "json")
	if code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var r core.Run
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// The ground truth: 34 events, all with the technique's user agent.
	if r.Verdict != core.VerdictLogged || len(r.Events) != 34 {
		t.Errorf("verdict %s with %d events, want logged with the 34 of the detonation", r.Verdict, len(r.Events))
	}
	if !strings.Contains(strings.Join(r.Warnings, "\n"), "34 records of the corpus have an awsRegion that is not an AWS region") {
		t.Errorf("no warning counting the records served regardless of region: %v", r.Warnings)
	}
}

// TestHelp: --help (and -h) on any subcommand prints its flags and exits 0 without an error line.
func TestHelp(t *testing.T) {
	for _, cmd := range []string{"run", "serve", "emulate", "test"} {
		for _, flag := range []string{"--help", "-h"} {
			code, out, stderr := runCLI(cmd, flag)
			if code != exitOK {
				t.Errorf("%s %s: exit %d, want 0", cmd, flag, code)
			}
			if strings.Contains(stderr, "trailproof:") || strings.Contains(stderr, "help requested") {
				t.Errorf("%s %s: an error line on stderr:\n%s", cmd, flag, stderr)
			}
			if !strings.Contains(out+stderr, "Usage of "+cmd) {
				t.Errorf("%s %s: no flags printed:\n%s%s", cmd, flag, out, stderr)
			}
		}
	}
}

// TestProgressOffTerminal: a real-clock run off a terminal logs one line per query on stderr,
// shows a retried failure at once, and --quiet turns both off.
func TestProgressOffTerminal(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/x-amz-json-1.1")
		if calls.Add(1) == 1 {
			w.Header().Set("X-Amzn-ErrorType", "ThrottlingException")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"__type":"ThrottlingException","message":"Rate exceeded"}`)
			return
		}
		io.WriteString(w, `{"Events":[]}`)
	}))
	defer srv.Close()
	start := time.Now().UTC().Add(-15 * time.Minute).Format(time.RFC3339)
	p := writeFiles(t, map[string]string{
		"integration.json": `{"name":"p","awsRegion":"us-west-2","accessKeyId":"AKIATESTTESTTEST0001","secretAccessKey":"x-secret-x",` +
			`"endpoint":"` + srv.URL + `","queryTime":1,"settleTime":0}`,
		"action.json": `{"jobId":"j","actionId":"a","startTime":"` + start + `","actor":{"userAgentToken":"tok"},"expectedEvents":["ec2.amazonaws.com:RunInstances"]}`,
	})
	allow := []string{"--allow-endpoint", srv.Listener.Addr().String()}
	code, out, stderr := runCLI(append([]string{"run", "--integration", p["integration.json"], "--action", p["action.json"]}, allow...)...)
	if code != exitOK || !strings.Contains(out, "NOT LOGGED") {
		t.Fatalf("exit %d:\n%s\n%s", code, out, stderr)
	}
	if !strings.Contains(stderr, "ThrottlingException") || !strings.Contains(stderr, "waiting for the first query") {
		t.Errorf("stderr lacks the retried failure or the progress line:\n%s", stderr)
	}
	if strings.Contains(stderr, "\r") {
		t.Errorf("a live line off a terminal:\n%q", stderr)
	}
	calls.Store(0)
	_, _, stderr = runCLI(append([]string{"run", "--integration", p["integration.json"], "--action", p["action.json"], "--quiet"}, allow...)...)
	if stderr != "" {
		t.Errorf("--quiet still prints:\n%s", stderr)
	}
}

// TestProgressLiveLine: on a terminal the progress is one line redrawn in place, with the
// countdown to the next query.
func TestProgressLiveLine(t *testing.T) {
	var b strings.Builder
	v := newProgressView(&b, true)
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	v.now = func() time.Time { return now }
	r := &core.Run{Queries: 3, APICalls: 7, Throttled: 1, Events: make([]core.Event, 2),
		Window: core.Window{From: now.Add(-5 * time.Minute), To: now.Add(5 * time.Minute)}}
	r.Progress.RawEvents = 40
	v.update(r, 30*time.Second)
	v.failure("lookupEvents retry: code=ThrottlingException")
	v.close()
	got := b.String()
	for _, want := range []string{"\r\033[Kquery 3 done; window 2026-11-30T11:55:00Z .. 2026-11-30T12:05:00Z; 40 events examined, 2 matched, 7 LookupEvents calls, 1 throttled; next query in 30s",
		"12:00:00  lookupEvents retry: code=ThrottlingException\n"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%q", want, got)
		}
	}
	if !strings.HasSuffix(got, "\n") {
		t.Errorf("the live line is not ended when the run ends: %q", got)
	}
}

// TestRunPush: `run --corpus --push-delay 30s --push-loss 0.05` shows logged minutes sooner than
// the same run without push (LookupEvents 5 minutes late) and ends with the same events.
func TestRunPush(t *testing.T) {
	runs := map[bool]core.Run{}
	for _, on := range []bool{false, true} {
		args := []string{"run", "--integration", demo("integration.json"), "--action", demo("action.json"), "--corpus", demo("cloudtrail.json"), "--format", "json"}
		if on {
			args = append(args, "--push-delay", "30s", "--push-loss", "0.05")
		}
		code, out, stderr := runCLI(args...)
		if code != exitOK {
			t.Fatalf("push %v: exit %d: %s", on, code, stderr)
		}
		var r core.Run
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if r.Verdict != core.VerdictLogged || r.LoggedAt == nil {
			t.Fatalf("push %v: verdict %s loggedAt %v", on, r.Verdict, r.LoggedAt)
		}
		runs[on] = r
	}
	off, on := runs[false], runs[true]
	if got := off.LoggedAt.Sub(*on.LoggedAt); got < 3*time.Minute {
		t.Errorf("logged at %s with push, %s without: want minutes sooner", on.LoggedAt, off.LoggedAt)
	}
	ids := func(r core.Run) []string {
		var out []string
		for _, e := range r.Events {
			out = append(out, e.EventID)
		}
		slices.Sort(out)
		return out
	}
	if !slices.Equal(ids(on), ids(off)) {
		t.Errorf("events with push %v, without %v", ids(on), ids(off))
	}
}

// TestEmulatePush: `emulate --push-to URL` posts the corpus's records as EventBridge events to the
// ingest endpoint, with the bearer token, in batches the endpoint decodes; without the token it
// refuses to start.
func TestEmulatePush(t *testing.T) {
	got := make(chan int, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var batch []json.RawMessage
		body, _ := io.ReadAll(r.Body)
		if r.URL.Path != "/v1/ingest" || r.Header.Get("Authorization") != "Bearer push-test-token" || json.Unmarshal(body, &batch) != nil {
			t.Errorf("push %s %s: %.200s", r.URL.Path, r.Header.Get("Authorization"), body)
		}
		for _, b := range batch {
			if _, err := push.Decode(b); err != nil {
				t.Errorf("pushed event: %v", err)
			}
		}
		got <- len(batch)
		_, _ = io.WriteString(w, `{"received":0,"stored":0}`)
	}))
	defer srv.Close()
	if code, _, stderr := runCLI("emulate", "--corpus", demo("cloudtrail.json"), "--push-to", srv.URL); code != exitBadInput || !strings.Contains(stderr, "TRAILPROOF_TOKEN") {
		t.Errorf("without a token: exit %d, %s", code, stderr)
	}
	t.Setenv("TRAILPROOF_TOKEN", "push-test-token")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan int)
	go func() {
		done <- dispatch(ctx, []string{"emulate", "--corpus", demo("cloudtrail.json"), "--push-to", srv.URL, "--push-loss", "0.05"}, io.Discard, io.Discard)
	}()
	total := 0
	for total < 30 { // the demo's 40 records are all due (recorded long ago); a few are lost
		select {
		case n := <-got:
			total += n
		case <-time.After(10 * time.Second):
			t.Fatalf("%d events pushed after 10 s", total)
		}
	}
	cancel()
	<-done
	if total >= 40 {
		t.Errorf("%d of 40 pushed with 5%% lost", total)
	}
}
