#!/usr/bin/env bash
# Measures cairn's console as an OTLP backend against its peers on this
# machine and prints benchstat tables with ratios to cairn:
#
#   bench/console/run.sh              ingest and startup, 6 interleaved rounds
#   bench/console/run.sh overload     10x overload: refusals, memory, UI latency
#   bench/console/run.sh query        search over 1M spans (cairn; Jaeger if built)
#   COUNT=10 DURATION=20s bench/console/run.sh
#   OVERLOAD_SENDERS=256 OVERLOAD_COUNT=6 bench/console/run.sh overload
#
# Builds the peers first (bench/peers/build.sh, cached outside the
# repository) and cairn from this working tree. Raw results go to
# bench/results/console-{peers,overload,query}.txt. The load generator
# runs on the same machine as the servers and competes with them for CPU;
# the load average at the start is printed, since others may share it.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-ingest}
count=${COUNT:-6}
duration=${DURATION:-15s}
warmup=${WARMUP:-3s}
cache=${CAIRN_PEERS:-$HOME/.cache/cairn-peers}
export PATH="$(go env GOPATH)/bin:$PATH"
command -v benchstat >/dev/null || go install golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
mkdir -p results

peers/build.sh || echo "run.sh: some peer did not build; running those that did" >&2
# cairn is built in its own module, exactly as users build it.
(cd .. && go build -o "$cache/cairn" ./cmd/cairn)
go build -o "$cache/consolepeers" ./cmd/consolepeers
echo "# load average at start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

peers=(-cairn "$cache/cairn" -otelcol "$cache/otelcol/otelcol-bench" -jaeger "$cache/jaeger/jaeger")
case $mode in
ingest)
	out=results/console-peers.txt
	"$cache/consolepeers" "${peers[@]}" -count "$count" -duration "$duration" -warmup "$warmup" | tee "$out"
	echo
	benchstat -col /peer "$out"
	;;
overload)
	out=results/console-overload.txt
	"$cache/consolepeers" "${peers[@]}" -overload -overload-senders "${OVERLOAD_SENDERS:-64}" \
		-count "${OVERLOAD_COUNT:-6}" -duration "$duration" -warmup "$warmup" | tee "$out"
	echo
	benchstat -col /peer "$out"
	;;
query)
	out=results/console-query.txt
	go test -run '^$' -bench 'Query1M' -count "$count" -timeout 60m ./consolebench | tee "$out"
	echo
	benchstat -col /peer -filter '.name:Query1M' "$out"
	benchstat -filter '.name:Query1MHandler' "$out"
	;;
*)
	echo "run.sh: unknown mode $mode (want ingest, overload or query)" >&2
	exit 2
	;;
esac
