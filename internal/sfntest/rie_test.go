package sfntest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/testenv"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/workflow"
)

// EnvFigures names the file the bootstrap test appends its figures to (one JSON line); default
// .stack/lambda-figures.jsonl at the repository root.
const EnvFigures = "LAMBDA_FIGURES_FILE"

// rieBinary finds aws-lambda-rie (infra/scripts/rie.sh install puts it in GOPATH/bin).
func rieBinary(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("aws-lambda-rie"); err == nil {
		return p
	}
	out, err := exec.Command("go", "env", "GOPATH").Output()
	if err == nil {
		p := filepath.Join(string(bytes.TrimSpace(out)), "bin", "aws-lambda-rie")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	testenv.Skip(t, "aws-lambda-rie is not installed: run infra/scripts/rie.sh install")
	return ""
}

// buildBootstrap builds a function for this machine exactly as the build-<LogicalId> targets do
// (static, -tags lambda.norpc, stripped) and returns its path and size.
func buildBootstrap(t *testing.T, root, pkg string) (string, int64) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w", "-o", out, pkg)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build %s: %v\n%s", pkg, err, b)
	}
	fi, err := os.Stat(out)
	if err != nil {
		t.Fatal(err)
	}
	return out, fi.Size()
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// invokeCold starts the emulator with bootstrap, sends one event and returns the answer, the
// Lambda error header, and the time from process start to the answer (the cold start).
func invokeCold(t *testing.T, rie, bootstrap string, env []string, event []byte) (answer []byte, fnErr string, cold time.Duration) {
	t.Helper()
	port, apiPort := freePort(t), freePort(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, rie, "--runtime-interface-emulator-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--runtime-api-address", fmt.Sprintf("127.0.0.1:%d", apiPort), bootstrap)
	cmd.Env = append(os.Environ(), env...)
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("emulator and function output:\n%s", logs.String())
		}
	}()
	url := fmt.Sprintf("http://127.0.0.1:%d/2015-03-31/functions/function/invocations", port)
	for {
		resp, err := http.Post(url, "application/json", bytes.NewReader(event))
		if err == nil {
			answer, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			return answer, resp.Header.Get("X-Amz-Function-Error"), time.Since(start)
		}
		if ctx.Err() != nil {
			t.Fatalf("the emulator did not answer: %v", err)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// figures is what the bootstrap test measured, for the lead's report.
type figures struct {
	Time     time.Time          `json:"time"`
	GOARCH   string             `json:"goarch"`
	Sizes    map[string]int64   `json:"sizeBytes"`
	ColdMS   map[string]float64 `json:"coldStartMs"`
	RatioMax map[string]float64 `json:"ratioToMinimal"`
}

// TestBootstraps builds every function and a minimal aws-lambda-go function the same way, runs
// each under AWS's Runtime Interface Emulator with its events/<fn>/main.json, checks the answer,
// and measures binary size and cold start (process start to first answer, median of 3) against
// the minimal one. The functions need DynamoDB Local (DYNAMODB_ENDPOINT); without it only the minimal
// function runs.
func TestBootstraps(t *testing.T) {
	rie := rieBinary(t)
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	fig := figures{Time: time.Now().UTC(), GOARCH: goarch(t), Sizes: map[string]int64{}, ColdMS: map[string]float64{}, RatioMax: map[string]float64{}}

	minimal, size := buildBootstrap(t, root, "./internal/sfntest/testdata/minimal")
	fig.Sizes["minimal"] = size
	answer, fnErr, cold := invokeCold(t, rie, minimal, nil, []byte(`{"hello":"world"}`))
	if fnErr != "" || string(bytes.TrimSpace(answer)) != `{"hello":"world"}` {
		t.Fatalf("the minimal function answered %s (%s), want its event back", answer, fnErr)
	}
	fig.ColdMS["minimal"] = ms(medianCold(t, cold, func() time.Duration {
		_, _, d := invokeCold(t, rie, minimal, nil, []byte(`{"hello":"world"}`))
		return d
	}))

	endpoint := os.Getenv(EnvDynamoDBEndpoint)
	if endpoint == "" {
		writeFigures(t, root, fig)
		testenv.Skip(t, "DYNAMODB_ENDPOINT is not set: start DynamoDB Local (infra/scripts/dynamodb-local.sh start) to run the functions under the emulator")
	}
	env := seedForEvents(t, endpoint)

	// The steps in the order a run takes them, each on the state its event describes; the fail
	// function gets a run of its own (a failed run takes no further step).
	steps := []struct {
		fn    string
		event string
		env   []string
		check func(s workflow.State) string
	}{
		{"begin", "main", env.main, func(s workflow.State) string {
			return want(s.Status == core.StatusWaiting && !s.Done, "a waiting run")
		}},
		{"fetch", "main", env.main, func(s workflow.State) string {
			return want(s.Iteration == 1 && s.APICalls > 0, "one query that called CloudTrail")
		}},
		{"correlate", "main", env.main, func(s workflow.State) string {
			// The demo window lies in the past, so its deadline has passed: the verdict is final,
			// and the alerts step is to take the last alerts pass.
			return want(s.Done && s.AlertsDue && s.Status == core.StatusQuerying && s.Events > 0 && s.RawEvents > 0,
				"a final verdict with matched events among the raw events read, alerts due")
		}},
		{"alerts", "main", env.main, func(s workflow.State) string {
			return want(s.Done && s.Status == core.StatusCompleted, "the run completed by the last alerts pass")
		}},
		{"fail", "main", env.fail, func(s workflow.State) string {
			return want(s.Done && s.Status == core.StatusFailed, "a failed run")
		}},
	}
	for _, st := range steps {
		bin, size := buildBootstrap(t, root, "./functions/"+st.fn)
		fig.Sizes[st.fn] = size
		event, err := os.ReadFile(filepath.Join(root, "events", st.fn, st.event+".json"))
		if err != nil {
			t.Fatal(err)
		}
		answer, fnErr, cold := invokeCold(t, rie, bin, st.env, event)
		// Two more cold starts with the same event: the steps are idempotent, so these repeat
		// nothing and mostly time the start itself.
		fig.ColdMS[st.fn] = ms(medianCold(t, cold, func() time.Duration {
			_, _, d := invokeCold(t, rie, bin, st.env, event)
			return d
		}))
		var s workflow.State
		if fnErr != "" || json.Unmarshal(answer, &s) != nil {
			t.Errorf("%s answered %s (function error %q)", st.fn, answer, fnErr)
			continue
		}
		if problem := st.check(s); problem != "" {
			t.Errorf("%s answered %s: want %s", st.fn, answer, problem)
		}
		fig.RatioMax[st.fn+"Size"] = float64(size) / float64(fig.Sizes["minimal"])
		fig.RatioMax[st.fn+"Cold"] = fig.ColdMS[st.fn] / fig.ColdMS["minimal"]
		t.Logf("%-9s %6.1f MB (%.1fx minimal)  cold start %6.1f ms (%.1fx minimal)", st.fn,
			float64(size)/1e6, fig.RatioMax[st.fn+"Size"], fig.ColdMS[st.fn], fig.RatioMax[st.fn+"Cold"])
	}
	// The API function: the HTTP API's payload (list integrations) answers 200 with the demo
	// integration, its secret redacted.
	{
		bin, size := buildBootstrap(t, root, "./functions/api")
		fig.Sizes["api"] = size
		event, err := os.ReadFile(filepath.Join(root, "events", "api", "main.json"))
		if err != nil {
			t.Fatal(err)
		}
		apiEnv := append(slices.Clone(env.main), "STATE_MACHINE_ARN=arn:aws:states:us-east-1:123456789012:stateMachine:trailproof-correlation")
		answer, fnErr, cold := invokeCold(t, rie, bin, apiEnv, event)
		fig.ColdMS["api"] = ms(medianCold(t, cold, func() time.Duration {
			_, _, d := invokeCold(t, rie, bin, apiEnv, event)
			return d
		}))
		var resp struct {
			StatusCode int    `json:"statusCode"`
			Body       string `json:"body"`
		}
		if fnErr != "" || json.Unmarshal(answer, &resp) != nil || resp.StatusCode != 200 ||
			!strings.Contains(resp.Body, `"demo"`) || strings.Contains(resp.Body, "demo-secret-not-a-real-key") {
			t.Errorf("api answered %s (function error %q): want 200 listing the demo integration, secret redacted", answer, fnErr)
		}
		fig.RatioMax["apiSize"] = float64(size) / float64(fig.Sizes["minimal"])
		fig.RatioMax["apiCold"] = fig.ColdMS["api"] / fig.ColdMS["minimal"]
		t.Logf("%-9s %6.1f MB (%.1fx minimal)  cold start %6.1f ms (%.1fx minimal)", "api",
			float64(size)/1e6, fig.RatioMax["apiSize"], fig.ColdMS["api"], fig.RatioMax["apiCold"])
	}
	ingestBootstrap(t, rie, root, env.main, &fig)
	t.Logf("minimal   %6.1f MB                cold start %6.1f ms", float64(fig.Sizes["minimal"])/1e6, fig.ColdMS["minimal"])
	writeFigures(t, root, fig)
}

// coldSamples is how many cold starts each figure is the median of: the machine is shared, and
// one sample can be off by a factor of two.
const coldSamples = 3

// medianCold returns the median of first and coldSamples-1 more samples.
func medianCold(t *testing.T, first time.Duration, again func() time.Duration) time.Duration {
	t.Helper()
	d := []time.Duration{first}
	for len(d) < coldSamples {
		d = append(d, again())
	}
	slices.Sort(d)
	return d[len(d)/2]
}

func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return what
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func goarch(t *testing.T) string {
	out, err := exec.Command("go", "env", "GOARCH").Output()
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(out))
}

func writeFigures(t *testing.T, root string, fig figures) {
	t.Helper()
	line, err := json.Marshal(fig)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("figures: %s", line)
	path := os.Getenv(EnvFigures)
	if path == "" {
		path = filepath.Join(root, ".stack", "lambda-figures.jsonl")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(append(line, '\n')); err != nil {
		t.Fatal(err)
	}
}

// eventEnv is the environment of the functions for the events' run ("run-example-1").
type eventEnv struct{ main, fail []string }

// seedForEvents makes two DynamoDB Local tables each holding the demo integration (reading an
// emulator of the demo corpus, delivery immediate) and the run the events name, and returns the
// functions' environment for each.
func seedForEvents(t *testing.T, endpoint string) eventEnv {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(root, "examples", "demo")
	events, err := corpus.Load(filepath.Join(demo, "cloudtrail.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The functions run on the real clock, on which the recorded demo data is older than the 90
	// days CloudTrail (and so the emulator, by default) serves.
	emu, err := emulator.New(events, emulator.WithRate(0), emulator.WithHistory(0))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	keyFile := filepath.Join(t.TempDir(), "seal.key")
	key, err := seal.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	seed := func() []string {
		table := "rie-" + randomHex(6)
		store, err := dynamo.New(dynamo.LocalClient(endpoint), table, dynamo.WithSealer(sealer))
		if err != nil {
			t.Fatal(err)
		}
		if err := store.CreateTable(t.Context()); err != nil {
			t.Fatalf("DynamoDB Local at %s: %v", endpoint, err)
		}
		integ, err := core.LoadIntegrationFile(filepath.Join(demo, "integration.json"))
		if err != nil {
			t.Fatal(err)
		}
		action, err := core.LoadActionFile(filepath.Join(demo, "action.json"))
		if err != nil {
			t.Fatal(err)
		}
		integ.ID, integ.Endpoint = "demo", srv.URL
		if err := store.CreateIntegration(t.Context(), integ); err != nil {
			t.Fatal(err)
		}
		if _, err := workflow.New(store, nil).CreateRun(t.Context(), integ.ID, action, "run-example-1"); err != nil {
			t.Fatal(err)
		}
		return []string{
			"TABLE_NAME=" + table, "DYNAMODB_ENDPOINT=" + endpoint, "SEAL_KEY_FILE=" + keyFile,
			"AWS_REGION=us-east-1", "LOG_LEVEL=WARN", "AWS_EC2_METADATA_DISABLED=true",
			netguard.EnvAllowEndpoints + "=" + srv.URL, // the operator's allow-list, as the template passes it
		}
	}
	return eventEnv{main: seed(), fail: seed()}
}
