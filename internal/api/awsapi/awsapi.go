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
	"errors"
	"fmt"
	"net/http"
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

// StepFunctions starts each run as an execution of the correlation state machine named after
// the run ID, so a repeated start cannot make a second execution: Step Functions keeps execution
// names unique per state machine (for 90 days after an execution ends).
type StepFunctions struct {
	client       SFNAPI
	stateMachine string
}

var _ api.RunStarter = (*StepFunctions)(nil)

// NewStepFunctions returns the starter of the state machine stateMachineARN.
func NewStepFunctions(client SFNAPI, stateMachineARN string) (*StepFunctions, error) {
	a, err := arn.Parse(stateMachineARN)
	if err != nil || a.Service != "states" || !strings.HasPrefix(a.Resource, "stateMachine:") {
		return nil, fmt.Errorf("state machine ARN %q: want arn:aws:states:<region>:<account>:stateMachine:<name>", stateMachineARN)
	}
	return &StepFunctions{client: client, stateMachine: stateMachineARN}, nil
}

// Start starts the execution {"runId": runID} named runID. An execution of that name that
// already exists, running or ended, is the run's own: not an error.
func (s *StepFunctions) Start(ctx context.Context, runID string) error {
	input := fmt.Sprintf(`{"runId":%q}`, runID)
	_, err := s.client.StartExecution(ctx, &sfn.StartExecutionInput{
		StateMachineArn: aws.String(s.stateMachine), Name: aws.String(runID), Input: aws.String(input),
	})
	var exists *sfntypes.ExecutionAlreadyExists
	if err != nil && !errors.As(err, &exists) {
		return fmt.Errorf("start execution %s: %w", runID, err)
	}
	return nil
}

// Cancel stops the run's execution. The store already says cancelled, which the next step
// reads anyway; stopping spares the execution's remaining waits. An execution that does not
// exist or has ended is not an error.
func (s *StepFunctions) Cancel(ctx context.Context, runID string) error {
	_, err := s.client.StopExecution(ctx, &sfn.StopExecutionInput{
		ExecutionArn: aws.String(s.ExecutionARN(runID)), Cause: aws.String("cancelled through the API"),
	})
	var missing *sfntypes.ExecutionDoesNotExist
	if err != nil && !errors.As(err, &missing) {
		return fmt.Errorf("stop execution %s: %w", runID, err)
	}
	return nil
}

// ExecutionARN is the ARN of the execution named runID:
// arn:aws:states:<region>:<account>:execution:<state machine name>:<runID>.
func (s *StepFunctions) ExecutionARN(runID string) string {
	return strings.Replace(s.stateMachine, ":stateMachine:", ":execution:", 1) + ":" + runID
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
