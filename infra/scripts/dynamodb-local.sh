#!/usr/bin/env bash
# dynamodb-local.sh install|start|stop|status — AWS's DynamoDB Local for the store's tests.
#
# DynamoDB Local ships inside the npm package amplify-dynamodb-simulator; on a fresh machine this
# script fetches that package with `npm pack` into .stack/ (gitignored) at the repository root and
# runs the jar from it in memory. Java 17 must be on the PATH.
#
# Environment:
#   DYNAMODB_PORT   port to listen on (default 8000)
#   STACK_DIR       where the package, the pid file and the log live (default <repo>/.stack)
#
# Tests then use DYNAMODB_ENDPOINT=http://127.0.0.1:${DYNAMODB_PORT}.
set -euo pipefail

VERSION=2.9.30
PORT="${DYNAMODB_PORT:-8000}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
STACK="${STACK_DIR:-$ROOT/.stack}"
HOME_DIR="$STACK/dynamodb-local"
EMU="$HOME_DIR/package/emulator"
PIDFILE="$STACK/dynamodb-local-$PORT.pid"
LOG="$STACK/dynamodb-local-$PORT.log"

log() { echo "dynamodb-local: $*" >&2; }

# answers reports whether something accepts TCP connections on the port.
answers() { (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; }

running_pid() {
	[[ -f "$PIDFILE" ]] || return 1
	local pid
	pid="$(cat "$PIDFILE")"
	[[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

install() {
	[[ -f "$EMU/DynamoDBLocal.jar" ]] && return 0
	command -v npm >/dev/null || { log "npm is required to fetch amplify-dynamodb-simulator"; exit 1; }
	log "installing amplify-dynamodb-simulator@$VERSION into $HOME_DIR"
	mkdir -p "$HOME_DIR"
	local tgz
	tgz="$(cd "$HOME_DIR" && npm pack --silent "amplify-dynamodb-simulator@$VERSION" | tail -n1)"
	tar xzf "$HOME_DIR/$tgz" -C "$HOME_DIR"
	rm -f "$HOME_DIR/$tgz"
	[[ -f "$EMU/DynamoDBLocal.jar" ]] || { log "DynamoDBLocal.jar not found in the package"; exit 1; }
}

start() {
	if pid="$(running_pid)"; then
		log "already running (pid $pid) on port $PORT"
		return 0
	fi
	if answers; then
		log "port $PORT is already in use by another process; set DYNAMODB_PORT"
		exit 1
	fi
	command -v java >/dev/null || { log "java (17+) is required to run DynamoDB Local"; exit 1; }
	install
	mkdir -p "$STACK"
	(cd "$EMU" && exec nohup java -Djava.library.path=./DynamoDBLocal_lib -jar DynamoDBLocal.jar \
		-inMemory -port "$PORT" >"$LOG" 2>&1) &
	echo $! >"$PIDFILE"
	for _ in $(seq 1 60); do
		if answers; then
			log "listening on http://127.0.0.1:$PORT (pid $(cat "$PIDFILE"), log $LOG)"
			return 0
		fi
		if ! kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
			log "exited while starting; last lines of $LOG:"
			tail -n 20 "$LOG" >&2 || true
			rm -f "$PIDFILE"
			exit 1
		fi
		sleep 0.5
	done
	log "did not answer on port $PORT within 30 s; see $LOG"
	exit 1
}

stop() {
	if pid="$(running_pid)"; then
		kill "$pid"
		for _ in $(seq 1 20); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
		kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
		log "stopped (pid $pid)"
	else
		log "not running"
	fi
	rm -f "$PIDFILE"
}

status() {
	if pid="$(running_pid)"; then
		log "running (pid $pid) on http://127.0.0.1:$PORT"
	else
		log "not running"
		return 3
	fi
}

case "${1:-}" in
install) install ;;
start) start ;;
stop) stop ;;
status) status ;;
*)
	echo "usage: $0 install|start|stop|status" >&2
	exit 2
	;;
esac
