// Package sfntest executes the real state machine definition (statemachine/correlation.asl.json)
// with the npm package aws-local-stepfunctions, and serves its Lambda calls from Go handlers
// running in the test process, so a Go test can drive the serverless path end to end without AWS.
//
// The pieces: LambdaServer implements Lambda's Invoke API (POST
// /2015-03-31/functions/{name}/invocations) on an httptest server; aws-local-stepfunctions is
// pointed at it with AWS_ENDPOINT_URL_LAMBDA. That tool sends every Task to Lambda's Invoke API
// with the Task's Resource as the function name, so the server also unwraps the optimized
// integrations the definition uses: arn:aws:states:::lambda:invoke (the real function name and
// payload are in the request body, and the answer is wrapped in {"Payload": ...}) and
// arn:aws:states:::states:startExecution (recorded, so the test can run the next part).
// Runner runs one execution through infra/scripts/sfn-run.mjs with Wait and Retry pauses set to 0;
// time passes instead on a shared clock.Virtual that the server advances when an invocation
// arrives, by the wait the definition would have made before it (see VirtualTime).
package sfntest
