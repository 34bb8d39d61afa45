// Package postgres is an [eventstore.Store] on PostgreSQL (13 or later),
// through pgx v5: [New] takes a [DB], in production a *pgxpool.Pool,
// which the store uses and does not close.
//
// Events live in one table per schema ([WithSchema], default
// "eventstore"), keyed by their global [eventstore.Position]; streams have
// a row each holding their version and a deleted flag, which appends lock
// so that concurrent appenders to one stream serialise and exactly one
// wins per version.
//
// # The global log never skips
//
// A position is derived from the appending transaction's ID
// (pg_current_xact_id(), an xid8) and the event's index in the
// transaction:
//
//	position = xid<<14 | index
//
// so the log is ordered by (transaction, index). [Store.ReadAll] returns
// only events of transactions below the current snapshot's xmin
// (pg_snapshot_xmin(pg_current_snapshot())): every transaction below it
// has committed or rolled back, and every transaction that may still
// commit has an ID at or above it, so no event can ever appear below a
// position ReadAll returned. When committed events are held back, ReadAll
// waits for them, briefly ([WithReadAllWait]), before it returns what is
// readable. docs/adr/0002-eventstore-global-order.md
// gives the argument, the alternatives and the cost: a transaction that
// holds an xid and stays open anywhere in the cluster (idle in
// transaction, a long batch job, a prepared transaction) holds the
// watermark back, so readers lag (they never skip) until it ends. The
// eventstore.postgres.watermark.lag and .age gauges report that lag; set
// idle_in_transaction_session_timeout to bound it.
//
// Limits of the encoding: at most 16384 events per transaction (an append
// holds at most [eventstore.MaxAppendEvents]), and transaction IDs below
// 2^49 (5.6e14: 178 years at 100,000 writing transactions per second);
// an append beyond either fails with [ErrPositionOverflow].
//
// RecordedAt is the time of the appending statement (statement_timestamp)
// as PostgreSQL stores it: UTC, truncated to microseconds. Metadata is
// stored as its JSON encoding in a bytea column, so it round-trips
// exactly. Deleted streams keep their events in the global log.
//
// The store is an [eventstore.SnapshotStore] too: a snapshots table holds
// the latest snapshot of each stream, and deleting a stream deletes it
// (see [Store.SaveSnapshot]).
//
// # Telemetry
//
// The store reports the telemetry every backend shares, named in package
// eventstore, so that one dashboard serves every backend: each operation
// makes one OpenTelemetry CLIENT span ("eventstore.postgres append", and
// so on) with db.system.name "postgresql", [SchemaKey],
// [eventstore.OperationKey], [eventstore.StreamKey] and
// [eventstore.OutcomeKey], and records its duration in the histogram named
// by [eventstore.OperationDurationMetricName]; appends count the events
// stored ([eventstore.AppendedEventsMetricName]) and the version conflicts
// ([eventstore.ConflictsMetricName]). An append retried after it
// succeeded, answered from the stored events, has the outcome
// [eventstore.OutcomeIdempotent] and counts no events. Every measurement
// also carries db.system.name and [SchemaKey]. The watermark gauges
// ([WatermarkLagMetricName], [WatermarkAgeMetricName]) are this backend's
// own.
package postgres
