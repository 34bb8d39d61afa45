// Package bulkhead limits the number of concurrent calls to a dependency,
// so that a slow dependency cannot tie up every goroutine of its callers.
//
// A [Bulkhead] is a semaphore of MaxConcurrent slots with a bounded FIFO
// queue of at most MaxQueue waiters. A caller that finds every slot taken
// joins the queue; one that finds the queue full is rejected at once. A
// queued caller is rejected when it has waited MaxWait, or when its context
// ends. Rejections are [*RejectedError]s (errors.Is(err, [ErrFull])); a
// rejection caused by the context also matches the context's error.
//
// Slots are handed over in arrival order: [Permit.Release] gives the slot
// directly to the oldest waiter, and while anyone waits a newcomer, even
// one calling [Bulkhead.TryAcquire], queues behind them instead of barging
// ahead.
//
// [Bulkhead.Execute] wraps a function call. Code that composes policies
// uses the two-step form instead: [Bulkhead.Acquire] returns a [Permit]
// and [Permit.Release] returns its slot. Neither allocates while a slot is
// free; a queued caller may.
//
// Bulkheads report OpenTelemetry metrics: the counter
// resilience.bulkhead.calls by resilience.outcome, the gauges
// resilience.bulkhead.inflight and resilience.bulkhead.queue and the
// histogram resilience.bulkhead.wait of queued callers' waits in seconds,
// all with resilience.policy.name. A call that waited in the queue, or was
// rejected, adds the span event resilience.bulkhead.queued or
// resilience.bulkhead.rejected to the span of its context.
package bulkhead
