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
	"sync"
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

// FromEnv builds a function's Engine from its environment, once per cold start, with the AWS
// config of the function's role (see FromConfig); opts add to it. The functions that evaluate the
// Correlation Query (alerts) pass workflow.WithAlertCompiler(alerts.Compiler()); the others leave
// cel-go out of their binaries, which would double their size and cold start.
func FromEnv(ctx context.Context, log *slog.Logger, opts ...workflow.Option) (*workflow.Engine, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("load AWS config: %w", err)
	}
	return FromConfig(ctx, cfg, log, nil, opts...)
}

// FromConfig builds a function's Engine over cfg: the DynamoDB store of TABLE_NAME with secrets
// sealed under the deployment's key (read from Secrets Manager the first time a secret is
// opened or sealed, so a function that never reads an integration never asks for it), and the
// CloudTrail source factory whose rate limiter every invocation of the warm process shares;
// sources add to the factory's options and opts to the engine's. Every AWS call the engine makes
// goes through cfg, so a caller's middleware in cfg.APIOptions sees each one (the IAM test).
func FromConfig(ctx context.Context, cfg aws.Config, log *slog.Logger, sources []cloudtrail.Option, opts ...workflow.Option) (*workflow.Engine, error) {
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
	// Concurrent invocations share one LookupEvents budget per account and region through the
	// table, and share what they read (the workflow's stream ledger) instead of each re-reading it.
	budget, err := ratelimit.NewDynamo(client, table, cloudtrail.DefaultCallsPerSecond, cloudtrail.DefaultBurst)
	if err != nil {
		return nil, err
	}
	policy, err := netguard.FromEnv(os.Getenv, nil, nil)
	if err != nil {
		return nil, err
	}
	factoryOpts := append([]cloudtrail.Option{cloudtrail.WithBaseConfig(cfg), cloudtrail.WithLogger(log),
		cloudtrail.WithSharedLimiter(budget), cloudtrail.WithPolicy(policy)}, sources...)
	base := []workflow.Option{workflow.WithLogger(log)}
	return workflow.New(store, cloudtrail.NewFactory(ctx, factoryOpts...), append(base, opts...)...), nil
}

// sealerFromEnv returns the AES-GCM sealer of the deployment. Its key is derived (HKDF-SHA256)
// from a Secrets Manager secret that CloudFormation generated, since CloudFormation cannot
// generate 32 random bytes in a form the key would take directly. The secret is read when the
// sealer is first used: only the functions that open integration secrets need
// secretsmanager:GetSecretValue.
func sealerFromEnv(cfg aws.Config) (seal.Sealer, error) {
	switch arn, file := os.Getenv(EnvSealKeySecretARN), os.Getenv(EnvSealKeyFile); {
	case arn != "":
		sm := secretsmanager.NewFromConfig(cfg)
		return &lazySealer{load: func(ctx context.Context) (seal.Sealer, error) {
			out, err := sm.GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(arn)})
			if err != nil {
				return nil, fmt.Errorf("read the seal key secret %s: %w", arn, err)
			}
			if out.SecretString == nil || len(*out.SecretString) < 32 {
				return nil, fmt.Errorf("the seal key secret %s must hold at least 32 characters", arn)
			}
			key, err := DeriveSealKey(*out.SecretString)
			if err != nil {
				return nil, err
			}
			return seal.NewAESGCM(key)
		}}, nil
	case file != "":
		k, err := seal.LoadKey(file)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", EnvSealKeyFile, err)
		}
		return seal.NewAESGCM(k)
	default:
		return nil, errors.New("no seal key: set " + EnvSealKeySecretARN + " (deployed) or " + EnvSealKeyFile + " (local)")
	}
}

// lazySealer builds its sealer on first use and keeps it; a failed load is tried again on the
// next use (a Secrets Manager hiccup must not poison a warm process).
type lazySealer struct {
	load func(ctx context.Context) (seal.Sealer, error)
	mu   sync.Mutex
	s    seal.Sealer
}

func (l *lazySealer) get(ctx context.Context) (seal.Sealer, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.s == nil {
		s, err := l.load(ctx)
		if err != nil {
			return nil, err
		}
		l.s = s
	}
	return l.s, nil
}

// Seal seals with the deployment's key.
func (l *lazySealer) Seal(ctx context.Context, plaintext []byte, where seal.Binding) ([]byte, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Seal(ctx, plaintext, where)
}

// Open opens with the deployment's key.
func (l *lazySealer) Open(ctx context.Context, ciphertext []byte, where seal.Binding) ([]byte, error) {
	s, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return s.Open(ctx, ciphertext, where)
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
