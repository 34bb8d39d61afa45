#!/usr/bin/env bash
# Runs cairn's benchmarks side by side with their baselines and peers and
# prints benchstat tables: one column per variant, with the ratio to the first.
#
#   bench/run.sh                 every benchmark, -count 6
#   bench/run.sh Telemetry 10    benchmarks matching "Telemetry", -count 10
#
# Raw output is kept in bench/results/<pattern>.txt for later comparison.
set -euo pipefail
cd "$(dirname "$0")"
pattern=${1:-.}
count=${2:-6}
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
mkdir -p results
out="results/$(printf '%s' "$pattern" | tr -c 'A-Za-z0-9_-' '_').txt"
go test -run '^$' -bench "$pattern" -benchmem -count "$count" ./... | tee "$out"
echo
# Sub-benchmarks are named Benchmark<Name>/variant=<v>; compare variants.
benchstat -col /variant "$out"
