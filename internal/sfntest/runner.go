package sfntest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"github.com/trailproof/trailproof/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trailproof/trailproof/internal/clock"
)

// Names used for the deployed resources in the test executions.
const (
	Region          = "us-east-1"
	Account         = "123456789012"
	StateMachineARN = "arn:aws:states:" + Region + ":" + Account + ":stateMachine:trailproof-correlation"
)

// DefinitionPath is the definition under test, relative to the repository root.
const DefinitionPath = "statemachine/correlation.asl.json"

// scriptPath runs one execution; relative to the repository root.
const scriptPath = "infra/scripts/sfn-run.mjs"

// FunctionARN is the ARN the tests substitute for a function's ${<Logical>Arn} placeholder.
func FunctionARN(logicalID string) string {
	return "arn:aws:lambda:" + Region + ":" + Account + ":function:trailproof-" + logicalID
}

// executionARN is the ARN of an execution of a state machine.
func executionARN(stateMachineARN, name string) string {
	return strings.Replace(stateMachineARN, ":stateMachine:", ":execution:", 1) + ":" + name
}

var placeholder = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// Placeholders returns the ${...} names a definition uses, sorted and without repeats.
func Placeholders(definition []byte) []string {
	var names []string
	for _, m := range placeholder.FindAllSubmatch(definition, -1) {
		names = append(names, string(m[1]))
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// Root returns the repository root (the folder with go.mod above the working directory).
func Root() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("no go.mod above the working directory")
		}
		dir = parent
	}
}

// Outcome is how one execution ended.
type Outcome struct {
	Name   string          `json:"-"`      // the execution's name
	Status string          `json:"status"` // SUCCEEDED or FAILED
	Output json.RawMessage `json:"output"` // when it succeeded
	Error  string          `json:"error"`  // when it failed
	Cause  string          `json:"cause"`
	States []string        `json:"states"` // the states entered, in order
}

// Last returns the last state entered.
func (o *Outcome) Last() string {
	if len(o.States) == 0 {
		return ""
	}
	return o.States[len(o.States)-1]
}

// Runner runs executions of the definition with aws-local-stepfunctions, their Lambda calls
// served by Server.
type Runner struct {
	Root          string            // the repository root
	Server        *LambdaServer     // where Lambda calls go
	Substitutions map[string]string // DefinitionSubstitutions
	Timeout       time.Duration     // for one execution; default 2 minutes
}

// NewRunner returns a runner for the repository's definition, or skips the test with the reason
// when node or the npm packages are missing (run `npm ci` at the repository root).
func NewRunner(t testing.TB, server *LambdaServer, substitutions map[string]string) *Runner {
	t.Helper()
	root, err := Root()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Skip(t, "node is not installed: the Step Functions tests need Node.js 20 or later")
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", "aws-local-stepfunctions", "package.json")); err != nil {
		testenv.Skip(t, "node_modules/aws-local-stepfunctions is absent: run `npm ci` at the repository root to run the Step Functions tests")
	}
	return &Runner{Root: root, Server: server, Substitutions: substitutions}
}

// Run runs one execution named name with input, and returns how it ended. An error means the
// execution could not run at all (a bad definition, node failing).
func (r *Runner) Run(ctx context.Context, name string, input any) (*Outcome, error) {
	in, err := json.Marshal(input)
	if err != nil {
		return nil, fmt.Errorf("encode the input: %w", err)
	}
	subs, err := json.Marshal(r.Substitutions)
	if err != nil {
		return nil, err
	}
	execCtx, err := json.Marshal(map[string]any{
		"StateMachine": map[string]string{"Id": StateMachineARN, "Name": "trailproof-correlation"},
		"Execution":    map[string]string{"Id": executionARN(StateMachineARN, name), "Name": name},
	})
	if err != nil {
		return nil, err
	}
	timeout := r.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join(r.Root, scriptPath),
		"--definition", filepath.Join(r.Root, DefinitionPath),
		"--substitutions", string(subs), "--input", string(in), "--context", string(execCtx))
	cmd.Dir = r.Root
	cmd.Env = append(os.Environ(),
		"AWS_ENDPOINT_URL_LAMBDA="+r.Server.URL(),
		"AWS_REGION="+Region,
		"AWS_ACCESS_KEY_ID=AKIDSFNTEST",
		"AWS_SECRET_ACCESS_KEY=sfntest",
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE="+os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE="+os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_MAX_ATTEMPTS=1",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("run %s: %w: %s", scriptPath, err, strings.TrimSpace(stderr.String()))
	}
	var o Outcome
	if err := json.Unmarshal(stdout.Bytes(), &o); err != nil {
		return nil, fmt.Errorf("read the outcome of %s: %w: %q", scriptPath, err, stdout.String())
	}
	o.Name = name
	return &o, nil
}

// RunChain runs an execution and then, while one ends by starting the next part of the run
// (states:startExecution), that next part with the input it was given, as Step Functions would.
// It returns the outcome of each execution in order; at most maxParts are run.
func (r *Runner) RunChain(ctx context.Context, name string, input any, maxParts int) ([]*Outcome, error) {
	var outs []*Outcome
	r.Server.TakeStarts()
	for range maxParts {
		o, err := r.Run(ctx, name, input)
		if err != nil {
			return outs, err
		}
		outs = append(outs, o)
		starts := r.Server.TakeStarts()
		if len(starts) == 0 {
			return outs, nil
		}
		if len(starts) > 1 {
			return outs, fmt.Errorf("execution %s started %d executions, want at most 1", name, len(starts))
		}
		if starts[0].StateMachineArn != StateMachineARN {
			return outs, fmt.Errorf("execution %s started %s, want this state machine %s", name, starts[0].StateMachineArn, StateMachineARN)
		}
		name, input = starts[0].Name, starts[0].Input
	}
	return outs, fmt.Errorf("the run did not end within %d executions", maxParts)
}

// RetryDelay is the pause before the n-th retry of a step (n from 1): 2 s doubled each time, the
// definition's IntervalSeconds and BackoffRate without its jitter, and workflow.Engine.Execute's.
func RetryDelay(n int) time.Duration {
	return 2 * time.Second << (n - 1)
}

// VirtualTime makes time pass on c as it would in Step Functions, although the executions'
// Wait states and Retry pauses take no time. The definition waits $.waitSeconds after a
// function in waitAfter answers (begin, correlate, alerts), unless the answer says the run is
// done or the alerts step comes first ($.alertsDue); so the clock moves on by that wait when such
// an answer arrives, and by RetryDelay before a retried call. Install the hooks with
// LambdaServer.OnInvoke.
func VirtualTime(c *clock.Virtual, waitAfter ...string) (BeforeInvoke, AfterInvoke) {
	before := func(function string, event json.RawMessage, retry int) {
		if retry > 0 {
			c.Advance(RetryDelay(retry))
		}
	}
	after := func(function string, event, output json.RawMessage) {
		if !slices.Contains(waitAfter, function) {
			return
		}
		var s struct {
			Done        bool `json:"done"`
			AlertsDue   bool `json:"alertsDue"`
			WaitSeconds int  `json:"waitSeconds"`
		}
		if err := json.Unmarshal(output, &s); err == nil && !s.Done && !s.AlertsDue {
			c.Advance(time.Duration(s.WaitSeconds) * time.Second)
		}
	}
	return before, after
}
