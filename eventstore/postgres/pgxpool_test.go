package postgres

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/internal/testenv"
)

// A *pgxpool.Pool is what production callers pass.
var _ DB = (*pgxpool.Pool)(nil)

// TestWithPgxpool runs a store over a real pgxpool: append, an idempotent
// retry and a read of the global log.
func TestWithPgxpool(t *testing.T) {
	url := testenv.Require(t, testenv.Postgres)
	pool, err := pgxpool.New(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, schema := newTestDB(t) // a fresh schema name, dropped at cleanup
	s, err := New(t.Context(), pool, WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	defer pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")

	events := []eventstore.Event{ev("pool-1"), ev("pool-2")}
	first, err := s.Append(t.Context(), "pool-stream", eventstore.NoStream, events...)
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Append(t.Context(), "pool-stream", eventstore.NoStream, events...)
	if err != nil || again != first {
		t.Fatalf("retry = %+v, %v; want %+v, nil", again, err, first)
	}
	got, err := s.ReadAll(t.Context(), 0, 10)
	if err != nil || len(got) != 2 || got[0].ID != "pool-1" || got[1].Position != first.LastPosition {
		t.Fatalf("ReadAll = %v, %v", ids(got), err)
	}
}
