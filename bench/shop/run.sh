#!/usr/bin/env bash
# End-to-end checkout latency of the reference shop in `cairn demo`: every
# request places an order (no reads, no lists) at a constant arrival rate;
# the load generator follows each order through the order service's
# server-streaming WatchOrder until its final status, and reports the
# p50 and p99 of the time from the POST to that status (docs/shop.md).
#
#   bench/shop/run.sh               50 and 200 orders/s, 6 runs of 30s each
#   bench/shop/run.sh "50 100" 3 20 rates 50 and 100, 3 runs of 20s
#
# Each run is a fresh demo (SQLite, embedded NATS, console) on free ports;
# the runs of different rates are interleaved, so that a change in the
# machine's load spreads over all of them. Raw reports go to
# bench/results/shop-<rate>.txt.
set -euo pipefail
cd "$(dirname "$0")/../.."
rates=${1:-"50 200"}
runs=${2:-6}
secs=${3:-30}
bin=$(mktemp -d)/cairn
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/cairn
mkdir -p bench/results
for rate in $rates; do : >"bench/results/shop-$rate.txt"; done
free=(--console-addr 127.0.0.1:0 --otlp-addr 127.0.0.1:0 --order-addr 127.0.0.1:0 --admin-addr 127.0.0.1:0
	--order-grpc-addr 127.0.0.1:0 --inventory-addr 127.0.0.1:0 --payment-addr 127.0.0.1:0
	--shipping-addr 127.0.0.1:0 --provider-addr 127.0.0.1:0)
for i in $(seq 1 "$runs"); do
	for rate in $rates; do
		echo "run $i, $rate orders/s, ${secs}s (load average $(cut -d' ' -f1 /proc/loadavg))" >&2
		"$bin" demo "${free[@]}" --rps "$rate" --read-ratio 0 --list-ratio 0 --duration "${secs}s" |
			grep -E '^  (requests|checkouts|checkout time|memory)' >>"bench/results/shop-$rate.txt"
	done
done
# Median over the runs of each figure, in milliseconds.
for rate in $rates; do
	awk -v rate="$rate" '
		function ms(s) { if (s ~ /µs$/) return s / 1000; if (s ~ /ms$/) return s + 0; if (s ~ /s$/) return s * 1000; return s }
		function median(a, n,   i, j, t) { for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
		/checkout time/ { n++; p50[n] = ms($4); p99[n] = ms($6) }
		/checkouts/ { confirmed += $4; followed += $2 }
		/memory/ { m++; rss[m] = $2 }
		END { printf "%4d orders/s: checkout p50 %.2f ms, p99 %.2f ms (median of %d runs; %d of %d checkouts confirmed; RSS median %.0f MiB)\n",
			rate, median(p50, n), median(p99, n), n, confirmed, followed, median(rss, m) }
	' "bench/results/shop-$rate.txt"
done
