#!/usr/bin/env bash
# bench-grid.sh — one trailproof run's cost as the window and the account's noise grow: queryTime
# 5, 30 and 120 minutes x 10, 100 and 1,000 background events a minute, with and without expected
# events, each cell in a child process of its own (see cmd/benchgrid): LookupEvents calls per run
# next to the one-read lower bound, recall, verdict latency, CPU per run, the engine's peak live
# heap above the loaded corpus and the process's peak RSS. One JSON line per cell, then a Markdown
# table. It stops with a message when ../shared/data/cloudtrail is absent.
# Extra arguments go to the command, e.g. `bash infra/scripts/bench-grid.sh -cells 5x10,30x100
# -expected true -timeout 5m -delivery-delay 5m,12m@0.1`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
exec go run ./cmd/benchgrid "$@"
