// Package lambdafn holds the Lambda handlers of the serverless path: thin adapters between the
// Step Functions payload and the workflow steps, which they call unchanged. The functions/ mains
// only wire an Engine (FromEnv) and start one of these handlers, so the handlers are tested here,
// in-process, both directly and through the real state machine definition (internal/sfntest).
package lambdafn
