package eventstore

import "go.opentelemetry.io/otel/attribute"

// Telemetry every backend reports, under the same names, so that one
// dashboard serves them all. Each backend reports from its own
// instrumentation scope (its import path) and adds db.system.name
// ("sqlite", "postgresql") to every measurement and span; a backend may
// add its own attributes and instruments beside these.
//
// Every operation is measured and has a span, but for a ReadAll whose
// context holds no span: a follower polling the log (a projector, an
// outbox relay) would otherwise start a new trace at every poll, ten a
// second, most of them empty. Followers trace the batches they handle
// instead.
const (
	// OperationDurationMetricName is a histogram of the duration of every
	// operation (Append, ReadStream, ReadAll, Version, DeleteStream, and
	// SaveSnapshot and LoadSnapshot of a [SnapshotStore]), in seconds ("s"), with the attributes db.system.name, [OperationKey]
	// and [OutcomeKey].
	OperationDurationMetricName = "eventstore.operation.duration"
	// AppendedEventsMetricName is a counter of the events appended
	// ("{event}"). Events of an idempotent retry, answered from the
	// stored events, are not counted again.
	AppendedEventsMetricName = "eventstore.events.appended"
	// ConflictsMetricName is a counter of the appends refused with a
	// [*VersionConflictError] ("{append}").
	ConflictsMetricName = "eventstore.append.conflicts"
)

// Attribute keys of the telemetry.
const (
	// OperationKey names the operation, following the database semantic
	// conventions: [OpAppend], [OpReadStream], [OpReadAll], [OpVersion],
	// [OpDeleteStream], [OpSaveSnapshot] or [OpLoadSnapshot].
	OperationKey = attribute.Key("db.operation.name")
	// OutcomeKey is the outcome of an operation: [OutcomeOK],
	// [OutcomeIdempotent], [OutcomeConflict] or [OutcomeError].
	OutcomeKey = attribute.Key("eventstore.outcome")
	// StreamKey is the span attribute naming the stream of an operation.
	// It is not a metric attribute: streams are unbounded.
	StreamKey = attribute.Key("eventstore.stream.id")
)

// Values of [OperationKey].
const (
	OpAppend       = "append"
	OpReadStream   = "read_stream"
	OpReadAll      = "read_all"
	OpVersion      = "version"
	OpDeleteStream = "delete_stream"
	// OpSaveSnapshot is [SnapshotStore.SaveSnapshot]. A save refused
	// with a [*SnapshotAheadError] has the outcome [OutcomeError].
	OpSaveSnapshot = "save_snapshot"
	// OpLoadSnapshot is [SnapshotStore.LoadSnapshot]; finding no snapshot
	// is the outcome [OutcomeOK].
	OpLoadSnapshot = "load_snapshot"
)

// Values of [OutcomeKey].
const (
	// OutcomeOK is an operation that succeeded, an append that stored
	// its events included.
	OutcomeOK = "ok"
	// OutcomeIdempotent is an append that succeeded without storing
	// anything: a retry answered from the events already stored.
	OutcomeIdempotent = "idempotent"
	// OutcomeConflict is an append refused with a [*VersionConflictError].
	OutcomeConflict = "conflict"
	// OutcomeError is any other error, refusals included: an invalid
	// event, a deleted stream, a duplicate event ID, a canceled context or
	// a failure of the database.
	OutcomeError = "error"
)
