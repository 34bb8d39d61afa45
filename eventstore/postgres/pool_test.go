package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/cairnhq/cairn/internal/testenv"
)

// connPool is a minimal DB over a few pgx connections, for the tests that
// need to hold a transaction open on a connection of their choosing (the
// gap tests); TestWithPgxpool covers the real pool. It starts no
// goroutine; Close closes every connection.
type connPool struct {
	url  string
	idle chan *pgx.Conn
	sem  chan struct{} // one token per open or opening connection
	mu   sync.Mutex
	all  map[*pgx.Conn]struct{}
}

var _ DB = (*connPool)(nil)

func newConnPool(url string, size int) *connPool {
	return &connPool{url: url, idle: make(chan *pgx.Conn, size), sem: make(chan struct{}, size), all: map[*pgx.Conn]struct{}{}}
}

func (p *connPool) acquire(ctx context.Context) (*pgx.Conn, error) {
	select {
	case c := <-p.idle:
		return c, nil
	default:
	}
	select {
	case c := <-p.idle:
		return c, nil
	case p.sem <- struct{}{}:
		c, err := pgx.Connect(ctx, p.url)
		if err != nil {
			<-p.sem
			return nil, err
		}
		p.mu.Lock()
		p.all[c] = struct{}{}
		p.mu.Unlock()
		return c, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (p *connPool) release(c *pgx.Conn) {
	if c.IsClosed() || c.PgConn().IsBusy() {
		p.mu.Lock()
		delete(p.all, c)
		p.mu.Unlock()
		c.Close(context.Background())
		<-p.sem
		return
	}
	p.idle <- c
}

func (p *connPool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.all {
		c.Close(context.Background())
	}
	p.all = nil
}

func (p *connPool) Begin(ctx context.Context) (pgx.Tx, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	tx, err := c.Begin(ctx)
	if err != nil {
		p.release(c)
		return nil, err
	}
	return &poolTx{Tx: tx, done: sync.OnceFunc(func() { p.release(c) })}, nil
}

func (p *connPool) Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	defer p.release(c)
	return c.Exec(ctx, sql, args...)
}

func (p *connPool) Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	c, err := p.acquire(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := c.Query(ctx, sql, args...)
	if err != nil {
		p.release(c)
		return nil, err
	}
	return &poolRows{Rows: rows, done: sync.OnceFunc(func() { p.release(c) })}, nil
}

func (p *connPool) QueryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := p.Query(ctx, sql, args...)
	if err != nil {
		return errRow{err}
	}
	return rowOf{rows}
}

type poolTx struct {
	pgx.Tx
	done func()
}

func (t *poolTx) Commit(ctx context.Context) error {
	err := t.Tx.Commit(ctx)
	t.done()
	return err
}

func (t *poolTx) Rollback(ctx context.Context) error {
	err := t.Tx.Rollback(ctx)
	t.done()
	return err
}

type poolRows struct {
	pgx.Rows
	done func()
}

func (r *poolRows) Close() {
	r.Rows.Close()
	r.done()
}

type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// rowOf scans the first row of rows and closes them, as pgx's QueryRow.
type rowOf struct{ rows pgx.Rows }

func (r rowOf) Scan(dest ...any) error {
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}

// newTestDB returns a pool on the test PostgreSQL and a fresh random
// schema name; at cleanup it drops the schema and closes the pool.
func newTestDB(t testing.TB) (*connPool, string) {
	t.Helper()
	url := testenv.Require(t, testenv.Postgres)
	p := newConnPool(url, 6)
	var b [6]byte
	rand.Read(b[:])
	schema := "es_test_" + hex.EncodeToString(b[:])
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testCleanupTimeout)
		defer cancel()
		if _, err := p.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		p.Close()
	})
	return p, schema
}

// newTestStore returns a store in a fresh schema, closed at cleanup.
func newTestStore(t testing.TB, opts ...Option) (*Store, *connPool) {
	t.Helper()
	p, schema := newTestDB(t)
	s, err := New(t.Context(), p, append([]Option{WithSchema(schema)}, opts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, p
}
