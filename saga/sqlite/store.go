// Package sqlite is a [saga.Store] on SQLite through modernc.org/sqlite
// (driver "sqlite"): one row per saga instance in one table, created if
// missing. Leases are judged by this process's clock, which every process
// sharing the database file must keep in step.
//
// Open the database with a busy timeout, WAL and immediate transactions,
// so that concurrent writers wait for each other instead of failing:
//
//	db, err := sql.Open("sqlite", "file:saga.db?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_txlock=immediate")
package sqlite

import (
	"context"
	"database/sql"
	"time"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/internal/sqlstore"
)

// DefaultTable is the table of a store without [WithTable].
const DefaultTable = sqlstore.DefaultTable

// Option configures [New].
type Option func(*config)

type config struct{ table string }

// WithTable sets the table holding the instances: letters, digits and
// underscores. Default [DefaultTable].
func WithTable(name string) Option { return func(c *config) { c.table = name } }

// Store is a [saga.Store] on a SQLite database. It is safe for concurrent
// use. It does not own its *sql.DB.
type Store struct{ s *sqlstore.Store }

var _ saga.Store = (*Store)(nil)

// New returns a store on db, after creating its table if it is missing.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	s, err := sqlstore.New(ctx, db, sqlstore.SQLite, c.table)
	if err != nil {
		return nil, err
	}
	return &Store{s}, nil
}

// Create implements [saga.Store].
func (s *Store) Create(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, bool, error) {
	return s.s.Create(ctx, inst, lease)
}

// Get implements [saga.Store].
func (s *Store) Get(ctx context.Context, id string) (saga.Instance, error) { return s.s.Get(ctx, id) }

// Update implements [saga.Store].
func (s *Store) Update(ctx context.Context, inst saga.Instance, lease time.Duration) (saga.Instance, error) {
	return s.s.Update(ctx, inst, lease)
}

// Renew implements [saga.Store].
func (s *Store) Renew(ctx context.Context, id, owner string, lease time.Duration) error {
	return s.s.Renew(ctx, id, owner, lease)
}

// Claim implements [saga.Store].
func (s *Store) Claim(ctx context.Context, owner string, definitions []string, lease time.Duration, limit int) ([]saga.Instance, error) {
	return s.s.Claim(ctx, owner, definitions, lease, limit)
}
