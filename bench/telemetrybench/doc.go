// Package telemetrybench measures what cairn's telemetry costs a request:
// the same HTTP handler and round trip with and without traces, metrics and
// a log line exported through batching processors. It has no API; run it
// with bench/run.sh Telemetry.
package telemetrybench
