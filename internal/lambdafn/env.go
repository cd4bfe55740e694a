package lambdafn

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/cloudtrail"
	"github.com/trailproof/trailproof/internal/workflow"
)

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

// FromConfig builds a function's Engine over the AWS environment awsenv builds from cfg and the
// environment variables: the DynamoDB store of TABLE_NAME with secrets sealed under the
// deployment's key, and the CloudTrail source factory whose rate budget every invocation shares;
// sources add to the factory's options and opts to the engine's. Every AWS call the engine makes
// goes through cfg, so a caller's middleware in cfg.APIOptions sees each one (the IAM test).
func FromConfig(ctx context.Context, cfg aws.Config, log *slog.Logger, sources []cloudtrail.Option, opts ...workflow.Option) (*workflow.Engine, error) {
	env, err := awsenv.New(ctx, cfg, log)
	if err != nil {
		return nil, err
	}
	// Concurrent invocations share one LookupEvents budget per account and region through the
	// table, and share what they read (the workflow's stream ledger) instead of each re-reading it.
	base := []workflow.Option{workflow.WithLogger(log)}
	if os.Getenv(awsenv.EnvPush) == "true" {
		base = append(base, workflow.WithPush())
	}
	return workflow.New(env.Store, env.Sources(ctx, sources...), append(base, opts...)...), nil
}
