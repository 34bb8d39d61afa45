package eventstore

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// A Snapshot is the state of a stream's aggregate as of one version of
// the stream, saved so that loading the aggregate reads only the events
// after it. A snapshot is a cache: it can always be rebuilt from the
// stream's events.
type Snapshot struct {
	// StreamID is the stream the snapshot is of. Required.
	StreamID string
	// Version is the version of the stream's last event the snapshot
	// includes, 1 or more: a loader reads the stream from Version+1.
	Version int64
	// Type names the snapshot's schema, such as "order.state.v2", so that
	// a loader can ignore a snapshot it cannot decode. Required.
	Type string
	// Data is the encoded state, usually JSON; at most MaxSnapshotSize
	// bytes. It may be empty, and then reads back as nil.
	Data []byte
	// RecordedAt is when the store saved the snapshot (UTC). SaveSnapshot
	// ignores it.
	RecordedAt time.Time
}

// MaxSnapshotSize is the largest Data a snapshot may have, in bytes.
const MaxSnapshotSize = 16 << 20

// SnapshotStore is the optional interface of a [Store] that keeps
// snapshots: the latest one of each stream. Callers type-assert a Store to
// it. Implementations must be safe for concurrent use and must pass the
// Snapshots check of eventstoretest.
type SnapshotStore interface {
	// SaveSnapshot stores snap as its stream's snapshot, unless the
	// stream's stored snapshot has a higher version, which it keeps
	// (returning nil): the newest snapshot wins, whatever the order of
	// the saves. A snapshot of the stored version replaces it.
	//
	// It returns a [*SnapshotAheadError] (matching [ErrSnapshotAhead]) if
	// snap.Version is above the stream's current version, an error
	// matching [ErrStreamDeleted] for a deleted stream, and an
	// [*InvalidEventError] (matching [ErrInvalidEvent]) for a snapshot
	// that [ValidateSnapshot] refuses.
	SaveSnapshot(ctx context.Context, snap Snapshot) error
	// LoadSnapshot returns stream's snapshot and true, or false if the
	// stream has none. It returns an error matching [ErrStreamDeleted]
	// for a deleted stream: deleting a stream deletes its snapshot.
	LoadSnapshot(ctx context.Context, stream string) (Snapshot, bool, error)
}

// ErrSnapshotAhead is matched by a [*SnapshotAheadError].
var ErrSnapshotAhead = errors.New("eventstore: snapshot ahead of stream")

// SnapshotAheadError reports a snapshot whose version is above its
// stream's current version.
type SnapshotAheadError struct {
	Stream string
	// Version is the snapshot's version; Current the stream's.
	Version, Current int64
}

// Error names the stream, the snapshot's version and the stream's.
func (e *SnapshotAheadError) Error() string {
	return fmt.Sprintf("eventstore: snapshot of stream %q at version %d is ahead of the stream, at version %d", e.Stream, e.Version, e.Current)
}

// Is reports whether target is [ErrSnapshotAhead].
func (e *SnapshotAheadError) Is(target error) bool { return target == ErrSnapshotAhead }

// ValidateSnapshot checks a snapshot before a backend saves it: a stream
// ID and a type no longer than MaxIDLength, a version of 1 or more and at
// most MaxSnapshotSize bytes of data. It returns an [*InvalidEventError]
// (Index -1, Field "snapshot ...") for the first problem.
func ValidateSnapshot(snap Snapshot) error {
	invalid := func(field, format string, args ...any) error {
		return &InvalidEventError{Index: -1, Field: "snapshot " + field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case snap.StreamID == "":
		return invalid("stream", "is empty")
	case len(snap.StreamID) > MaxIDLength:
		return invalid("stream", "is %d bytes, more than %d", len(snap.StreamID), MaxIDLength)
	case snap.Version < 1:
		return invalid("Version", "is %d, below 1", snap.Version)
	case snap.Type == "":
		return invalid("Type", "is empty")
	case len(snap.Type) > MaxIDLength:
		return invalid("Type", "is %d bytes, more than %d", len(snap.Type), MaxIDLength)
	case len(snap.Data) > MaxSnapshotSize:
		return invalid("Data", "is %d bytes, more than %d", len(snap.Data), MaxSnapshotSize)
	}
	return nil
}
