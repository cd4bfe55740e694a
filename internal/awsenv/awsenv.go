// Package awsenv builds the AWS environment every function of the deployment runs in (the step
// functions through lambdafn, the api function through awsapi), once per cold start, from the
// environment variables template.yaml sets: the DynamoDB store with its retention and the
// deployment's sealer, the CloudTrail source factory with the operator's network policy and the
// LookupEvents budget every invocation shares, and the logger. One builder, so that no function
// can seal or read differently from another.
package awsenv

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/ratelimit"
	"github.com/trailproof/trailproof/internal/store/dynamo"
)

// Environment variables every function reads (template.yaml's Globals set them).
const (
	EnvTableName        = "TABLE_NAME"          // the DynamoDB table
	EnvLogLevel         = "LOG_LEVEL"           // DEBUG, INFO, WARN or ERROR
	EnvRunRetentionDays = "RUN_RETENTION_DAYS"  // how long runs and raw events are kept
	EnvSealKeySecretARN = "SEAL_KEY_SECRET_ARN" // Secrets Manager secret the AES seal key derives from
	// EnvSealKMSKeyARN seals integration secrets with this KMS key (the SealKmsKeyArn parameter)
	// instead of the AES key: set for every function of a deployment or for none.
	EnvSealKMSKeyARN = "SEAL_KMS_KEY_ARN"
	// EnvSealKeyFile names a seal key file (seal.LoadKey) instead: for local runs under the
	// Runtime Interface Emulator, where there is no Secrets Manager.
	EnvSealKeyFile = "SEAL_KEY_FILE"
	// EnvDynamoDBEndpoint points the store at DynamoDB Local (tests, the emulator).
	EnvDynamoDBEndpoint = "DYNAMODB_ENDPOINT"
	// EnvPush is "true" when the deployment pushes CloudTrail's events through EventBridge
	// (template parameter EnablePush): runs then read their pushed events (workflow.WithPush).
	EnvPush = "TRAILPROOF_PUSH"
)

// Env is what a function needs of AWS, built once per cold start.
type Env struct {
	Config aws.Config
	Log    *slog.Logger
	Store  *dynamo.Store
	// Policy is the operator's allow-list of endpoints and proxies (netguard.FromEnv).
	Policy *netguard.Policy
	// budget is the LookupEvents rate budget per account and region that every invocation of
	// every function shares through the table.
	budget ratelimit.Limiter
}

// Load builds the environment with the AWS config of the function's role.
func Load(ctx context.Context, log *slog.Logger) (*Env, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return New(ctx, cfg, log)
}

// New builds the environment over cfg. Every AWS call made through it goes through cfg, so a
// caller's middleware in cfg.APIOptions sees each one (the IAM test).
func New(ctx context.Context, cfg aws.Config, log *slog.Logger) (*Env, error) {
	table := os.Getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is not set", EnvTableName)
	}
	sealer, err := sealerFromEnv(cfg)
	if err != nil {
		return nil, err
	}
	storeOpts := []dynamo.Option{dynamo.WithSealer(sealer), dynamo.WithLogger(log)}
	if s := os.Getenv(EnvRunRetentionDays); s != "" {
		days, err := strconv.Atoi(s)
		if err != nil || days <= 0 {
			return nil, fmt.Errorf("%s=%q: want a positive number of days", EnvRunRetentionDays, s)
		}
		storeOpts = append(storeOpts, dynamo.WithRetention(time.Duration(days)*24*time.Hour))
	}
	var client *dynamodb.Client
	if ep := os.Getenv(EnvDynamoDBEndpoint); ep != "" {
		client = dynamo.LocalClient(ep, func(o *dynamodb.Options) { o.APIOptions = append(o.APIOptions, cfg.APIOptions...) })
	} else {
		client = dynamodb.NewFromConfig(cfg)
	}
	store, err := dynamo.New(client, table, storeOpts...)
	if err != nil {
		return nil, err
	}
	budget, err := ratelimit.NewDynamo(client, table, cloudtrail.DefaultCallsPerSecond, cloudtrail.DefaultBurst)
	if err != nil {
		return nil, err
	}
	policy, err := netguard.FromEnv(os.Getenv, nil, nil)
	if err != nil {
		return nil, err
	}
	return &Env{Config: cfg, Log: log, Store: store, Policy: policy, budget: budget}, nil
}

// Sources returns the CloudTrail source factory: the function's AWS config as the base, the
// operator's policy where connections are made, and the shared LookupEvents budget; opts add
// to these (a user agent, a test's options).
func (e *Env) Sources(ctx context.Context, opts ...cloudtrail.Option) *cloudtrail.Factory {
	base := []cloudtrail.Option{cloudtrail.WithBaseConfig(e.Config), cloudtrail.WithLogger(e.Log),
		cloudtrail.WithSharedLimiter(e.budget), cloudtrail.WithPolicy(e.Policy)}
	return cloudtrail.NewFactory(ctx, append(base, opts...)...)
}

// NewLogger returns the functions' logger: JSON on stdout at LOG_LEVEL. When Lambda's JSON log
// format is on (the template's LoggingConfig), lambdacontext's handler adds the request ID to
// every record; elsewhere (the Runtime Interface Emulator) a plain JSON handler with the same
// keys is used, since lambdacontext would fall back to text.
func NewLogger() *slog.Logger {
	level := parseLevel(os.Getenv(EnvLogLevel))
	if os.Getenv("AWS_LAMBDA_LOG_FORMAT") == "JSON" {
		return lambdacontext.NewLogger(lambdacontext.WithFunctionARN())
	}
	return slog.New(slog.NewJSONHandler(os.Stdout, &slog.HandlerOptions{Level: level, ReplaceAttr: lambdacontext.ReplaceAttr}))
}

func parseLevel(s string) slog.Level {
	var l slog.Level
	switch strings.ToUpper(s) {
	case "TRACE":
		return slog.LevelDebug
	case "FATAL":
		return slog.LevelError
	}
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}
