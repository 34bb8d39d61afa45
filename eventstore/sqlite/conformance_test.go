package sqlitestore_test

import (
	"path/filepath"
	"testing"

	"github.com/cairnhq/cairn/eventstore"
	"github.com/cairnhq/cairn/eventstore/eventstoretest"
	sqlitestore "github.com/cairnhq/cairn/eventstore/sqlite"
)

// TestConformance runs the eventstoretest conformance suite against a fresh
// file database per check.
func TestConformance(t *testing.T) {
	eventstoretest.Run(t, func(t *testing.T) eventstore.Store {
		s, err := sqlitestore.Open(t.Context(), filepath.Join(t.TempDir(), "events.db"))
		if err != nil {
			t.Fatalf("Open() error = %v", err)
		}
		t.Cleanup(func() {
			if err := s.Close(); err != nil {
				t.Errorf("Close() error = %v", err)
			}
		})
		return s
	})
}
