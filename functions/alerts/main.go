// Command alerts is the alerts Lambda function of the correlation state machine: it reads the Insights events of the window and evaluates the Correlation Query over the matched events, every correlationQueryInterval.
// It only wires the engine; the step logic is internal/workflow's, adapted by internal/lambdafn.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/trailproof/trailproof/internal/alerts"
	"github.com/trailproof/trailproof/internal/awsenv"
	"github.com/trailproof/trailproof/internal/lambdafn"
	"github.com/trailproof/trailproof/internal/workflow"
)

func main() {
	log := awsenv.NewLogger()
	engine, err := lambdafn.FromEnv(context.Background(), log, workflow.WithAlertCompiler(alerts.Compiler()))
	if err != nil {
		log.Error("cannot start the alerts function", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(lambdafn.Alerts(engine))
}
