// Command ingest is the push queue's Lambda function: it stores the CloudTrail events EventBridge
// pushes (through SQS) where runs' correlate steps read them. It only wires; the logic is
// internal/lambdafn's and internal/push's.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/lambdafn"
)

func main() {
	log := awsenv.NewLogger()
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Error("cannot start the ingest function: load AWS config", "error", err.Error())
		os.Exit(1)
	}
	env, err := awsenv.New(ctx, cfg, log)
	if err != nil {
		log.Error("cannot start the ingest function", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(lambdafn.Ingest(env.Store, log))
}
