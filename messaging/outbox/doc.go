// Package outbox publishes the events of an event store to a message bus,
// exactly in the order of the store's global log, and deduplicates them on
// the consuming side: the transactional outbox and the inbox.
//
// # The log is the outbox
//
// The outbox pattern writes the messages a transaction must send into the
// same database, in the same transaction as the state change, and lets a
// relay publish them afterwards: no dual write, so no state change without
// its message and no message without its state change. In an event-sourced
// service the events are the state change and the messages at once: the
// append that stores an order's events is the transaction that writes the
// outbox rows, because the rows are the events. The [Relay] follows the
// store's global log ([eventstore.Reader.ReadAll], which never skips an
// event that commits late, on PostgreSQL too) from a checkpoint it keeps
// in the store ([eventstore.Checkpoints]), publishes each event as a
// [messaging.Message], and advances the checkpoint once the broker has
// acknowledged the batch. There is no outbox table to fill, poll, lock and
// purge, and the order is the log's: per stream, the version order.
//
// A relay that restarts, or whose broker goes away, publishes again from
// its checkpoint: delivery is at least once, never lossy and never
// reordered per stream. The message ID is the event ID, so a broker with a
// deduplication window (JetStream) drops most duplicates at once, and the
// consumer's [Inbox] drops the rest.
//
// # The inbox
//
// An [Inbox] records, in the consumer's own database transaction, the ID
// of every message it has handled; a message seen before is acknowledged
// without running the handler again. The handler's effects and the inbox
// row commit together, so each message has its effect exactly once.
package outbox
