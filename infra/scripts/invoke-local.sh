#!/usr/bin/env bash
# invoke-local.sh FN [EVENT] — what `make invoke-<fn>` runs: the function's bootstrap under the
# Lambda Runtime Interface Emulator with events/<fn>/<EVENT>.json, against a local stack that this
# script prepares when it is not there yet: DynamoDB Local, a CloudTrail emulator serving the demo
# corpus, and the demo integration and run "run-example-1" seeded in a table. Set TABLE_NAME (and
# the rest of the functions' environment) yourself to invoke against your own table instead.
set -euo pipefail
cd "$(dirname "$0")/../.."
fn="$1" event="${2:-main}" port="${RIE_PORT:-8080}"
stack=.stack
mkdir -p "$stack/rie/$fn"
CGO_ENABLED=0 go build -tags lambda.norpc -trimpath -ldflags='-s -w' -o "$stack/rie/$fn/bootstrap" "./functions/$fn"
if [[ -z "${TABLE_NAME:-}" ]]; then
	export DYNAMODB_PORT="${DYNAMODB_PORT:-8000}"
	bash infra/scripts/dynamodb-local.sh start >&2
	emu_port="${EMULATOR_PORT:-8765}"
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$emu_port") 2>/dev/null; then
		go build -o "$stack/trailproof" ./cmd/trailproof
		# --history 0: on the real clock the recorded demo is older than the 90 days CloudTrail serves.
		nohup "$stack/trailproof" emulate --corpus examples/demo/cloudtrail.json --delivery-delay 0s --history 0 \
			--addr "127.0.0.1:$emu_port" >"$stack/emulator.log" 2>&1 &
		echo $! >"$stack/emulator.pid"
		for _ in $(seq 1 50); do (exec 3<>"/dev/tcp/127.0.0.1/$emu_port") 2>/dev/null && break; sleep 0.1; done
		echo "invoke-local: CloudTrail emulator on http://127.0.0.1:$emu_port (pid $(cat "$stack/emulator.pid"))" >&2
	fi
	while IFS= read -r line; do export "$line"; done < <(go run ./infra/localseed \
		--dynamodb "http://127.0.0.1:$DYNAMODB_PORT" --cloudtrail "http://127.0.0.1:$emu_port")
	export STATE_MACHINE_ARN="${STATE_MACHINE_ARN:-arn:aws:states:us-east-1:123456789012:stateMachine:trailproof-correlation}"
	# The local emulator is the operator's own endpoint: allow it, as the template's AllowEndpoints does.
	export TRAILPROOF_ALLOW_ENDPOINTS="127.0.0.1:$emu_port"
fi
exec bash infra/scripts/rie.sh invoke "$stack/rie/$fn/bootstrap" "events/$fn/$event.json" "$port"
