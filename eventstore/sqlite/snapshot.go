package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

var _ eventstore.SnapshotStore = (*Store)(nil)

// The statements of the snapshots.
const (
	// upsertSnapshotSQL keeps the snapshot of the higher version; one of
	// the same version replaces the stored one.
	upsertSnapshotSQL = `INSERT INTO snapshots (stream_id, version, type, data, recorded_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, type = excluded.type, data = excluded.data, recorded_at = excluded.recorded_at
WHERE excluded.version >= snapshots.version`
	loadSnapshotSQL = `SELECT st.deleted, sn.version, sn.type, sn.data, sn.recorded_at
FROM streams st LEFT JOIN snapshots sn ON sn.stream_id = st.stream_id WHERE st.stream_id = ?`
	deleteSnapshotSQL = `DELETE FROM snapshots WHERE stream_id = ?`
)

// SaveSnapshot stores snap as its stream's snapshot, unless the stored one
// has a higher version, as [eventstore.SnapshotStore] says. It checks the
// stream's version and writes in one write transaction, so it cannot race
// an append or a deletion. It makes a span "save_snapshot snapshots" and
// records its duration, like the other operations (see the package doc);
// a refused save has the outcome [eventstore.OutcomeError].
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) (err error) {
	ctx, span, begin := s.start(ctx, opSaveSnapshot, snap.StreamID)
	defer func() { s.end(ctx, opSaveSnapshot, begin, span, outcomeOf(err), err) }()
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return err
	}
	err = s.saveSnapshot(ctx, snap)
	if errors.Is(err, eventstore.ErrSnapshotAhead) || errors.Is(err, eventstore.ErrStreamDeleted) {
		return err
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: save snapshot of %s at version %d: %w", snap.StreamID, snap.Version, err)
	}
	return nil
}

func (s *Store) saveSnapshot(ctx context.Context, snap eventstore.Snapshot) (err error) {
	tx, err := s.write.BeginTx(ctx, nil) // BEGIN IMMEDIATE
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer func() { err = errors.Join(err, ignoreDone(tx.Rollback())) }()
	current, deleted, err := streamState(ctx, tx, snap.StreamID)
	if err != nil {
		return err
	}
	if deleted {
		return fmt.Errorf("sqlitestore: save snapshot of %s: %w", snap.StreamID, eventstore.ErrStreamDeleted)
	}
	if snap.Version > current {
		return &eventstore.SnapshotAheadError{Stream: snap.StreamID, Version: snap.Version, Current: current}
	}
	data := snap.Data
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	if _, err := tx.ExecContext(ctx, upsertSnapshotSQL, snap.StreamID, snap.Version, snap.Type, data, time.Now().UnixNano()); err != nil {
		return fmt.Errorf("upsert: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// LoadSnapshot returns stream's snapshot and true, false if it has none,
// and an error matching [eventstore.ErrStreamDeleted] for a deleted
// stream. Data of length zero reads back as nil. It makes a span
// "load_snapshot snapshots" and records its duration; finding no snapshot
// has the outcome [eventstore.OutcomeOK].
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (_ eventstore.Snapshot, _ bool, err error) {
	ctx, span, begin := s.start(ctx, opLoadSnapshot, stream)
	defer func() { s.end(ctx, opLoadSnapshot, begin, span, outcomeOf(err), err) }()
	var (
		deleted  bool
		version  sql.NullInt64
		typ      sql.NullString
		data     []byte
		recorded sql.NullInt64
	)
	err = s.read.QueryRowContext(ctx, loadSnapshotSQL, stream).Scan(&deleted, &version, &typ, &data, &recorded)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return eventstore.Snapshot{}, false, nil
	case err != nil:
		return eventstore.Snapshot{}, false, fmt.Errorf("sqlitestore: load snapshot of %s: %w", stream, err)
	case deleted:
		return eventstore.Snapshot{}, false, fmt.Errorf("sqlitestore: load snapshot of %s: %w", stream, eventstore.ErrStreamDeleted)
	case !version.Valid:
		return eventstore.Snapshot{}, false, nil
	}
	if len(data) == 0 {
		data = nil
	}
	return eventstore.Snapshot{
		StreamID:   stream,
		Version:    version.Int64,
		Type:       typ.String,
		Data:       data,
		RecordedAt: time.Unix(0, recorded.Int64).UTC(),
	}, true, nil
}
