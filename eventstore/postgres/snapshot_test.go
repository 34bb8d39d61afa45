package postgres

import (
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/cairnhq/cairn/eventstore"
)

// TestMigrateSnapshots migrates a schema of the first step, from before
// snapshots, and checks that New adds the snapshots table.
func TestMigrateSnapshots(t *testing.T) {
	ctx := t.Context()
	p, schema := newTestDB(t)
	q := newQueries(pgx.Identifier{schema}.Sanitize())
	if _, err := p.Exec(ctx, q.migrate[0]); err != nil {
		t.Fatalf("first step: %v", err)
	}
	s, err := New(ctx, p, WithSchema(schema))
	if err != nil {
		t.Fatalf("New(schema of step 1) error = %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	if _, err := s.Append(ctx, "s", eventstore.NoStream, eventstore.Event{ID: "e1", Type: "x"}); err != nil {
		t.Fatalf("Append() error = %v", err)
	}
	if err := s.SaveSnapshot(ctx, eventstore.Snapshot{StreamID: "s", Version: 1, Type: "state", Data: []byte("1")}); err != nil {
		t.Fatalf("SaveSnapshot() error = %v", err)
	}
	if got, ok, err := s.LoadSnapshot(ctx, "s"); err != nil || !ok || got.Version != 1 || string(got.Data) != "1" {
		t.Errorf("LoadSnapshot() = %+v, %v, %v, want version 1, data 1", got, ok, err)
	}
	if err := s.Migrate(ctx); err != nil {
		t.Errorf("Migrate(up to date) error = %v", err)
	}
}
