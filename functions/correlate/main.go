// Command correlate is the correlate Lambda function of the correlation state machine: it computes the verdict over what the run has read and decides whether the loop goes on.
// It only wires the engine; the step logic is internal/workflow's, adapted by internal/lambdafn.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/lambdafn"
)

func main() {
	log := awsenv.NewLogger()
	engine, err := lambdafn.FromEnv(context.Background(), log)
	if err != nil {
		log.Error("cannot start the correlate function", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(lambdafn.Correlate(engine))
}
