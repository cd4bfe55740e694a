#!/usr/bin/env bash
# rie.sh install | invoke BOOTSTRAP EVENT [PORT]
#
# AWS's Lambda Runtime Interface Emulator (the piece `sam local invoke` runs inside its
# container), installed as a Go module.
#   install   go install aws-lambda-rie when it is not on the PATH (nor in $(go env GOPATH)/bin)
#   invoke    runs BOOTSTRAP under the emulator on 127.0.0.1:PORT (default 8080), POSTs EVENT to
#             /2015-03-31/functions/function/invocations, prints the answer and stops the emulator.
# The function's own settings (TABLE_NAME, DYNAMODB_ENDPOINT, SEAL_KEY_FILE, ...) come from the
# environment this script runs in.
set -euo pipefail

RIE_MODULE=github.com/aws/aws-lambda-runtime-interface-emulator/cmd/aws-lambda-rie
RIE_VERSION=v0.0.0-20261030222936-bef5c4ba774d

log() { echo "rie: $*" >&2; }

rie_path() {
	if command -v aws-lambda-rie >/dev/null 2>&1; then
		command -v aws-lambda-rie
		return 0
	fi
	local gobin
	gobin="$(go env GOBIN)"
	[[ -n "$gobin" ]] || gobin="$(go env GOPATH)/bin"
	if [[ -x "$gobin/aws-lambda-rie" ]]; then
		echo "$gobin/aws-lambda-rie"
		return 0
	fi
	return 1
}

install() {
	if path="$(rie_path)"; then
		log "already installed: $path"
		return 0
	fi
	log "installing $RIE_MODULE@$RIE_VERSION"
	go install "$RIE_MODULE@$RIE_VERSION"
	rie_path >/dev/null || { log "go install succeeded but aws-lambda-rie is not in GOBIN"; exit 1; }
}

invoke() {
	local bootstrap="$1" event="$2" port="${3:-8080}"
	[[ -x "$bootstrap" ]] || { log "no executable bootstrap at $bootstrap"; exit 2; }
	[[ -f "$event" ]] || { log "no event file $event"; exit 2; }
	install
	local rie api_port=$((port + 1000))
	rie="$(rie_path)"
	"$rie" --runtime-interface-emulator-address "127.0.0.1:$port" \
		--runtime-api-address "127.0.0.1:$api_port" "$bootstrap" >&2 &
	# A global, not a local: the EXIT trap runs after invoke has returned.
	RIE_PID=$!
	trap 'kill "$RIE_PID" 2>/dev/null || true; wait "$RIE_PID" 2>/dev/null || true' EXIT
	for _ in $(seq 1 100); do
		(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
		sleep 0.05
	done
	curl -sS --fail-with-body -X POST "http://127.0.0.1:$port/2015-03-31/functions/function/invocations" \
		-H 'Content-Type: application/json' --data-binary "@$event"
	echo
}

case "${1:-}" in
install) install ;;
invoke)
	shift
	[[ $# -ge 2 ]] || { echo "usage: $0 invoke BOOTSTRAP EVENT [PORT]" >&2; exit 2; }
	invoke "$@"
	;;
*)
	echo "usage: $0 install | invoke BOOTSTRAP EVENT [PORT]" >&2
	exit 2
	;;
esac
