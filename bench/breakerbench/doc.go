// Package breakerbench measures what a circuit breaker costs a call that
// succeeds: cairn's resilience/circuitbreaker against sony/gobreaker, both
// closed, serially and from parallel goroutines. It has no API; run it with
// bench/run.sh BreakerExecute.
package breakerbench
