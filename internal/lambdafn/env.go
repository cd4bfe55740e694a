package lambdafn

import (
	"context"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"fmt"
	"github.com/trailproof/trailproof/internal/ratelimit"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambdacontext"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/netguard"
	"github.com/trailproof/trailproof/internal/store/dynamo"
	"github.com/trailproof/trailproof/internal/store/seal"
	"github.com/trailproof/trailproof/internal/workflow"
)

// Environment variables a function reads (template.yaml sets them).
const (
	EnvTableName        = "TABLE_NAME"          // the DynamoDB table
	EnvLogLevel         = "LOG_LEVEL"           // DEBUG, INFO, WARN or ERROR
	EnvRunRetentionDays = "RUN_RETENTION_DAYS"  // how long runs and raw events are kept
	EnvSealKeySecretARN = "SEAL_KEY_SECRET_ARN" // Secrets Manager secret the seal key derives from
	// EnvSealKeyFile names a seal key file (seal.LoadKey) instead: for local runs under the
	// Runtime Interface Emulator, where there is no Secrets Manager.
	EnvSealKeyFile = "SEAL_KEY_FILE"
	// EnvDynamoDBEndpoint points the store at DynamoDB Local (tests, the emulator).
	EnvDynamoDBEndpoint = "DYNAMODB_ENDPOINT"
)

// sealKeyInfo separates the seal key from any other key derived from the same secret.
const sealKeyInfo = "trailproof seal key v1"

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

// FromEnv builds a function's Engine from its environment, once per cold start: the AWS config
// (the function's role), the DynamoDB store of TABLE_NAME with secrets sealed under the
// deployment's key, the CloudTrail source factory whose rate limiter every invocation of the
// warm process shares; opts add to it. The functions that evaluate the Correlation Query
// (correlate, alerts) pass workflow.WithAlertCompiler(alerts.Compiler()); the others leave cel-go
// out of their binaries, which would double their size and cold start.
func FromEnv(ctx context.Context, log *slog.Logger, opts ...workflow.Option) (*workflow.Engine, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	table := os.Getenv(EnvTableName)
	if table == "" {
		return nil, fmt.Errorf("%s is not set", EnvTableName)
	}
	sealer, err := sealerFromEnv(ctx, cfg)
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
		client = dynamo.LocalClient(ep)
	} else {
		client = dynamodb.NewFromConfig(cfg)
	}
	store, err := dynamo.New(client, table, storeOpts...)
	if err != nil {
		return nil, err
	}
	// Concurrent invocations share one LookupEvents budget per account and region through the
	// table, and share what they read (workflow.WithSharedReads) instead of each re-reading it.
	budget, err := ratelimit.NewDynamo(client, table, cloudtrail.DefaultCallsPerSecond, cloudtrail.DefaultBurst)
	if err != nil {
		return nil, err
	}
	policy, err := netguard.FromEnv(os.Getenv, nil, nil)
	if err != nil {
		return nil, err
	}
	sources := cloudtrail.NewFactory(ctx, cloudtrail.WithBaseConfig(cfg), cloudtrail.WithLogger(log),
		cloudtrail.WithSharedLimiter(budget), cloudtrail.WithPolicy(policy))
	base := []workflow.Option{workflow.WithLogger(log), workflow.WithSharedReads()}
	return workflow.New(store, sources, append(base, opts...)...), nil
}

// sealerFromEnv returns the AES-GCM sealer of the deployment. Its key is derived (HKDF-SHA256)
// from a Secrets Manager secret that CloudFormation generated, since CloudFormation cannot
// generate 32 random bytes in a form the key would take directly.
func sealerFromEnv(ctx context.Context, cfg aws.Config) (seal.Sealer, error) {
	var key []byte
	switch arn, file := os.Getenv(EnvSealKeySecretARN), os.Getenv(EnvSealKeyFile); {
	case arn != "":
		out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
		if err != nil {
			return nil, fmt.Errorf("read the seal key secret %s: %w", arn, err)
		}
		if out.SecretString == nil || len(*out.SecretString) < 32 {
			return nil, fmt.Errorf("the seal key secret %s must hold at least 32 characters", arn)
		}
		if key, err = DeriveSealKey(*out.SecretString); err != nil {
			return nil, err
		}
	case file != "":
		k, err := seal.LoadKey(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSealKeyFile, err)
		}
		key = k
	default:
		return nil, errors.New("no seal key: set " + EnvSealKeySecretARN + " (deployed) or " + EnvSealKeyFile + " (local)")
	}
	return seal.NewAESGCM(key)
}

// DeriveSealKey derives the 32-byte seal key from the deployment's secret string. Anything
// that writes integrations into the deployed table (the API) must derive it the same way.
func DeriveSealKey(secret string) ([]byte, error) {
	key, err := hkdf.Key(sha256.New, []byte(secret), nil, sealKeyInfo, seal.KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive the seal key: %w", err)
	}
	return key, nil
}
