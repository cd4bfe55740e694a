#!/usr/bin/env bash
# bench-scale.sh — many concurrent runs of one integration against the CloudTrail emulator on a
# virtual clock: LookupEvents calls with shared reads next to the
# integration guide's sliding window (one per integration, delayTime 0, 5 and 15) and the one-read
# lower bound; then the same with push on (30 s, 5% lost). One JSON line per number of runs (see
# cmd/benchscale).
# Extra arguments go to the command, e.g. `bash infra/scripts/bench-scale.sh -n 50 -delivery-delay 5m`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
go run ./cmd/benchscale "$@"
exec go run ./cmd/benchscale -push-delay 30s -push-loss 0.05 "$@"
