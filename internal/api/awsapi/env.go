package awsapi

import (
	// The Correlation Query is validated when settings are saved: internal/alerts installs the check.
	_ "github.com/trailproof/trailproof/internal/alerts"

	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/sfn"

	"github.com/trailproof/trailproof/internal/api"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/connectivity"
	"github.com/trailproof/trailproof/internal/core"
	"github.com/trailproof/trailproof/internal/kmsseal"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Environment of the api function, beside lambdafn's (TABLE_NAME, LOG_LEVEL, RUN_RETENTION_DAYS,
// SEAL_KEY_SECRET_ARN or SEAL_KEY_FILE, DYNAMODB_ENDPOINT).
const (
	// EnvStateMachineARN is the correlation state machine runs start on.
	EnvStateMachineARN = "STATE_MACHINE_ARN"
	// EnvSealKMSKeyID seals integration secrets with this KMS key (kmsseal) instead of the
	// AES key derived from SEAL_KEY_SECRET_ARN. Every function reading integrations must then use
	// the same sealer.
	EnvSealKMSKeyID = "SEAL_KMS_KEY_ID"
	// EnvStepFunctionsEndpoint points the starter at a local Step Functions (tests).
	EnvStepFunctionsEndpoint = "STEPFUNCTIONS_ENDPOINT"
)

// TestStepTimeout bounds each network step of a connectivity test in AWS, so that the whole test
// (the endpoint check, then one LookupEvents call allowed four times this) answers within API
// Gateway's 30-second integration timeout.
const TestStepTimeout = 5 * time.Second

// FromEnv builds the api function's handler, once per cold start: the DynamoDB store of
// TABLE_NAME with secrets sealed as the other functions seal them, the Step Functions starter of
// STATE_MACHINE_ARN, the connectivity test on a CloudTrail factory whose rate limiter every
// request of the warm process shares, and IAM authentication through API Gateway.
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
	table := os.Getenv(lambdafn.EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is not set", lambdafn.EnvTableName)
	}
	smARN := os.Getenv(EnvStateMachineARN)
	if smARN == "" {
		return nil, fmt.Errorf("%s is not set", EnvStateMachineARN)
	}
	sealer, err := sealerFromEnv(ctx, cfg)
	if err != nil {
		return nil, err
	}
	opts := []dynamo.Option{dynamo.WithSealer(sealer), dynamo.WithLogger(log)}
	if s := os.Getenv(lambdafn.EnvRunRetentionDays); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of days", lambdafn.EnvRunRetentionDays, s)
		}
		opts = append(opts, dynamo.WithRetention(time.Duration(days)*24*time.Hour))
	}
	var client *dynamodb.Client
	if ep := os.Getenv(lambdafn.EnvDynamoDBEndpoint); ep != "" {
		client = dynamo.LocalClient(ep, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, cfg.APIOptions...) })
	} else {
		client = dynamodb.NewFromConfig(cfg)
	}
	ds, err := dynamo.New(client, table, opts...)
	if err != nil {
		return nil, err
	}
	var store core.Store = ds
	sfnClient := sfn.NewFromConfig(cfg, func(o *sfn.Options) {
		if ep := os.Getenv(EnvStepFunctionsEndpoint); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
	})
	starter, err := NewStepFunctions(sfnClient, smARN, store)
	if err != nil {
		return nil, err
	}
	policy, err := netguard.FromEnv(os.Getenv, nil, nil)
	if err != nil {
		return nil, err
	}
	factory := cloudtrail.NewFactory(ctx, append([]cloudtrail.Option{cloudtrail.WithBaseConfig(cfg), cloudtrail.WithLogger(log),
		cloudtrail.WithUserAgent("trailproof-api"), cloudtrail.WithPolicy(policy)}, sources...)...)
	eng := workflow.New(store, factory, workflow.WithLogger(log))
	return api.New(api.Config{
		Store: store, Engine: eng, Runs: starter, Logger: log, Auth: GatewayIAM(), Challenge: Challenge, Policy: policy,
		Tester: connectivity.New(connectivity.WithSources(factory), connectivity.WithLogger(log), connectivity.WithPolicy(policy),
			connectivity.WithMaxTimeout(TestStepTimeout)),
	})
}

// sealerFromEnv returns the KMS sealer when SEAL_KMS_KEY_ID is set, else the AES-GCM sealer the
// other functions use (lambdafn): its key derived from the SEAL_KEY_SECRET_ARN secret, or read
// from SEAL_KEY_FILE locally.
func sealerFromEnv(ctx context.Context, cfg aws.Config) (seal.Sealer, error) {
	if id := os.Getenv(EnvSealKMSKeyID); id != "" {
		s, err := kmsseal.New(kms.NewFromConfig(cfg), id)
		return s, err
	}
	var key []byte
	switch arn, file := os.Getenv(lambdafn.EnvSealKeySecretARN), os.Getenv(lambdafn.EnvSealKeyFile); {
	case arn != "":
		out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("read the seal key secret %s: %w", arn, err)
		}
		if out.SecretString == nil || len(*out.SecretString) < 32 {
			return nil, fmt.Errorf("the seal key secret %s must hold at least 32 characters", arn)
		}
		if key, err = lambdafn.DeriveSealKey(*out.SecretString); err != nil {
			return nil, err
		}
	case file != "":
		k, err := seal.LoadKey(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", lambdafn.EnvSealKeyFile, err)
		}
		key = k
	default:
		return nil, errors.New("no seal key: set " + lambdafn.EnvSealKeySecretARN + " (deployed), " +
			lambdafn.EnvSealKeyFile + " (local) or " + EnvSealKMSKeyID)
	}
	return seal.NewAESGCM(key)
}
