// Package saga orchestrates sagas: long-running operations made of steps,
// each an action and a compensation that undoes it, whose state survives
// crashes.
//
// # Orchestration
//
// A [Definition] is a named sequence of stages; a [Stage] is one [Step] or
// a parallel group of steps. An [Orchestrator] starts instances of its
// definitions ([Orchestrator.Start]), persisting each in a [Store] before
// running anything, before every stage and at its end, so that any
// orchestrator on the same store can resume it. A write records the
// outcome of a stage together with the start of the next (the first
// stage starts with the instance's creation): a saga of n stages that
// completes is n+1 writes. The data of an instance, of the type D, is
// stored as JSON and passed to every action and compensation as *D; steps
// record in it what later steps and compensations need.
//
// A step's action runs through its [Step.Executor] (a resilience pipeline:
// retries, circuit breaker, bulkhead...) within its [Step.Timeout]. When it
// fails (an error after the executor's retries, a timeout, or a
// [Permanent] error), the instance compensates: the failed step first (its
// action may have taken effect before failing, as DTM's saga assumes), then
// every step that succeeded, one at a time in reverse definition order (the
// members of a parallel group too, in reverse order of the group). A
// compensation is retried with backoff until it succeeds; after
// [WithStuckAfter]'s attempts or time the instance is marked
// [StatusStuck], and is still retried.
//
// # State machine
//
// An instance is [StatusRunning], then [StatusCompleted]; or, after a
// failure, [StatusCompensating] (or [StatusStuck]) then
// [StatusCompensated]. A step is [StepPending], [StepRunning], then
// [StepSucceeded] or [StepFailed]; when the instance compensates, a step
// that ran goes [StepCompensating] then [StepCompensated].
// [Orchestrator.Get] returns the persisted state for a read model;
// [Orchestrator.Wait] waits for an instance to be final.
//
// # Leases and recovery
//
// The orchestrator running an instance holds a lease on it: its owner ID
// and an expiry, in the store, renewed every third of [WithLease] while the
// steps run. Every write is conditional on the instance's version and on
// the lease (fencing): an orchestrator whose write or renewal is refused
// has lost the instance, and cancels the running step's context with the
// cause [ErrLeaseLost] and stops touching it. An orchestrator that cannot
// renew stops using the lease before it expires, by its own clock, with a
// margin of a tenth of the lease. [Orchestrator.Run] claims, periodically,
// the instances whose lease has expired (judged by the database's clock on
// PostgreSQL) and resumes them: a step that was running when its process
// died is run again, and an instance that was compensating goes on.
//
// # What the caller must guarantee
//
// Actions and compensations must be idempotent, because a crash between a
// step's effect and the write that records it makes the step run again
// (saga/barrier makes a step idempotent with a database record); they must
// return when their context is done, so that a lost lease stops them
// before another orchestrator takes over; and a compensation must succeed
// eventually. The members of a parallel group share *D and must each
// write only their own fields. A definition must not change while
// instances of it run.
//
// # Telemetry
//
// Each instance has one trace: the root span "saga <definition>" starts in
// Start, under the caller's span, and its context is stored with the
// instance, so that a resumption's span, "saga <definition> resume", is
// its child in any process. Every action and compensation attempt has a
// span; every change of status is a [TransitionEventName] event. The
// metrics are named by the *MetricName constants.
package saga
