package cqrs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"
)

// ClaimState is the answer of [IdempotencyStore.Claim].
type ClaimState int

// Values of ClaimState.
const (
	// Claimed means the caller holds the ID and must run the command, then
	// call Complete or Release.
	Claimed ClaimState = iota + 1
	// Done means a command with the ID already succeeded.
	Done
	// InProgress means another caller holds the ID.
	InProgress
)

// String returns "claimed", "done" or "in progress".
func (s ClaimState) String() string {
	switch s {
	case Claimed:
		return "claimed"
	case Done:
		return "done"
	case InProgress:
		return "in progress"
	}
	return fmt.Sprintf("ClaimState(%d)", int(s))
}

// IdempotencyStore remembers command IDs for [Idempotency]. Implementations
// must be safe for concurrent use, across processes if they share state:
// of concurrent Claims of one ID, at most one returns Claimed.
type IdempotencyStore interface {
	// Claim reserves id: it returns Claimed if the caller now holds it,
	// Done if a holder completed it, InProgress if another holds it.
	Claim(ctx context.Context, id string) (ClaimState, error)
	// Complete records that the command with id, claimed by the caller,
	// succeeded: later Claims return Done.
	Complete(ctx context.Context, id string) error
	// Release gives back id, claimed by the caller, whose command failed:
	// a later Claim may return Claimed. Releasing a completed ID does
	// nothing.
	Release(ctx context.Context, id string) error
}

var (
	_ IdempotencyStore = (*MemoryIdempotencyStore)(nil)
	_ IdempotencyStore = (*SQLIdempotencyStore)(nil)
)

// MemoryIdempotencyStore is an [IdempotencyStore] in memory, for one
// process and for tests. It is safe for concurrent use; the zero value is
// an empty store. It forgets nothing: its size grows with the number of
// distinct IDs.
type MemoryIdempotencyStore struct {
	mu   sync.Mutex
	done map[string]bool // id -> completed; absent: free
}

// Claim implements [IdempotencyStore].
func (s *MemoryIdempotencyStore) Claim(_ context.Context, id string) (ClaimState, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	done, ok := s.done[id]
	switch {
	case !ok:
		if s.done == nil {
			s.done = make(map[string]bool)
		}
		s.done[id] = false
		return Claimed, nil
	case done:
		return Done, nil
	}
	return InProgress, nil
}

// Complete implements [IdempotencyStore].
func (s *MemoryIdempotencyStore) Complete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.done[id]; !ok {
		return fmt.Errorf("cqrs: complete command %s: not claimed", id)
	}
	s.done[id] = true
	return nil
}

// Release implements [IdempotencyStore].
func (s *MemoryIdempotencyStore) Release(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done[id] {
		delete(s.done, id)
	}
	return nil
}

// SQLIdempotencyOptions configures [NewSQLIdempotencyStore]. The zero value
// is a valid configuration.
type SQLIdempotencyOptions struct {
	// Table is the table that holds the IDs, created if missing. Default
	// "cqrs_idempotency". It may be schema-qualified ("app.commands").
	Table string
	// Lease is how long a claim holds an ID before another Claim may take
	// it over, so that the ID of a process that died while running a
	// command is not held forever. It must be longer than any command
	// runs, or a command may run twice. Zero or negative means 5 minutes.
	Lease time.Duration
}

// DefaultIdempotencyLease is the Lease of a zero [SQLIdempotencyOptions].
const DefaultIdempotencyLease = 5 * time.Minute

var tableName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$`)

// SQLIdempotencyStore is an [IdempotencyStore] in a SQLite or PostgreSQL
// database, shared by every process that uses the database. It is safe
// for concurrent use. It does not own its *sql.DB.
//
// A SQLite database used by several connections needs a busy timeout
// (modernc.org/sqlite: "_pragma=busy_timeout(5000)" in the DSN).
type SQLIdempotencyStore struct {
	db    *sql.DB
	lease time.Duration
	q     struct{ insert, get, takeOver, complete, release string }
}

// NewSQLIdempotencyStore returns a store in db, after creating its table
// if missing. It returns an error for an unknown dialect, an invalid
// table name or a failure to create the table.
func NewSQLIdempotencyStore(ctx context.Context, db *sql.DB, d Dialect, opts SQLIdempotencyOptions) (*SQLIdempotencyStore, error) {
	if err := d.validate(); err != nil {
		return nil, err
	}
	table := opts.Table
	if table == "" {
		table = "cqrs_idempotency"
	}
	if !tableName.MatchString(table) {
		return nil, fmt.Errorf("cqrs: idempotency table name %q is not an identifier", table)
	}
	lease := opts.Lease
	if lease <= 0 {
		lease = DefaultIdempotencyLease
	}
	s := &SQLIdempotencyStore{db: db, lease: lease}
	s.q.insert = d.Rebind("INSERT INTO " + table + " (command_id, state, claimed_at) VALUES (?, 'pending', ?) ON CONFLICT (command_id) DO NOTHING")
	s.q.get = d.Rebind("SELECT state, claimed_at FROM " + table + " WHERE command_id = ?")
	s.q.takeOver = d.Rebind("UPDATE " + table + " SET claimed_at = ? WHERE command_id = ? AND state = 'pending' AND claimed_at = ?")
	s.q.complete = d.Rebind("UPDATE " + table + " SET state = 'done', completed_at = ? WHERE command_id = ?")
	s.q.release = d.Rebind("DELETE FROM " + table + " WHERE command_id = ? AND state = 'pending'")

	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("cqrs: create idempotency table %s: %w", table, err)
	}
	defer tx.Rollback()
	if err := d.lock(ctx, tx, "idempotency"); err != nil {
		return nil, fmt.Errorf("cqrs: create idempotency table %s: %w", table, err)
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+table+` (
		command_id TEXT PRIMARY KEY,
		state TEXT NOT NULL,
		claimed_at BIGINT NOT NULL,
		completed_at BIGINT
	)`); err != nil {
		return nil, fmt.Errorf("cqrs: create idempotency table %s: %w", table, err)
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("cqrs: create idempotency table %s: %w", table, err)
	}
	return s, nil
}

// Claim implements [IdempotencyStore]. It takes over a pending claim older
// than the lease.
func (s *SQLIdempotencyStore) Claim(ctx context.Context, id string) (ClaimState, error) {
	for range 3 { // a row released or taken over between statements: look again
		now := time.Now().UnixNano()
		res, err := s.db.ExecContext(ctx, s.q.insert, id, now)
		if err != nil {
			return 0, fmt.Errorf("cqrs: claim command %s: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("cqrs: claim command %s: %w", id, err)
		} else if n == 1 {
			return Claimed, nil
		}
		var state string
		var claimedAt int64
		err = s.db.QueryRowContext(ctx, s.q.get, id).Scan(&state, &claimedAt)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, fmt.Errorf("cqrs: claim command %s: %w", id, err)
		}
		if state == "done" {
			return Done, nil
		}
		if now-claimedAt < int64(s.lease) {
			return InProgress, nil
		}
		res, err = s.db.ExecContext(ctx, s.q.takeOver, now, id, claimedAt)
		if err != nil {
			return 0, fmt.Errorf("cqrs: claim command %s: take over: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return 0, fmt.Errorf("cqrs: claim command %s: take over: %w", id, err)
		} else if n == 1 {
			return Claimed, nil
		}
	}
	return InProgress, nil
}

// Complete implements [IdempotencyStore].
func (s *SQLIdempotencyStore) Complete(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q.complete, time.Now().UnixNano(), id)
	if err != nil {
		return fmt.Errorf("cqrs: complete command %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("cqrs: complete command %s: %w", id, err)
	} else if n != 1 {
		return fmt.Errorf("cqrs: complete command %s: not claimed", id)
	}
	return nil
}

// Release implements [IdempotencyStore].
func (s *SQLIdempotencyStore) Release(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, s.q.release, id); err != nil {
		return fmt.Errorf("cqrs: release command %s: %w", id, err)
	}
	return nil
}
