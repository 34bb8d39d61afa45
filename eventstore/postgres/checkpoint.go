package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/eventstore"
)

var (
	_ eventstore.Checkpoints = (*Store)(nil)
	_ eventstore.Counter     = (*Store)(nil)
)

const migrateCheckpoints = `
CREATE TABLE IF NOT EXISTS $S.checkpoints (
	name text PRIMARY KEY,
	position bigint NOT NULL,
	updated_at timestamptz NOT NULL DEFAULT statement_timestamp()
);`

type checkpointQueries struct {
	loadCheckpoint, saveCheckpoint, countAfter string
}

func newCheckpointQueries(r *strings.Replacer) checkpointQueries {
	return checkpointQueries{
		loadCheckpoint: r.Replace(`SELECT position FROM $S.checkpoints WHERE name = $1`),
		saveCheckpoint: r.Replace(`INSERT INTO $S.checkpoints AS c (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = statement_timestamp()`),
		countAfter: r.Replace(`SELECT count(*) FROM (SELECT 1 FROM $S.events WHERE position > $1 ORDER BY position LIMIT $2) AS e`),
	}
}

// LoadCheckpoint returns the position saved under name, 0 if none; see
// [eventstore.Checkpoints].
func (s *Store) LoadCheckpoint(ctx context.Context, name string) (eventstore.Position, error) {
	if err := eventstore.ValidateCheckpoint(name, 0); err != nil {
		return 0, err
	}
	var pos int64
	err := s.db.QueryRow(ctx, s.q.loadCheckpoint, name).Scan(&pos)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("postgres: load checkpoint %q: %w", name, err)
	}
	return eventstore.Position(pos), nil
}

// SaveCheckpoint saves pos under name; see [eventstore.Checkpoints].
func (s *Store) SaveCheckpoint(ctx context.Context, name string, pos eventstore.Position) error {
	if err := eventstore.ValidateCheckpoint(name, pos); err != nil {
		return err
	}
	if _, err := s.db.Exec(ctx, s.q.saveCheckpoint, name, int64(pos)); err != nil {
		return fmt.Errorf("postgres: save checkpoint %q at %d: %w", name, pos, err)
	}
	return nil
}

// CountAfter counts the committed events after position after, up to
// limit, whether or not the watermark has reached them; see
// [eventstore.Counter].
func (s *Store) CountAfter(ctx context.Context, after eventstore.Position, limit int64) (int64, error) {
	if limit <= 0 {
		return 0, nil
	}
	var n int64
	if err := s.db.QueryRow(ctx, s.q.countAfter, int64(after), limit).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: count events after %d: %w", after, err)
	}
	return n, nil
}
