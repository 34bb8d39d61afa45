package sqlitestore

import (
	"database/sql"
	"path/filepath"
	"slices"
	"strconv"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
)

// TestMigrateSnapshots opens a database of schema version 1, from before
// snapshots, and checks that Open adds the snapshots table and keeps the
// events.
func TestMigrateSnapshots(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "v1.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatalf("sql.Open() error = %v", err)
	}
	for _, stmt := range slices.Concat(migrations[0], []string{
		`INSERT INTO events (stream_id, version, event_id, type, schema_version, data, metadata, recorded_at) VALUES ('s', 1, 'e1', 'x', 1, x'', '{}', 0)`,
		`INSERT INTO streams (stream_id, version) VALUES ('s', 1)`,
		`PRAGMA user_version = 1`,
	}) {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	for i := range 2 { // the second Open finds the schema up to date
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open(version 1 database) error = %v", err)
		}
		var version int
		if err := s.read.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != len(migrations) {
			t.Errorf("user_version after Open = %d, want %d", version, len(migrations))
		}
		if v, err := s.Version(ctx, "s"); v != 1 || err != nil {
			t.Errorf("Version(s) = %d, %v, want 1, nil", v, err)
		}
		snap := eventstore.Snapshot{StreamID: "s", Version: 1, Type: "state", Data: []byte(strconv.Itoa(i))}
		if err := s.SaveSnapshot(ctx, snap); err != nil {
			t.Errorf("SaveSnapshot() error = %v", err)
		}
		got, ok, err := s.LoadSnapshot(ctx, "s")
		if err != nil || !ok || string(got.Data) != strconv.Itoa(i) {
			t.Errorf("LoadSnapshot() = %+v, %v, %v, want data %d", got, ok, err, i)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestWithSyncNormal: the option sets synchronous=NORMAL on the writer,
// and the default is FULL.
func TestWithSyncNormal(t *testing.T) {
	for _, tc := range []struct {
		opts []Option
		want int // PRAGMA synchronous: 1 NORMAL, 2 FULL
	}{{nil, 2}, {[]Option{WithSyncNormal()}, 1}} {
		s, err := Open(t.Context(), filepath.Join(t.TempDir(), "events.db"), tc.opts...)
		if err != nil {
			t.Fatal(err)
		}
		var got int
		if err := s.write.QueryRowContext(t.Context(), "PRAGMA synchronous").Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tc.want {
			t.Errorf("PRAGMA synchronous = %d, want %d", got, tc.want)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
