// Package bulkheadbench measures what a bulkhead costs a call that finds a
// free slot: cairn's resilience/bulkhead against a buffered-channel
// semaphore, serially and from parallel goroutines. It has no API; run it
// with bench/run.sh BulkheadExecute.
package bulkheadbench
