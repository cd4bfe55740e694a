package awsapi

import (
	// The Correlation Query is validated when settings are saved: internal/alerts installs the check.
	_ "github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/awsenv"

	"context"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Environment of the api function, beside awsenv's (TABLE_NAME, LOG_LEVEL, RUN_RETENTION_DAYS,
// the sealer's, DYNAMODB_ENDPOINT).
const (
	// EnvStateMachineARN is the correlation state machine runs start on.
	EnvStateMachineARN = "STATE_MACHINE_ARN"
	// EnvStepFunctionsEndpoint points the starter at a local Step Functions (tests).
	EnvStepFunctionsEndpoint = "STEPFUNCTIONS_ENDPOINT"
)

// TestStepTimeout bounds each network step of a connectivity test in AWS, so that the whole test
// (the endpoint check, then one LookupEvents call allowed four times this) answers within API
// Gateway's 30-second integration timeout.
const TestStepTimeout = 5 * time.Second

// FromEnv builds the api function's handler, once per cold start: the AWS environment every
// function shares (awsenv: the store, the sealer, the CloudTrail factory with its shared rate
// budget), the Step Functions starter of STATE_MACHINE_ARN, the connectivity test, and IAM
// authentication through API Gateway.
func FromEnv(ctx context.Context, log *slog.Logger) (*api.Handler, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return FromConfig(ctx, cfg, log, nil)
}

// FromConfig builds the api function's handler over cfg, as FromEnv describes; sources add to
// the CloudTrail factory's options. Every AWS call the handler makes goes through cfg, so a
// caller's middleware in cfg.APIOptions sees each one (the IAM test).
func FromConfig(ctx context.Context, cfg aws.Config, log *slog.Logger, sources []cloudtrail.Option) (*api.Handler, error) {
	smARN := os.Getenv(EnvStateMachineARN)
	if smARN == "" {
		return nil, fmt.Errorf("%s is not set", EnvStateMachineARN)
	}
	env, err := awsenv.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	var store core.Store = env.Store
	sfnClient := sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		if ep := os.Getenv(EnvStepFunctionsEndpoint); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	starter, err := NewStepFunctions(sfnClient, smARN, store)
	if err != nil {
		return nil, err
	}
	factory := env.Sources(ctx, append([]cloudtrail.Option{cloudtrail.WithUserAgent("trailproof-api")}, sources...)...)
	eng := workflow.New(store, factory, workflow.WithLogger(log))
	return api.New(api.Config{
		Store: store, Engine: eng, Runs: starter, Logger: log, Auth: GatewayIAM(), Challenge: Challenge, Policy: env.Policy,
		Tester: connectivity.New(connectivity.WithSources(factory), connectivity.WithLogger(log), connectivity.WithPolicy(env.Policy),
			connectivity.WithMaxTimeout(TestStepTimeout)),
	})
}
