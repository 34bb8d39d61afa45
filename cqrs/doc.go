// Package cqrs separates the write side of a service from its read side:
// commands go through a [CommandBus] to the one handler that decides on
// new events, queries go through a [QueryBus] to the handler that answers
// them from a read model, and [Projector]s build read models from the
// event store's global log.
//
// Handlers are typed with generics ([Handle], [Dispatch], [HandleQuery],
// [Ask]) and registered by the Go type of their message, or by the name a
// message gives itself with a CommandName or QueryName method. Both buses
// run [Middleware] around every handler, over an untyped [Message]:
// [Logging], [Tracing], [Metrics], [Validation] and [Idempotency] (by
// command ID, with an [IdempotencyStore] in memory or in a SQL database).
//
// [EventHandlers] route recorded events by type to typed handlers that
// receive the event's JSON data decoded into a Go value.
//
// A [Projector] applies batches of the global log to a read model in a
// database/sql transaction that also holds the projection's checkpoint
// (table cqrs_checkpoints), so each event takes effect exactly once even
// when the process dies between applying and checkpointing. Projections
// are versioned: a new version builds its own tables beside the live one
// and, once caught up, atomically becomes the active version (table
// cqrs_projection_active) that queries resolve with [Active]; see
// [ProjectorOptions.Version] and [DropVersion]. The read model may be on
// SQLite or PostgreSQL; [Dialect] hides their differences.
package cqrs
