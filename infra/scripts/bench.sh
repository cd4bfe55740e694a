#!/usr/bin/env bash
# make bench: normalize + correlate over 100,000 real records, next to the naive baseline (every
# record decoded into a map) in the same run, and the ratio of their records per second.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench 'BenchmarkCorrelate' -benchtime "${BENCHTIME:-5x}" -benchmem ./internal/core/ )
echo "$out" >&2
echo "$out" | awk '
  /BenchmarkCorrelate\/trailproof/ { for (i=1;i<=NF;i++) if ($(i+1)=="records/s") tp=$i }
  /BenchmarkCorrelate\/naive/      { for (i=1;i<=NF;i++) if ($(i+1)=="records/s") nv=$i }
  END { if (tp && nv) printf("{\"benchmark\":\"correlate\",\"records\":100000,\"trailproofRecordsPerSecond\":%d,\"naiveRecordsPerSecond\":%d,\"ratio\":%.1f}\n", tp, nv, tp/nv);
        else { print "bench: no result (are ../shared/data/cloudtrail records present?)" > "/dev/stderr"; exit 1 } }'

# apiCalls: trailproof's incremental polling against the guide's sliding window, same corpus.
out=$(go test -run '^$' -bench 'BenchmarkPollingSchemes' -benchtime 1x ./internal/workflow/ )
echo "$out" >&2
echo "$out" | awk '/BenchmarkPollingSchemes/ {
  for (i=1;i<=NF;i++) m[$(i+1)]=$i
  printf("{\"benchmark\":\"polling\",\"window\":\"5m\",\"queryInterval\":\"30s\",\"deliveryDelay\":\"5m\",\"guideCallsPerRun\":%s,\"guideRecall\":%s,\"trailproofCallsPerRun\":%s,\"trailproofRecall\":%s,\"trailproofWithExpectedCallsPerRun\":%s,\"trailproofWithExpectedRecall\":%s}\n",
    m["guide-calls/run"], m["guide-recall"], m["trailproof-calls/run"], m["trailproof-recall"], m["trailproof-expected-calls/run"], m["trailproof-expected-recall"]) }'
