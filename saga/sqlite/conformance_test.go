package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"

	_ "modernc.org/sqlite" // driver "sqlite"

	"github.com/cairnhq/cairn/saga"
	"github.com/cairnhq/cairn/saga/sagatest"
)

// openDB opens a fresh database file in t.TempDir(), closed at cleanup.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "saga.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("close sqlite: %v", err)
		}
	})
	return db
}

func TestConformance(t *testing.T) {
	sagatest.Run(t, func(t *testing.T) saga.Store {
		s, err := New(t.Context(), openDB(t))
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		return s
	})
}

func TestNewTable(t *testing.T) {
	db := openDB(t)
	for _, tt := range []struct {
		table   string
		wantErr bool
	}{
		{"", false}, {"my_sagas", false}, {"my_sagas", false}, {"bad name", true}, {"x;DROP TABLE y", true}, {"s.t", true},
	} {
		_, err := New(t.Context(), db, WithTable(tt.table))
		if (err != nil) != tt.wantErr {
			t.Errorf("New(WithTable(%q)) error = %v, want error %v", tt.table, err, tt.wantErr)
		}
	}
}

// TestTwoProcesses runs the crash check with each orchestrator on its own
// connection pool to one database file, as two processes would.
func TestTwoProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "saga.db")
	var stores []saga.Store
	for range 2 {
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(20000)&_pragma=journal_mode(WAL)&_txlock=immediate")
		if err != nil {
			t.Fatalf("open sqlite: %v", err)
		}
		t.Cleanup(func() { db.Close() })
		s, err := New(t.Context(), db)
		if err != nil {
			t.Fatalf("New: %v", err)
		}
		stores = append(stores, s)
	}
	sagatest.CrashTakeover(t, stores[0], stores[1])
}
