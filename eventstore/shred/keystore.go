package shred

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrKeyNotFound is returned by [KeyStore.Get] for a subject without a
// key: forgotten, or never given one.
var ErrKeyNotFound = errors.New("shred: no key for subject")

// A KeyStore keeps one data key per subject. The keys it holds are opaque
// bytes to it (encoded, and wrapped with the master key if the [Store]
// has one). Implementations must be safe for concurrent use.
//
// Deleting a key must be permanent: no soft delete, no history table, no
// trash. The known limit of crypto-shredding is everything outside the
// KeyStore's control: a backup, replica or dump of the key table taken
// before the deletion still holds the key, and restoring it makes the
// subject's data readable again. Keep key backups short-lived, or encrypt
// them with a key that is rotated away.
type KeyStore interface {
	// GetOrCreate stores key as subject's key unless subject has one, and
	// returns subject's stored key: key itself, or the one stored before.
	// Concurrent calls for one subject all return the same key: one key
	// wins.
	GetOrCreate(ctx context.Context, subject string, key []byte) ([]byte, error)
	// Get returns subject's key, or an error matching [ErrKeyNotFound].
	Get(ctx context.Context, subject string) ([]byte, error)
	// Delete deletes subject's key for good. Deleting a key that does not
	// exist does nothing and returns nil.
	Delete(ctx context.Context, subject string) error
}

// MemoryKeys is a [KeyStore] in memory, for tests. The zero value is ready
// to use; it is safe for concurrent use.
type MemoryKeys struct {
	mu   sync.Mutex
	keys map[string][]byte
}

var _ KeyStore = (*MemoryKeys)(nil)

// GetOrCreate implements [KeyStore].
func (m *MemoryKeys) GetOrCreate(_ context.Context, subject string, key []byte) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		return bytes.Clone(k), nil
	}
	if m.keys == nil {
		m.keys = make(map[string][]byte)
	}
	m.keys[subject] = bytes.Clone(key)
	return bytes.Clone(key), nil
}

// Get implements [KeyStore].
func (m *MemoryKeys) Get(_ context.Context, subject string) ([]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if k, ok := m.keys[subject]; ok {
		return bytes.Clone(k), nil
	}
	return nil, fmt.Errorf("%w %q", ErrKeyNotFound, subject)
}

// Delete implements [KeyStore].
func (m *MemoryKeys) Delete(_ context.Context, subject string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.keys, subject)
	return nil
}

// SQLiteKeys is a [KeyStore] in a table shred_keys of a SQLite database
// (database/sql with the driver of modernc.org/sqlite, "sqlite"). It is
// safe for concurrent use. Keep it in another database file than the
// events, so that a copy of the events holds no key; give the database a
// busy timeout (the DSN's _pragma=busy_timeout(ms)) if several connections
// write to it.
type SQLiteKeys struct {
	db *sql.DB
}

var _ KeyStore = (*SQLiteKeys)(nil)

// NewSQLiteKeys returns a key store on db, creating its table if needed.
// It does not close db.
func NewSQLiteKeys(ctx context.Context, db *sql.DB) (*SQLiteKeys, error) {
	_, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS shred_keys (
	subject    TEXT    PRIMARY KEY,
	key        BLOB    NOT NULL,
	created_at INTEGER NOT NULL -- Unix nanoseconds, UTC
) WITHOUT ROWID`)
	if err != nil {
		return nil, fmt.Errorf("shred: create table shred_keys: %w", err)
	}
	return &SQLiteKeys{db: db}, nil
}

// GetOrCreate implements [KeyStore], in one statement.
func (s *SQLiteKeys) GetOrCreate(ctx context.Context, subject string, key []byte) ([]byte, error) {
	var stored []byte
	// The no-op update makes RETURNING return the stored key on conflict.
	err := s.db.QueryRowContext(ctx, `INSERT INTO shred_keys (subject, key, created_at) VALUES (?, ?, ?)
ON CONFLICT (subject) DO UPDATE SET key = shred_keys.key RETURNING key`, subject, key, time.Now().UnixNano()).Scan(&stored)
	if err != nil {
		return nil, fmt.Errorf("shred: get or create key of %q: %w", subject, err)
	}
	return stored, nil
}

// Get implements [KeyStore].
func (s *SQLiteKeys) Get(ctx context.Context, subject string) ([]byte, error) {
	var stored []byte
	err := s.db.QueryRowContext(ctx, `SELECT key FROM shred_keys WHERE subject = ?`, subject).Scan(&stored)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("%w %q", ErrKeyNotFound, subject)
	case err != nil:
		return nil, fmt.Errorf("shred: get key of %q: %w", subject, err)
	}
	return stored, nil
}

// Delete implements [KeyStore]: the row is deleted. SQLite may leave the
// deleted bytes in free pages of the file until they are reused; open the
// database with _pragma=secure_delete(1) to have them overwritten.
func (s *SQLiteKeys) Delete(ctx context.Context, subject string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM shred_keys WHERE subject = ?`, subject); err != nil {
		return fmt.Errorf("shred: delete key of %q: %w", subject, err)
	}
	return nil
}

// PostgresDB is what [PostgresKeys] needs of PostgreSQL: a *pgxpool.Pool,
// or the DB of eventstore/postgres. It must be safe for concurrent use.
type PostgresDB interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// DefaultPostgresSchema is the schema of [PostgresKeys]' table when
// [NewPostgresKeys] is given none.
const DefaultPostgresSchema = "shred"

// PostgresKeys is a [KeyStore] in a table shred_keys of a PostgreSQL
// schema. It is safe for concurrent use. A deleted row stays in the
// table's pages until VACUUM reclaims it, and in the WAL and its archives:
// see [KeyStore] on backups.
type PostgresKeys struct {
	db                     PostgresDB
	getOrCreate, get, drop string
}

var _ KeyStore = (*PostgresKeys)(nil)

// NewPostgresKeys returns a key store on db, in schema (empty:
// [DefaultPostgresSchema]), creating the schema and the table if needed.
func NewPostgresKeys(ctx context.Context, db PostgresDB, schema string) (*PostgresKeys, error) {
	if schema == "" {
		schema = DefaultPostgresSchema
	}
	table := pgx.Identifier{schema, "shred_keys"}.Sanitize()
	_, err := db.Exec(ctx, `CREATE SCHEMA IF NOT EXISTS `+pgx.Identifier{schema}.Sanitize()+`;
CREATE TABLE IF NOT EXISTS `+table+` (
	subject text PRIMARY KEY,
	key bytea NOT NULL,
	created_at timestamptz NOT NULL DEFAULT statement_timestamp()
)`)
	if err != nil {
		return nil, fmt.Errorf("shred: create table %s: %w", table, err)
	}
	return &PostgresKeys{
		db: db,
		// The no-op update makes RETURNING return the stored key on
		// conflict; concurrent inserts of one subject wait for each other.
		getOrCreate: `INSERT INTO ` + table + ` AS k (subject, key) VALUES ($1, $2)
ON CONFLICT (subject) DO UPDATE SET key = k.key RETURNING key`,
		get:  `SELECT key FROM ` + table + ` WHERE subject = $1`,
		drop: `DELETE FROM ` + table + ` WHERE subject = $1`,
	}, nil
}

// GetOrCreate implements [KeyStore], in one statement.
func (s *PostgresKeys) GetOrCreate(ctx context.Context, subject string, key []byte) ([]byte, error) {
	var stored []byte
	if err := s.db.QueryRow(ctx, s.getOrCreate, subject, key).Scan(&stored); err != nil {
		return nil, fmt.Errorf("shred: get or create key of %q: %w", subject, err)
	}
	return stored, nil
}

// Get implements [KeyStore].
func (s *PostgresKeys) Get(ctx context.Context, subject string) ([]byte, error) {
	var stored []byte
	err := s.db.QueryRow(ctx, s.get, subject).Scan(&stored)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, fmt.Errorf("%w %q", ErrKeyNotFound, subject)
	case err != nil:
		return nil, fmt.Errorf("shred: get key of %q: %w", subject, err)
	}
	return stored, nil
}

// Delete implements [KeyStore].
func (s *PostgresKeys) Delete(ctx context.Context, subject string) error {
	if _, err := s.db.Exec(ctx, s.drop, subject); err != nil {
		return fmt.Errorf("shred: delete key of %q: %w", subject, err)
	}
	return nil
}
