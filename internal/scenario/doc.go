// Package scenario runs declared fault scenarios against the reference
// shop and asserts the telemetry they must produce.
//
// A [Scenario] is a named story: a load (requests per second), a
// timeline of [Event]s that inject faults through an [Env] (an error rate
// on the payment provider, a killed service, the broker down) and clear
// them, and [Assertion]s on what must be observed: a circuit breaker
// opens within ten seconds, sagas compensate, no saga is left unfinished
// once the faults are gone. Failure rates, latencies and thresholds are
// [Param]s with defaults that a caller overrides by name.
//
// [Run] executes one scenario: it sets the load, fires the timeline,
// samples the assertions, clears every fault the scenario set and
// restarts every service it killed (also when the context ends or an
// event fails), waits for the shop to drain, evaluates the final
// assertions and returns a [Report]. Assertions read telemetry as the
// console received it, through [ConsoleProbe] over the console's JSON
// API, so a passing scenario also proves that the telemetry was produced
// and exported; facts that live only in databases (sagas by status,
// double charges) come from a [StateProbe] the demo provides.
//
// [Catalog] lists the built-in scenarios; [Handler] serves them to a web
// page and a JSON API, one run at a time.
//
// # Telemetry the catalog reads
//
// The built-in scenarios read these metrics, summed over every service
// that reports them (so the demo may name its services as it likes):
//
//	resilience.circuitbreaker.transitions  resilience.policy.name=<target>, resilience.circuitbreaker.to=open
//	resilience.retry.attempts              every policy, counted from the fault's event
//	cairn.saga.started, .completed, .compensated, cairn.saga.recovery.runs
//	cairn.outbox.depth                     (a gauge or up-down counter; summed over relays)
//	cairn.loadgen.requests                 cairn.loadgen.operation=place-order, cairn.loadgen.outcome=success|failure
//	cairn.shop.payment.charges             outcome=refunded ([PaymentChargesMetric])
//
// where <target> is the fault target the scenario drives: the shop must
// name the breaker around a dependency after that dependency's fault
// target ("payment-provider").
package scenario
