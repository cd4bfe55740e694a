// Command minimal is the smallest useful aws-lambda-go function: it answers its event back. The
// bootstrap tests build it exactly as the real functions are built, as the yardstick for their
// binary size and cold start.
package main

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(_ context.Context, event json.RawMessage) (json.RawMessage, error) { return event, nil })
}
