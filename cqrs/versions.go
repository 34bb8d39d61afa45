package cqrs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/cairnhq/cairn/eventstore"
)

// ErrNoActiveVersion is returned by [Active] for a projection that has no
// active version yet: no Projector of it has caught up.
var ErrNoActiveVersion = errors.New("cqrs: no active projection version")

// ErrVersionActive is returned by [DropVersion] for the active version.
var ErrVersionActive = errors.New("cqrs: projection version is active")

const activeQuery = "SELECT version FROM cqrs_projection_active WHERE name = ?"

// Active returns the active version of the projection name: the one whose
// tables queries should read (see [Table]). It returns an error matching
// [ErrNoActiveVersion] if there is none. Run it in the query's transaction
// to read the version and its tables from one snapshot; outside one, the
// version read stays queryable until [DropVersion] drops it.
func Active(ctx context.Context, q Querier, d Dialect, name string) (int, error) {
	var v int
	err := q.QueryRowContext(ctx, d.Rebind(activeQuery), name).Scan(&v)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return 0, fmt.Errorf("%w: %s", ErrNoActiveVersion, name)
	case err != nil && isMissingTable(err):
		return 0, fmt.Errorf("%w: %s (no projector has run)", ErrNoActiveVersion, name)
	case err != nil:
		return 0, fmt.Errorf("cqrs: active version of projection %s: %w", name, err)
	}
	return v, nil
}

// Checkpoint returns the checkpoint of version of the projection name: the
// position of the last event its read model holds, 0 before the first.
func Checkpoint(ctx context.Context, q Querier, d Dialect, name string, version int) (eventstore.Position, error) {
	var pos eventstore.Position
	err := q.QueryRowContext(ctx, d.Rebind("SELECT position FROM cqrs_checkpoints WHERE name = ? AND version = ?"), name, version).Scan(&pos)
	if err != nil {
		return 0, fmt.Errorf("cqrs: checkpoint of projection %s v%d: %w", name, version, err)
	}
	return pos, nil
}

// DropVersion drops the tables of version of the projection name, with
// p's Drop (p being that version's Projection), and forgets its
// checkpoint, in one transaction. It refuses the active version with an
// error matching [ErrVersionActive]. Stop the version's Projectors first:
// one still running fails at its next batch.
func DropVersion(ctx context.Context, db *sql.DB, d Dialect, name string, version int, p Projection) error {
	if err := d.validate(); err != nil {
		return err
	}
	fail := func(err error) error {
		return fmt.Errorf("cqrs: drop projection %s v%d: %w", name, version, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fail(err)
	}
	defer tx.Rollback()
	if err := createTables(ctx, tx, d); err != nil {
		return fail(err)
	}
	active, err := Active(ctx, tx, d, name)
	if err != nil && !errors.Is(err, ErrNoActiveVersion) {
		return fail(err)
	}
	if err == nil && active == version {
		return fail(ErrVersionActive)
	}
	if err := p.Drop(ctx, tx); err != nil {
		return fail(err)
	}
	if _, err := tx.ExecContext(ctx, d.Rebind("DELETE FROM cqrs_checkpoints WHERE name = ? AND version = ?"), name, version); err != nil {
		return fail(err)
	}
	if err := tx.Commit(); err != nil {
		return fail(err)
	}
	return nil
}

// isMissingTable reports an error of a query on a table that does not
// exist, in SQLite ("no such table") or PostgreSQL (SQLSTATE 42P01).
func isMissingTable(err error) bool {
	msg := err.Error()
	return strings.Contains(msg, "no such table") || strings.Contains(msg, "42P01")
}
