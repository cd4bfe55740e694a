#!/usr/bin/env bash
# test.sh — start the local test stack, run every test and the static checks, stop the stack.
# In CI (CI=true) a test that needs a missing server fails instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/../.."
export DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
export DYNAMODB_ENDPOINT="http://127.0.0.1:${DYNAMODB_PORT}"
export PATH="$(go env GOPATH)/bin:$PATH"
if [[ "${CI:-}" == "true" ]]; then export TRAILPROOF_REQUIRE_STACK=1; fi

started=""
if ! bash infra/scripts/dynamodb-local.sh status >/dev/null 2>&1; then
	bash infra/scripts/dynamodb-local.sh start
	started=1
fi
cleanup() { if [[ -n "$started" ]]; then bash infra/scripts/dynamodb-local.sh stop || true; fi; }
trap cleanup EXIT

status=0
echo "== static checks"
go vet ./... || status=1
go run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./... || status=1
unformatted="$(gofmt -l cmd internal functions 2>/dev/null || true)"
if [[ -n "$unformatted" ]]; then echo "gofmt would change: $unformatted"; status=1; fi
if [[ -f template.yaml ]] && command -v cfn-lint >/dev/null; then cfn-lint template.yaml || status=1; fi
if [[ -f statemachine/correlation.asl.json && -x node_modules/.bin/asl-validator ]]; then
	node_modules/.bin/asl-validator --json-path statemachine/correlation.asl.json || status=1
fi

echo "== go test"
# The summariser keeps go test's closing lines and failures, then lists every skipped test with
# its reason and ends with the count of passed, failed and skipped tests.
go test -count=1 -json ./... 2>&1 | go run ./cmd/testsummary || status=1
exit $status
