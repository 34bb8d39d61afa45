package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/cairnhq/cairn/eventstore"
)

var (
	_ eventstore.Checkpoints = (*Store)(nil)
	_ eventstore.Counter     = (*Store)(nil)
)

const (
	loadCheckpointSQL = `SELECT position FROM checkpoints WHERE name = ?`
	saveCheckpointSQL = `INSERT INTO checkpoints (name, position, updated_at) VALUES (?, ?, ?)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = excluded.updated_at`
	countAfterSQL = `SELECT count(*) FROM (SELECT 1 FROM events WHERE position > ? ORDER BY position LIMIT ?)`
)

// LoadCheckpoint returns the position saved under name, 0 if none; see
// [eventstore.Checkpoints].
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, error) {
	if err := eventstore.ValidateCheckpoint(name, 0); err != nil {
		return 0, err
	}
	var pos int64
	err := s.read.QueryRowContext(ctx, loadCheckpointSQL, name).Scan(&pos)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: load checkpoint %q: %w", name, err)
	}
	return eventstore.Position(pos), nil
}

// SaveCheckpoint saves pos under name; see [eventstore.Checkpoints].
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if err := eventstore.ValidateCheckpoint(name, pos); err != nil {
		return err
	}
	if _, err := s.write.ExecContext(ctx, saveCheckpointSQL, name, int64(pos), time.Now().UnixNano()); err != nil {
		return fmt.Errorf("sqlitestore: save checkpoint %q at %d: %w", name, pos, err)
	}
	return nil
}

// CountAfter counts the events after position after, up to limit; see
// [eventstore.Counter].
func (s *Store) CountAfter(ctx context.Context, after eventstore.Position, limit int64) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.read.QueryRowContext(ctx, countAfterSQL, int64(after), limit).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count events after %d: %w", after, err)
	}
	return n, nil
}
