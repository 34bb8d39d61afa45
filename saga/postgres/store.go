// Package postgres is a [saga.Store] on PostgreSQL through pgx's
// database/sql driver (github.com/jackc/pgx/v5/stdlib, driver "pgx"): one
// row per saga instance in one table of the connection's search_path,
// created if missing. Leases are judged by the database's clock (now()),
// never the caller's, and Claim locks the rows it takes with FOR UPDATE
// SKIP LOCKED, so that concurrent claims neither wait for nor duplicate
// each other.
package postgres

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

// Store is a [saga.Store] on a PostgreSQL database. It is safe for concurrent
// use. It does not own its *sql.DB.
type Store struct{ s *sqlstore.Store }

var _ saga.Store = (*Store)(nil)

// New returns a store on db, after creating its table if it is missing.
func New(ctx context.Context, db *sql.DB, opts ...Option) (*Store, error) {
	var c config
	for _, o := range opts {
		o(&c)
	}
	s, err := sqlstore.New(ctx, db, sqlstore.Postgres, c.table)
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
