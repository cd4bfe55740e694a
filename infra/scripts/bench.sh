#!/usr/bin/env bash
# make bench: every scheme side by side, in one run, on the real records of ../shared/data/cloudtrail
# (it stops with a message when they are absent).
#  1. normalize + correlate over 100,000 records: trailproof next to two honest baselines (the time
#     check first, then a map decoder / a typed-struct decoder), with trailproof's speed-up on each.
#  2. polling: trailproof's scheme, the guide's sliding window with delayTime 0, 5 and 15, and the
#     one-read lower bound, with and without expected events, under fixed 5-minute delays and under
#     5m,12m@0.1 (a tenth of the records 12 minutes late): one JSON line per scheme, then a table.
#  3. push on (30 s, 5% lost) vs off in a busy account: time to loggedAt and completion, recall, calls.
#  4. correlation work per run at two sizes next to a full correlation per step; peak heap of a run.
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ ! -d ../shared/data/cloudtrail ]; then
  echo "bench: the real CloudTrail records are not at ../shared/data/cloudtrail (beside the repository); nothing measured" >&2
  exit 1
fi
out=$(go test -run '^$' -bench 'BenchmarkCorrelate' -benchtime "${BENCHTIME:-5x}" -benchmem ./internal/core/ )
echo "$out" >&2
echo "$out" | awk '
  function rps(   i) { for (i=1;i<=NF;i++) if ($(i+1)=="records/s") return $i }
  /BenchmarkCorrelate\/trailproof/ { tp=rps() }
  /BenchmarkCorrelate\/naive/      { nv=rps() }
  /BenchmarkCorrelate\/typed/      { ty=rps() }
  END { if (tp && nv && ty) printf("{\"benchmark\":\"correlate\",\"records\":100000,\"trailproofRecordsPerSecond\":%d,\"naiveMapRecordsPerSecond\":%d,\"typedStructRecordsPerSecond\":%d,\"ratioVsNaiveMap\":%.2f,\"ratioVsTypedStruct\":%.2f}\n", tp, nv, ty, tp/nv, tp/ty);
        else { print "bench: no correlate result" > "/dev/stderr"; exit 1 } }'

# Polling: one JSON line per scheme and delivery model, then the same as a Markdown table.
out=$(go test -run '^$' -bench 'BenchmarkPollingSchemes' -benchtime 1x ./internal/workflow/ )
echo "$out" | grep -v '^{"benchmark"\|^|' >&2 || true
echo "$out" | grep '^{"benchmark"\|^|' || { echo "bench: no polling result" >&2; exit 1; }

# Push: every detonation in a busy account, push on (30 s, 5% lost) and off, LookupEvents 5 minutes
# late: time to loggedAt and to completion (P50, P95), recall and calls per run.
out=$(go test -run '^$' -bench 'BenchmarkPush$' -benchtime 1x ./internal/workflow/ )
echo "$out" | grep -v '^{"benchmark"\|^|' >&2 || true
echo "$out" | grep '^{"benchmark"\|^|' || { echo "bench: no push result" >&2; exit 1; }

# Correlation work: one run at 100 and 1,000 noise events a minute (queryTime 30), its correlate
# steps (each examines what is new) next to a full correlation after each step from the same run:
# CPU time and raw events read from the store; then the run's peak heap above the loaded records.
out=$(go test -run '^$' -bench 'BenchmarkCorrelateWork$|BenchmarkCorrelatePeakHeap$' -benchtime 1x ./internal/workflow/ )
echo "$out" | grep -v '^{"benchmark"\|^|\|^growth' >&2 || true
echo "$out" | grep '^{"benchmark"\|^|\|^growth' || { echo "bench: no correlation-work result" >&2; exit 1; }
