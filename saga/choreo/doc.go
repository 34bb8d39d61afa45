// Package choreo builds a saga as a choreography: a chain of event
// handlers on the message bus, each run by the service that owns the
// step, tied together by a correlation ID, with a process-manager read
// model that shows where each instance stands.
//
// # The chain
//
// A [Saga] declares the chain: the event that starts an instance and, per
// [Step], the events that trigger it ([Step.On]), the participant (the
// service, which is the subscriber group) that runs it, and the events it
// emits on success and on failure; a compensation step names the step it
// undoes. For example:
//
//	order.placed → inventory reserves → stock.reserved | stock.rejected
//	stock.reserved → payment charges → payment.charged | payment.failed
//	payment.charged → shipping schedules → shipment.scheduled | shipment.failed
//	shipment.failed → payment refunds → payment.refunded
//	payment.failed, payment.refunded → inventory releases → stock.released
//
// [Saga.Publish] starts an instance by publishing the start event with
// the instance's ID in the [HeaderSagaID] header. A [Participant] wraps a
// step's [Func]: it reads the correlation ID, runs the function (once per
// message ID, in a transaction with an outbox.Inbox claim, when given a
// database), and publishes the success event, or the failure event when
// the function returned a messaging.Permanent error, with the same
// correlation ID and the trace context. Any other error is retried by the
// transport, then dead-lettered. The event the participant emitted is
// stored with the claim, so a message delivered again after a crash
// between the commit and the publish emits it again (with the same
// message ID, which brokers and inboxes deduplicate) rather than losing
// it.
//
// # The read model
//
// A [Tracker] subscribes to every event of the chain and keeps, per
// instance, its [Status], stage, last event, timestamps and history in a
// table (SQLite or PostgreSQL), once per message ID. Nobody else knows
// where a choreographed instance stands: no component holds its state.
// [Tracker.CheckStuck] (or [Tracker.Run]) marks the instances in progress
// that received no event for [TrackerOptions.StuckAfter]: a participant
// that is down, a message dead-lettered, a step whose failure event was
// not declared. The tracker observes; it does not repair.
//
// # Choreography or orchestration
//
// The saga package orchestrates: one component runs the steps, in order,
// persists the instance before and after each, compensates in reverse
// order, recovers instances whose orchestrator died and marks stuck ones.
// Choose it when the steps live in one service or can be called from
// one, when the order of steps or the compensation logic is more than a
// straight line, or when an operator must be able to see and resume an
// instance from a single source of truth.
//
// Choreography has no such component: each service reacts to events and
// emits its own, so services stay decoupled (a participant knows events,
// not the other services), there is no central point to deploy, scale or
// lose, and adding a reaction to an event touches no one else. The costs
// are real and this package does not remove them:
//
//   - the flow exists only as the sum of subscriptions: the [Saga]
//     declaration and the [Tracker] reconstruct it, but nothing enforces
//     that the deployed services follow it;
//   - nothing drives an instance forward: a lost or dead-lettered event,
//     or a participant that is down, stalls it silently, which is why the
//     tracker's stuck detection exists, and why an operator must act on
//     what it reports;
//   - compensation is spread over the services, each of which must know
//     which events undo its work; a cycle of events is easy to create;
//   - the tracker's view is eventually consistent and built from events
//     that can arrive out of order: it never moves an instance back from
//     compensating to running or from a final status, but its stage can
//     lag.
//
// Prefer choreography for short chains between independently owned
// services; prefer orchestration as the chain grows, branches or needs
// timeouts per step.
//
// # Telemetry
//
// Every instance has one trace: [Saga.Publish] starts its root span,
// "choreo <saga>", and every participant's span, "choreo <saga> <step>",
// is a child of the delivery's span, itself a child of the publishing
// span read from the message's headers; a compensation is a step and has
// its span too. The tracker adds a [StatusEventName] event to the
// delivery's span when an instance's status changes, and counts the
// instances started, completed, compensated, failed and marked stuck
// (the *MetricName constants).
package choreo
