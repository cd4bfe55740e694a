// Command api is the API function of the serverless deployment: API Gateway's HTTP API (payload
// format 2.0, AWS_IAM authorization) invokes it for every /v1 request. It only wires the handler;
// the API is internal/api's, its AWS pieces (Step Functions starter, IAM trust, the Lambda
// adapter) internal/api/awsapi's.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/trailproof/trailproof/internal/api/awsapi"
	"github.com/trailproof/trailproof/internal/awsenv"
)

func main() {
	log := awsenv.NewLogger()
	h, err := awsapi.FromEnv(context.Background(), log)
	if err != nil {
		log.Error("cannot start the api function", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(awsapi.Lambda(h))
}
