// Package eventstore stores events in streams and in one global, totally
// ordered log, for event-sourced services.
//
// An event belongs to a stream (one aggregate: "order-42") and has a
// version in it, 1 for the first. Appending to a stream states what the
// caller expects the stream's version to be ([ExpectedVersion]): a writer
// that loaded version 7 and decided on new events appends with Exact(7),
// and if another writer got there first the append fails with a
// [*VersionConflictError]: optimistic concurrency, with exactly one winner
// per version. Every event also gets a [Position] in the global log, which
// readers follow with [Reader.ReadAll] and catch-up subscriptions
// ([Subscribe]) from a checkpoint.
//
// The global log is read in position order and never skips an event: a
// reader that has read up to position p will never later see an event
// with a position at or below p. Backends guarantee it even when writers
// commit out of the order in which they were assigned positions (see
// docs/adr/0002-eventstore-global-order.md for PostgreSQL).
//
// Appends are idempotent by event ID: appending events whose IDs are
// already stored in the stream, with the same types and data, succeeds and
// returns the original result, so a caller may retry an append whose answer
// was lost.
//
// Old events stay readable as their schemas evolve: [Upcasting] wraps a
// Reader so that its events are lifted to their current schema by
// [Upcasters]. A Store may also keep snapshots of its streams
// ([SnapshotStore]), so that loading an aggregate reads only the events
// after its latest snapshot.
//
// The backends are in subpackages: sqlite (the embedded default) and
// postgres. eventstoretest is the conformance suite every backend runs.
package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Event is an event to append.
type Event struct {
	// ID identifies the event uniquely, across streams. Required: appends
	// are idempotent by ID. Use a UUID or another collision-free ID.
	ID string
	// Type names the event, such as "order.placed". Required.
	Type string
	// SchemaVersion is the version of Data's schema for Type, starting at
	// 1; upcasters lift old versions to the current one when reading.
	// Zero means 1, and stores record it as 1.
	SchemaVersion int
	// Data is the event's payload, usually JSON. It may be empty.
	Data []byte
	// Metadata says where the event came from.
	Metadata Metadata
}

// Metadata is what an event carries besides its payload.
type Metadata struct {
	// CorrelationID ties together every event caused, directly or not, by
	// one request.
	CorrelationID string `json:"correlation_id,omitempty"`
	// CausationID is the ID of the command or event that caused this one.
	CausationID string `json:"causation_id,omitempty"`
	// TraceParent and TraceState are the W3C Trace Context of the span
	// that appended the event, so consumers continue the trace.
	TraceParent string `json:"traceparent,omitempty"`
	TraceState  string `json:"tracestate,omitempty"`
	// Extra holds any other string metadata.
	Extra map[string]string `json:"extra,omitempty"`
}

// RecordedEvent is an event as the store holds it.
type RecordedEvent struct {
	Event
	// StreamID is the stream the event belongs to.
	StreamID string
	// Version is the event's version in its stream: 1 for the first.
	Version int64
	// Position is the event's place in the global log: strictly
	// increasing in log order, not necessarily contiguous.
	Position Position
	// RecordedAt is when the store recorded the event (UTC).
	RecordedAt time.Time
}

// Position is a place in the global log. The zero Position is before the
// first event: ReadAll(ctx, 0, n) reads from the start.
type Position int64

// ExpectedVersion is what an append expects of the stream's current
// version: [Any], [NoStream], [StreamExists] or [Exact].
type ExpectedVersion int64

const (
	// Any appends whatever the stream's version, creating the stream if
	// needed.
	Any ExpectedVersion = -1
	// NoStream appends only if the stream has no events.
	NoStream ExpectedVersion = 0
	// StreamExists appends only if the stream has events.
	StreamExists ExpectedVersion = -2
)

// Exact returns the ExpectedVersion of a stream whose last event has
// version v (v >= 1; Exact(0) is NoStream).
func Exact(v int64) ExpectedVersion { return ExpectedVersion(v) }

// String describes e: "any", "no stream", "stream exists" or the version.
func (e ExpectedVersion) String() string {
	switch e {
	case Any:
		return "any"
	case NoStream:
		return "no stream"
	case StreamExists:
		return "stream exists"
	}
	return fmt.Sprint(int64(e))
}

// AppendResult is the outcome of an append.
type AppendResult struct {
	// NextExpectedVersion is the stream's version after the append: pass
	// Exact(NextExpectedVersion) to append after it.
	NextExpectedVersion int64
	// FirstPosition and LastPosition are the global positions of the
	// first and last appended events.
	FirstPosition, LastPosition Position
}

// Direction is the order of a stream read.
type Direction int

const (
	// Forwards reads from a version up, oldest first.
	Forwards Direction = iota
	// Backwards reads from a version down, newest first.
	Backwards
)

// Limits every backend enforces.
const (
	// MaxEventSize is the largest Data an event may have, in bytes; its
	// metadata may add up to MaxMetadataSize more.
	MaxEventSize = 1 << 20
	// MaxAppendEvents is the most events one append may hold.
	MaxAppendEvents = 10000
	// MaxIDLength is the longest stream ID, event ID or event type.
	MaxIDLength = 256
	// MaxMetadataSize is the most bytes an event's metadata strings may
	// add up to (Extra's keys and values included).
	MaxMetadataSize = 64 << 10
)

// Reader reads streams and the global log.
type Reader interface {
	// ReadStream returns at most limit events of stream, starting at
	// version from (inclusive) and going in dir. A from of 0 or less means
	// the first event going forwards and the last going backwards; a from
	// past the last event going backwards means the last. It returns an
	// empty slice for a stream with no events or a limit of 0 or less, and
	// [ErrStreamDeleted] for a deleted stream.
	ReadStream(ctx context.Context, stream string, from int64, dir Direction, limit int) ([]RecordedEvent, error)
	// ReadAll returns at most limit events of the global log with
	// positions above after, in position order. It never returns an event
	// whose position is at or below that of an event an earlier call
	// returned, and never skips one: events still being committed with
	// lower positions are waited out, not passed. A limit of 0 or less
	// returns an empty slice.
	ReadAll(ctx context.Context, after Position, limit int) ([]RecordedEvent, error)
}

// Store is an event store backend. Implementations must be safe for
// concurrent use and must pass eventstoretest.Run.
type Store interface {
	Reader
	// Append adds events to stream, atomically, if the stream's version
	// matches expected. It returns a [*VersionConflictError] (matching
	// [ErrVersionConflict]) when it does not, and an [*InvalidEventError]
	// (matching [ErrInvalidEvent]) for an append that [Validate] refuses
	// (an event without an ID or a type, an oversized field, an ID
	// repeated within the append) or whose expected is none of Any,
	// NoStream, StreamExists or Exact(v).
	//
	// Retrying an append whose events are all stored already in stream,
	// at consecutive versions and with the same types, schema versions and
	// data, returns the original result, whatever expected says: the retry
	// of an append whose answer was lost succeeds. An append that reuses a
	// stored event ID otherwise (with other content, in another stream, or
	// mixed with new events) fails with an error matching
	// [ErrDuplicateEvent] and stores nothing.
	Append(ctx context.Context, stream string, expected ExpectedVersion, events ...Event) (AppendResult, error)
	// Version returns the version of stream's last event, 0 if it has none,
	// and [ErrStreamDeleted] for a deleted stream.
	Version(ctx context.Context, stream string) (int64, error)
	// DeleteStream deletes stream's events from the stream reads; they
	// stay in the global log, so subscribers are not surprised. Appending
	// to or reading a deleted stream fails with [ErrStreamDeleted].
	// Deleting a stream that has no events, or again, does nothing.
	DeleteStream(ctx context.Context, stream string) error
	// Close releases the store's resources.
	Close() error
}

// Errors matched by the errors of every backend.
var (
	// ErrVersionConflict is matched by a [*VersionConflictError].
	ErrVersionConflict = errors.New("eventstore: version conflict")
	// ErrInvalidEvent is matched by an [*InvalidEventError].
	ErrInvalidEvent = errors.New("eventstore: invalid event")
	// ErrStreamDeleted is returned when reading or appending to a deleted
	// stream.
	ErrStreamDeleted = errors.New("eventstore: stream deleted")
	// ErrDuplicateEvent is matched by an append that reuses a stored event
	// ID with other content, or in another stream.
	ErrDuplicateEvent = errors.New("eventstore: duplicate event id")
)

// VersionConflictError reports an append whose expected version did not
// match the stream.
type VersionConflictError struct {
	Stream   string
	Expected ExpectedVersion
	// Actual is the stream's version when the append was refused.
	Actual int64
}

// Error names the stream, the expected and the actual version.
func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("eventstore: version conflict on stream %q: expected %s, stream is at %d", e.Stream, e.Expected, e.Actual)
}

// Is reports whether target is [ErrVersionConflict].
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// InvalidEventError reports an event the store refuses.
type InvalidEventError struct {
	// Index is the event's index in the append, or -1 for the stream ID.
	Index int
	// Field names what is wrong: "ID", "Type", "Data", "stream".
	Field string
	// Reason says why.
	Reason string
}

// Error names the event and the field.
func (e *InvalidEventError) Error() string {
	if e.Index < 0 {
		return fmt.Sprintf("eventstore: invalid %s: %s", e.Field, e.Reason)
	}
	return fmt.Sprintf("eventstore: invalid event %d: %s %s", e.Index, e.Field, e.Reason)
}

// Is reports whether target is [ErrInvalidEvent].
func (e *InvalidEventError) Is(target error) bool { return target == ErrInvalidEvent }

// Validate checks an append before a backend runs it: a stream ID, at
// least one and at most MaxAppendEvents events, each with an ID and a
// type no longer than MaxIDLength, no repeated ID, a non-negative schema
// version, at most MaxEventSize bytes of data and MaxMetadataSize bytes of
// metadata. It returns an
// [*InvalidEventError] for the first problem.
func Validate(stream string, events []Event) error {
	switch {
	case stream == "":
		return &InvalidEventError{Index: -1, Field: "stream", Reason: "is empty"}
	case len(stream) > MaxIDLength:
		return &InvalidEventError{Index: -1, Field: "stream", Reason: fmt.Sprintf("is %d bytes, more than %d", len(stream), MaxIDLength)}
	case len(events) == 0:
		return &InvalidEventError{Index: -1, Field: "events", Reason: "none to append"}
	case len(events) > MaxAppendEvents:
		return &InvalidEventError{Index: -1, Field: "events", Reason: fmt.Sprintf("%d in one append, more than %d", len(events), MaxAppendEvents)}
	}
	seen := make(map[string]struct{}, len(events))
	for i, e := range events {
		switch {
		case e.ID == "":
			return &InvalidEventError{Index: i, Field: "ID", Reason: "is empty"}
		case len(e.ID) > MaxIDLength:
			return &InvalidEventError{Index: i, Field: "ID", Reason: fmt.Sprintf("is %d bytes, more than %d", len(e.ID), MaxIDLength)}
		case e.Type == "":
			return &InvalidEventError{Index: i, Field: "Type", Reason: "is empty"}
		case len(e.Type) > MaxIDLength:
			return &InvalidEventError{Index: i, Field: "Type", Reason: fmt.Sprintf("is %d bytes, more than %d", len(e.Type), MaxIDLength)}
		case e.SchemaVersion < 0:
			return &InvalidEventError{Index: i, Field: "SchemaVersion", Reason: fmt.Sprintf("is %d, negative", e.SchemaVersion)}
		case len(e.Data) > MaxEventSize:
			return &InvalidEventError{Index: i, Field: "Data", Reason: fmt.Sprintf("is %d bytes, more than %d", len(e.Data), MaxEventSize)}
		}
		if n := metadataSize(e.Metadata); n > MaxMetadataSize {
			return &InvalidEventError{Index: i, Field: "Metadata", Reason: fmt.Sprintf("is %d bytes, more than %d", n, MaxMetadataSize)}
		}
		if _, dup := seen[e.ID]; dup {
			return &InvalidEventError{Index: i, Field: "ID", Reason: fmt.Sprintf("%q repeats an earlier event of the append", e.ID)}
		}
		seen[e.ID] = struct{}{}
	}
	return nil
}

// metadataSize is the number of bytes of m's strings.
func metadataSize(m Metadata) int {
	n := len(m.CorrelationID) + len(m.CausationID) + len(m.TraceParent) + len(m.TraceState)
	for k, v := range m.Extra {
		n += len(k) + len(v)
	}
	return n
}
