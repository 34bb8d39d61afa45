package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/eventstore"
)

var _ eventstore.SnapshotStore = (*Store)(nil)

// migrateSnapshots is the schema's second step: the latest snapshot of
// each stream.
const migrateSnapshots = `
CREATE TABLE IF NOT EXISTS $S.snapshots (
	stream_id text PRIMARY KEY,
	version bigint NOT NULL,
	type text NOT NULL,
	data bytea NOT NULL,
	recorded_at timestamptz NOT NULL DEFAULT statement_timestamp()
);`

// snapshotQueries are the statements of the snapshots.
type snapshotQueries struct {
	shareStream, upsertSnapshot, loadSnapshot, deleteSnapshot string
}

func newSnapshotQueries(r *strings.Replacer) snapshotQueries {
	return snapshotQueries{
		// A save holds the stream's row in share mode, so an append or a
		// deletion of the stream waits for it.
		shareStream: r.Replace(`SELECT version, deleted FROM $S.streams WHERE stream_id = $1 FOR SHARE`),
		// Keeps the snapshot of the higher version; one of the same
		// version replaces the stored one.
		upsertSnapshot: r.Replace(`INSERT INTO $S.snapshots AS sn (stream_id, version, type, data) VALUES ($1, $2, $3, $4)
ON CONFLICT (stream_id) DO UPDATE SET version = excluded.version, type = excluded.type, data = excluded.data, recorded_at = excluded.recorded_at
WHERE excluded.version >= sn.version`),
		loadSnapshot: r.Replace(`SELECT st.deleted, sn.version, sn.type, sn.data, sn.recorded_at
FROM $S.streams st LEFT JOIN $S.snapshots sn ON sn.stream_id = st.stream_id WHERE st.stream_id = $1`),
		deleteSnapshot: r.Replace(`DELETE FROM $S.snapshots WHERE stream_id = $1`),
	}
}

// SaveSnapshot stores snap as its stream's snapshot, unless the stored one
// has a higher version, as [eventstore.SnapshotStore] says. It runs in one
// transaction holding the stream's row in share mode, so that it cannot
// race an append or a deletion of the stream. RecordedAt is the time of
// the statement, truncated to microseconds. It makes a span
// "eventstore.postgres save_snapshot" and records its duration, like the
// other operations; a refused save has the outcome
// [eventstore.OutcomeError].
func (s *Store) SaveSnapshot(ctx context.Context, snap eventstore.Snapshot) (err error) {
	ctx, c := s.tel.start(ctx, opSaveSnapshot, snap.StreamID)
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	if err := eventstore.ValidateSnapshot(snap); err != nil {
		return err
	}
	data := snap.Data
	if data == nil {
		data = []byte{} // the column is NOT NULL
	}
	err = pgx.BeginFunc(ctx, s.db, func(tx pgx.Tx) error {
		var (
			current int64
			deleted bool
		)
		err := tx.QueryRow(ctx, s.q.shareStream, snap.StreamID).Scan(&current, &deleted)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if deleted {
			return fmt.Errorf("postgres: save snapshot of %q: %w", snap.StreamID, eventstore.ErrStreamDeleted)
		}
		if snap.Version > current {
			return &eventstore.SnapshotAheadError{Stream: snap.StreamID, Version: snap.Version, Current: current}
		}
		_, err = tx.Exec(ctx, s.q.upsertSnapshot, snap.StreamID, snap.Version, snap.Type, data)
		return err
	})
	if err != nil && !errors.Is(err, eventstore.ErrSnapshotAhead) && !errors.Is(err, eventstore.ErrStreamDeleted) {
		return fmt.Errorf("postgres: save snapshot of %q at version %d: %w", snap.StreamID, snap.Version, err)
	}
	return err
}

// LoadSnapshot returns stream's snapshot and true, false if it has none,
// and an error matching [eventstore.ErrStreamDeleted] for a deleted
// stream. Data of length zero reads back as nil. It makes a span
// "eventstore.postgres load_snapshot" and records its duration; finding no
// snapshot has the outcome [eventstore.OutcomeOK].
func (s *Store) LoadSnapshot(ctx context.Context, stream string) (_ eventstore.Snapshot, _ bool, err error) {
	ctx, c := s.tel.start(ctx, opLoadSnapshot, stream)
	defer func() { c.end(ctx, outcomeOf(err), err) }()
	var (
		deleted  bool
		version  *int64
		typ      *string
		data     []byte
		recorded *time.Time
	)
	err = s.db.QueryRow(ctx, s.q.loadSnapshot, stream).Scan(&deleted, &version, &typ, &data, &recorded)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return eventstore.Snapshot{}, false, nil
	case err != nil:
		return eventstore.Snapshot{}, false, fmt.Errorf("postgres: load snapshot of %q: %w", stream, err)
	case deleted:
		return eventstore.Snapshot{}, false, fmt.Errorf("postgres: load snapshot of %q: %w", stream, eventstore.ErrStreamDeleted)
	case version == nil || typ == nil || recorded == nil:
		return eventstore.Snapshot{}, false, nil
	}
	if len(data) == 0 {
		data = nil
	}
	return eventstore.Snapshot{StreamID: stream, Version: *version, Type: *typ, Data: data, RecordedAt: recorded.UTC()}, true, nil
}
