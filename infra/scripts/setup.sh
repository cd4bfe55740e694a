#!/usr/bin/env bash
# setup.sh — install everything the tests need on a fresh machine; idempotent and quiet when done.
#   Go modules; the npm tools (aws-local-stepfunctions, asl-validator) from package-lock.json;
#   DynamoDB Local (inside the npm package amplify-dynamodb-simulator); the Lambda Runtime
#   Interface Emulator (a Go module). cfn-lint comes with the machine's Python.
set -euo pipefail
cd "$(dirname "$0")/../.."
log() { echo "setup: $*" >&2; }

log "go modules"
go mod download

if [[ -f package-lock.json ]]; then
	if [[ ! -d node_modules ]] || [[ package-lock.json -nt node_modules/.package-lock.json ]]; then
		log "npm tools"
		npm ci --no-audit --no-fund --loglevel=error
	fi
fi

log "DynamoDB Local"
bash infra/scripts/dynamodb-local.sh install

if [[ -f infra/scripts/rie.sh ]]; then
	log "Lambda Runtime Interface Emulator"
	bash infra/scripts/rie.sh install
fi

command -v cfn-lint >/dev/null || log "cfn-lint not found: template lint is skipped (pip install cfn-lint)"
log "done"
