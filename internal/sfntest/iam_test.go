package sfntest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/api/awsapi"
	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/clock"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/corpus"
	"github.com/trailproof/trailproof/internal/emulator"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/testenv"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Deployment values the IAM test evaluates template.yaml with.
const (
	iamStack      = "trailproof"
	iamSecretARN  = "arn:aws:secretsmanager:" + Region + ":" + Account + ":secret:SealKeySecret-AbCdEf"
	iamSecret     = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqr"
	iamTargetRole = "arn:aws:iam::210987654321:role/trailproof-reader"
	// iamDeniedRole is in TargetRoleArns, but its trust policy does not trust the deployment:
	// STS refuses it.
	iamDeniedRole = "arn:aws:iam::210987654321:role/not-trusting"
)

// stepFunctions are the state machine's functions, whose calls the scenarios record.
var stepFunctions = []string{"BeginFunction", "FetchFunction", "CorrelateFunction", "AlertsFunction", "FailFunction"}

// iamFunctions are every function of template.yaml: the step functions, the API's and, with
// EnablePush, the push queue's.
var iamFunctions = append(slices.Clone(stepFunctions), "ApiFunction", "IngestFunction")

// TestIAMAllowsEveryCall runs runs through the real state machine definition with each function
// built as it is deployed (lambdafn.FromConfig over DynamoDB Local) and its AWS calls recorded,
// and the Director's calls through the API function (awsapi.FromConfig), its calls recorded too,
// then holds them against the function's IAM statements in template.yaml as SAM expands them:
// every call must be allowed, and every permission granted must be used by some scenario.
func TestIAMAllowsEveryCall(t *testing.T) {
	ep := os.Getenv(EnvDynamoDBEndpoint)
	if ep == "" {
		testenv.Skip(t, "DYNAMODB_ENDPOINT is not set: the IAM test runs the functions as deployed, over DynamoDB Local (export DYNAMODB_ENDPOINT=http://127.0.0.1:8000)")
	}
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	table := "iamtest-" + randomHex(6)
	rec := runIAMScenarios(t, ep, table)
	grants := functionGrants(t, root, table, "")

	calls := rec.Calls()
	for _, fn := range iamFunctions {
		t.Logf("%s calls: %v", fn, filterCalls(calls, fn))
	}
	for _, problem := range checkGrants(calls, grants, iamFunctions) {
		t.Error(problem)
	}
}

// noPermissionActions are the actions AWS answers whatever the caller's policies say, so no grant
// is needed (or could deny them): sts:GetCallerIdentity ("No permissions are required to perform
// this operation", STS API reference), which fetch makes to learn an integration's account.
var noPermissionActions = []string{"sts:GetCallerIdentity"}

// checkGrants returns, for each function, the calls its grants do not allow and the grants no
// call uses.
func checkGrants(calls []Call, grants map[string][]grant, functions []string) []string {
	var problems []string
	for _, c := range calls {
		if slices.Contains(noPermissionActions, c.Action) {
			continue
		}
		if !slices.ContainsFunc(grants[c.Function], func(g grant) bool { return g.allows(c) }) {
			problems = append(problems, fmt.Sprintf("%s: %s on %s is not allowed by template.yaml (missing permission)", c.Function, c.Action, c.Resource))
		}
	}
	for _, fn := range functions {
		for _, g := range grants[fn] {
			if !slices.ContainsFunc(calls, func(c Call) bool { return c.Function == fn && g.allows(c) }) {
				problems = append(problems, fmt.Sprintf("%s: %s on %s is granted by template.yaml but no scenario calls it (unused permission)", fn, g.action, strings.Join(g.resources, ", ")))
			}
		}
	}
	return problems
}

func filterCalls(calls []Call, fn string) []string {
	var out []string
	for _, c := range calls {
		if c.Function == fn {
			out = append(out, c.Action+" "+c.Resource)
		}
	}
	return out
}

// grant is one action an IAM statement allows, on the statement's resource patterns (a
// parameter such as TargetRoleArns can give several: the grant is used when one of them is),
// and the statement's IAM Condition, which the calls are not held against (a call the test
// records has no request context to evaluate it with).
type grant struct {
	action    string
	resources []string
	condition map[string]any
}

func (g grant) allows(c Call) bool {
	return globMatch(strings.ToLower(g.action), strings.ToLower(c.Action)) &&
		slices.ContainsFunc(g.resources, func(r string) bool { return globMatch(r, c.Resource) })
}

// globMatch matches IAM's wildcards: * any run of characters, ? one character.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}

// functionGrants expands template.yaml with samtranslator (infra/scripts/sam-expand.py) and
// returns each function's Allow grants from its role's inline policies, intrinsics resolved
// for a deployment of stack iamStack with table, the TargetRoleArns parameter set to
// iamTargetRole and iamDeniedRole, and the SealKmsKeyArn parameter to kmsKey (its default is ""). The managed policies SAM attaches (AWSLambdaBasicExecutionRole for the logs,
// AWSXrayWriteOnlyAccess for tracing) serve the Lambda runtime, not the handler, and are left out.
func functionGrants(t *testing.T, root, table, kmsKey string) map[string][]grant {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		testenv.Skip(t, "python3 is not installed: the IAM test expands template.yaml with samtranslator (it comes with cfn-lint)")
	}
	if err := exec.Command(python, "-c", "import samtranslator").Run(); err != nil {
		testenv.Skip(t, "the python3 in PATH has no samtranslator: install cfn-lint (pip install cfn-lint) to run the IAM test")
	}
	// Read here too, so that go test's cache knows the result depends on them.
	for _, f := range []string{"template.yaml", "infra/scripts/sam-expand.py"} {
		if _, err := os.ReadFile(filepath.Join(root, f)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(python, filepath.Join(root, "infra", "scripts", "sam-expand.py"), filepath.Join(root, "template.yaml"))
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("expand template.yaml: %v: %s", err, stderr.String())
	}
	var tpl struct {
		Conditions map[string]any
		Resources  map[string]struct {
			Type       string
			Properties map[string]any
		}
	}
	if err := json.Unmarshal(out, &tpl); err != nil {
		t.Fatalf("read the expanded template: %v", err)
	}
	ev := &intrinsics{refs: map[string]any{
		"AWS::Partition": "aws", "AWS::Region": Region, "AWS::AccountId": Account, "AWS::StackName": iamStack,
		"AWS::URLSuffix": "amazonaws.com",
		"Table":          table, "SealKeySecret": iamSecretARN, "TargetRoleArns": []any{iamTargetRole, iamDeniedRole},
		"SealKmsKeyArn": kmsKey,
		"StateMachine":  StateMachineARN,
		"EnablePush":    "true",
	}, atts: map[string]any{
		"StateMachine.Name": iamStack + "-correlation",
		"Table.Arn":         "arn:aws:dynamodb:" + Region + ":" + Account + ":table/" + table,
	}}
	for _, fn := range iamFunctions {
		ev.refs[fn] = "trailproof-" + fn
		ev.atts[fn+".Arn"] = FunctionARN(fn)
	}
	ev.conditions = tpl.Conditions
	grants := map[string][]grant{}
	for _, fn := range iamFunctions {
		role, ok := tpl.Resources[fn+"Role"]
		if !ok || role.Type != "AWS::IAM::Role" {
			t.Fatalf("the expanded template has no role %sRole for %s", fn, fn)
		}
		policies, _ := ev.resolve(role.Properties["Policies"]).([]any)
		for _, p := range policies {
			doc, _ := p.(map[string]any)["PolicyDocument"].(map[string]any)
			for _, st := range asList(doc["Statement"]) {
				st := st.(map[string]any)
				if st["Effect"] != "Allow" {
					t.Fatalf("%s: statement %v is not an Allow: the test does not evaluate Deny", fn, st)
				}
				var resources []string
				for _, r := range asList(st["Resource"]) {
					resources = append(resources, r.(string))
				}
				cond, _ := st["Condition"].(map[string]any)
				for _, a := range asList(st["Action"]) {
					grants[fn] = append(grants[fn], grant{action: a.(string), resources: resources, condition: cond})
				}
			}
		}
	}
	return grants
}

func asList(v any) []any {
	if l, ok := v.([]any); ok {
		return l
	}
	if v == nil {
		return nil
	}
	return []any{v}
}

// intrinsics resolves the CloudFormation functions the expanded template uses in its policies.
type intrinsics struct {
	refs, atts map[string]any
	conditions map[string]any
}

var noValue = &struct{}{}

func (e *intrinsics) resolve(v any) any {
	switch v := v.(type) {
	case []any:
		var out []any
		for _, x := range v {
			if r := e.resolve(x); r != noValue {
				out = append(out, r)
			}
		}
		return out
	case map[string]any:
		if len(v) == 1 {
			for k, arg := range v {
				switch k {
				case "Ref":
					if arg == "AWS::NoValue" {
						return noValue
					}
					return e.refs[arg.(string)]
				case "Fn::GetAtt":
					parts := arg.([]any)
					return e.atts[parts[0].(string)+"."+parts[1].(string)]
				case "Fn::Sub":
					return e.sub(arg)
				case "Fn::Join":
					parts := arg.([]any)
					var ss []string
					for _, x := range asList(e.resolve(parts[1])) {
						ss = append(ss, fmt.Sprint(x))
					}
					return strings.Join(ss, parts[0].(string))
				case "Fn::If":
					parts := arg.([]any)
					if e.condition(parts[0].(string)) {
						return e.resolve(parts[1])
					}
					return e.resolve(parts[2])
				case "Fn::Equals":
					parts := arg.([]any)
					return fmt.Sprint(e.resolve(parts[0])) == fmt.Sprint(e.resolve(parts[1]))
				case "Fn::Not":
					return !e.resolve(arg.([]any)[0]).(bool)
				case "Condition":
					return e.condition(arg.(string))
				}
			}
		}
		out := map[string]any{}
		for k, x := range v {
			if r := e.resolve(x); r != noValue {
				out[k] = r
			}
		}
		return out
	}
	return v
}

func (e *intrinsics) condition(name string) bool {
	b, _ := e.resolve(e.conditions[name]).(bool)
	return b
}

var subVar = regexp.MustCompile(`\$\{([^}]+)\}`)

func (e *intrinsics) sub(arg any) string {
	s, vars := "", map[string]any{}
	switch a := arg.(type) {
	case string:
		s = a
	case []any:
		s = a[0].(string)
		for k, x := range a[1].(map[string]any) {
			vars[k] = e.resolve(x)
		}
	}
	return subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		if v, ok := vars[name]; ok {
			return fmt.Sprint(v)
		}
		if v, ok := e.atts[name]; ok {
			return fmt.Sprint(v)
		}
		return fmt.Sprint(e.refs[name])
	})
}

// awsStub answers the AWS calls nothing here implements: Secrets Manager's GetSecretValue (the
// seal key secret), STS's AssumeRole (iamTargetRole is trusted, any other role denied) and Step
// Functions' StartExecution and StopExecution (the API's).
func awsStub(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		switch r.Header.Get("X-Amz-Target") {
		case "AWSStepFunctions.StartExecution":
			var in struct{ StateMachineArn, Name string }
			_ = json.Unmarshal(body, &in)
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			fmt.Fprintf(w, `{"executionArn":%q,"startDate":1722375065}`, executionARN(in.StateMachineArn, in.Name))
			return
		case "AWSStepFunctions.StopExecution":
			w.Header().Set("Content-Type", "application/x-amz-json-1.0")
			fmt.Fprint(w, `{"stopDate":1722375066}`)
			return
		}
		if r.Header.Get("X-Amz-Target") == "secretsmanager.GetSecretValue" {
			var in struct{ SecretId string }
			_ = json.Unmarshal(body, &in)
			if in.SecretId != iamSecretARN {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"__type":"ResourceNotFoundException","message":"Secrets Manager can't find the specified secret."}`)
				return
			}
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			_ = json.NewEncoder(w).Encode(map[string]any{"ARN": iamSecretARN, "Name": "SealKeySecret", "SecretString": iamSecret, "VersionId": "v1"})
			return
		}
		form, _ := url.ParseQuery(string(body))
		if form.Get("Action") != "AssumeRole" {
			http.Error(w, "unexpected call", http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "text/xml")
		if form.Get("RoleArn") != iamTargetRole {
			w.WriteHeader(http.StatusForbidden)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized to perform sts:AssumeRole</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprintf(w, `<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><AssumeRoleResult>
<Credentials><AccessKeyId>ASIAIAMTEST</AccessKeyId><SecretAccessKey>secret</SecretAccessKey><SessionToken>token</SessionToken><Expiration>%s</Expiration></Credentials>
<AssumedRoleUser><Arn>%s/trailproof</Arn><AssumedRoleId>AROA:trailproof</AssumedRoleId></AssumedRoleUser>
</AssumeRoleResult><ResponseMetadata><RequestId>r-1</RequestId></ResponseMetadata></AssumeRoleResponse>`,
			time.Now().Add(time.Hour).UTC().Format(time.RFC3339), iamTargetRole)
	}))
	t.Cleanup(srv.Close)
	return srv
}

// runIAMScenarios runs the scenarios whose calls the IAM test checks, each function built by
// lambdafn.FromConfig as its main does, and returns what they called: a run found early with the
// integration's keys, one reading through an assumed role (iamTargetRole), and one whose role
// cannot be assumed, so that it fails and the fail function records it.
func runIAMScenarios(t *testing.T, ep, table string) *CallRecorder {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	demo := filepath.Join(root, "examples", "demo")
	base, err := core.LoadIntegrationFile(filepath.Join(demo, "integration.json"))
	if err != nil {
		t.Fatal(err)
	}
	action, err := core.LoadActionFile(filepath.Join(demo, "action.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The demo corpus and Insights events in its window, which the alerts step stores.
	events, err := corpus.Load(filepath.Join(demo, "cloudtrail.json"), filepath.Join(root, "internal", "workflow", "testdata", "insights.json"))
	if err != nil {
		t.Fatal(err)
	}
	clk := clock.NewVirtual(action.StartTime)
	// The keys of the scenarios: the demo's, whose account sts:GetCallerIdentity names, and the
	// assumed role's (awsStub).
	keys := emulator.WithKeys(emulator.Key{AccessKeyID: base.AccessKeyID, SecretAccessKey: base.SecretAccessKey, AccountID: "210987654321"},
		emulator.Key{AccessKeyID: "ASIAIAMTEST", SecretAccessKey: "secret"})
	emu, err := emulator.New(events, emulator.WithClock(clk), emulator.WithDeliveryDelay(DeliveryDelay), emulator.WithRate(0), keys)
	if err != nil {
		t.Fatal(err)
	}
	emuSrv := httptest.NewServer(emu)
	t.Cleanup(emuSrv.Close)
	stub := awsStub(t)

	// The table and what the API function would have stored: the integrations and the runs.
	key, err := awsenv.DeriveSealKey(iamSecret)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewAESGCM(key)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := dynamo.New(dynamo.LocalClient(ep), table, dynamo.WithSealer(sealer))
	if err != nil {
		t.Fatal(err)
	}
	if err := setup.CreateTable(t.Context()); err != nil {
		t.Fatalf("DynamoDB Local at %s: %v", ep, err)
	}
	t.Setenv(awsenv.EnvTableName, table)
	t.Setenv(awsenv.EnvSealKeySecretARN, iamSecretARN)
	t.Setenv(awsenv.EnvSealKeyFile, "")
	t.Setenv(awsenv.EnvSealKMSKeyARN, "") // the SealKmsKeyArn parameter's default (functionGrants)
	t.Setenv(awsenv.EnvRunRetentionDays, "30")
	// The operator's allow-list, as the AllowEndpoints parameter sets it: the scenarios' emulator
	// and STS stand-in listen on loopback.
	t.Setenv(netguard.EnvAllowEndpoints, "127.0.0.1")
	// As the template sets it with EnablePush "true", the value it is expanded with below.
	t.Setenv(awsenv.EnvPush, "true")

	rec := &CallRecorder{}
	srv := NewLambdaServer()
	t.Cleanup(srv.Close)
	engines := map[string]*workflow.Engine{}
	for _, fn := range stepFunctions {
		cfg := functionConfig(rec, fn, stub.URL)
		opts := []workflow.Option{workflow.WithClock(clk)}
		if fn == "AlertsFunction" {
			opts = append(opts, workflow.WithAlertCompiler(alerts.Compiler()))
		}
		e, err := lambdafn.FromConfig(t.Context(), cfg, slog.New(slog.DiscardHandler),
			[]cloudtrail.Option{cloudtrail.WithClock(clk), cloudtrail.WithRateLimit(1000, 100)}, opts...)
		if err != nil {
			t.Fatalf("build %s: %v", fn, err)
		}
		engines[fn] = e
	}
	srv.Handle(FunctionARN("BeginFunction"), Typed(lambdafn.Begin(engines["BeginFunction"])))
	srv.Handle(FunctionARN("FetchFunction"), Typed(lambdafn.Fetch(engines["FetchFunction"])))
	srv.Handle(FunctionARN("CorrelateFunction"), Typed(lambdafn.Correlate(engines["CorrelateFunction"])))
	srv.Handle(FunctionARN("AlertsFunction"), Typed(lambdafn.Alerts(engines["AlertsFunction"])))
	srv.Handle(FunctionARN("FailFunction"), Typed(lambdafn.Fail(engines["FailFunction"])))
	srv.OnInvoke(VirtualTime(clk, FunctionARN("BeginFunction"), FunctionARN("CorrelateFunction"), FunctionARN("AlertsFunction")))
	runner := NewRunner(t, srv, substitutions())

	scenarios := []struct {
		name       string
		change     func(in *core.Integration)
		wantStatus string
	}{
		{"keys", func(*core.Integration) {}, core.StatusCompleted},
		{"assumed role", func(in *core.Integration) {
			in.AccessKeyID, in.SecretAccessKey, in.RoleARN = "", "", iamTargetRole
		}, core.StatusCompleted},
		{"role cannot be assumed", func(in *core.Integration) {
			in.AccessKeyID, in.SecretAccessKey, in.RoleARN = "", "", iamDeniedRole
		}, core.StatusFailed},
	}
	for i, sc := range scenarios {
		in := *base
		in.ID, in.Endpoint = fmt.Sprintf("iam-%d", i), emuSrv.URL
		sc.change(&in)
		if err := setup.CreateIntegration(t.Context(), &in); err != nil {
			t.Fatal(err)
		}
		clk.Set(action.StartTime)
		r, err := workflow.New(setup, nil, workflow.WithClock(clk)).CreateRun(t.Context(), in.ID, action, fmt.Sprintf("run-iam-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		outs, err := runner.RunChain(t.Context(), r.RunID, map[string]string{"runId": r.RunID}, 3)
		if err != nil {
			t.Fatalf("%s: %v", sc.name, err)
		}
		got, err := setup.GetRun(t.Context(), r.RunID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Status != sc.wantStatus {
			t.Fatalf("scenario %q: run %s (%s), want %s; execution %s %s", sc.name, got.Status, got.Error, sc.wantStatus, outs[len(outs)-1].Status, outs[len(outs)-1].Cause)
		}
	}
	runAPIScenario(t, functionConfig(rec, "ApiFunction", stub.URL), emuSrv.URL)
	runIngestScenario(t, functionConfig(rec, "IngestFunction", stub.URL))
	return rec
}

// functionConfig is the AWS config of function fn: its role's credentials, its calls recorded,
// and the services nothing here implements answered by the stub.
func functionConfig(rec *CallRecorder, fn, stub string) aws.Config {
	return aws.Config{
		Region:       Region,
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDFUNCTIONROLE", "secret", "token"),
		BaseEndpoint: aws.String(stub), // Secrets Manager, STS, Step Functions
		APIOptions:   []func(*middleware.Stack) error{rec.Middleware(fn)},
	}
}

// runAPIScenario makes the Director's calls through the API function built over cfg as its main
// builds it: integrations created (keys, and an assumed role), listed, read, changed, tested and
// deleted; a run started, read and cancelled.
func runAPIScenario(t *testing.T, cfg aws.Config, emulatorURL string) {
	t.Helper()
	t.Setenv(awsapi.EnvStateMachineARN, StateMachineARN)
	t.Setenv(awsapi.EnvStepFunctionsEndpoint, "")
	h, err := awsapi.FromConfig(t.Context(), cfg, slog.New(slog.DiscardHandler), nil)
	if err != nil {
		t.Fatalf("build ApiFunction: %v", err)
	}
	invoke := awsapi.Lambda(h)
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(root, "events", "api", "main.json"))
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path string, body any, want int) map[string]any {
		t.Helper()
		var ev events.APIGatewayV2HTTPRequest
		if err := json.Unmarshal(data, &ev); err != nil {
			t.Fatal(err)
		}
		ev.RawPath, ev.RequestContext.HTTP.Path, ev.RequestContext.HTTP.Method = path, path, method
		ev.PathParameters = map[string]string{"proxy": strings.TrimPrefix(path, "/v1/")}
		if body != nil {
			b, err := json.Marshal(body)
			if err != nil {
				t.Fatal(err)
			}
			ev.Body = string(b)
			ev.Headers["content-type"], ev.Headers["content-length"] = "application/json", fmt.Sprint(len(b))
		}
		resp, err := invoke(t.Context(), ev)
		if err != nil || resp.StatusCode != want {
			t.Fatalf("%s %s: %d %s (%v), want %d", method, path, resp.StatusCode, resp.Body, err, want)
		}
		var out map[string]any
		_ = json.Unmarshal([]byte(resp.Body), &out)
		return out
	}
	keys := map[string]any{"id": "api-keys", "name": "keys", "awsRegion": "us-west-2", "endpoint": emulatorURL,
		"accessKeyId": "AKIAZDEMOTRAILPROOF1", "secretAccessKey": "demo-secret-not-a-real-key-0000000000000"}
	role := map[string]any{"id": "api-role", "name": "role", "awsRegion": "us-west-2", "endpoint": emulatorURL, "roleArn": iamTargetRole}
	call("POST", "/v1/integrations", keys, 201)
	call("POST", "/v1/integrations", role, 201)
	call("GET", "/v1/integrations", nil, 200)
	call("GET", "/v1/integrations/api-keys", nil, 200)
	keys["name"] = "keys, renamed"
	call("PUT", "/v1/integrations/api-keys", keys, 200)
	for _, id := range []string{"api-keys", "api-role"} {
		if rep := call("POST", "/v1/integrations/"+id+"/test", nil, 200); rep["ok"] != true {
			t.Fatalf("connectivity test of %s: %v", id, rep)
		}
	}
	action := map[string]any{"runId": "run-api", "jobId": "job-42", "actionId": "A104-123", "startTime": "2026-03-03T14:00:00Z",
		"actor": map[string]any{"userAgentToken": "stratus-red-team"}}
	call("POST", "/v1/integrations/api-keys/runs", action, 202)
	call("GET", "/v1/runs/run-api", nil, 200)
	call("GET", "/v1/runs/run-api/events", nil, 200)
	call("GET", "/v1/integrations/api-keys/sensors", nil, 200)
	call("DELETE", "/v1/runs/run-api", nil, 200)
	call("DELETE", "/v1/integrations/api-role", nil, 204)
	call("DELETE", "/v1/integrations/api-keys", nil, 204)
}
