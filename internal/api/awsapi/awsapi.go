// Package awsapi is what the API needs in AWS, beside the handler itself: the Step Functions
// api.RunStarter, the Authenticator that trusts API Gateway's IAM authorization, the adapter
// from API Gateway HTTP API events (payload format 2.0) to the net/http handler
// (aws-lambda-go-api-proxy), and FromEnv, which builds the handler of the api function from its
// environment.
//
// Authentication in AWS is API Gateway's: the routes use the AWS_IAM authorizer, so a request
// reaches the function only after the gateway has verified its SigV4 signature and that the
// caller may call execute-api:Invoke on the route. The handler then trusts the request context
// (GatewayIAM) and refuses any request whose context carries no IAM identity, which catches a
// route deployed without the authorizer or a function invoked some other way.
package awsapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/arn"
	"github.com/aws/aws-sdk-go-v2/service/sfn"
	sfntypes "github.com/aws/aws-sdk-go-v2/service/sfn/types"
	proxycore "github.com/awslabs/aws-lambda-go-api-proxy/core"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/core"
)

// SFNAPI is the part of the Step Functions client the starter uses.
type SFNAPI interface {
	StartExecution(ctx context.Context, in *sfn.StartExecutionInput, opts ...func(*sfn.Options)) (*sfn.StartExecutionOutput, error)
	StopExecution(ctx context.Context, in *sfn.StopExecutionInput, opts ...func(*sfn.Options)) (*sfn.StopExecutionOutput, error)
}

// RunReader reads stored runs (core.Store is one).
type RunReader interface {
	GetRun(ctx context.Context, id string) (*core.Run, error)
}

// StepFunctions starts each run as an execution of the correlation state machine named after
// the run (ExecutionName), so a repeated start cannot make a second execution: Step Functions
// keeps execution names unique per state machine for 90 days after an execution ends.
type StepFunctions struct {
	client       SFNAPI
	stateMachine string
	runs         RunReader
}

var _ api.RunStarter = (*StepFunctions)(nil)

// NewStepFunctions returns the starter of the state machine stateMachineARN, naming executions
// after the runs read from runs.
func NewStepFunctions(client SFNAPI, stateMachineARN string, runs RunReader) (*StepFunctions, error) {
	a, err := arn.Parse(stateMachineARN)
	if err != nil || a.Service != "states" || !strings.HasPrefix(a.Resource, "stateMachine:") {
		return nil, fmt.Errorf("state machine ARN %q: want arn:aws:states:<region>:<account>:stateMachine:<name>", stateMachineARN)
	}
	if runs == nil {
		return nil, errors.New("the Step Functions starter needs the run store, to name executions")
	}
	return &StepFunctions{client: client, stateMachine: stateMachineARN, runs: runs}, nil
}

// Lengths in an execution name: Step Functions takes at most 80 characters, and the state
// machine adds "-part-<n>" to the name of each continuation.
const (
	maxNameLen  = 80 - len("-part-9999")
	maxRunIDLen = maxNameLen - 1 - 9 // "-" and the creation time, base 36
)

// ExecutionName names the execution of run r: its ID and the millisecond it was created, in base
// 36. A run ID may come back once the run has expired (RunRetentionDays) while Step Functions
// still holds the old execution's name (90 days): the new run, created later, gets a name of its
// own. The same run started twice gets the same name, so Step Functions runs it once. A run ID too
// long to fit is cut and given a hash of the whole, so two long IDs do not meet.
func ExecutionName(r *core.Run) string {
	id := r.RunID
	if len(id) > maxRunIDLen {
		sum := sha256.Sum256([]byte(id))
		id = id[:maxRunIDLen-9] + "-" + hex.EncodeToString(sum[:4])
	}
	return id + "-" + strconv.FormatInt(r.StartedAt.UnixMilli(), 36)
}

// Start starts the execution {"runId": runID} of the stored run. An execution of its name that
// already exists, running or ended, is the run's own: not an error.
func (s *StepFunctions) Start(ctx context.Context, runID string) error {
	r, err := s.runs.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("start run %s: %w", runID, err)
	}
	name := ExecutionName(r)
	input := fmt.Sprintf(`{"runId":%q}`, runID)
	_, err = s.client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(s.stateMachine), Name: aws.String(name), Input: aws.String(input),
	})
	var exists *sfntypes.ExecutionAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("start execution %s of run %s: %w", name, runID, err)
	}
	return nil
}

// Cancel stops the run's execution. The store already says cancelled, which the next step
// reads anyway; stopping spares the execution's remaining waits. An execution that does not
// exist or has ended is not an error.
func (s *StepFunctions) Cancel(ctx context.Context, runID string) error {
	r, err := s.runs.GetRun(ctx, runID)
	if err != nil {
		return fmt.Errorf("stop run %s: %w", runID, err)
	}
	_, err = s.client.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(s.ExecutionARN(r)), Cause: aws.String("cancelled through the API"),
	})
	var missing *sfntypes.ExecutionDoesNotExist
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("stop execution of run %s: %w", runID, err)
	}
	return nil
}

// ExecutionARN is the ARN of run r's execution:
// arn:aws:states:<region>:<account>:execution:<state machine name>:<ExecutionName(r)>.
func (s *StepFunctions) ExecutionARN(r *core.Run) string {
	return strings.Replace(s.stateMachine, ":stateMachine:", ":execution:", 1) + ":" + ExecutionName(r)
}

// Challenge is the WWW-Authenticate value of the API's 401 answers in AWS: sign with SigV4.
const Challenge = "AWS4-HMAC-SHA256"

// GatewayIAM is the Authenticator behind API Gateway's IAM authorization: it accepts a request
// whose gateway context names an IAM caller, which the gateway has authenticated and
// authorized already (see the package doc), and refuses anything else.
func GatewayIAM() api.Authenticator {
	return func(r *http.Request) error {
		rc, ok := proxycore.GetAPIGatewayV2ContextFromContext(r.Context())
		if !ok || rc.Authorizer == nil || rc.Authorizer.IAM == nil || rc.Authorizer.IAM.UserARN == "" && rc.Authorizer.IAM.CallerID == "" {
			return core.Errorf(core.EUNAUTHORIZED, "this API takes IAM-authorized calls through API Gateway: sign the request with AWS Signature Version 4")
		}
		return nil
	}
}

// Caller names the IAM caller of a request that came through API Gateway, for logs.
func Caller(r *http.Request) string {
	rc, ok := proxycore.GetAPIGatewayV2ContextFromContext(r.Context())
	if !ok || rc.Authorizer == nil || rc.Authorizer.IAM == nil {
		return ""
	}
	return rc.Authorizer.IAM.UserARN
}

// Lambda adapts h to API Gateway HTTP API events (payload format 2.0).
func Lambda(h http.Handler) func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	return httpadapter.NewV2(h).ProxyWithContext
}
